"""Timing: warm up, repeat within a budget, report the median and the spread.

The one timing helper of graphc's benchmarks (graphc bench, benchmarks/*.py). Times are
wall-clock seconds from time.perf_counter; nothing here asserts a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median, the quartiles (the spread) and every sample."""

    median: float
    q1: float
    q3: float
    samples: tuple

    @property
    def spread(self) -> float:
        """The interquartile range relative to the median (0.05: the middle half of the
        samples lies within 5% of the median's size)."""
        return (self.q3 - self.q1) / self.median if self.median > 0 else 0.0


def measure(
    fn: Callable[[], object], warmup: int = 2, least: int = 5, most: int = 200, budget: float = 1.0
) -> Timing:
    """Time fn(): `warmup` untimed calls, then at least `least` and at most `most` timed
    calls, stopping once `budget` seconds of timed calls have run."""
    for _ in range(warmup):
        fn()
    samples = []
    spent = 0.0
    while len(samples) < least or (spent < budget and len(samples) < most):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        samples.append(took)
        spent += took
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return Timing(float(median), float(q1), float(q3), tuple(samples))


__all__ = ["Timing", "measure"]
