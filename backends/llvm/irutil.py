"""Small llvmlite helpers: types, counted loops, and sympy scalar expressions as IR."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llvmlite import ir

F32 = ir.FloatType()
F64 = ir.DoubleType()
I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
I8P = I8.as_pointer()

C64 = ir.LiteralStructType([F32, F32])  # numpy's complex64: (re, im) interleaved
C128 = ir.LiteralStructType([F64, F64])

TYPES = {
    "float32": F32,
    "float64": F64,
    "int32": I32,
    "int64": I64,
    "bool": I8,
    "complex64": C64,
    "complex128": C128,
}


def llvm_type(dtype: str) -> ir.Type:
    try:
        return TYPES[dtype]
    except KeyError:
        raise NotImplementedError(f"llvm backend: dtype {dtype} is not supported yet") from None


def is_float(ty: ir.Type) -> bool:
    return isinstance(ty, (ir.FloatType, ir.DoubleType))


def is_complex(ty: ir.Type) -> bool:
    """A complex scalar: a {re, im} struct of two floats (backends/llvm/complex_ops.py)."""
    return ty in (C64, C128)


def part_type(ty: ir.Type) -> ir.Type:
    """The float type of a complex type's parts (a real type is its own)."""
    return ty.elements[0] if is_complex(ty) else ty


def interleave_hint(module: ir.Module, count: int) -> ir.MDValue:
    """A loop ID (!llvm.loop) asking the vectoriser to interleave `count` vector iterations:
    a long chain of dependent math (exp, tanh...) per element then has `count` independent
    chains in flight, which the out-of-order core overlaps (a loop of tanh * sigmoid ran
    1.6x faster with 4). Each loop gets its own node: a first operand that is itself."""
    inner = module.add_metadata(
        [ir.MetaDataString(module, "llvm.loop.interleave.count"), ir.Constant(I32, count)]
    )
    unique = ir.MetaDataString(module, f"graphc.loop.{len(module.metadata)}")
    loop_id = module.add_metadata([unique, inner])
    loop_id.operands = (loop_id, inner)
    return loop_id


@contextmanager
def for_range(
    builder: ir.IRBuilder, count: ir.Value, name: str, interleave: int = 1
) -> Iterator[ir.Value]:
    """for (i = 0; i < count; i++) { body }: yields i with the builder inside the body;
    interleave > 1 attaches interleave_hint to the loop."""
    function = builder.function
    head = function.append_basic_block(f"{name}.head")
    body = function.append_basic_block(f"{name}.body")
    done = function.append_basic_block(f"{name}.done")
    start = builder.block
    builder.branch(head)
    builder.position_at_end(head)
    index = builder.phi(I64, name=name)
    index.add_incoming(ir.Constant(I64, 0), start)
    more = builder.icmp_signed("<", index, count, name=f"{name}.more")
    builder.cbranch(more, body, done)
    builder.position_at_end(body)
    yield index
    following = builder.add(index, ir.Constant(I64, 1), name=f"{name}.next", flags=["nsw"])
    index.add_incoming(following, builder.block)
    back = builder.branch(head)
    if interleave > 1:
        back.set_metadata("llvm.loop", interleave_hint(builder.module, interleave))
    builder.position_at_end(done)


def convert(builder: ir.IRBuilder, value: ir.Value, to: ir.Type, name: str) -> ir.Value:
    """numpy's astype between the scalar types graphc uses (bool is an i8 of 0 or 1)."""
    src = value.type
    if src == to:
        return value
    if is_complex(src) or is_complex(to):
        return _convert_complex(builder, value, to, name)
    if src == I1:
        return (
            builder.zext(value, to, name=name)
            if not is_float(to)
            else builder.uitofp(value, to, name=name)
        )
    if is_float(src) and is_float(to):
        if isinstance(to, ir.DoubleType):
            return builder.fpext(value, to, name=name)
        return builder.fptrunc(value, to, name=name)
    if is_float(src):
        if to == I8:  # to bool: nonzero
            nonzero = builder.fcmp_unordered("!=", value, ir.Constant(src, 0.0), name=name)
            return builder.zext(nonzero, I8, name=f"{name}.b")
        return builder.fptosi(value, to, name=name)
    if is_float(to):
        if src == I8:
            return builder.uitofp(value, to, name=name)
        return builder.sitofp(value, to, name=name)
    if to == I8:
        nonzero = builder.icmp_signed("!=", value, ir.Constant(src, 0), name=name)
        return builder.zext(nonzero, I8, name=f"{name}.b")
    if src.width < to.width:
        return (
            builder.sext(value, to, name=name) if src != I8 else builder.zext(value, to, name=name)
        )
    return builder.trunc(value, to, name=name)


def _convert_complex(builder: ir.IRBuilder, value: ir.Value, to: ir.Type, name: str) -> ir.Value:
    """A real value to complex (imaginary part 0), or complex to complex of another precision
    (complex to real is not an astype graphc allows: the graph uses real())."""
    if not is_complex(to):
        raise NotImplementedError(f"llvm backend: complex {value.type} to {to} (use real())")
    part = to.elements[0]
    if is_complex(value.type):
        re = builder.extract_value(value, 0, name=f"{name}.re")
        im = builder.extract_value(value, 1, name=f"{name}.im")
        re, im = convert(builder, re, part, f"{name}.re"), convert(builder, im, part, f"{name}.im")
    else:
        re, im = convert(builder, value, part, f"{name}.re"), ir.Constant(part, 0.0)
    out = builder.insert_value(ir.Constant(to, ir.Undefined), re, 0, name=f"{name}.c")
    return builder.insert_value(out, im, 1, name=name)
