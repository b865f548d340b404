"""Every op, defined once: importing this package fills the table in `registry.OPS`."""

from graphc.ops import (  # noqa: F401 - importing them fills the table
    conv,
    elementwise,
    fft,
    linalg,
    nn,
    pool,
    reduce,
    shape,
    sources,
    structured,
    winograd,
)
from graphc.ops.registry import OPS, OpDef, apply, get

__all__ = ["OPS", "OpDef", "apply", "get"]
