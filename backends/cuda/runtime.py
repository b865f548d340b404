"""Running a rendered plan: buffers, sizes, grids, library calls and the status check.

One Runtime serves both backends; a Device says where arrays live and how a kernel is
launched: EmulatedDevice (numpy arrays, the kernels compiled for the CPU by emulate.py) or
CudaDevice (cupy arrays, the kernels compiled by NVRTC; backends/cuda/device.py).
Temporaries are allocated once per binding of the symbolic sizes (an arena reused by later
calls with the same sizes); size arguments and grids are evaluated once per binding too.
"""

from __future__ import annotations

import threading
from typing import Any

from backends.cuda.render import INDEX, LABELS, Choice, Launch, LibraryMatmul, Rendered
from graphc.backend import ExecutionError, Program

MAX_BLOCKS = 1 << 16  # grid-stride loops cover the rest


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid_of(step: Launch, counts: list) -> tuple:
    """The grid (x, y, z) of a launch for evaluated counts."""
    if step.kind == "threads":
        return (min(max(1, _ceil_div(counts[0], step.block[0])), MAX_BLOCKS), 1, 1)
    if step.kind == "rows":
        return (min(max(1, counts[0]), MAX_BLOCKS), 1, 1)
    m, n, batch = counts  # gemm: tiles of block[0] x block[1]
    tiles_n = max(1, _ceil_div(n, step.block[0]))
    tiles_m = max(1, _ceil_div(m, step.block[1]))
    return (min(tiles_n, MAX_BLOCKS), min(tiles_m, 65535), min(max(1, batch), 65535))


class Runtime:
    def __init__(self, program: Program, rendered: Rendered, device: Any, backend: str) -> None:
        self.program = program
        self.kernel_program = program.kernels
        self.rendered = rendered
        self.device = device
        self.backend = backend
        self.kernels = list(self.kernel_program.kernels)
        self._layouts: dict = {}
        self._arenas: dict = {}
        self._lock = threading.Lock()

    # per binding of the sizes ---------------------------------------------------------------------
    def layout(self, bindings: Any) -> dict:
        key = tuple(sorted((str(s), v) for s, v in bindings.values.items()))
        found = self._layouts.get(key)
        if found is None:
            found = {
                "key": key,
                "temps": {
                    b.node: bindings.evaluate_shape(b.node.shape)
                    for b in self.rendered.buffers
                    if b.kind == "temp"
                },
                "roots": [bindings.evaluate_shape(r.shape) for r in self.program.roots],
                "steps": [self._plan(step, bindings) for step in self.rendered.steps],
            }
            with self._lock:
                self._layouts[key] = found
        return found

    def _plan(self, step: Any, bindings: Any) -> Any:
        """A step with its sizes evaluated: (launch, grid, size values), the library call, or
        the branch a Choice takes."""
        if isinstance(step, Choice):
            work = bindings.evaluate(step.work)
            chosen = step.library if work >= step.threshold else step.tiled
            return [self._plan(s, bindings) for s in chosen]
        if isinstance(step, LibraryMatmul):
            shapes = [bindings.evaluate_shape(n.shape) for n in (step.a, step.b, step.storage)]
            return (step, shapes)
        counts = [bindings.evaluate(c) for c in step.count]
        sizes = {p.name: bindings.evaluate(p.expr) for p in step.params if p.kind == "size"}
        return (step, grid_of(step, counts), sizes)

    # a call ------------------------------------------------------------------------------------
    def arrays(self, feeds: dict, layout: dict) -> dict:
        device = self.device
        arena = self._arenas.get(layout["key"])
        if arena is None:
            arena = {
                node: device.empty(shape, node.dtype) for node, shape in layout["temps"].items()
            }
            self._arenas[layout["key"]] = arena
        arrays = dict(arena)
        for buffer in self.rendered.buffers:
            node = buffer.node
            if buffer.kind == "input":
                arrays[node] = device.input(feeds[node])
            elif buffer.kind == "param":
                arrays[node] = device.param(node)
            elif buffer.kind == "constant":
                arrays[node] = device.constant(node)
        return arrays

    def execute(self, feeds: dict, bindings: Any) -> tuple:
        """Run every step; returns (arrays, layout). Raises ExecutionError on bad input."""
        layout = self.layout(bindings)
        arrays = self.arrays(feeds, layout)
        status = self.device.status()
        for planned in layout["steps"]:
            for item in planned if isinstance(planned, list) else [planned]:
                if isinstance(item[0], LibraryMatmul):
                    self.matmul(*item, arrays)
                    continue
                step, grid, sizes = item
                args = []
                for param in step.params:
                    if param.kind == "buffer":
                        args.append(arrays[param.node])
                    elif param.kind == "size":
                        args.append(sizes[param.name])
                    else:
                        args.append(status)
                self.device.launch(step, grid, args)
        code, kind = self.device.read_status(status)
        if code:
            raise self.failure(code - 1, kind)
        return arrays, layout

    def matmul(self, step: LibraryMatmul, shapes: list, arrays: dict) -> None:
        """storage = op(a) @ op(b) by the device's array library (np.matmul's semantics)."""
        a = self.view(step.a, arrays, shapes[0])
        b = self.view(step.b, arrays, shapes[1])
        if step.a_axes is not None:
            a = a.transpose(step.a_axes)
        if step.b_axes is not None:
            b = b.transpose(step.b_axes)
        self.device.matmul(a, b, self.view(step.storage, arrays, shapes[2]))

    def view(self, node: Any, arrays: dict, shape: tuple) -> Any:
        """node's value: its buffer, or its view's source reshaped."""
        source = node
        while self.rendered_kind(source) == "view":
            source = source.inputs[0]
        return arrays[source].reshape(shape)

    def roots(self, arrays: dict, layout: dict) -> list:
        return [
            self.view(root, arrays, shape)
            for root, shape in zip(self.program.roots, layout["roots"])
        ]

    def rendered_kind(self, node: Any) -> str:
        buffer = self.kernel_program.buffers.get(node)
        return buffer.kind if buffer is not None else "temp"

    def failure(self, number: int, kind: int) -> ExecutionError:
        kernel = self.kernels[number]
        anchor = kernel.anchor if kernel.anchor is not None else kernel.nodes[-1]
        where = f"{anchor.op} (built at {anchor.where})"
        if kind == INDEX:
            what = (
                f"cannot {anchor.attrs['mode']}-pad an empty axis"
                if anchor.op in ("pad", "pad_grad")
                else "an index is out of range for its axis"
            )
            return ExecutionError(
                f"{where}: {what} (kernel {kernel.name} of the {self.backend} backend)"
            )
        assert kind == LABELS
        return ExecutionError(
            f"{where}: labels must lie in [0, K) (kernel {kernel.name} of the {self.backend} "
            f"backend met one outside)"
        )


__all__ = ["MAX_BLOCKS", "Runtime", "grid_of"]
