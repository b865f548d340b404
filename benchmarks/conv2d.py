"""conv2d 64 -> 64 channels, 56x56, batch 8, 'same' padding, kernels 3/5/7/11, float32: graphc's
llvm backend (algo auto/direct/gemm/fft) against PyTorch's F.conv2d, with 1 and 2 threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv2d.py [--threads 1,2]

inference: the weight is a constant (gc.constant), so its transforms (the FFT of the flipped
    kernel, the GEMM layout) are folded at compile time; torch runs under no_grad.
training:  the weight is a parameter; forward and both gradients (dx, dw for a given dy).
Values are checked against torch before timing. Median of --repeat calls, torch and the
algorithms timed in turns (direct, seconds a call, alone and up to --direct-max). "auto
chose" is the cost model's pick (f.explain()); "torch/auto" > 1 means graphc is faster. An
algorithm whose lowering a backend cannot compile (NotImplementedError) is shown as n/a.
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np

import graphc as gc

ALGOS = ("auto", "direct", "gemm", "fft", "winograd")


def timed_us(step, repeat: int) -> float:  # noqa: ANN001
    """Median microseconds, with fewer repeats for a step that takes over a second."""
    start = harness.clock()
    step()
    first = harness.clock() - start
    if first > 1.0:
        return first * 1e6
    return harness.median_us(step, repeat, warmup=1)


def chosen(f: gc.Function) -> str:
    for line in f.pass_log:
        if "auto chose" in line:
            return line.split("auto chose ")[1].split(" ")[0]
    return "?"


def build(mode: str, algo: str, shape: tuple, ws: np.ndarray, backend: str = "llvm") -> gc.Function:
    x = gc.input("x", shape)
    if mode == "inference":
        y = gc.conv(x, gc.constant(ws), padding="same", algo=algo)
        return gc.compile([x], [y], backend=backend)
    w = gc.param("w", ws.shape, value=ws)
    y = gc.conv(x, w, padding="same", algo=algo)
    dy = gc.input("dy", tuple(y.shape))
    dx, dw = gc.vjp([y], [x, w], [dy])
    return gc.compile([x, dy], [y, dx, dw], backend=backend)


def torch_call(torch, mode: str, xs: np.ndarray, ws: np.ndarray, dys: np.ndarray):  # noqa: ANN001, ANN201
    conv2d = torch.nn.functional.conv2d
    pad = ws.shape[-1] // 2
    if mode == "inference":
        x, w = torch.from_numpy(xs), torch.from_numpy(ws)

        def infer() -> list:
            with torch.no_grad():
                return [conv2d(x, w, padding=pad)]

        return infer
    x = torch.from_numpy(xs).requires_grad_()
    w = torch.from_numpy(ws).requires_grad_()
    dy = torch.from_numpy(dys)

    def train() -> list:
        y = conv2d(x, w, padding=pad)
        dx, dw = torch.autograd.grad(y, [x, w], dy)
        return [y.detach(), dx, dw]

    return train


def check(got: list, want: list, what: str) -> None:
    for g, t in zip(got, want):
        t = t.numpy()
        scale = float(np.abs(t).max()) or 1.0
        if float(np.abs(g - t).max()) > 1e-3 * scale:
            raise SystemExit(f"{what}: graphc differs from torch by {np.abs(g - t).max():.3g}")


def measure(n: int, args: argparse.Namespace) -> None:
    torch = harness.load_torch(n)
    batch, channels, size = args.shape
    shape = (batch, channels, size, size)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal(shape).astype(np.float32)
    for mode in args.modes:
        what = f"conv2d {shape} -> {channels} channels, 'same'"
        print(f"\n{n} thread(s), {mode}: {what}, median {harness.clock_name} ms")
        if torch is None:
            print("torch: skipped (not installed; pip install -e '.[bench]')")
        head = "".join(f"{a:>9}" for a in args.algos)
        print(f"{'k':>3}{'torch':>9}{head}{'auto chose':>12}{'torch/auto':>12}")
        for k in args.kernels:
            ws = (rng.standard_normal((channels, channels, k, k)) / (channels * k)).astype(
                np.float32
            )
            dys = rng.standard_normal(shape).astype(np.float32)
            feeds = [xs] if mode == "inference" else [xs, dys]
            want = None
            steps: dict = {}
            if torch is not None:
                steps["torch"] = torch_call(torch, mode, xs, ws, dys)
                want = steps["torch"]()
            cells, times = {}, {}
            pick = chosen(build(mode, "auto", shape, ws, backend="numpy"))  # compiles only
            for algo in args.algos:
                if algo == "direct" and k > args.direct_max:
                    cells[algo] = "slow"
                    continue
                try:
                    f = build(mode, algo, shape, ws)
                except NotImplementedError:
                    cells[algo] = "n/a"
                    continue
                if want is not None:
                    check(f(*feeds), want, f"{mode} k={k} algo={algo}")
                step = lambda f=f, feeds=feeds: f(*feeds)  # noqa: E731
                if algo == "direct":  # seconds a call: timed alone, fewer times
                    times[algo] = timed_us(step, args.repeat) / 1e3
                else:
                    steps[algo] = step
            measured = harness.interleaved_us(steps, args.repeat, rounds=args.repeat, warmup=1)
            times.update({name: us / 1e3 for name, us in measured.items()})
            torch_ms = times.pop("torch", float("nan"))
            for algo, ms in times.items():
                cells[algo] = f"{ms:.1f}"
            shown = "".join(f"{cells[a]:>9}" for a in args.algos)
            auto = times.get("auto", float("nan"))
            print(f"{k:>3}{torch_ms:>9.1f}{shown}{pick:>12}{harness.ratio(auto, torch_ms):>12}")
        print(
            "(n/a: the backend has no kernel for that lowering; slow: "
            f"direct loops past {args.direct_max}x{args.direct_max} take minutes, see --direct-max)"
        )
    sys.stdout.flush()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_args(parser)
    parser.add_argument("--algos", default=",".join(ALGOS), help="auto,direct,gemm,fft,winograd")
    parser.add_argument("--modes", default="inference,training", help="inference,training")
    parser.add_argument("--kernels", default="3,5,7,11", help="kernel sizes")
    parser.add_argument(
        "--direct-max", type=int, default=5, help="time algo=direct up to this kernel size"
    )
    args = parser.parse_args(argv)
    harness.use_clock(args.clock)
    args.algos = [a for a in ALGOS if a in args.algos.split(",")]
    args.modes = args.modes.split(",")
    args.kernels = [int(k) for k in args.kernels.split(",")]
    if args.quick:
        args.kernels = args.kernels[:2]
    args.shape = (1, 4, 12) if args.quick else (8, 64, 56)
    args.repeat = 2 if args.quick else 7
    harness.per_thread_count(harness.parse_threads(args.threads), lambda n: measure(n, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
