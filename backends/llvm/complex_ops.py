"""Complex scalars in the LLVM backend.

A complex value is an LLVM struct {re, im} of two floats (irutil.C64 / C128), the layout of
numpy's complex64 / complex128 elements, so loads, stores, transposes and data movement
need nothing special; LLVM splits the struct into its two floats (SROA, instcombine) and
vectorises the loops over them. Here: the elementwise ops that accept complex operands
(graphc/ops/elementwise.py: add sub mul div neg where cast conj real imag) as formulas on
the parts, numpy's ones (Smith's division), and the accumulators of complex sums.
"""

from __future__ import annotations

from llvmlite import ir

from backends.llvm.irutil import I8, convert, is_complex, llvm_type, part_type
from graphc.node import Node
from graphc.ops.registry import complex_of


def parts(b: ir.IRBuilder, z: ir.Value) -> tuple:
    """(re, im) of a complex value."""
    return b.extract_value(z, 0, name="re"), b.extract_value(z, 1, name="im")


def pack(b: ir.IRBuilder, ty: ir.Type, re: ir.Value, im: ir.Value) -> ir.Value:
    """The complex value re + i im of type `ty`."""
    z = b.insert_value(ir.Constant(ty, ir.Undefined), re, 0, name="z.re")
    return b.insert_value(z, im, 1, name="z")


def zero(ty: ir.Type) -> ir.Constant:
    part = part_type(ty)
    return ir.Constant(ty, [ir.Constant(part, 0.0), ir.Constant(part, 0.0)])


def add(b: ir.IRBuilder, x: ir.Value, y: ir.Value, flags: tuple = ()) -> ir.Value:
    (xr, xi), (yr, yi) = parts(b, x), parts(b, y)
    re = b.fadd(xr, yr, name="add.re", flags=list(flags))
    return pack(b, x.type, re, b.fadd(xi, yi, name="add.im", flags=list(flags)))


def sub(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    (xr, xi), (yr, yi) = parts(b, x), parts(b, y)
    return pack(b, x.type, b.fsub(xr, yr, name="sub.re"), b.fsub(xi, yi, name="sub.im"))


def mul_parts(b: ir.IRBuilder, x: tuple, y: tuple) -> tuple:
    # (a + ib)(c + id) = (ac - bd) + i(ad + bc)
    (a, bi), (c, d) = x, y
    re = b.fsub(b.fmul(a, c, name="ac"), b.fmul(bi, d, name="bd"), name="mul.re")
    im = b.fadd(b.fmul(a, d, name="ad"), b.fmul(bi, c, name="bc"), name="mul.im")
    return re, im


def mul(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return pack(b, x.type, *mul_parts(b, parts(b, x), parts(b, y)))


def div(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    # Smith's algorithm, as numpy: scale by the larger of |c|, |d| so that c^2 + d^2 never
    # overflows; both branches are computed and one is selected (no control flow)
    (a, bi), (c, d) = parts(b, x), parts(b, y)
    ty = a.type
    fabs = b.module.globals.get(f"llvm.fabs.{'f64' if ty == ir.DoubleType() else 'f32'}")
    if fabs is None:
        suffix = "f64" if ty == ir.DoubleType() else "f32"
        fabs = ir.Function(b.module, ir.FunctionType(ty, [ty]), name=f"llvm.fabs.{suffix}")
    wide = b.fcmp_ordered(">=", b.call(fabs, [c]), b.call(fabs, [d]), name="wide")
    one = ir.Constant(ty, 1.0)
    # |c| >= |d|: r = d/c, s = 1/(c + d r), re = (a + b r) s, im = (b - a r) s
    r1 = b.fdiv(d, c, name="r1")
    s1 = b.fdiv(one, b.fadd(c, b.fmul(d, r1), name="den1"), name="s1")
    re1 = b.fmul(b.fadd(a, b.fmul(bi, r1), name="n1"), s1, name="re1")
    im1 = b.fmul(b.fsub(bi, b.fmul(a, r1), name="m1"), s1, name="im1")
    # |c| < |d|: r = c/d, s = 1/(d + c r), re = (a r + b) s, im = (b r - a) s
    r2 = b.fdiv(c, d, name="r2")
    s2 = b.fdiv(one, b.fadd(d, b.fmul(c, r2), name="den2"), name="s2")
    re2 = b.fmul(b.fadd(b.fmul(a, r2), bi, name="n2"), s2, name="re2")
    im2 = b.fmul(b.fsub(b.fmul(bi, r2), a, name="m2"), s2, name="im2")
    re = b.select(wide, re1, re2, name="div.re")
    im = b.select(wide, im1, im2, name="div.im")
    # x / 0: numpy divides both parts by |c| = 0 (inf or nan as IEEE says)
    both_zero = b.and_(
        b.fcmp_ordered("==", c, ir.Constant(ty, 0.0)),
        b.fcmp_ordered("==", d, ir.Constant(ty, 0.0)),
        name="zero.den",
    )
    magnitude = b.call(fabs, [c], name="abs.c")
    re = b.select(both_zero, b.fdiv(a, magnitude, name="re0"), re, name="div.re0")
    im = b.select(both_zero, b.fdiv(bi, magnitude, name="im0"), im, name="div.im0")
    return pack(b, x.type, re, im)


def neg(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    re, im = parts(b, x)
    return pack(b, x.type, b.fneg(re, name="neg.re"), b.fneg(im, name="neg.im"))


def conj(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    re, im = parts(b, x)
    return pack(b, x.type, re, b.fneg(im, name="conj.im"))


def scale(b: ir.IRBuilder, x: ir.Value, factor: ir.Value) -> ir.Value:
    """x times a real `factor` of the parts' type."""
    re, im = parts(b, x)
    return pack(b, x.type, b.fmul(re, factor, name="sc.re"), b.fmul(im, factor, name="sc.im"))


def divide_real(b: ir.IRBuilder, x: ir.Value, count: ir.Value) -> ir.Value:
    """x / count (an integer count, as a complex mean divides)."""
    re, im = parts(b, x)
    n = b.sitofp(count, re.type, name="n")
    return pack(b, x.type, b.fdiv(re, n, name="mean.re"), b.fdiv(im, n, name="mean.im"))


_BINARY = {"add": add, "sub": sub, "mul": mul, "div": div}


def involved(node: Node) -> bool:
    """Whether elementwise statement `node` computes with complex values."""
    return "complex" in node.dtype or any("complex" in i.dtype for i in node.inputs)


def lower(b: ir.IRBuilder, node: Node, args: list) -> ir.Value:
    """The IR value of an elementwise statement with complex operands or result."""
    out_ty = llvm_type(node.dtype)
    op = node.op
    if op in ("real", "imag"):
        z = convert(b, args[0], llvm_type(complex_of(node.dtype)), "z")
        return parts(b, z)[0 if op == "real" else 1]
    if op == "cast":
        return convert(b, args[0], out_ty, "cast")
    if op in ("broadcast_to", "reshape"):
        return args[0]
    if not is_complex(out_ty):
        raise NotImplementedError(f"llvm backend: {op} of complex operands to {node.dtype}")
    if op == "where":
        cond, yes, no = args
        truth = b.icmp_unsigned("!=", cond, ir.Constant(I8, 0), name="cond")
        yes, no = convert(b, yes, out_ty, "yes"), convert(b, no, out_ty, "no")
        (yr, yi), (nr, ni) = parts(b, yes), parts(b, no)
        re = b.select(truth, yr, nr, name="where.re")
        return pack(b, out_ty, re, b.select(truth, yi, ni, name="where.im"))
    values = [convert(b, a, out_ty, f"arg{k}") for k, a in enumerate(args)]
    if op in _BINARY and len(values) == 2:
        return _BINARY[op](b, *values)
    if op == "neg":
        return neg(b, values[0])
    if op == "conj":
        return conj(b, values[0])
    raise NotImplementedError(
        f"llvm backend: elementwise {op} on complex values (built at {node.where})"
    )


__all__ = ["add", "conj", "div", "involved", "lower", "mul", "pack", "parts", "scale", "zero"]
