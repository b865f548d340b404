"""Time each kernel of a compiled llvm Function alone: `profile(f, *args)` prints the median
time of every kernel (what it fused, its domain) over a few calls, slowest first.

The module's IR (f.source) is compiled again with the kernels made external, and the
Function's entry point is replaced by a Python loop that calls them one by one with the
same buffer table, timing each. A tool for finding which kernel of a step is slow:

    from kernel_profile import profile; profile(f, x_batch, t_batch)
"""

from __future__ import annotations

import ctypes
import time

from backends.llvm import jit

KEEP: list = []  # the profiling engines: freeing one leaves dangling symbols
SIGNATURE = ctypes.CFUNCTYPE(
    None,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.POINTER(ctypes.c_int64),
    ctypes.POINTER(ctypes.c_int64),
)


def profile(f, *args, repeat: int = 10, top: int = 15, clock=time.thread_time) -> list:  # noqa: ANN001
    """[(median ms, kernel)] of f's kernels over `repeat` calls, slowest first (printed).

    The default clock is this thread's CPU time: on a machine shared with other processes it
    varies far less than wall time; it misses work done by other threads (use one thread,
    or clock=time.perf_counter)."""
    executable = f.executable
    source = executable.source.replace('define internal void @"kernel.', 'define void @"kernel.')
    engine, _, _ = jit.engine(source, executable.tm)
    # kept alive with the Function: MCJIT resolves later modules' symbols against it
    KEEP.append(engine)
    gemm = getattr(executable.builder, "gemm_state", None)
    if gemm is not None:
        gemm.link(engine)
    functions = executable.builder.module.functions
    # the kernels, not the bodies they hand to threads (kernel.K.par.M)
    names = [
        fn.name for fn in functions if fn.name.startswith("kernel.") and ".par." not in fn.name
    ]
    calls = [SIGNATURE(engine.get_function_address(name)) for name in names]
    times: list = [[] for _ in calls]

    def main(pointers, sizes, status) -> None:  # noqa: ANN001
        for k, call in enumerate(calls):
            start = clock()
            call(pointers, sizes, status)
            times[k].append(clock() - start)

    real = executable.main
    executable.main = main
    try:
        for _ in range(repeat):
            f(*args)
    finally:
        executable.main = real
    rows = []
    for kernel, spent in zip(executable.kernels, times):
        spent.sort()
        rows.append((spent[len(spent) // 2] * 1e3, kernel))
    rows.sort(key=lambda row: -row[0])
    total = sum(ms for ms, _ in rows)
    print(f"kernels: {total:.2f} ms in all (medians of {repeat} calls)")
    for ms, kernel in rows[:top]:
        ops = " ".join(n.op for n in kernel.nodes)
        print(f"  {ms:8.3f} ms  {kernel.name} [{kernel.kind}] {ops}")
    return rows
