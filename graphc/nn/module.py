"""Modules: objects that own parameters and build their part of a graph.

A Module is built for an input Tensor and a mode ("train" or "eval"):
`model.build(x, mode)` returns a Built holding the output Tensor, the state updates the
mode asks for (BatchNorm's running averages, in training) and the random masks the
compiled function must be fed (Dropout's, in training). `model.parameters()` are the
trainable params, `model.states()` the non-trainable ones (running averages); both are
gc.param Tensors, so compiled functions read them and `updates=` replace them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import graphc as gc
from graphc.tensor import Tensor

MODES = ("train", "eval")
_counters: dict = {}


def auto_name(kind: str) -> str:
    """dense1, dense2, conv1, ...: a fresh name for a layer of this kind."""
    counter = _counters.setdefault(kind, itertools.count(1))
    return f"{kind}{next(counter)}"


@dataclass
class RandomMask:
    """A 0/1 placeholder the caller draws for each call: 1 with probability 1 - rate."""

    input: Tensor
    rate: float
    layer: str


@dataclass
class Context:
    """What building a graph collects besides the output."""

    mode: str
    updates: dict = field(default_factory=dict)  # state param -> its new value
    masks: list = field(default_factory=list)  # RandomMask, in build order
    trace: list = field(default_factory=list)  # (layer name, kind, output shape, params)

    @property
    def training(self) -> bool:
        return self.mode == "train"


@dataclass
class Built:
    """A model's graph for one input: its output, state updates and random masks."""

    output: Tensor
    updates: dict
    masks: list
    trace: list
    mode: str

    def describe(self) -> str:
        """One line per layer: name, kind, output shape and parameter count."""
        lines = [f"  {'layer':<14}{'kind':<12}{'output shape':<22}{'parameters':>12}"]
        for name, kind, shape, count in self.trace:
            shown = "(" + ", ".join(str(d) for d in shape) + ")"
            lines.append(f"  {name:<14}{kind:<12}{shown:<22}{count:>12,}")
        return "\n".join(lines)


class Module:
    """A part of a model: parameters, state, and how it maps its input to its output."""

    kind = "module"

    def __init__(self, name: str | None = None) -> None:
        self.name = name or auto_name(self.kind)

    def parameters(self) -> list:
        """The trainable params (Tensors), in a fixed order."""
        return []

    def states(self) -> list:
        """Non-trainable params (running averages), in a fixed order."""
        return []

    @property
    def parameter_count(self) -> int:
        return sum(int(p.value.size) for p in self.parameters())

    @property
    def dtype(self) -> str:
        params = self.parameters() + self.states()
        return params[0].dtype if params else "float32"

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor, ctx: Context) -> Tensor:
        y = self.forward(x, ctx)
        ctx.trace.append((self.name, self.kind, tuple(y.shape), self.own_parameter_count()))
        return y

    def own_parameter_count(self) -> int:
        return self.parameter_count

    def build(self, x: Any, mode: str = "train") -> Built:
        """This module's graph for input x in `mode` ("train" or "eval")."""
        if mode not in MODES:
            raise ValueError(f"{self.name}: mode must be 'train' or 'eval', got {mode!r}")
        ctx = Context(mode)
        y = self(gc.as_tensor(x), ctx)
        return Built(y, dict(ctx.updates), list(ctx.masks), list(ctx.trace), mode)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.parameter_count:,} parameters>"


class Container(Module):
    """A module made of other modules; its parameters are theirs, in order."""

    children: list

    def parameters(self) -> list:
        return [p for child in self.children for p in child.parameters()]

    def states(self) -> list:
        return [s for child in self.children for s in child.states()]

    def own_parameter_count(self) -> int:
        return 0  # each child reports its own


class Sequential(Container):
    """Layers applied in order."""

    kind = "sequential"

    def __init__(self, layers: Iterable[Module], name: str | None = None) -> None:
        super().__init__(name)
        self.children = list(layers)
        for layer in self.children:
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: expected Modules, got {type(layer).__name__}")

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        for layer in self.children:
            x = layer(x, ctx)
        return x

    def __call__(self, x: Tensor, ctx: Context) -> Tensor:
        return self.forward(x, ctx)  # its layers trace themselves

    def __getitem__(self, k: int) -> Module:
        return self.children[k]

    def __len__(self) -> int:
        return len(self.children)


class Residual(Container):
    """block(x) + shortcut(x), the shortcut the identity unless given (He et al. 2016)."""

    kind = "residual"

    def __init__(
        self, block: Module, shortcut: Module | None = None, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.block, self.shortcut = block, shortcut
        self.children = [block] if shortcut is None else [block, shortcut]

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        y = self.block(x, ctx)
        skip = x if self.shortcut is None else self.shortcut(x, ctx)
        if tuple(skip.shape) != tuple(y.shape):
            raise ValueError(
                f"{self.name}: the block's output {tuple(y.shape)} and the shortcut's "
                f"{tuple(skip.shape)} differ; give a shortcut that matches (a 1x1 Conv)"
            )
        return y + skip


class Lambda(Module):
    """A parameter-free function of the input: Lambda(gc.relu), Lambda(gc.tanh, "tanh")."""

    kind = "lambda"

    def __init__(self, fn: Callable[[Tensor], Tensor], name: str | None = None) -> None:
        self.kind = getattr(fn, "__name__", "lambda")
        super().__init__(name)
        self.fn = fn

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        return self.fn(x)


def ReLU(name: str | None = None) -> Lambda:  # noqa: N802
    return Lambda(gc.relu, name)


def Tanh(name: str | None = None) -> Lambda:  # noqa: N802
    return Lambda(gc.tanh, name)


def Sigmoid(name: str | None = None) -> Lambda:  # noqa: N802
    return Lambda(gc.sigmoid, name)


class Flatten(Module):
    """(N, *rest) -> (N, prod(rest))."""

    kind = "flatten"

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        rest = math.prod(int(d) for d in x.shape[1:])
        return gc.reshape(x, (x.shape[0], rest))
