"""`graphc bench`: the generated kernels timed against the machine's limits and against
peers (numpy, PyTorch, JAX, PyTensor) measured in the same run. See graphc/bench/run.py."""

from graphc.bench.run import PEERS, SUITES, bench, write_json
from graphc.bench.timing import Timing, measure

__all__ = ["PEERS", "SUITES", "Timing", "bench", "measure", "write_json"]
