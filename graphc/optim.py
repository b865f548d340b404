"""Optimizers whose state lives in the compiled function, and learning-rate schedules.

SGD's velocities are gc.param Tensors (state, not trainable), read and replaced by the
same `updates=` as the parameters, so one compiled call does the whole step: forward,
backward and update. The learning rate is an input of that call (a scalar), so a schedule
changes it without recompiling.

The algorithms (Goodfellow, Bengio & Courville, Deep Learning, 8.3), with g the gradient
of the loss plus weight_decay * theta, epsilon the learning rate and alpha the momentum:

  plain SGD:          theta <- theta - epsilon g
  classical momentum: v <- alpha v - epsilon g(theta);  theta <- theta + v
  Nesterov momentum:  the textbook evaluates g at the interim point theta + alpha v. We
      store phi = theta + alpha v instead of theta (Sutskever et al. 2013; Bengio et al.
      2013), so the gradient is taken at the stored parameters:
        v <- alpha v - epsilon g(phi);  phi <- phi + alpha v - epsilon g(phi)
      (substitute phi = theta + alpha v into the textbook update to get it). The
      sequence of phi is the textbook's theta + alpha v; PyTorch's nesterov=True is the
      same update with its buffer b = -v / epsilon, hence the same numbers when
      epsilon is constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

import graphc as gc
from graphc.tensor import Tensor


class Schedule:
    """A learning rate as a function of t, the number of updates done before this one."""

    def __call__(self, t: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    def __init__(self, lr: float) -> None:
        self.lr = float(lr)

    def __call__(self, t: int) -> float:
        return self.lr

    def __repr__(self) -> str:
        return f"Constant({self.lr})"


class StepDecay(Schedule):
    """lr * factor ** floor(t / every): multiplied by `factor` every `every` updates."""

    def __init__(self, lr: float, factor: float = 0.1, every: int = 1000) -> None:
        if every <= 0:
            raise ValueError(f"StepDecay: every must be a positive int, got {every}")
        self.lr, self.factor, self.every = float(lr), float(factor), int(every)

    def __call__(self, t: int) -> float:
        return self.lr * self.factor ** (t // self.every)

    def __repr__(self) -> str:
        return f"StepDecay({self.lr}, factor={self.factor}, every={self.every})"


class InverseScaling(Schedule):
    """lr / (1 + gamma t) ** power (power 1: the 1/t decay that meets Robbins-Monro)."""

    def __init__(self, lr: float, gamma: float = 1e-3, power: float = 1.0) -> None:
        if gamma < 0 or power < 0:
            raise ValueError("InverseScaling: gamma and power must be >= 0")
        self.lr, self.gamma, self.power = float(lr), float(gamma), float(power)

    def __call__(self, t: int) -> float:
        return self.lr / (1.0 + self.gamma * t) ** self.power

    def __repr__(self) -> str:
        return f"InverseScaling({self.lr}, gamma={self.gamma}, power={self.power})"


def as_schedule(lr: float | Schedule | Callable) -> Schedule | Callable:
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        return Constant(lr)
    if callable(lr):
        return lr
    raise TypeError(f"learning rate must be a number or a schedule, got {type(lr).__name__}")


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    lr: a number or a schedule t -> lr (t counts the updates done). See the module doc
    for the update rules. `iterations` counts the steps taken (the trainer adds one per
    call); `velocities(params)` are the state Tensors the compiled step updates.
    """

    def __init__(
        self,
        lr: float | Schedule | Callable = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.schedule = as_schedule(lr)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.iterations = 0
        self._velocity: dict = {}  # param Tensor -> its velocity (a gc.param)

    def learning_rate(self) -> float:
        """The learning rate of the next update."""
        return float(self.schedule(self.iterations))

    def velocity(self, param: Tensor) -> Tensor:
        """The velocity of `param` (zeros at first), a state Tensor of its shape and dtype."""
        v = self._velocity.get(param)
        if v is None:
            shape = tuple(int(d) for d in param.shape)
            v = gc.param(f"{param.name}.velocity", value=np.zeros(shape), dtype=param.dtype)
            self._velocity[param] = v
        return v

    def velocities(self, params: Sequence[Tensor]) -> list:
        """The state Tensors of `params`, in order (none without momentum)."""
        if self.momentum == 0.0:
            return []
        return [self.velocity(p) for p in params]

    def updates(self, params: Sequence[Tensor], grads: Sequence[Tensor], lr: Tensor) -> dict:
        """{param or velocity: its new value}, for gc.compile(..., updates=...)."""
        if len(params) != len(grads):
            raise ValueError(f"SGD: {len(params)} params but {len(grads)} gradients")
        out: dict = {}
        alpha = self.momentum
        for theta, g in zip(params, grads):
            if self.weight_decay:
                g = g + self.weight_decay * theta
            step = lr * g
            if alpha == 0.0:
                out[theta] = theta - step  # theta <- theta - eps g
                continue
            v = self.velocity(theta)
            v_new = alpha * v - step  # v <- alpha v - eps g
            out[v] = v_new
            if self.nesterov:
                out[theta] = theta + alpha * v_new - step  # phi <- phi + alpha v' - eps g(phi)
            else:
                out[theta] = theta + v_new  # theta <- theta + v'
        return out

    def __repr__(self) -> str:
        return (
            f"SGD(lr={self.schedule!r}, momentum={self.momentum}, nesterov={self.nesterov}, "
            f"weight_decay={self.weight_decay})"
        )


__all__ = ["SGD", "Constant", "InverseScaling", "Schedule", "StepDecay", "as_schedule"]
