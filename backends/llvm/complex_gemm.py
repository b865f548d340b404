"""Complex matrix products of the LLVM backend: the fallback of cgemm / zgemm.

A complex matmul takes BLAS's cgemm / zgemm (gemm.blas_routines, through the pointer
globals of gemm.py) when its operands share the result's dtype and the sizes suit BLAS.
Otherwise (mixed operand dtypes such as float32 @ complex64, sizes past BLAS's ints, no
BLAS) it calls the function here: a plain loop nest with the generated GEMM's signature,
C[i, j] = sum_p A[i, p] B[p, j], each operand element converted to the result's type.
Complex matmuls are rare in graphc's graphs (the FFT convolution multiplies spectra
elementwise), so this loop is kept simple; it accumulates in registers, the k loop inner.
"""

from __future__ import annotations

from llvmlite import ir

from backends.llvm import complex_ops
from backends.llvm.irutil import I64, convert, for_range, part_type

VOID = ir.VoidType()


def _c(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _suffix(ty: ir.Type) -> str:
    return "c128" if part_type(ty) == ir.DoubleType() else "c64"


def _type_name(ty: ir.Type) -> str:
    return {"float": "f32", "double": "f64"}.get(str(ty), "c128" if "double" in str(ty) else "c64")


def complex_gemm(module: ir.Module, ty: ir.Type, ta: ir.Type, tb: ir.Type) -> ir.Function:
    """gemm(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc): row-major C = A B with element
    strides (rs, cs) for A and B, C's rows ldc apart; emitted into `module` once."""
    name = f"graphc.cgemm.{_suffix(ty)}.{_type_name(ta)}.{_type_name(tb)}"
    found = module.globals.get(name)
    if found is not None:
        return found
    args = [I64, I64, I64, ta.as_pointer(), I64, I64, tb.as_pointer(), I64, I64]
    fnty = ir.FunctionType(VOID, args + [ty.as_pointer(), I64])
    fn = ir.Function(module, fnty, name=name)
    fn.linkage = "internal"
    names = ("m", "n", "k", "a", "rsa", "csa", "b", "rsb", "csb", "c", "ldc")
    for arg, arg_name in zip(fn.args, names):
        arg.name = arg_name
    m, n, k, a, rsa, csa, src_b, rsb, csb, c, ldc = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    acc = b.alloca(ty, name="acc")
    with for_range(b, m, "i") as i:
        with for_range(b, n, "j") as j:
            b.store(complex_ops.zero(ty), acc)
            with for_range(b, k, "p") as p:
                at_a = b.add(b.mul(i, rsa), b.mul(p, csa), name="at.a")
                at_b = b.add(b.mul(p, rsb), b.mul(j, csb), name="at.b")
                x = convert(b, b.load(b.gep(a, [at_a]), name="x"), ty, "x.c")
                y = convert(b, b.load(b.gep(src_b, [at_b]), name="y"), ty, "y.c")
                total = complex_ops.add(b, b.load(acc, name="s"), complex_ops.mul(b, x, y))
                b.store(total, acc)
            at_c = b.add(b.mul(i, ldc), j, name="at.c")
            b.store(b.load(acc, name="sum"), b.gep(c, [at_c]))
    b.ret_void()
    return fn


__all__ = ["complex_gemm"]
