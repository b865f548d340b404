"""simplify: constant folding and algebraic identities, then elementwise chains through sympy.

The rules are small named functions `(node, ctx) -> replacement | None`, each with its
identity as a one-line comment. A replacement must keep the node's shape and dtype
(rules add broadcast_to / cast where needed; the driver drops any that would not).
Rules see canonical graphs (canonicalize runs first: a - b is a + (-b), constants are the
second operand of commutative ops) but match either operand order anyway.

Rules that IEEE arithmetic would not allow are left out on purpose: x*0 -> 0 and x - x -> 0
(nan and inf give nan), exp(log(x)) -> x (log of a negative is nan). Accuracy: the rules
below give the same values, or better ones where the original overflows or rounds more:

  fold_constants   f(constants) -> a constant, computed now by the numpy reference (at most
                   MAX_FOLD elements); f(splats) -> a splat of f on the small constants
  add_zero         x + 0 -> x (only the sign of a zero may differ: -0 + 0 is +0)
  log_exp          log(exp(x)) -> x: exact, where log(exp(x)) rounds twice or overflows
  exp_mul          exp(a)*exp(b) -> exp(a+b): finite where the product is inf*0 = nan or
                   overflows though exp(a+b) does not; elsewhere the rounding of a+b adds a
                   relative error of at most |a+b| ulp/2, as any exp of a computed argument
  sum_splat        sum of n copies of s -> s*n: one rounding instead of n-1
  log_softmax      log(softmax(x)) -> log_softmax(x): finite where softmax underflows to 0
  cross_entropy    -sum(q*log_softmax(z)) -> softmax_cross_entropy(z, q): the same formula
                   in one op, whose gradient softmax(z) - q never divides by a probability
  log_softmax_vjp  the gradient autodiff built for log(softmax(z)) (through 1/softmax) ->
                   log_softmax's g - softmax*sum(g): finite where softmax underflows to 0
The others are exact: mul_one x*1 -> x, mul_minus_one x*(-1) -> -x, pow_one x**1 -> x,
neg_neg -(-x) -> x, same_operands max(x, x) -> x, mean_splat, reduce_unit (a reduction of
one term), splat_reshape and broadcast_chain (canonicalize's, for the splats folding makes),
drop_splat f(broadcast_to(y), z) -> f(y, z), fold_sub a + (-b) -> a - b.

`fold_weights` is a pass of its own, run after lower: the transforms that a lowering applies
to a convolution's weight (reshape, transpose, flip, pad, rfft/fft, conj, cast) are folded
into constants whatever their size when the weight is a constant, so inference with fixed
weights computes no weight FFT, flip or im2col layout at run time.

`DISABLED` holds the names of rules switched off (tests, debugging); "ew_chains" switches off
the sympy sub-pass (graphc/passes/chains.py). `gc.compile(..., skip_passes=["simplify"])`
switches off the whole pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy

from graphc.node import Node, toposort
from graphc.ops import reduce as red
from graphc.ops import shape as shp
from graphc.ops.elementwise import SCALAR_OPS, cast, ew
from graphc.ops.registry import ImplContext, apply, get
from graphc.ops.sources import constant, size_value
from graphc.passes import chains
from graphc.passes.canonicalize import (
    EXACT_CASTS,
    broadcast_chain,
    const_array,
    is_splat,
    splat_reshape,
)
from graphc.passes.dce import note_start
from graphc.passes.rewrite import rewrite
from graphc.shapes import Bindings, numel, shape_str

MAX_FOLD = 4096  # the most elements a folded constant may have
WEIGHT_TRANSFORMS = (
    "reshape",
    "transpose",
    "slice",
    "slice_grad",
    "pad",
    "rfft",
    "fft",
    "conj",
    "winograd_tiles",
)
MAX_WEIGHT_FOLD = 1 << 27  # elements: fold_weights keeps any smaller transform (1 GiB complex)
MAX_ROUNDS = 6  # rewrites of the whole graph until nothing changes (each is linear)
FLOATS = ("float32", "float64")
DISABLED: set = set()


class Context:
    """What rules may consult (consumer counts) and the record of what they did."""

    def __init__(self) -> None:
        self.uses: dict = {}
        self.applied: dict = {}  # log line -> count, in first-seen order
        self.by_op: dict = {}  # op -> the rules (not disabled) that can match it

    def record(self, text: str) -> None:
        self.applied[text] = self.applied.get(text, 0) + 1

    def flush(self, log: Callable[[str], None]) -> None:
        for text, count in self.applied.items():
            log(text if count == 1 else f"{text} x{count}")
        self.applied.clear()

    def single_use(self, node: Node) -> bool:
        return self.uses.get(node, 1) <= 1


def _like(x: Node, node: Node) -> Node | None:
    """x with node's dtype and shape (an exact cast, a broadcast), or None when impossible."""
    if x.dtype != node.dtype:
        if (x.dtype, node.dtype) not in EXACT_CASTS:
            return None
        x = cast(x, node.dtype)
    if x.shape != node.shape:
        x = shp.broadcast_to(x, node.shape)
    return x


def _all_equal(node: Node, value: float) -> bool:
    """node is a constant (or a splat of one) whose every entry equals value."""
    array = const_array(node)
    return array is not None and array.size > 0 and bool(np.all(array == value))


def _pairs(node: Node) -> list:
    a, b = node.inputs
    return [(a, b), (b, a)]


def _concrete(shape: tuple) -> tuple | None:
    if all(d.is_number for d in shape):
        return tuple(int(d) for d in shape)
    return None


def _evaluate(node: Node, arrays: list, shape: tuple) -> np.ndarray | None:
    """node's numpy reference on `arrays`, giving `shape`; None when it fails (the error is
    then left for run time, where it names the user's line)."""
    ctx = ImplContext(node.attrs, shape, node.dtype, node, Bindings())
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(get(node.op).impl(ctx, *arrays))
    except Exception:  # noqa: BLE001 - any failure means: do not fold
        return None
    if out.shape != shape or out.dtype.name != node.dtype:
        return None
    return np.array(out)  # a fresh, contiguous copy the constant can own


def _fold_limit(inputs: Sequence) -> int:
    """The most elements a constant folded from `inputs` (nodes or arrays) may have: at most
    MAX_FOLD, and never more than the inputs together (circulant(c) or one_hot(t) of
    constants stay ops: their output would be a bigger constant than their operands)."""
    total = sum(int(np.prod(i.shape)) if isinstance(i, np.ndarray) else _numel(i) for i in inputs)
    return min(MAX_FOLD, max(total, 1))


def _numel(node: Node) -> int:
    return int(np.prod([int(d) for d in node.shape]))


def on(*ops: str) -> Callable[[Callable], Callable]:
    """Declare the ops a rule can match (the driver skips it for the others)."""

    def wrap(rule: Callable) -> Callable:
        rule.ops = frozenset(ops)  # type: ignore[attr-defined]
        return rule

    return wrap


# the rules ------------------------------------------------------------------------------


def fold_constants(node: Node, ctx: Context) -> Node | None:
    # f(c1, ..., cn) -> c; f(splat(c1), ..., cn) -> splat(f(c1, ..., cn)) for f elementwise
    if node.op == "dim_value":
        expr = node.attrs["expr"]
        if not expr.is_number:
            return None
        value = int(expr) if expr.is_integer else float(expr)
        return constant(np.asarray(value, dtype=node.dtype))
    opdef = get(node.op)
    if opdef.kind == "source" or node.op == "broadcast_to" or not node.inputs:
        return None  # a splat stays one: it costs a scalar
    if all(i.op == "constant" for i in node.inputs):
        shape = _concrete(node.shape)
        if shape is None or int(np.prod(shape)) > _fold_limit(node.inputs):
            return None
        out = _evaluate(node, [i.attrs["value"].array for i in node.inputs], shape)
        return None if out is None else constant(out)
    splats = all(i.op == "constant" or is_splat(i) for i in node.inputs)
    if opdef.kind != "elementwise" or not splats:
        return None
    arrays = [const_array(i) for i in node.inputs]
    try:
        small = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        return None
    if int(np.prod(small)) > _fold_limit([const_array(i) for i in node.inputs]):
        return None
    out = _evaluate(node, arrays, small)
    return None if out is None else shp.broadcast_to(constant(out), node.shape)


@on("mul")
def mul_one(node: Node, ctx: Context) -> Node | None:
    # x*1 -> x
    if node.op != "mul":
        return None
    for x, c in _pairs(node):
        if _all_equal(c, 1):
            return _like(x, node)
    return None


@on("add")
def add_zero(node: Node, ctx: Context) -> Node | None:
    # x+0 -> x
    if node.op != "add":
        return None
    for x, c in _pairs(node):
        if _all_equal(c, 0):
            return _like(x, node)
    return None


@on("mul")
def mul_minus_one(node: Node, ctx: Context) -> Node | None:
    # x*(-1) -> -x
    if node.op != "mul" or node.dtype == "bool":
        return None
    for x, c in _pairs(node):
        if _all_equal(c, -1) and x.dtype != "bool":
            return _like(ew("neg", x), node)
    return None


@on("pow")
def pow_one(node: Node, ctx: Context) -> Node | None:
    # x**1 -> x
    if node.op == "pow" and _all_equal(node.inputs[1], 1):
        return _like(node.inputs[0], node)
    return None


@on("neg")
def neg_neg(node: Node, ctx: Context) -> Node | None:
    # -(-x) -> x
    if node.op == "neg" and node.inputs[0].op == "neg":
        return node.inputs[0].inputs[0]
    return None


@on("maximum", "minimum", "where")
def same_operands(node: Node, ctx: Context) -> Node | None:
    # max(x, x) -> x; min(x, x) -> x; where(c, x, x) -> x
    if node.op in ("maximum", "minimum") and node.inputs[0] is node.inputs[1]:
        return node.inputs[0]
    if node.op == "where" and node.inputs[1] is node.inputs[2]:
        return _like(node.inputs[1], node)
    return None


@on("log")
def log_exp(node: Node, ctx: Context) -> Node | None:
    # log(exp(x)) -> x
    if node.op == "log" and node.inputs[0].op == "exp":
        return _like(node.inputs[0].inputs[0], node)
    return None


@on("mul")
def exp_mul(node: Node, ctx: Context) -> Node | None:
    # exp(a)*exp(b) -> exp(a+b)
    if node.op != "mul" or any(i.op != "exp" for i in node.inputs):
        return None
    (a,), (b,) = (i.inputs for i in node.inputs)
    if a.dtype not in FLOATS or b.dtype not in FLOATS:
        return None  # an integer a+b could wrap around
    if not all(ctx.single_use(i) for i in node.inputs):
        return None  # a shared exp stays: the rewrite would add nodes
    return ew("exp", ew("add", a, b))


def _splat_source(node: Node) -> tuple | None:
    """(s, y) for a reduction of broadcast_to(s) over axes that only broadcasting filled:
    y is s shaped like the result (each term of the reduction is the same value)."""
    x = node.inputs[0]
    if x.op != "broadcast_to":
        return None
    s = x.inputs[0]
    axes = node.attrs["axes"]
    aligned = (sympy.Integer(1),) * (x.rank - s.rank) + tuple(s.shape)
    if any(aligned[k] != 1 for k in axes):
        return None
    kept = list(red.reduced_shape(aligned, axes, node.attrs["keepdims"]))
    while kept and kept[0] == 1:
        kept.pop(0)  # leading 1s: broadcast_to adds them back
    return s, shp.broadcast_to(shp.reshape(s, kept), node.shape)


@on("sum")
def sum_splat(node: Node, ctx: Context) -> Node | None:
    # sum(broadcast_to(s), broadcast axes) -> s * n (n copies of s)
    if node.op != "sum" or node.dtype == "bool" or node.inputs[0].dtype != node.dtype:
        return None
    found = _splat_source(node)
    if found is None:
        return None
    x = node.inputs[0]
    count = numel([x.shape[k] for k in node.attrs["axes"]])
    if count.is_positive is not True:
        return None  # an empty sum is 0, but inf * 0 is nan
    y = found[1]
    return y if count == 1 else ew("mul", y, size_value(count, node.dtype))


@on("mean")
def mean_splat(node: Node, ctx: Context) -> Node | None:
    # mean(broadcast_to(s), broadcast axes) -> s
    if node.op != "mean" or node.inputs[0].dtype not in FLOATS:
        return None
    x = node.inputs[0]
    if numel([x.shape[k] for k in node.attrs["axes"]]).is_positive is not True:
        return None  # a mean over an empty axis is an error at run time: keep it
    found = _splat_source(node)
    return None if found is None else _like(found[1], node)


@on("sum", "mean", "max", "logsumexp")
def reduce_unit(node: Node, ctx: Context) -> Node | None:
    # sum/mean/max/logsumexp over axes of size 1 -> x (a reduction of one term is the term)
    if node.op not in ("sum", "mean", "max", "logsumexp"):
        return None
    x = node.inputs[0]
    if any(x.shape[k] != 1 for k in node.attrs["axes"]):
        return None
    return _like(shp.reshape(x, node.shape), node)


@on("log")
def log_softmax(node: Node, ctx: Context) -> Node | None:
    # log(softmax(x)) -> log_softmax(x)
    if node.op == "log" and node.inputs[0].op == "softmax":
        s = node.inputs[0]
        return red.log_softmax(s.inputs[0], s.attrs["axis"])
    return None


@on("neg")
def cross_entropy(node: Node, ctx: Context) -> Node | None:
    # -sum(q * log_softmax(z), axis=-1) -> softmax_cross_entropy(z, q)
    if node.op != "neg" or node.inputs[0].op != "sum":
        return None
    total = node.inputs[0]
    product = total.inputs[0]
    if product.op != "mul" or total.attrs["keepdims"]:
        return None
    if total.attrs["axes"] != (product.rank - 1,):
        return None
    for q, ls in _pairs(product):
        if ls.op != "log_softmax" or ls.attrs["axis"] != ls.rank - 1 or ls.rank != product.rank:
            continue
        z = ls.inputs[0]
        if q.dtype not in FLOATS or product.shape != z.shape:
            continue
        if q.op == "one_hot" and q.shape == z.shape:
            target = q.inputs[0]  # the labels: the same indicator vectors, built by the op
        else:
            target = shp.broadcast_to(q, z.shape)
        return apply("softmax_cross_entropy", (z, target), label_smoothing=0.0)
    return None


def _reciprocal_of(node: Node) -> Node | None:
    """s for node = 1/s (div(1, s)), else None."""
    if node.op == "div" and _all_equal(node.inputs[0], 1):
        return node.inputs[1]
    return None


@on("mul")
def log_softmax_vjp(node: Node, ctx: Context) -> Node | None:
    # s*(g/s - sum(g/s*s)) -> g - s*sum(g) for s = softmax(z): the vjp of log(softmax(z))
    # (autodiff's, through 1/s) as log_softmax's, finite where s underflows to 0
    if node.op != "mul":
        return None
    for s, diff in _pairs(node):
        if s.op != "softmax" or diff.op != "sub":
            continue
        h, total = diff.inputs
        axis = s.attrs["axis"]
        if total.op != "sum" or total.attrs["axes"] != (axis,) or not total.attrs["keepdims"]:
            continue
        if total.inputs[0].op != "mul" or set(total.inputs[0].inputs) != {h, s}:
            continue
        if h.op != "mul":
            continue
        for g, r in _pairs(h):
            if _reciprocal_of(r) is s and g.dtype == s.dtype:
                g = shp.broadcast_to(g, s.shape)
                return ew("sub", g, ew("mul", s, red.sum(g, axis, keepdims=True)))
    return None


def drop_splat(node: Node, ctx: Context) -> Node | None:
    # f(broadcast_to(y), z) -> f(y, z) when the other operands give the shape anyway
    if node.op not in SCALAR_OPS and node.op != "elementwise":
        return None
    for k, operand in enumerate(node.inputs):
        if operand.op == "broadcast_to":
            inputs = list(node.inputs)
            inputs[k] = operand.inputs[0]
            new = apply(node.op, inputs, **dict(node.attrs))
            if new.shape == node.shape:
                return new
    return None


@on("add")
def fold_sub(node: Node, ctx: Context) -> Node | None:
    # a + (-b) -> a - b (the inverse of canonicalize's sub_to_add: one op instead of two)
    if node.op != "add":
        return None
    for a, n in _pairs(node):
        if n.op == "neg":
            return ew("sub", a, n.inputs[0])
    return None


RULES: list = [
    fold_constants,
    mul_one,
    add_zero,
    mul_minus_one,
    pow_one,
    neg_neg,
    same_operands,
    log_exp,
    exp_mul,
    sum_splat,
    mean_splat,
    reduce_unit,
    log_softmax,
    cross_entropy,
    log_softmax_vjp,
    splat_reshape,  # (canonicalize's, again: folding makes new splats)
    broadcast_chain,
    drop_splat,
    fold_sub,  # last: the rules above match canonical a + (-b); the graph keeps one op
]


def _describe(node: Node) -> str:
    return f"{node.op} {shape_str(node.shape)} {node.dtype}"


def _rules_for(op: str, rules: list, ctx: Context) -> list:
    found = ctx.by_op.get(op)
    if found is None:
        found = [r for r in rules if r.__name__ not in DISABLED and op in getattr(r, "ops", (op,))]
        ctx.by_op[op] = found
    return found


def _apply(node: Node, rules: list, ctx: Context) -> Node:
    """node with the rules applied until none fires (each replacement is re-examined)."""
    for _ in range(16):
        for rule in _rules_for(node.op, rules, ctx):
            try:
                new = rule(node, ctx)
            except (ValueError, TypeError, ArithmeticError):  # rebuild rejected: keep the node
                new = None
            if new is None or new is node:
                continue
            if new.shape != node.shape or new.dtype != node.dtype:
                continue
            ctx.record(f"{rule.__name__}: {_describe(node)}")
            node = new
            break
        else:
            return node
    return node


def _consumers(roots: list) -> dict:
    """How many nodes use each node (a root counts one more: its value is returned)."""
    uses: dict = {}
    for node in toposort(roots):
        for i in set(node.inputs):
            uses[i] = uses.get(i, 0) + 1
    for root in set(roots):
        uses[root] = uses.get(root, 0) + 1
    return uses


def _rounds(roots: list, rules: list, ctx: Context) -> list:
    for _ in range(MAX_ROUNDS):
        ctx.uses = _consumers(roots)
        new = rewrite(roots, lambda node: _apply(node, rules, ctx))
        if all(a is b for a, b in zip(new, roots)):
            break
        roots = new
    return roots


def simplify(roots: Sequence[Node], log: Callable[[str], None]) -> list:
    note_start(roots, toposort(roots), first=False)
    ctx = Context()
    new = _rounds(list(roots), RULES, ctx)
    if "ew_chains" not in DISABLED:
        shorter = chains.simplify_chains(new, ctx.record)
        if any(a is not b for a, b in zip(shorter, new)):
            new = _rounds(shorter, RULES, ctx)
    ctx.flush(log)
    return new


def fold_weight(node: Node) -> Node | None:
    # f(c) -> f's value, for f a weight transform of a lowering and c a constant of any size
    if node.op not in WEIGHT_TRANSFORMS and not (node.op == "cast" and node.inputs):
        return None
    if not node.inputs or any(i.op != "constant" for i in node.inputs):
        return None
    shape = _concrete(node.shape)
    if shape is None or int(np.prod(shape)) > MAX_WEIGHT_FOLD:
        return None
    out = _evaluate(node, [i.attrs["value"].array for i in node.inputs], shape)
    return None if out is None else constant(out)


def fold_weights(roots: Sequence[Node], log: Callable[[str], None]) -> list:
    """The pass: every weight transform of a constant becomes a constant (see fold_weight)."""
    folded: dict = {}

    def rule(node: Node) -> Node | None:
        new = fold_weight(node)
        if new is not None:
            key = f"fold_weight: {_describe(node)}"
            folded[key] = folded.get(key, 0) + 1
        return new

    new_roots = rewrite(list(roots), rule)
    for text, count in folded.items():
        log(text if count == 1 else f"{text} x{count}")
    return new_roots


__all__ = ["DISABLED", "RULES", "fold_weights", "simplify"]
