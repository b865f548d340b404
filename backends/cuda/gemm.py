"""The matmul kernel of the CUDA backend (np.matmul's semantics), then its epilogue.

Two paths, as the LLVM backend has BLAS and a generated GEMM:

  tiled    a shared-memory GEMM: a 16x16 block of threads computes a 16x16 tile of C,
           staging 16x16 tiles of op(A) and op(B) in shared memory per step of k, and each
           thread runs the kernel's elementwise epilogue (bias, activation, the SGD update)
           on its element: C is never stored unless another kernel reads it. Batches (np.matmul's
           broadcast batch axes) are blockIdx.z; every grid axis is a grid-stride loop.
  library  cupy.matmul (cuBLAS) on the GPU, numpy.matmul emulated, into the anchor's buffer
           (a scratch buffer when no kernel reads it), then a "threads" epilogue function.

The renderer's gemm mode picks: "tiled", "library", or "auto": the library when
m*n*k >= LIBRARY_MIN_WORK (decided at compile time for static sizes, else per call).
Integer matmul always takes the tiled path (cuBLAS has no integer GEMM).
An operand read transposed (a `transpose` statement of the kernel) is a pair of strides in
the tiled path and a transposed view for the library; a 1-D operand is a row or a column.
"""

from __future__ import annotations

import sympy

from backends.cuda.render import Choice, LibraryMatmul, Renderer, numel
from backends.cuda.scalar import convert, ctype
from graphc.kernels import Kernel, batch_strides, matmul_operand

TILE = 16
LIBRARY_MIN_WORK = 1 << 18  # m*n*k from which the library is used (a guess until measured)


def matmul(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    x, y = anchor.inputs
    left, right = matmul_operand(x, kernel, True), matmul_operand(y, kernel, False)
    work = sympy.expand(left.rows * left.cols * right.cols)
    floating = anchor.dtype.startswith("float")
    mode = r.gemm_mode if floating else "tiled"
    if mode == "tiled":
        return tiled(r, kernel, left, right)
    if mode == "library":
        return library(r, kernel)
    if work.is_number:
        if int(work) >= LIBRARY_MIN_WORK:
            return library(r, kernel)
        return tiled(r, kernel, left, right)
    return [Choice(work, LIBRARY_MIN_WORK, library(r, kernel), tiled(r, kernel, left, right))]


def _axes(node, kernel: Kernel) -> tuple:  # noqa: ANN001
    """(buffer node, transpose axes or None) of a matmul operand."""
    if node.op == "transpose" and node in kernel.nodes:
        return node.inputs[0], tuple(node.attrs["axes"])
    return node, None


def library(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    x, y = anchor.inputs
    (a, a_axes), (b, b_axes) = _axes(x, kernel), _axes(y, kernel)
    if anchor not in kernel.outputs:
        r.scratch(anchor)
    steps = [LibraryMatmul(a, b, a_axes, b_axes, anchor, r.number)]
    if kernel.outputs == [anchor]:
        return steps
    fn = r.function("_epilogue")
    with fn.threads(anchor.shape, "o") as loops:
        r.finish(fn, kernel, fn.load(anchor, loops), loops)
    return steps + [r.launch(fn, "threads", (numel(anchor.shape),))]


def tiled(r: Renderer, kernel: Kernel, left, right) -> list:  # noqa: ANN001
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = ctype(anchor.dtype)
    idx = r.idx
    kept = (x.rank > 1) + (y.rank > 1)
    out_batch = anchor.shape[: anchor.rank - kept]
    strides_a, strides_b = batch_strides(left, out_batch), batch_strides(right, out_batch)
    m, k, n = left.rows, left.cols, right.cols
    fn = r.function("_tiled" if r.gemm_mode != "tiled" else "", cooperative=True)
    size = fn.size
    fn.line(f"__shared__ {ty} As[{TILE}][{TILE + 1}];")
    fn.line(f"__shared__ {ty} Bs[{TILE}][{TILE + 1}];")
    fn.line("const int tx = threadIdx.x, ty = threadIdx.y;")
    tiles_m = f"(({size(m)} + {TILE - 1}) / {TILE})"
    tiles_n = f"(({size(n)} + {TILE - 1}) / {TILE})"
    loops = [
        ("bz", size(numel(out_batch)), "blockIdx.z", "gridDim.z"),
        ("by", tiles_m, "blockIdx.y", "gridDim.y"),
        ("bx", tiles_n, "blockIdx.x", "gridDim.x"),
    ]
    for var, count, start, step in loops:
        fn.line(f"for ({idx} {var} = {start}; {var} < {count}; {var} += {step}) {{")
        fn.depth += 1
    batch = fn.split("bz", out_batch, "b")
    off_a = " + ".join([f"{v} * {size(s)}" for v, s in zip(batch, strides_a)] or ["0"])
    off_b = " + ".join([f"{v} * {size(s)}" for v, s in zip(batch, strides_b)] or ["0"])
    fn.line(f"const {idx} offa = {off_a}, offb = {off_b};")
    fn.line(f"const {idx} i = by * {TILE} + ty, j = bx * {TILE} + tx;")
    fn.line(f"{ty} acc = 0;")
    a_ptr, b_ptr = fn.buf(left.source), fn.buf(right.source)
    ta, tb = ctype(left.source.dtype), ctype(right.source.dtype)
    rsa, csa, rsb, csb = size(left.rs), size(left.cs), size(right.rs), size(right.cs)
    mk, kk, nk = size(m), size(k), size(n)
    with fn.block(f"for ({idx} k0 = 0; k0 < {kk}; k0 += {TILE})"):
        a_val = convert(f"{a_ptr}[offa + i * {rsa} + (k0 + tx) * {csa}]", ta, ty)
        b_val = convert(f"{b_ptr}[offb + (k0 + ty) * {rsb} + j * {csb}]", tb, ty)
        fn.line(f"As[ty][tx] = (i < {mk} && k0 + tx < {kk}) ? {a_val} : ({ty})0;")
        fn.line(f"Bs[ty][tx] = (k0 + ty < {kk} && j < {nk}) ? {b_val} : ({ty})0;")
        fn.line("__syncthreads();")
        fn.line("#pragma unroll")
        with fn.block(f"for (int q = 0; q < {TILE}; ++q)"):
            fn.line("acc += As[ty][q] * Bs[q][tx];")
        fn.line("__syncthreads();")
    with fn.block(f"if (i < {mk} && j < {nk})"):
        index = list(batch) + (["i"] if x.rank > 1 else []) + (["j"] if y.rank > 1 else [])
        r.finish(fn, kernel, "acc", index)
    for _ in loops:
        fn.depth -= 1
        fn.line("}")
    return [r.launch(fn, "gemm", (m, n, numel(out_batch)), (TILE, TILE, 1))]


__all__ = ["LIBRARY_MIN_WORK", "TILE", "matmul"]
