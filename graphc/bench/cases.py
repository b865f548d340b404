"""What a benchmark row is: a named workload with its flop and byte counts, graphc's
compiled callable, and the same workload in each peer library (when installed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Measured:
    """A peer timed elsewhere (in its own process): its first result and its timing."""

    first: object
    timing: object  # graphc.bench.timing.Timing


class Skip(Exception):
    """A peer that cannot run here (not installed, or no equivalent); the message says why."""


@dataclass
class Case:
    name: str
    suite: str  # "kernels" | "models" | "conv"
    flops: float  # per call; nominal for elementwise rows (one flop per scalar op)
    bytes: float  # useful traffic per call: inputs read once, outputs written once
    graphc: Callable[[str], Callable[[], object]]  # backend -> a call to time
    peers: dict = field(default_factory=dict)  # peer name -> () -> a call to time (or Skip)
    check: Callable[[object, object], None] | None = None  # (graphc result, numpy result)


def torch_module(threads: int):  # noqa: ANN201
    try:
        import torch
    except ImportError:
        raise Skip("torch not installed (pip install torch==2.13.0)") from None
    torch.set_num_threads(threads)
    return torch


def jax_modules():  # noqa: ANN201
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise Skip("jax not installed (pip install 'jax[cpu]')") from None
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


__all__ = ["Case", "Measured", "Skip", "jax_modules", "torch_module"]
