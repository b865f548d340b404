"""GEMM kernels of the LLVM backend: matmul with np.matmul's semantics, then the epilogue.

A matmul kernel is lowered as: for each batch index (np.matmul's broadcast batch axes; none
when the batch folds into the rows, as in (N, m, k) @ (k, n)), one 2-D product
C = op(A) @ op(B) into row-major storage, then one loop over the output running the kernel's
elementwise epilogue (bias, activation, residual, the SGD update...). C's storage is the
matmul's own buffer when another kernel reads it, else an epilogue output of its shape and
dtype (each element is read before it is overwritten), else a scratch buffer. An operand read
transposed (a `transpose` statement of the kernel) is a pair of strides, never a copy; a 1-D
operand is a 1 x k row or a k x 1 column. The 2-D product takes one of two paths:

  blas       OpenBLAS's ?gemm: numpy's own (ILP64, the one np.matmul uses, found beside
             numpy without importing anything), else scipy's (scipy.linalg.cython_blas),
             called through a global function pointer (`@graphc.sgemm`) that the runtime
             writes after JIT-compiling (`GemmState.link`): no address is baked into the
             code. Row-major C = A B is column-major C^T = B^T A^T: operands passed swapped.
  generated  a packed, register-blocked GEMM emitted here (BLIS's loop nest: blocks of
             MC rows x KC depth x NC columns), specialised per transposition: B is packed in
             k-major panels of NR columns, A in panels of MR rows (rows of KC elements, or
             k-major when A is transposed, so that packing is a copy), and a micro-kernel keeps
             an MR x NR tile of C in vector registers, one broadcast and NR/VL FMAs per row and
             step of k (a narrower one for a last panel of <= VL columns). Tile sizes follow
             the host's vector registers (AVX-512: 32 of 16 floats, tiles 8 x 32; AVX2: 16 of
             8, tiles 6 x 16). n == 1 or m == 1 (matrix-vector) skip packing: dot products or
             axpys. Packing converts mixed operand dtypes. One thread.

`mode()`: GRAPHC_GEMM=blas|generated|auto (or the module switch FORCE) forces a path; auto
takes the generated GEMM when m, n, k >= GENERATED_MIN and m*n*k < BLAS_MIN_WORK, else BLAS,
decided at compile time for static sizes and at run time for symbolic ones (BLAS also falls
back to the generated code for sizes it cannot take: 0 or past its ints). Without a BLAS, or
with operands of another dtype than the result, every GEMM is generated. What each kernel
chose is in `f.explain()` ("GEMM paths").
Complex matmul takes cgemm/zgemm whenever BLAS can (its fallback, complex_gemm.py, is a plain
loop). Integer matmul is not supported (NotImplementedError).
"""

from __future__ import annotations

import ctypes
import os
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import sympy
from llvmlite import binding as llvm
from llvmlite import ir

from backends.llvm import parallel
from backends.llvm.complex_gemm import complex_gemm
from backends.llvm.gemm_generated import _at, _c, _max, _min, library_gemm, tiling
from backends.llvm.irutil import C64, I1, I8, I8P, I32, is_complex, is_float, llvm_type, part_type
from graphc.kernels import (
    LOOP_VARS,
    Kernel,
    batch_strides,
    matmul_operand,
    normal_index,
    root_index,
)
from graphc.shapes import dims_equal, shape_str

VOID = ir.VoidType()
ENV = "GRAPHC_GEMM"
MODES = ("auto", "blas", "generated")
FORCE: str | None = None  # "blas" | "generated" | "auto": overrides GRAPHC_GEMM (tests)
# auto takes the generated GEMM where its 8 x 32 tiles and blocks pay: every one of m, n, k
# at least GENERATED_MIN and m*n*k below BLAS_MIN_WORK (measured on one thread: 3-25% ahead
# of OpenBLAS from 64 x 256 x 64 to 256^3). BLAS takes the rest: skinny products (n = 16:
# 1.4x faster), a weight gradient's transposed narrow operand (up to 10x), tiny ones, and
# big ones, where BLAS's threads pay off.
GENERATED_MIN = 64
BLAS_MIN_WORK = 1 << 26


OPENBLAS_THREADED_WORK = 65536 * 4  # m*n*k above which OpenBLAS's sgemm uses its threads
SINGLE_MAX_WORK = 1 << 24  # m*n*k below which graphc's threads run a lone product (~0.3 ms)
ROW_BLOCK = 128  # rows of such a product a thread's BLAS call computes


def _single_threaded_blas(work: sympy.Expr) -> bool:
    """A product BLAS runs on the calling thread (small and of known size)."""
    return work.is_number and int(work) < OPENBLAS_THREADED_WORK


def _auto(m: int, n: int, k: int) -> tuple:
    """(path, why) of auto for static sizes."""
    small = [f"{name} = {v}" for name, v in (("m", m), ("n", n), ("k", k)) if v < GENERATED_MIN]
    if small:
        return "blas", f"{', '.join(small)} < {GENERATED_MIN}"
    if m * n * k >= BLAS_MIN_WORK:
        return "blas", f"m*n*k = {m * n * k} >= {BLAS_MIN_WORK}"
    return "generated", f"m, n, k >= {GENERATED_MIN} and m*n*k = {m * n * k} < {BLAS_MIN_WORK}"


def mode() -> str:
    chosen = FORCE if FORCE is not None else os.environ.get(ENV, "") or "auto"
    if chosen not in MODES:
        raise ValueError(f"{ENV}={chosen!r}: expected one of {', '.join(MODES)}")
    return chosen


@dataclass(frozen=True)
class Blas:
    """The BLAS the generated code calls: the Fortran ?gemm entry points' addresses, the
    width of their integer arguments, and what provides them."""

    routines: dict  # "sgemm" | "dgemm" | "cgemm" | "zgemm" -> address
    int_type: ir.IntType  # 64-bit ints (ILP64) or 32-bit ones (LP64)
    source: str
    keep: object  # holds the library loaded
    # the same routines in a private copy of the library, set to one thread: called from
    # graphc's own threads (a batch of products split over them) and for small products, so
    # OpenBLAS's pool never competes with graphc's threads (its workers spin ~0.1 s after a
    # call: a kernel split over two threads waited for a time slice, 0.3 -> 2 ms); None when
    # the library cannot be copied (then every call goes to the shared one)
    single: dict | None = None

    @property
    def int_max(self) -> int:
        return 2 ** (self.int_type.width - 1) - 1


def _numpy_openblas() -> Blas | None:
    """numpy's own OpenBLAS (the one np.matmul uses; ILP64 in numpy's wheels, with its
    symbols prefixed scipy_ and suffixed 64_): already loaded, found without importing."""
    folder = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(folder.glob("libscipy_openblas64_*.so*")):
        try:
            library = ctypes.CDLL(str(path))
            found = {
                r: ctypes.cast(getattr(library, f"scipy_{r}_64_"), ctypes.c_void_p).value
                for r in ("sgemm", "dgemm", "cgemm", "zgemm")
            }
        except (OSError, AttributeError):
            continue
        single, copy = _private_copy(path)
        return Blas(
            found, ir.IntType(64), f"numpy's OpenBLAS ({path.name})", (library, copy), single
        )
    return None


def _private_copy(path: Path) -> tuple:
    """(routines, library) of a private copy of OpenBLAS `path` (its own state and thread
    pool, set to one thread), or (None, None). A second dlopen of the same file would give the
    same instance, so the copy lives in the cache folder, named by the original's size and
    modification time."""
    from backends.llvm import cache

    stat = path.stat()
    folder = cache.folder() / "blas"
    copy = folder / f"{stat.st_size}-{int(stat.st_mtime)}-{path.name}"
    try:
        if not copy.exists() or copy.stat().st_size != stat.st_size:
            folder.mkdir(parents=True, exist_ok=True)
            partial = copy.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(path, partial)
            os.replace(partial, copy)  # a concurrent process sees the whole file or none
        library = ctypes.CDLL(str(copy), mode=os.RTLD_LOCAL)
        library.scipy_openblas_set_num_threads64_(1)
        found = {
            r: ctypes.cast(getattr(library, f"scipy_{r}_64_"), ctypes.c_void_p).value
            for r in ("sgemm", "dgemm", "cgemm", "zgemm")
        }
    except (OSError, AttributeError):
        return None, None
    return found, library


def _scipy_blas() -> Blas | None:
    """scipy's cython_blas (LP64): importing scipy.linalg costs ~0.1 s, so it is the fallback."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    found = {}
    for routine in ("sgemm", "dgemm", "cgemm", "zgemm"):
        capsule = cython_blas.__pyx_capi__[routine]
        found[routine] = get_pointer(capsule, get_name(capsule))
    return Blas(found, I32, "scipy.linalg.cython_blas", cython_blas)


@cache
def blas_routines() -> Blas | None:
    """numpy's OpenBLAS when it is there, else scipy's BLAS, else None (generated GEMMs only)."""
    return _numpy_openblas() or _scipy_blas()


# BLAS -----------------------------------------------------------------------------------------


def _blas_call(
    state: GemmState,
    b: ir.IRBuilder,
    ty: ir.Type,
    slots: dict,
    args: tuple,
    trans: tuple,
    single: ir.Value | bool = False,
) -> None:
    """Row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T through ?gemm: a
    row-major matrix is its column-major transpose, so B goes first. `single` (a constant,
    or an i1 decided at run time) calls the one-thread copy of the library."""
    m, n, k, a, rsa, csa, src_b, rsb, csb, c, ldc = args
    a_trans, b_trans = trans
    routine = {"float": "sgemm", "double": "dgemm"}.get(str(ty), "cgemm" if ty == C64 else "zgemm")
    ptr = ty.as_pointer()
    int_type = blas_routines().int_type
    ip = int_type.as_pointer()
    fnty = ir.FunctionType(VOID, [I8P, I8P, ip, ip, ip, ptr, ptr, ip, ptr, ip, ptr, ptr, ip])
    shared = b.load(state.blas_global(routine), name=routine)
    if single is False or blas_routines().single is None:
        address = shared
    else:
        own = b.load(state.blas_global(routine, True), name=f"{routine}.single")
        address = own if single is True else b.select(single, own, shared, name="which")
    target = b.bitcast(address, fnty.as_pointer())
    # B (k x n) not transposed is column-major n x k with ld rsb; transposed, k x n with ld csb
    # A (m x k) not transposed is column-major k x m with ld rsa; transposed, m x k with ld csa
    b.store(ir.Constant(I8, ord("T" if b_trans else "N")), slots["ta"])
    b.store(ir.Constant(I8, ord("T" if a_trans else "N")), slots["tb"])
    ld_b = _max(b, csb if b_trans else rsb, k if b_trans else n)
    ld_a = _max(b, csa if a_trans else rsa, m if a_trans else k)

    def int_arg(name: str, value: ir.Value) -> ir.Value:
        value = _max(b, value, _c(1))
        b.store(value if int_type.width == 64 else b.trunc(value, int_type), slots[name])
        return slots[name]

    b.store(_scalar(ty, 1.0), slots["alpha"])
    b.store(_scalar(ty, 0.0), slots["beta"])
    b.call(
        target,
        [
            slots["ta"],
            slots["tb"],
            int_arg("m", n),
            int_arg("n", m),
            int_arg("k", k),
            slots["alpha"],
            b.bitcast(src_b, ptr),
            int_arg("lda", ld_b),
            b.bitcast(a, ptr),
            int_arg("ldb", ld_a),
            slots["beta"],
            c,
            int_arg("ldc", _max(b, ldc, n)),
        ],
    )


def _scalar(ty: ir.Type, value: float) -> ir.Constant:
    """alpha or beta: a real, or a complex with imaginary part 0."""
    if is_complex(ty):
        part = part_type(ty)
        return ir.Constant(ty, [ir.Constant(part, value), ir.Constant(part, 0.0)])
    return ir.Constant(ty, value)


class GemmState:
    """Per-module GEMM state: generated functions, BLAS pointer globals and what each GEMM
    kernel chose (explain)."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.blas_globals: dict = {}  # global name -> routine
        self.choices: list = []

    def blas_global(self, routine: str, single: bool = False) -> ir.GlobalVariable:
        """The global holding the routine's address (single: the one-thread copy's)."""
        name = f"graphc.{routine}{'.single' if single else ''}"
        if name not in self.blas_globals:
            var = ir.GlobalVariable(self.module, I8P, name=name)
            var.initializer = ir.Constant(I8P, None)  # external linkage: never folded
            self.blas_globals[name] = (routine, single)
        return self.module.globals[name]

    def link(self, engine: llvm.ExecutionEngine) -> None:
        """Write the BLAS routines' addresses into their globals (after finalize_object)."""
        if not self.blas_globals:
            return
        routines = blas_routines()
        for name, (routine, single) in self.blas_globals.items():
            address = engine.get_global_value_address(name)
            if not address:
                raise RuntimeError(f"llvm backend: the JIT lost the global @{name}")
            table = routines.single if single and routines.single else routines.routines
            ctypes.c_void_p.from_address(address).value = table[routine]

    def describe(self) -> str:
        if not self.choices:
            return ""
        return "GEMM paths:\n" + "\n".join(f"  {line}" for line in self.choices)


def state(builder: object) -> GemmState:
    found = getattr(builder, "gemm_state", None)
    if found is None:
        found = GemmState(builder.module)
        builder.gemm_state = found
    return found


# the matmul kernel ----------------------------------------------------------------------------


def _numel(shape: tuple) -> sympy.Expr:
    total = sympy.Integer(1)
    for d in shape:
        total = total * d
    return total


def matmul(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    """The matmul kernel (a method of codegen.ModuleBuilder): batched GEMMs, then the epilogue."""
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = llvm_type(anchor.dtype)
    if not is_float(ty) and not is_complex(ty):
        raise NotImplementedError(
            f"llvm backend: kernel {kernel.name}: integer matmul ({x.dtype} @ {y.dtype} -> "
            f"{anchor.dtype}, built at {anchor.where}) is not supported; use backend='numpy' "
            f"or float operands"
        )
    gs = state(self)
    # nothing writes the pointer and size arrays while the kernel runs: so LLVM may keep the
    # buffers' addresses out of the epilogue's loop (stores no longer "may alias" them), and
    # the loop vectorizes
    for arg in b.function.args[:2]:
        arg.add_attribute("noalias")
    left, right = matmul_operand(x, kernel, True), matmul_operand(y, kernel, False)
    kept = (x.rank > 1) + (y.rank > 1)
    out_batch = anchor.shape[: anchor.rank - kept]
    m, k, n = left.rows, left.cols, right.cols
    strides_a, strides_b = batch_strides(left, out_batch), batch_strides(right, out_batch)
    fold = (
        bool(out_batch)
        and not left.transposed
        and x.rank > 1
        and all(s == 0 for s in strides_b)
        and len(left.batch) == len(out_batch)
        and all(s != 0 for s in strides_a)  # A's batch is the output's: rows contiguous
    )
    if fold:  # (batch..., m, k) @ (k, n): one GEMM of prod(batch) * m rows
        m = _numel(out_batch) * m
        loop_batch, strides_a, strides_b = (), [], []
    else:
        loop_batch = out_batch
    ta, tb = llvm_type(left.source.dtype), llvm_type(right.source.dtype)

    # where C lives: the anchor's buffer, the kernel's only output when it has C's shape and
    # dtype (its value at an element is computed, reading C there, before it is stored), or
    # a scratch buffer (with several outputs a store could overwrite C before another
    # output reads it)
    epilogue = kernel.split()[1]
    same = [
        node
        for node in kernel.outputs
        if node.dtype == anchor.dtype
        and len(node.shape) == anchor.rank
        and all(dims_equal(p, q) for p, q in zip(node.shape, anchor.shape))
    ]
    only = len(kernel.outputs) == 1
    storage = anchor if anchor in kernel.outputs else (same[0] if same and only else None)
    if storage is None:
        storage = anchor
        self.scratch(anchor)

    # the path
    chosen = mode()
    routines = blas_routines()
    eligible = routines is not None and ta == ty and tb == ty
    work = sympy.expand(m * n * k)
    if chosen == "generated" or not eligible:
        path = "generated"
        why = (
            "forced"
            if chosen == "generated"
            else (
                "no BLAS found (numpy's or scipy's)" if routines is None else "mixed operand dtypes"
            )
        )
    elif chosen == "blas":
        path, why = "blas", "forced"
    elif is_complex(ty):  # the fallback for complex is a plain loop (complex_gemm.py)
        path, why = "blas", "complex"
    elif all(sympy.sympify(d).is_number for d in (m, n, k)):
        path, why = _auto(int(m), int(n), int(k))
    else:
        path = "runtime"
        why = (
            f"generated when m, n, k >= {GENERATED_MIN} and m*n*k = {work} < {BLAS_MIN_WORK} "
            "at run time"
        )
    label = {"blas": "BLAS", "generated": "generated", "runtime": "BLAS or generated"}[path]
    t = tiling(ty)
    tiles = "a plain loop" if is_complex(ty) else f"tiles {t.mr}x{t.nr}, vectors of {t.vl}"
    shapes = " @ ".join(
        f"{shape_str(o.source.shape)}^T" if o.transposed else shape_str(node.shape)
        for o, node in ((left, x), (right, y))
    )
    gs.choices.append(
        f"{kernel.name} matmul {shapes} -> {shape_str(anchor.shape)} {anchor.dtype}: {label} "
        f"({why}{'; batch folded into rows' if fold else ''}"
        f"{'' if path == 'blas' else '; ' + tiles})"
    )

    def blas_slots() -> dict:
        """The BLAS call's by-reference arguments: stack slots of the function being built."""
        slots = {}
        if path != "generated":
            for name in ("m", "n", "k", "lda", "ldb", "ldc"):
                int_type = blas_routines().int_type
                slots[name] = parallel.entry_alloca(b, int_type, f"blas.{name}")
            for name in ("ta", "tb"):
                slots[name] = parallel.entry_alloca(b, I8, f"blas.{name}")
            for name in ("alpha", "beta"):
                slots[name] = parallel.entry_alloca(b, ty, f"blas.{name}")
        return slots

    slots = blas_slots()

    size = lambda e: self.size(b, e)  # noqa: E731

    def operands() -> tuple:
        """Sizes, strides and base pointers, read where the builder is (the batch loop's
        outlined function reads its own)."""
        ptrs = (
            self.pointer(b, left.source),
            self.pointer(b, right.source),
            self.pointer(b, storage),
        )
        strides = (size(left.rs), size(left.cs), size(right.rs), size(right.cs))
        return (size(m), size(n), size(k), *ptrs, *strides)

    outer = operands()
    mv, nv, kv, base_a, base_b, base_c = outer[:6]
    # the generated GEMM is one thread, and so is BLAS below OpenBLAS's threading threshold:
    # a batch of them splits over the threads (concurrent BLAS calls are safe: numpy makes
    # them from Python threads without the GIL)
    single_copy = routines is not None and routines.single is not None
    threaded = bool(loop_batch) and (
        path == "generated" or single_copy or _single_threaded_blas(work)
    )

    dims = [sympy.sympify(e) for e in (m, n, k, left.rs, left.cs, right.rs, right.cs)]
    int_max = routines.int_max if routines is not None else 0
    static_ok = all(e.is_number for e in dims) and all(0 < int(e) <= int_max for e in dims)

    trans = (left.transposed, right.transposed)

    def call_blas(args: tuple, slots_here: dict, single: ir.Value, small: ir.Value) -> None:
        """The BLAS call; a lone product small enough for one or two of OpenBLAS's threads
        runs as blocks of ROW_BLOCK rows over graphc's threads (the one-thread copy: B is
        packed once a block, 1/ROW_BLOCK of the block's work)."""
        if loop_batch or not single_copy:
            _blas_call(gs, b, ty, slots_here, args, trans, single)
            return
        with b.if_else(small) as (split, whole):
            with split:
                blocks = (m + ROW_BLOCK - 1) // ROW_BLOCK
                inner = (ROW_BLOCK, n, k)
                parallel.nest(self, b, (blocks,), row_block, "gr", 2, inner)
            with whole:
                _blas_call(gs, b, ty, slots_here, args, trans, False)

    def row_block(loops: list) -> None:
        (block,) = loops
        mv, nv, kv, base_a, base_b, base_c, rsa, csa, rsb, csb = operands()
        first = b.mul(block, _c(ROW_BLOCK), name="row0")
        rows = _min(b, _c(ROW_BLOCK), b.sub(mv, first, name="left"))
        a_block = _at(b, base_a, b.mul(first, rsa, name="a.off"))
        c_block = _at(b, base_c, b.mul(first, nv, name="c.off"))
        args = (rows, nv, kv, a_block, rsa, csa, base_b, rsb, csb, c_block, nv)
        _blas_call(gs, b, ty, blas_slots(), args, trans, True)

    def product(loops: list) -> None:
        mv, nv, kv, base_a, base_b, base_c, rsa, csa, rsb, csb = operands() if threaded else outer
        slots_here = blas_slots() if threaded else slots
        # the one-thread BLAS for a batch (split over graphc's threads) or a small product;
        # a large lone product keeps the library's own threads
        count = _c(1)
        for extent in loop_batch:
            count = b.mul(count, size(extent), name="batch")
        small = b.icmp_signed("<", b.mul(b.mul(mv, nv), kv), _c(SINGLE_MAX_WORK), name="small")
        single = b.or_(b.icmp_signed(">=", count, _c(2), name="many"), small, name="single")
        ldc = nv
        off_a, off_b, off_c = _c(0), _c(0), _c(0)
        c_stride = b.mul(mv, nv)
        for q in reversed(range(len(loops))):
            off_a = b.add(off_a, b.mul(loops[q], size(strides_a[q])))
            off_b = b.add(off_b, b.mul(loops[q], size(strides_b[q])))
        c_stride_total = c_stride
        for q in reversed(range(len(loops))):
            off_c = b.add(off_c, b.mul(loops[q], c_stride_total))
            c_stride_total = b.mul(c_stride_total, size(loop_batch[q]))
        args = (
            mv,
            nv,
            kv,
            _at(b, base_a, off_a),
            rsa,
            csa,
            _at(b, base_b, off_b),
            rsb,
            csb,
            _at(b, base_c, off_c),
            ldc,
        )
        generated = (
            (lambda *key: _generated(gs.module, *key)) if path != "blas" or not static_ok else None
        )
        if path == "generated":
            b.call(generated(ty, ta, tb, left.transposed, right.transposed), list(args))
            return
        if path == "blas" and static_ok:  # sizes known to suit BLAS: no fallback
            call_blas(args, slots_here, single, small)
            return
        ok = ir.Constant(I1, 1)
        for value in (mv, nv, kv):  # BLAS: positive sizes that fit its ints
            ok = b.and_(ok, b.icmp_signed(">", value, _c(0)))
        for value in (mv, nv, kv, rsa, csa, rsb, csb):
            ok = b.and_(ok, b.icmp_signed("<=", value, _c(int_max)))
        if path == "runtime":  # the rule of _auto, on the run-time sizes
            tiled = b.icmp_signed("<", b.mul(b.mul(mv, nv), kv), _c(BLAS_MIN_WORK))
            for value in (mv, nv, kv):
                tiled = b.and_(tiled, b.icmp_signed(">=", value, _c(GENERATED_MIN)))
            ok = b.and_(ok, b.not_(tiled, name="skinny"), name="blas.ok")
        with b.if_else(ok) as (blas, own):
            with blas:
                call_blas(args, slots_here, single, small)
            with own:  # a size BLAS cannot take (0, or past its 32-bit ints), or small
                b.call(generated(ty, ta, tb, left.transposed, right.transposed), list(args))

    if threaded:
        batch = len(loop_batch)
        parallel.nest(self, b, loop_batch, product, "g", 2, (m, n, k), collapse=batch)
    else:
        self._nest(b, loop_batch, product, name="g")

    if not epilogue and storage is anchor and anchor in kernel.outputs:
        return

    def element(loops: list) -> None:
        offset = self.offset(b, anchor.shape, tuple(LOOP_VARS[: anchor.rank]), loops)
        known = {anchor: b.load(_at(b, base_c, offset), name="c")}
        root = lambda n: root_index(n.shape, anchor.shape)  # noqa: E731
        get, own = self.evaluator(b, epilogue, known, root, loops)
        for node in kernel.outputs:
            if node is anchor and storage is anchor:
                continue
            index = normal_index(node.shape, own[node] if node in own else root(node))
            self.store(b, node, get(node, index), index, loops)

    self._nest(b, anchor.shape, element, name="e")


def _generated(module: ir.Module, ty: ir.Type, ta: ir.Type, tb: ir.Type, *trans: bool):  # noqa: ANN202
    """The generated gemm; for complex, the plain loop (its strides say the transposition)."""
    if is_complex(ty):
        return complex_gemm(module, ty, ta, tb)
    return library_gemm(module, ty, ta, tb, *trans)


__all__ = ["BLAS_MIN_WORK", "ENV", "GENERATED_MIN", "FORCE", "GemmState", "matmul", "mode", "state"]
