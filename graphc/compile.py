"""compile(): check the program, pick a backend by name, return a callable Function.

A Function binds the symbolic sizes from the arrays it is given, checks them
before anything runs (rank, dtype, sizes that must agree), runs the backend's
executable, and then replaces each parameter named in `updates` by its new value
(all new values are computed from the old ones before any is assigned).

An array given for an input must have the input's dtype, or one numpy casts to it
safely (float32 -> float64, int8 -> int32, ...); integer arrays are also accepted
for integer inputs when their values fit (int64 labels for an int32 input). Lists
and python scalars are converted. Anything else is a BindError before any run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc.backend import Program, get_backend
from graphc.node import DTYPES, Node, toposort
from graphc.passes import optimize as run_passes
from graphc.passes.fuse import fuse
from graphc.shapes import BindError, Bindings, ShapeError, dims_equal, shape_str
from graphc.tensor import Tensor, unwrap


def _as_node(value: Any, what: str) -> Node:
    node = unwrap(value)
    if not isinstance(node, Node):
        raise TypeError(f"compile: {what} must be a Tensor, got {type(value).__name__}")
    return node


def _check_updates(updates: Mapping[Any, Any]) -> tuple:
    if not isinstance(updates, Mapping):
        raise TypeError(f"compile: updates must be a dict {{param: new value}}, got {updates!r}")
    pairs = []
    for key, value in updates.items():
        param = _as_node(key, "an updates key")
        if param.op != "param":
            raise TypeError(f"compile: updates keys must be params, got {param.label()}")
        name = param.attrs["name"]
        new = _as_node(value, f"the update of param {name!r}")
        same = len(param.shape) == len(new.shape) and all(
            dims_equal(a, b) for a, b in zip(param.shape, new.shape)
        )
        if not same:
            raise ShapeError(
                f"compile: update of param {name!r} has shape {shape_str(new.shape)}, "
                f"the param has {shape_str(param.shape)} (update built at {new.where})"
            )
        if new.dtype != param.dtype:
            raise TypeError(
                f"compile: update of param {name!r} is {new.dtype}, the param is "
                f"{param.dtype} (update built at {new.where}; convert it with .astype)"
            )
        pairs.append((param, new))
    return tuple(pairs)


def _article(dtype: str) -> str:
    return "an" if dtype[0] in "aeiou" else "a"


_NUMPY_DTYPES = {name: np.dtype(name) for name in DTYPES}


def _coerce_argument(node: Node, value: Any) -> np.ndarray:
    """The array for input `node`, or a clear error when its dtype cannot be used."""
    expected = node.dtype
    if isinstance(value, np.ndarray) and value.dtype is _NUMPY_DTYPES[expected]:
        return value  # the common case, first: builtin dtypes are singletons, native order
    name = node.attrs["name"]
    if hasattr(value, "__cuda_array_interface__"):  # a device (cupy) array: backend "cuda" reads it
        if str(value.dtype) != expected:
            raise BindError(
                f"input '{name}': expected {_article(expected)} {expected} array, got a "
                f"{value.dtype} device array (convert it with .astype)"
            )
        return value
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise BindError(f"input '{name}': cannot convert to an array: {error}") from None
        if value.dtype.kind in "iuf" and expected.startswith("float"):
            return value.astype(expected)  # python numbers (and lists of them) are weakly typed
        if value.dtype.kind in "iufc" and expected.startswith("complex"):
            return value.astype(expected)
        if value.dtype.kind in "iu" and expected.startswith("int"):
            pass  # checked below: the values must fit
        elif value.dtype.kind == "b" and expected == "bool":
            return value
        elif value.dtype.kind not in "iufbc":
            raise BindError(
                f"input '{name}': expected {_article(expected)} {expected} array, "
                f"got {type(value).__name__} of {value.dtype}"
            )
    got = value.dtype
    if got.name == expected:
        return value if got.isnative else value.astype(got.newbyteorder("="))
    if got.kind in "iufc" and np.can_cast(got, expected, "safe"):
        return value.astype(expected)
    if expected in ("int32", "int64") and got.kind in "iu":
        info = np.iinfo(expected)
        if value.size == 0 or (value.min() >= info.min and value.max() <= info.max):
            return value.astype(expected)
        raise BindError(
            f"input '{name}': expected {_article(expected)} {expected} array; the {got.name} "
            f"array given has values in [{value.min()}, {value.max()}], outside {expected}'s "
            f"range"
        )
    raise BindError(
        f"input '{name}': expected {_article(expected)} {expected} array, got {got.name}"
        f" (convert it with .astype(np.{expected}))"
    )


class Function:
    """A compiled graph: call it with arrays, get arrays; parameters persist between calls.

    Calls may come from several Python threads at once. A Function without updates runs
    them concurrently (backends keep scratch buffers per thread); one with updates runs one
    call at a time (a lock), so every step reads the parameters the previous one wrote.
    """

    def __init__(
        self,
        inputs: Sequence[Any],
        outputs: Any,
        updates: Mapping[Any, Any] | None = None,
        backend: str = "numpy",
        optimize: bool = True,
        **options: Any,
    ) -> None:
        started = time.perf_counter()
        if isinstance(inputs, (Tensor, Node)):
            inputs = [inputs]
        self.single_output = not isinstance(outputs, (list, tuple))
        output_list = [outputs] if self.single_output else list(outputs)
        self.inputs = tuple(_as_node(i, "inputs") for i in inputs)
        self.outputs = tuple(_as_node(o, "outputs") for o in output_list)
        self.updates = _check_updates(updates or {})
        for node in self.inputs:
            if node.op != "input":
                raise TypeError(
                    f"compile: inputs must be gc.input placeholders, got {node.label()}"
                )
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError("compile: an input is listed twice")
        roots = self.outputs + tuple(v for _, v in self.updates)
        reachable = toposort(roots)
        missing = [n for n in reachable if n.op == "input" and n not in self.inputs]
        if missing:
            names = ", ".join(f"'{n.attrs['name']}' (built at {n.where})" for n in missing)
            raise ValueError(
                f"compile: the outputs depend on inputs not passed to compile: {names}"
            )
        params = tuple(n for n in reachable if n.op == "param")
        self.backend = backend
        outputs, updates, self.pass_log = self.outputs, self.updates, []
        kernels = None
        if optimize:
            new_roots, self.pass_log = run_passes(roots, options.pop("skip_passes", ()))
            outputs = tuple(new_roots[: len(self.outputs)])
            updates = tuple(zip((p for p, _ in self.updates), new_roots[len(self.outputs) :]))
            fuse_started = time.perf_counter()
            kernels = fuse(new_roots)
            spent = (time.perf_counter() - fuse_started) * 1e3
            self.pass_log += [f"fuse: {line}" for line in kernels.log]
            self.pass_log.append(
                f"fuse + schedule: {len(kernels.kernels)} kernels "
                f"({kernels.count('library')} library calls) in {spent:.1f} ms"
            )
            if int(os.environ.get("GRAPHC_DEBUG", "0") or 0) >= 2:
                print(f"[graphc] kernels:\n{kernels.describe()}")
        self.program = Program(
            inputs=self.inputs,
            outputs=outputs,
            updates=updates,
            params=params,
            optimize=optimize,
            options=dict(options),
            kernels=kernels,
        )
        self.executable = get_backend(backend)(self.program)
        self.compile_seconds = time.perf_counter() - started
        self._lock = threading.Lock()
        self._bindings: dict = {}  # argument shapes -> their Bindings

    @property
    def source(self) -> str:
        """The generated code (for the numpy backend: the op listing it interprets)."""
        return self.executable.source

    @property
    def kernels(self) -> list:
        return list(self.executable.kernels)

    def explain(self) -> str:
        """What the compiler did: backend, timings and the backend's own account."""
        head = (
            f"graphc Function: {len(self.inputs)} inputs, {len(self.outputs)} outputs, "
            f"{len(self.updates)} updates, backend {self.backend!r}, "
            f"compiled in {self.compile_seconds * 1e3:.1f} ms"
        )
        passes = "".join(f"\n  {line}" for line in self.pass_log)
        if passes:
            head += "\npasses:" + passes
        return head + "\n" + self.executable.explain()

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple:
        """Arrays for each input and the bindings of the symbolic sizes; errors before any run."""
        names = [n.attrs["name"] for n in self.inputs]
        if len(args) > len(self.inputs):
            raise TypeError(
                f"expected {len(self.inputs)} arrays ({', '.join(names)}), got {len(args)}"
            )
        values = list(args) + [None] * (len(self.inputs) - len(args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"unknown input {key!r}; inputs are {', '.join(names)}")
            if names.count(key) > 1:
                raise TypeError(
                    f"{names.count(key)} inputs are named {key!r}; pass their arrays by position"
                )
            k = names.index(key)
            if k < len(args):
                raise TypeError(f"input {key!r} given twice")
            values[k] = value
        absent = [names[k] for k, v in enumerate(values) if v is None]
        if absent:
            raise TypeError(f"missing arrays for inputs: {', '.join(absent)}")
        feeds = {node: _coerce_argument(node, value) for node, value in zip(self.inputs, values)}
        signature = tuple(a.shape for a in feeds.values())
        bindings = self._bindings.get(signature)
        if bindings is None:  # sizes are solved (sympy) once per shape signature
            bindings = Bindings()
            bindings.bind_all([(n.attrs["name"], n.shape, a.shape) for n, a in feeds.items()])
            if len(self._bindings) >= 64:
                self._bindings.clear()
            self._bindings[signature] = bindings
        return feeds, bindings

    def __call__(self, *args: Any, device_output: bool = False, **kwargs: Any) -> Any:
        feeds, bindings = self.bind(args, kwargs)
        if getattr(self.executable, "updates_params", False):  # parameters live on the device
            with self._lock:
                found = self.executable.run(feeds, bindings, device_output=device_output)
            return found[0] if self.single_output else tuple(found)
        if device_output:
            raise TypeError(
                f"device_output=True needs backend 'cuda' on a GPU, not {self.backend!r}"
            )
        if any(hasattr(v, "__cuda_array_interface__") for v in feeds.values()):
            raise BindError(f"device (cupy) arrays need backend 'cuda', not {self.backend!r}")
        # a backend whose results are new arrays each call (fresh_results) hands them over
        # as they are; others may return their own buffers or views of inputs: copied
        owned = getattr(self.executable, "fresh_results", False)
        n = len(self.outputs)
        if not self.updates:  # nothing shared is written: calls from several threads overlap
            results = self.executable.run(feeds, bindings)
        else:
            with self._lock:  # a step reads the parameters the previous step wrote
                results = self.executable.run(feeds, bindings)
                for (param, _), value in zip(self.updates, results[n:]):
                    state = param.attrs["state"]
                    state.value = value if owned else np.array(value, dtype=param.dtype, copy=True)
        outputs = results[:n] if owned else [np.array(r, copy=True) for r in results[:n]]
        return outputs[0] if self.single_output else tuple(outputs)

    def __repr__(self) -> str:
        names = ", ".join(n.attrs["name"] for n in self.inputs)
        return f"<graphc.Function ({names}) -> {len(self.outputs)} outputs on {self.backend}>"


def compile(  # noqa: A001
    inputs: Sequence[Any],
    outputs: Any,
    updates: Mapping[Any, Any] | None = None,
    backend: str = "numpy",
    optimize: bool = True,
    **options: Any,
) -> Function:
    """Compile `outputs` as a function of `inputs`; see Function.

    outputs: a Tensor (the call returns one array) or a list of Tensors (a tuple).
    updates: {param: new value Tensor}, applied after each call (SGD: W - lr * gW).
    backend: "numpy" | "llvm" | "cuda" | "cuda-emulated"; optimize=False skips the passes.
    """
    return Function(inputs, outputs, updates, backend=backend, optimize=optimize, **options)
