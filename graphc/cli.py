"""The `graphc` command line: `graphc demo`, `graphc bench`, `graphc viz MODULE:FUNCTION`."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_OUT = "graphc-demo"


def _parser() -> argparse.ArgumentParser:
    from graphc import __version__, available_backends

    parser = argparse.ArgumentParser(
        prog="graphc",
        description="graphc: a symbolic computation-graph compiler for deep learning.",
    )
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="train a perceptron and a LeNet-5 CNN on real digits; write graphs and loss curves",
        description=(
            "Train the classic multilayer perceptron (64-16-16-10 on scikit-learn's bundled "
            "8x8 digits, or 784-16-16-10 on MNIST with --data) and a LeNet-5-style CNN with "
            "SGD + Nesterov momentum, each step one compiled call; print their architectures, "
            "test accuracy and time per step, and write each model's graph (.dot, and .svg "
            "when Graphviz is installed) and loss curves (.png) to the output folder."
        ),
    )
    demo.add_argument("--data", metavar="DIR", help="a folder of MNIST IDX files (t10k-*[.gz])")
    demo.add_argument(
        "--backend", default="llvm", choices=available_backends(), help="default: llvm"
    )
    demo.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"where to write graphs and loss curves ({DEFAULT_OUT})",
    )
    demo.add_argument(
        "--activation", default="relu", choices=("relu", "sigmoid", "tanh"), help="default: relu"
    )
    demo.add_argument("--epochs", type=int, default=5, help="training epochs per model (5)")
    demo.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling (0)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    bench = commands.add_parser(
        "bench",
        help="time the generated kernels against the machine's limits and installed peers",
        description=(
            "Measure this machine's limits (a generated copy kernel's bandwidth, a generated "
            "FMA loop's GFLOP/s, BLAS GEMM), then time each case of the suites on the backend "
            "and on the installed peers; print every row with its fraction of the roofline and "
            "its ratio to each peer. Peers that are not installed are reported as skipped."
        ),
    )
    bench.add_argument("--backend", default="llvm", choices=available_backends())
    bench.add_argument("--suite", default="all", choices=("kernels", "models", "conv", "all"))
    bench.add_argument("--peers", default="torch,jax,pytensor", help="comma-separated")
    bench.add_argument(
        "--threads", type=int, default=None, help="threads for graphc and peers (all cores)"
    )
    bench.add_argument("--json", metavar="FILE", help="write every sample and the machine")
    bench.add_argument(
        "--plot", metavar="FILE.png", help="write the roofline there and FILE-ratios.png"
    )
    bench.add_argument("--quick", action="store_true", help="small sizes, short budgets")

    viz = commands.add_parser(
        "viz",
        help="draw the graph that a python function returns",
        description=(
            "Import MODULE (a module name or a path to a .py file), call FUNCTION() with no "
            "arguments and draw what it returns: a Tensor, a list of Tensors or a compiled "
            "graphc Function. The .dot file is always written; .svg and .png need Graphviz."
        ),
    )
    viz.add_argument("target", metavar="MODULE:FUNCTION", help="e.g. model.py:build or pkg.mod:f")
    viz.add_argument(
        "--out", default="graph.svg", help="output file: .dot, .svg or .png (graph.svg)"
    )
    viz.add_argument("--rankdir", default="TB", choices=("TB", "LR"), help="layout direction")
    viz.add_argument(
        "--optimized", action="store_true", help="draw the graph after the passes, kernels boxed"
    )
    viz.add_argument(
        "--grad",
        action="store_true",
        help="also draw the gradient of the first scalar output w.r.t. the params (violet)",
    )
    viz.add_argument(
        "--html", action="store_true", help="also write OUT.html: the picture and its kernels"
    )
    viz.add_argument(
        "--backend", default="numpy", choices=available_backends(), help="for --optimized"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "bench":
            return bench_command(args, argv)
        if args.command == "demo":
            return demo(
                args.data,
                args.backend,
                args.out,
                args.activation,
                args.seed,
                args.epochs,
                not args.quiet,
            )
        return viz(
            args.target,
            args.out,
            args.rankdir,
            optimized=args.optimized,
            grad=args.grad,
            html_page=args.html,
            backend=args.backend,
        )
    except (FileNotFoundError, ValueError, RuntimeError, ImportError, TypeError) as error:
        print(f"graphc {args.command}: error: {error}", file=sys.stderr)
        return 1


def demo(
    data: str | None = None,
    backend: str = "llvm",
    out: str = DEFAULT_OUT,
    activation: str = "relu",
    seed: int = 0,
    epochs: int = 5,
    progress: bool = True,
) -> int:
    """`graphc demo`: train a perceptron and a LeNet-5 CNN; print and draw what happened."""
    from graphc import data as datasets

    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    if data is None:
        images, labels = datasets.load_digits()
        source = "scikit-learn's bundled 8x8 digits"
    else:
        images, labels = datasets.load_mnist(data)
        source = f"MNIST from {data}"
    n, features = images.shape
    side = int(round(features**0.5))
    parts = datasets.train_val_test_split(images, labels, val=0.1, test=0.2, seed=seed)
    print(
        f"graphc demo: {source}: {n:,} images of {features} pixels "
        f"({len(parts[0][0]):,} training, {len(parts[1][0]):,} validation, "
        f"{len(parts[2][0]):,} test); backend {backend!r}"
    )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list = []

    from graphc.models import lenet5, perceptron

    sizes = (features, 16, 16, 10)
    mlp_model = perceptron(sizes, activation=activation, seed=seed)
    name = f"mlp-{'-'.join(map(str, sizes))}"
    written += _train_one(
        name, mlp_model, (features,), parts, backend, epochs, seed, progress, folder
    )

    cnn = lenet5(side, activation=activation, seed=seed)
    as_images = [(x.reshape(-1, 1, side, side), t) for x, t in parts]
    name = f"lenet5-{side}x{side}"
    written += _train_one(
        name, cnn, (1, side, side), as_images, backend, epochs, seed, progress, folder
    )

    print(f"wrote to {folder}/: " + ", ".join(p.name for p in written))
    if not any(p.suffix == ".svg" for p in written):
        print("  (no .svg: Graphviz's `dot` is not installed; apt-get install graphviz)")
    return 0


def _train_one(
    name: str,
    model: Any,
    input_shape: tuple,
    parts: list,
    backend: str,
    epochs: int,
    seed: int,
    progress: bool,
    folder: Path,
) -> list:
    """Describe, train and evaluate one model; write its graph and loss curves."""
    import graphc as gc
    from graphc import optim, train
    from graphc.viz import dot_available, save_graph

    train_set, val_set, test_set = parts
    x = gc.input("x", (gc.dim("N"), *input_shape))
    print(f"\n{name}:")
    print(model.build(x, "eval").describe())
    print(f"parameters: {model.parameter_count:,}")
    opt = optim.SGD(0.05, momentum=0.9, nesterov=True)
    started = time.perf_counter()
    history = train.fit(
        model,
        train_set,
        epochs,
        32,
        opt,
        validation=val_set,
        backend=backend,
        seed=seed,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    evaluate = train.Evaluator(model, input_shape, backend=backend)
    loss, accuracy = evaluate(*test_set)
    step_ms = 1e3 * float(np.median(history.step_seconds))
    print(
        f"{name}: test accuracy {accuracy:.1%} (loss {loss:.3f}) after {epochs} epochs; "
        f"{step_ms:.3f} ms per training step (forward, backward, update: one compiled call; "
        f"median over epochs); {seconds:.1f} s with compilation"
    )
    written = [train.plot_history(history, folder / f"{name}-loss.png")]
    written.append(save_graph(evaluate.function, folder / f"{name}.dot"))
    if dot_available():
        written.append(save_graph(evaluate.function, folder / f"{name}.svg"))
    return written


def _load(target: str) -> Any:
    """The function named by MODULE:FUNCTION (MODULE a dotted name or a .py path)."""
    module_name, sep, function_name = target.rpartition(":")
    if not sep or not module_name or not function_name:
        raise ValueError(f"expected MODULE:FUNCTION, got {target!r}")
    path = Path(module_name)
    if module_name.endswith(".py") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        name = f"_graphc_viz_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        added = str(Path.cwd())
        sys.path.insert(0, added)
        try:
            module = importlib.import_module(module_name)
        finally:
            sys.path.remove(added)
    function = getattr(module, function_name, None)
    if function is None:
        raise ValueError(f"{module_name} has no attribute {function_name!r}")
    if not callable(function):
        raise TypeError(f"{target} is not callable")
    return function


def viz(
    target: str,
    out: str = "graph.svg",
    rankdir: str = "TB",
    optimized: bool = False,
    grad: bool = False,
    html_page: bool = False,
    backend: str = "numpy",
) -> int:
    """`graphc viz`: call MODULE:FUNCTION() and draw the graph it returns."""
    from graphc.viz import save_graph
    from graphc.viz_html import save_html

    drawn, forward = _graph_to_draw(_load(target)(), optimized, grad, backend)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = save_graph(drawn, path, rankdir=rankdir, forward_outputs=forward)
    if written.suffix.lower() != ".dot":
        print(f"wrote {written.with_suffix('.dot')}")
    print(f"wrote {written}")
    if html_page:
        page = save_html(
            drawn,
            path.with_suffix(".html"),
            rankdir=rankdir,
            forward_outputs=forward,
            title=f"graphc viz {target}",
        )
        print(f"wrote {page}")
    return 0


def _graph_to_draw(result: Any, optimized: bool, grad: bool, backend: str) -> tuple:
    """(what to draw: Tensors or a compiled Function, how many outputs are the forward ones)."""
    import graphc as gc
    from graphc.node import Node, toposort
    from graphc.tensor import unwrap, wrap

    if isinstance(result, gc.Function):
        if grad:
            raise ValueError("--grad needs the function to return Tensors, not a compiled Function")
        return result, None
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    outputs = [unwrap(item) for item in items]
    if not all(isinstance(node, Node) for node in outputs):
        raise TypeError("the function must return a Tensor, a list of Tensors or a Function")
    forward = None
    if grad:
        loss = next((n for n in outputs if n.rank == 0 and n.dtype.startswith("float")), None)
        if loss is None:
            raise ValueError("--grad needs a scalar float output (a loss) among the results")
        leaves = toposort(outputs)
        wrt = [n for n in leaves if n.op == "param"] or [
            n for n in leaves if n.op == "input" and n.dtype.startswith("float")
        ]
        forward = len(outputs)
        grads = gc.grad(wrap(loss), [wrap(w) for w in wrt])
        outputs = outputs + [unwrap(g) for g in grads]
    if not optimized:
        return outputs, forward
    inputs = [n for n in toposort(outputs) if n.op == "input"]
    return gc.compile(inputs, outputs, backend=backend), forward


def bench_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """`graphc bench`: runs itself again in a child process when the thread variables of
    --threads are not set yet (BLAS reads them when it is loaded)."""
    import os
    import subprocess

    from graphc.bench import PEERS, bench, write_json

    threads = args.threads or os.cpu_count() or 1
    wanted = {
        "GRAPHC_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
    }
    if any(os.environ.get(k) != v for k, v in wanted.items()):
        given = list(argv) if argv is not None else sys.argv[1:]
        command = [sys.executable, "-m", "graphc", *given]
        return subprocess.run(command, env={**os.environ, **wanted}).returncode
    if hasattr(os, "sched_setaffinity") and threads < len(os.sched_getaffinity(0)):
        # peers with pools of their own (XLA's, for one) then use only these cores too
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    peers = tuple(p for p in args.peers.split(",") if p)
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peers {', '.join(unknown)}; known: {', '.join(PEERS)}")
    suites = ("kernels", "models", "conv") if args.suite == "all" else (args.suite,)
    report = bench(args.backend, suites, peers, threads, args.quick)
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.plot:
        from graphc.bench.plots import ratio_bars, roofline

        plot = Path(args.plot)
        print(f"wrote {roofline(report, plot)}")
        print(f"wrote {ratio_bars(report, plot.with_name(plot.stem + '-ratios' + plot.suffix))}")
    return 0
