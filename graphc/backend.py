"""How compile() finds a backend by name without importing backends/ statically.

A backend module calls `register_backend(name, build)` when it is imported;
`build(program) -> Executable`. `get_backend` imports the module that provides a
known name on first use, so graphc/ never imports backends/ at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from graphc.shapes import Bindings

_MODULES = {
    "numpy": "backends.numpy",
    "llvm": "backends.llvm",
    "cuda": "backends.cuda",
    "cuda-emulated": "backends.cuda",
}
_BUILDERS: dict = {}


class ExecutionError(RuntimeError):
    """An op failed while a compiled function ran; the message names the op and where it was
    built. Every backend raises this (bad input is caught before a run by BindError)."""


@dataclass(frozen=True)
class Program:
    """What a backend compiles: placeholders in, outputs and parameter updates out."""

    inputs: tuple  # input Nodes, in call order
    outputs: tuple  # output Nodes
    updates: tuple  # (param Node, new-value Node) pairs
    params: tuple  # every param Node the outputs or updates read
    optimize: bool = True
    options: dict = field(default_factory=dict)
    kernels: Any = None  # graphc.kernels.KernelProgram when the optimizer ran

    @property
    def roots(self) -> tuple:
        """Every node whose value the backend must produce: outputs, then update values."""
        return self.outputs + tuple(value for _, value in self.updates)


class Executable(Protocol):
    source: str
    kernels: list

    def run(self, feeds: dict, bindings: Bindings) -> list:
        """Values of program.roots (outputs then update values) as numpy arrays."""
        ...

    def explain(self) -> str: ...


def register_backend(name: str, build: Callable[[Program], Any]) -> None:
    _BUILDERS[name] = build


def available_backends() -> list:
    return sorted(set(_MODULES) | set(_BUILDERS))


def get_backend(name: str) -> Callable[[Program], Any]:
    """The build function of backend `name`, importing its module on first use."""
    if name in _BUILDERS:
        return _BUILDERS[name]
    if name not in _MODULES:
        raise ValueError(
            f"unknown backend {name!r}; known backends: {', '.join(available_backends())}"
        )
    try:
        importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"backend {name!r} is not available in this installation ({error})"
        ) from None
    if name not in _BUILDERS:
        raise RuntimeError(f"backend {name!r} is not available in this installation")
    return _BUILDERS[name]


def as_array(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.asarray(value)
