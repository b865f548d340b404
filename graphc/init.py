"""Initializers: functions (shape, rng) -> ndarray, with fans computed as the frameworks do.

For a dense weight (fan_in, fan_out); for a conv kernel (C_out, C_in, *kernel) the
fans are C_in * prod(kernel) and C_out * prod(kernel); a vector has fan_in = fan_out = n.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def fans(shape: tuple) -> tuple:
    """(fan_in, fan_out) of a weight of this shape."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """N(0, s^2) with s = sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def he_normal(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """N(0, s^2) with s = sqrt(2 / fan_in) (He et al. 2015), for ReLU layers."""
    fan_in, _ = fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def zeros(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(shape)


def ones(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    return np.ones(shape)


INITIALIZERS: dict = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_normal": he_normal,
    "zeros": zeros,
    "ones": ones,
}


def get(name: str | Callable) -> Callable:
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except KeyError:
        known = ", ".join(sorted(INITIALIZERS))
        raise ValueError(f"unknown initializer {name!r}; known: {known}") from None
