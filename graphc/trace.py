"""The tracing front end: @gc.function compiles a Python function of Tensors on first call.

On a call, the signature is the shape and dtype of every array argument and the
value of every other argument (python scalars, strings, ...: static). A new
signature traces the function once with fresh gc.input placeholders of those
concrete shapes, compiles the result and caches it; a call with a signature seen
before reuses the compiled Function. So a retrace happens when an array's shape
or dtype changes, or a static argument's value changes; parameter values may
change freely (they are read at run time).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.compile import Function
from graphc.ops.sources import input as make_input
from graphc.tensor import Tensor, as_tensor


class TracedFunction:
    def __init__(self, fn: Callable, backend: str, options: dict) -> None:
        self.fn = fn
        self.backend = backend
        self.options = options
        self.signature = inspect.signature(fn)
        self.cache: dict = {}
        self.traces = 0
        functools.update_wrapper(self, fn)

    def _key(self, arguments: dict) -> tuple:
        key = []
        for name, value in arguments.items():
            if isinstance(value, (np.ndarray, list)) or hasattr(value, "__array__"):
                array = np.asarray(value)
                key.append((name, "array", array.shape, array.dtype.name))
            else:
                key.append((name, "static", type(value).__name__, value))
        return tuple(key)

    def _trace(self, arguments: dict) -> tuple:
        self.traces += 1
        placeholders = {}
        call_args = {}
        for name, value in arguments.items():
            if isinstance(value, (np.ndarray, list)) or hasattr(value, "__array__"):
                array = np.asarray(value)
                node = make_input(name, array.shape, dtype=array.dtype)
                placeholders[name] = node
                call_args[name] = Tensor(node)
            else:
                call_args[name] = value
        result = self.fn(**call_args)
        structure = "single"
        if isinstance(result, (tuple, list)):
            structure = type(result)
            outputs = [as_tensor(r) for r in result]
        else:
            outputs = as_tensor(result)
        compiled = Function(
            list(placeholders.values()), outputs, backend=self.backend, **self.options
        )
        return compiled, list(placeholders), structure

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = self._key(bound.arguments)
        entry = self.cache.get(key)
        if entry is None:
            entry = self._trace(bound.arguments)
            self.cache[key] = entry
        compiled, names, structure = entry
        result = compiled(*[np.asarray(bound.arguments[n]) for n in names])
        if structure == "single":
            return result
        return structure(result)

    def compiled(self, *args: Any, **kwargs: Any) -> Function:
        """The Function a call with these arguments runs (tracing it if needed)."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = self._key(bound.arguments)
        if key not in self.cache:
            self.cache[key] = self._trace(bound.arguments)
        return self.cache[key][0]


def function(fn: Callable | None = None, *, backend: str = "numpy", **options: Any) -> Any:
    """Decorator: `@gc.function(backend="llvm")` or plain `@gc.function`."""
    if fn is None:
        return lambda f: TracedFunction(f, backend, options)
    return TracedFunction(fn, backend, options)
