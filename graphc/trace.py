"""The tracing front end: @gc.function compiles a Python function of Tensors on first call.

On a call, each argument is either an array or static:

- arrays: numpy arrays, lists (converted with np.asarray), numpy scalars and anything
  with `__array__`. The function sees a Tensor (a fresh gc.input of the array's concrete
  shape and dtype) in its place.
- static: everything else (python ints, floats, bools, strings, None, tuples, ...). The
  function sees the value itself, so it may branch on it. Static values must be hashable.

The signature of a call is the shape and dtype of every array argument and the type
and value of every static one (after defaults are applied; *args and **kwargs count
element by element). A new signature traces the function once, compiles the result
and caches it; a call with a signature seen before reuses that compiled Function.

So a retrace happens when, and only when:

- an array argument's shape changes (a batch of 32 then one of 10: two traces),
- an array argument's dtype changes (float32 then float64),
- a static argument's value or type changes (`training=True` then `False`; `1` then
  `1.0`), or the number of *args / the names of **kwargs change.

The values inside arrays never cause a retrace, and neither do parameter values: a
gc.param made outside the function is read when the compiled function runs. (A
gc.param made inside the function is a new parameter in every trace: make it outside.)
`traces` counts the traces so far; `compiled(...)` gives the Function a call would run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.compile import Function
from graphc.node import as_dtype
from graphc.ops.sources import input as make_input
from graphc.tensor import Tensor, as_tensor


def _as_array(fn: Callable, slot: tuple, value: Any) -> np.ndarray:
    """An array argument as an ndarray of a dtype graphc supports, or a TypeError naming it."""
    array = np.asarray(value)
    try:
        as_dtype(array.dtype)
    except TypeError as error:
        hint = " (a list is taken as an array; give static values as a tuple)"
        raise TypeError(
            f"{getattr(fn, '__name__', 'function')}: argument {_slot_name(slot)}: {error}"
            + (hint if isinstance(value, list) else "")
        ) from None
    return array


def _is_array(value: Any) -> bool:
    if isinstance(value, Tensor):
        return False
    return isinstance(value, (np.ndarray, np.generic, list)) or hasattr(value, "__array__")


class TracedFunction:
    def __init__(self, fn: Callable, backend: str, options: dict) -> None:
        self.fn = fn
        self.backend = backend
        self.options = options
        self.signature = inspect.signature(fn)
        self.cache: dict = {}
        self.traces = 0
        functools.update_wrapper(self, fn)

    def _flatten(self, bound: inspect.BoundArguments) -> list:
        """(slot, value) for each argument; *args and **kwargs contribute one slot per item."""
        slots = []
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                slots.extend(((name, k), v) for k, v in enumerate(value))
            elif kind is inspect.Parameter.VAR_KEYWORD:
                slots.extend(((name, k), v) for k, v in value.items())
            else:
                slots.append(((name, None), value))
        return slots

    def _key(self, slots: list) -> tuple:
        key = []
        for slot, value in slots:
            if _is_array(value):
                array = _as_array(self.fn, slot, value)
                key.append((slot, "array", array.shape, array.dtype.name))
            else:
                try:
                    hash(value)
                except TypeError:
                    name = getattr(self.fn, "__name__", "function")
                    raise TypeError(
                        f"{name}: argument {_slot_name(slot)} is static (not an array), so it "
                        f"must be hashable; got a {type(value).__name__}"
                    ) from None
                key.append((slot, "static", type(value), value))
        return tuple(key)

    def _trace(self, slots: list) -> tuple:
        self.traces += 1
        placeholders = []
        args: list = []
        kwargs: dict = {}
        for slot, value in slots:
            if _is_array(value):
                array = _as_array(self.fn, slot, value)
                node = make_input(_slot_name(slot), array.shape, dtype=array.dtype)
                placeholders.append(node)
                value = Tensor(node)
            name, item = slot
            kind = self.signature.parameters[name].kind
            if kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL) or (
                kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and not kwargs
            ):
                args.append(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                kwargs[item] = value
            else:
                kwargs[name] = value
        result = self.fn(*args, **kwargs)
        structure = None
        try:
            if isinstance(result, (tuple, list)):
                structure = type(result)
                outputs: Any = [as_tensor(r) for r in result]
            else:
                outputs = as_tensor(result)
        except TypeError:
            name = getattr(self.fn, "__name__", "function")
            raise TypeError(
                f"{name} must return a Tensor (or a number), or a tuple or list of them; "
                f"got {result!r}"
            ) from None
        compiled = Function(placeholders, outputs, backend=self.backend, **self.options)
        return compiled, structure

    def _entry(self, args: tuple, kwargs: dict) -> tuple:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        slots = self._flatten(bound)
        key = self._key(slots)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._trace(slots)
        arrays = [np.asarray(value) for _, value in slots if _is_array(value)]
        return entry, arrays

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        (compiled, structure), arrays = self._entry(args, kwargs)
        result = compiled(*arrays)
        if structure is None:
            return result
        if hasattr(structure, "_fields"):  # a namedtuple
            return structure(*result)
        return structure(result)

    def compiled(self, *args: Any, **kwargs: Any) -> Function:
        """The Function a call with these arguments runs (tracing it if needed)."""
        (compiled, _), _ = self._entry(args, kwargs)
        return compiled


def _slot_name(slot: tuple) -> str:
    name, item = slot
    return name if item is None else f"{name}[{item!r}]"


def function(fn: Callable | None = None, *, backend: str = "numpy", **options: Any) -> Any:
    """Decorator: `@gc.function(backend="llvm")` or plain `@gc.function`; see the module doc."""
    if fn is None:
        return lambda f: TracedFunction(f, backend, options)
    return TracedFunction(fn, backend, options)
