"""Every op, defined once: importing this package fills the table in `registry.OPS`."""

from graphc.ops import elementwise, linalg, nn, reduce, shape, sources  # noqa: F401
from graphc.ops.registry import OPS, OpDef, apply, get

__all__ = ["OPS", "OpDef", "apply", "get"]
