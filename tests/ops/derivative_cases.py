"""The table of tests/ops/test_derivatives.py: one row per op (several per op for its
variants), each a builder, its operands' shapes and the samplers of their domains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy

import graphc as gc
from graphc.ops import conv as conv_ops
from graphc.ops import winograd

from .oracle import away_from_zero, normal, uniform

N = gc.dim("N")
SOURCES = ("input", "param", "constant")
TOL = 1e-6  # float64, eps = 1e-6 central differences: the true errors are ~1e-9 or below
N_VALUES = (1, 7)


# samplers beyond the oracle's: each (rng, shape, dtype) -> array -----------------------------


def lattice(parity: int) -> Callable:
    """Values (2k + parity) / 4 + noise in [-0.05, 0.05], k in [-6, 6): an even and an odd
    lattice never come closer than 0.15, so maximum/minimum of the two has no tie nearby,
    and both operands win somewhere."""

    def sample(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
        k = r.integers(-6, 6, shape)
        return ((2 * k + parity) / 4 + r.uniform(-0.05, 0.05, shape)).astype(dtype)

    return sample


def distinct(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    """A shuffled grid 0.3 apart plus small noise: no two entries tie (max has no kink)."""
    size = int(np.prod(shape, dtype=np.int64))
    grid = (np.arange(size) - size / 2) * 0.3 + r.uniform(-0.05, 0.05, size)
    return r.permutation(grid).reshape(shape).astype(dtype)


def labels(depth: int) -> Callable:
    def sample(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
        return r.integers(0, depth, shape).astype(dtype)

    return sample


def probabilities(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    """Rows of positive numbers summing to 1 along the last axis."""
    p = r.uniform(0.1, 1.0, shape)
    return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)


POS = uniform(0.5, 3.0)
KINKLESS = away_from_zero(0.1, 3.0)  # relu, abs, sign tests: |x| >= 0.1 >> eps


# the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    shape: tuple
    sample: Callable = normal()
    dtype: str = "float64"

    @property
    def differentiable(self) -> bool:
        return self.dtype == "float64"

    def concrete(self, n: int | None) -> tuple:
        values = {} if n is None else {N: n}
        return tuple(int(sympy.sympify(d).subs(values)) for d in self.shape)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable
    args: tuple = field(default_factory=tuple)

    @property
    def symbolic(self) -> bool:
        return any(not sympy.sympify(d).is_number for a in self.args for d in a.shape)


CASES: list = []


def case(id: str, build: Callable, *args: Arg | tuple) -> None:
    """Add a row; a bare tuple is an Arg of that shape sampled from a standard normal."""
    CASES.append(Case(id, build, tuple(a if isinstance(a, Arg) else Arg(a) for a in args)))


def weights(shape: tuple, seed: int = 1) -> gc.Tensor:
    """Fixed random float64 weights (a constant) for the rows that build a gradient inside."""
    return gc.constant(np.random.default_rng(seed).standard_normal(shape))


def grad_of(f: Callable, x: gc.Tensor, seed: int = 1) -> gc.Tensor:
    """d/dx sum(f(x) * W): a first derivative, differentiated again by the checks."""
    y = f(x)
    return gc.grad(gc.sum(y * weights(tuple(int(d) for d in y.shape), seed)), x)


def grad_of_symbolic(f: Callable, x: gc.Tensor, w: gc.Tensor) -> gc.Tensor:
    """d/dx sum(f(x) * w), w an input (for outputs of symbolic shape)."""
    return gc.grad(gc.sum(f(x) * w), x)


# elementwise: unary ---------------------------------------------------------------------------
case("exp", gc.exp, Arg((3, 4), uniform(-2, 2)))
case("log", gc.log, Arg((3, 4), POS))
case("tanh", gc.tanh, Arg((3, 4), normal(1.5)))
case("sigmoid", gc.sigmoid, Arg((3, 4), normal(3)))
case("sigmoid-large", gc.sigmoid, Arg((5,), uniform(-30, 30)))
case("relu", gc.relu, Arg((3, 4), KINKLESS))
case("softplus", gc.softplus, Arg((3, 4), normal(3)))
case("abs", gc.abs, Arg((3, 4), KINKLESS))
case("abs-operator", lambda a: abs(a), Arg((6,), KINKLESS))
case("sqrt", gc.sqrt, Arg((3, 4), POS))
case("neg", lambda a: -a, (3, 4))
case("exp-scalar", gc.exp, Arg((), uniform(-1, 1)))
case("tanh-N", gc.tanh, Arg((N, 3)))

# elementwise: binary, with broadcasting and scalar operands --------------------------------
case("add", lambda a, b: a + b, (3, 4), (3, 4))
case("add-broadcast", lambda a, b: a + b, (3, 1, 4), (5, 1))
case("sub-broadcast", lambda a, b: a - b, (5, 1), (3, 1, 4))
case("mul-broadcast", lambda a, b: a * b, (3, 1, 4), (5, 1))
case("mul-scalar-operand", lambda a, b: a * b, (3, 4), ())
case("mul-same-operand", lambda a: a * a, (3, 4))
case("div", lambda a, b: a / b, (3, 4), Arg((3, 4), away_from_zero()))
case("div-broadcast", lambda a, b: a / b, (4,), Arg((3, 1), away_from_zero()))
case("div-python-numerator", lambda b: 2.5 / b, Arg((3, 4), away_from_zero()))
case("pow", lambda a, b: a**b, Arg((3, 4), POS), Arg((3, 4), uniform(-2, 2)))
case("pow-broadcast", lambda a, b: a**b, Arg((2, 1, 3), POS), Arg((4, 1), uniform(-2, 2)))
case("pow-square", lambda a: a**2, (3, 4))
case("pow-cube", lambda a: a**3, (3, 4))
case("pow-half", lambda a: a**0.5, Arg((3, 4), POS))
case("pow-fraction", lambda a: a**2.5, Arg((3, 4), POS))
case("pow-negative", lambda a: a**-1, Arg((3, 4), away_from_zero()))
case("pow-python-base", lambda b: 2.0**b, (3, 4))
case("maximum", gc.maximum, Arg((3, 4), lattice(0)), Arg((3, 4), lattice(1)))
case("maximum-broadcast", gc.maximum, Arg((3, 1, 4), lattice(0)), Arg((5, 1), lattice(1)))
case("maximum-python-scalar", lambda a: gc.maximum(a, 0.5), Arg((3, 4), lattice(0)))
case("minimum", gc.minimum, Arg((3, 4), lattice(1)), Arg((3, 4), lattice(0)))
case("minimum-scalar-operand", gc.minimum, Arg((3, 4), lattice(1)), Arg((), lattice(0)))
case("add-N", lambda a, b: a + b, (N, 3), (3,))
case("mul-N-broadcast", lambda a, b: a * b, (N, 1), (1, 4))


# where and the comparisons (their conditions: piecewise constant, zero derivative) ----------
def _where(compare: Callable) -> Callable:
    return lambda c, a, b: gc.where(compare(c, 0.0), gc.tanh(a), a * b)


for _name, _compare in [
    ("lt", lambda c, z: c < z),
    ("le", lambda c, z: c <= z),
    ("gt", lambda c, z: c > z),
    ("ge", gc.greater_equal),
    ("eq", gc.equal),  # never true on continuous samples: the other branch everywhere
    ("ne", gc.not_equal),
]:
    case(f"where-{_name}", _where(_compare), Arg((3, 4), KINKLESS), (3, 4), (3, 4))
case(
    "where-broadcast",
    lambda c, a, b: gc.where(c > 0, a, b),
    Arg((3, 1), KINKLESS),
    (3, 4),
    (),
)
case(
    "where-compare-two-tensors",
    lambda a, b: gc.where(a < b, a * b, gc.exp(b)),
    Arg((3, 4), lattice(0)),
    Arg((3, 4), lattice(1)),
)
case("where-N", lambda c, a: gc.where(c >= 0, a, -2.0 * a), Arg((N, 1), KINKLESS), (N, 3))

# cast (in the float64 rebuild of the checks, float32 casts become float64 ones) ------------
case("cast-f32-f64", lambda a: gc.cast(gc.cast(a, "float32"), "float64"), (3, 4))
case("cast-f64-f32", lambda a: gc.tanh(gc.cast(a, "float32")), (3, 4))
case(
    "cast-int-operand",
    lambda a, t: a * gc.cast(t, "float64"),
    (3, 4),
    Arg((3, 4), labels(5), "int32"),
)

# user elementwise (exact derivatives through sympy, unknown heads as fallback nodes) -------
softsign = gc.elementwise(lambda v: v / (1 + sympy.Abs(v)), name="softsign")
gelu = gc.elementwise(lambda v: v / 2 * (1 + sympy.erf(v / sympy.sqrt(2))), name="gelu")
wave = gc.elementwise(lambda a, b: a * sympy.sin(b) + sympy.cos(a * b), name="wave")
case("elementwise-softsign", softsign, Arg((3, 4), KINKLESS))
case("elementwise-gelu", gelu, Arg((3, 4), normal(2)))
case("elementwise-two-operands", wave, (3, 1, 4), (5, 1))
case("elementwise-N", gelu, Arg((N, 2)))

# matmul ----------------------------------------------------------------------------------------
case("matmul-1d-1d", gc.matmul, (4,), (4,))
case("matmul-2d-1d", gc.matmul, (3, 4), (4,))
case("matmul-1d-2d", gc.matmul, (4,), (4, 5))
case("matmul-2d-2d", lambda a, b: a @ b, (3, 4), (4, 5))
case("matmul-batched", gc.matmul, (2, 3, 4), (2, 4, 5))
case("matmul-batched-broadcast", gc.matmul, (2, 1, 3, 4), (5, 4, 2))
case("matmul-batched-2d", gc.matmul, (2, 3, 4), (4, 5))
case("matmul-batched-1d", gc.matmul, (2, 3, 4), (4,))
case("matmul-1d-batched", gc.matmul, (3,), (2, 3, 4))
case("matmul-N", gc.matmul, (N, 3), (3, 2))

# reductions: axes None/int/tuple/negative, keepdims --------------------------------------
for _axis in (None, 0, -1, (0, 2), (2, 0, 1)):
    for _keep in (False, True):
        _kw = dict(axis=_axis, keepdims=_keep)
        _tag = f"axis={_axis}-keepdims={_keep}"
        case(f"sum-{_tag}", lambda a, kw=_kw: gc.sum(a, **kw), (2, 3, 4))
        case(f"mean-{_tag}", lambda a, kw=_kw: gc.mean(a, **kw), (2, 3, 4))
        case(f"max-{_tag}", lambda a, kw=_kw: gc.max(a, **kw), Arg((2, 3, 4), distinct))
        case(f"logsumexp-{_tag}", lambda a, kw=_kw: gc.logsumexp(a, **kw), (2, 3, 4))
case("sum-method", lambda a: a.sum(1), (3, 4))
case("mean-N-axis0", lambda a: gc.mean(a, axis=0), (N, 3))
case("mean-N-all", lambda a: gc.mean(a), (N, 3))
case("max-N", lambda a: gc.max(a, axis=1, keepdims=True), Arg((N, 4), distinct))
case("logsumexp-N", lambda a: gc.logsumexp(a, axis=0), (N, 3))
for _axis in (0, 1, -1):
    case(f"softmax-axis={_axis}", lambda a, k=_axis: gc.softmax(a, axis=k), (3, 4, 2))
    case(f"log_softmax-axis={_axis}", lambda a, k=_axis: gc.log_softmax(a, axis=k), (3, 4, 2))
case("softmax-1d", gc.softmax, (5,))
case("softmax-N", lambda a: gc.softmax(a, axis=0), (N, 3))
case("log_softmax-N", gc.log_softmax, (N, 3))

# shape ops ------------------------------------------------------------------------------------
case("transpose-2d", lambda a: a.T, (3, 4))
case("transpose-reverse", gc.transpose, (2, 3, 4))
case("transpose-perm", lambda a: gc.transpose(a, (1, 2, 0)), (2, 3, 4))
case("transpose-negative-perm", lambda a: gc.transpose(a, (-1, 0, -2)), (2, 3, 4))
case("transpose-N", lambda a: gc.transpose(a, (1, 0, 2)), (N, 3, 2))
case("reshape", lambda a: gc.reshape(a, (2, 6)), (3, 4))
case("reshape-flatten", lambda a: a.reshape(-1), (2, 3, 4))
case("reshape-N", lambda a: a.reshape(N, 2, 3), (N, 6))
case("broadcast_to", lambda a: gc.broadcast_to(a, (2, 3, 4)), (3, 1))
case("broadcast_to-scalar", lambda a: gc.broadcast_to(a, (3,)), ())
case("broadcast_to-N", lambda a: gc.broadcast_to(a, (2, N, 4)), (N, 1))
case("concat-axis0", lambda a, b: gc.concat([a, b], 0), (2, 3), (4, 3))
case("concat-axis1-three", lambda a, b, c: gc.concat([a, b, c], 1), (2, 3), (2, 1), (2, 2))
case("concat-axis-1", lambda a, b: gc.concat([a, b], -1), (2, 3, 1), (2, 3, 2))
case("concat-same-operand", lambda a: gc.concat([a, a * 2.0], 0), (2, 3))
case("concat-N", lambda a, b: gc.concat([a, b], 0), (N, 3), (2, 3))
case("concat-N-N", lambda a, b: gc.concat([a, b], 0), (N, 3), (N, 3))
for _mode in ("constant", "reflect", "circular", "edge"):
    case(f"pad-{_mode}-int", lambda a, m=_mode: gc.pad(a, 1, m), (3, 4))
    case(f"pad-{_mode}-axes", lambda a, m=_mode: gc.pad(a, ((0, 2), (1, 3)), m), (3, 4))
    case(f"pad-{_mode}-1d", lambda a, m=_mode: gc.pad(a, (2, 1), m), (4,))
    case(f"pad-{_mode}-N", lambda a, m=_mode: gc.pad(a, ((0, 0), (2, 1)), m), (N, 4))
case("pad-constant-value", lambda a: gc.pad(a, 2, "constant", value=1.5), (3, 4))
case("pad-edge-N-axis", lambda a: gc.pad(a, ((1, 2), (0, 1)), "edge"), (N, 3))
case("pad-circular-wide", lambda a: gc.pad(a, (3, 4), "circular"), (4,))
for _label, _index in [
    ("x[1]", 1),
    ("x[:,-2]", (slice(None), -2)),
    ("x[::2]", slice(None, None, 2)),
    ("x[1:-1:3]", slice(1, -1, 3)),
    ("x[::-1]", slice(None, None, -1)),
    ("x[-3:,1:4]", (slice(-3, None), slice(1, 4))),
    ("x[...,::-2]", (Ellipsis, slice(None, None, -2))),
    ("x[None,2]", (None, 2)),
]:
    case(f"slice-{_label}", lambda a, i=_index: a[i], (8, 5))
case("slice-N-columns", lambda a: a[:, 1:4:2], (N, 5))
case("slice-N-int", lambda a: a[:, -1], (N, 5))
case("slice-N-rows", lambda a: a[::2], (N, 3))
case("slice-N-tail", lambda a: a[-1:], (N, 3))

# losses and encodings ---------------------------------------------------------------------
for _eps in (0.0, 0.1):
    case(
        f"sce-int-labels-ls={_eps}",
        lambda z, t, e=_eps: gc.softmax_cross_entropy(z, t, label_smoothing=e),
        Arg((5, 4), normal(2)),
        Arg((5,), labels(4), "int32"),
    )
    case(
        f"sce-probabilities-ls={_eps}",
        lambda z, q, e=_eps: gc.softmax_cross_entropy(z, q, label_smoothing=e),
        Arg((5, 4), normal(2)),
        Arg((5, 4), probabilities),
    )
    case(
        f"sce-int-labels-N-ls={_eps}",
        lambda z, t, e=_eps: gc.softmax_cross_entropy(z, t, label_smoothing=e),
        Arg((N, 3), normal(2)),
        Arg((N,), labels(3), "int64"),
    )
case(
    "sce-rank3-int-labels",
    gc.softmax_cross_entropy,
    Arg((2, 3, 4), normal(2)),
    Arg((2, 3), labels(4), "int32"),
)
case(
    "sce-probabilities-N-classes",
    lambda z, q: gc.softmax_cross_entropy(z, q, label_smoothing=0.1),
    Arg((3, N), normal(2)),
    Arg((3, N), probabilities),
)
case(
    "sce-unnormalized-targets",
    gc.softmax_cross_entropy,
    Arg((4, 3), normal(2)),
    Arg((4, 3), uniform(0.1, 2.0)),
)
for _reduction in ("mean", "sum", "none"):
    case(f"mse-{_reduction}", lambda a, b, r=_reduction: gc.mse(a, b, r), (3, 4), (3, 4))
    case(f"mse-{_reduction}-N", lambda a, b, r=_reduction: gc.mse(a, b, r), (N, 2), (N, 2))
case("mse-scalar", gc.mse, (), ())
case("one_hot", lambda t, a: gc.one_hot(t, 4, "float64") * a, Arg((5,), labels(4), "int32"), (5, 4))
case(
    "one_hot-N",
    lambda t, a: gc.tanh(a) * gc.one_hot(t, 3, "float64"),
    Arg((N,), labels(3), "int64"),
    (N, 3),
)

# second derivatives: the rules' own outputs (slice_grad, pad_grad, dim_value, ...) --------
case("grad:slice", lambda a: grad_of(lambda x: gc.tanh(x[1:-1:2]), a), (7, 3))
case("grad:slice-int", lambda a: grad_of(lambda x: gc.tanh(x[:, 2]) ** 2, a), (4, 5))
for _mode in ("constant", "reflect", "circular", "edge"):
    case(
        f"grad:pad-{_mode}",
        lambda a, m=_mode: grad_of(lambda x: gc.tanh(gc.pad(x, ((1, 2), (2, 0)), m)), a),
        (3, 4),
    )
case(
    "grad:mean-N",
    lambda a, w: grad_of_symbolic(lambda x: gc.tanh(gc.mean(x * x, axis=0)), a, w),
    (N, 3),
    (3,),
)
case(
    "grad:mse-mean-N",
    lambda a, b: gc.grad(gc.mse(gc.tanh(a), b), a),
    (N, 2),
    (N, 2),
)
case(
    "grad:concat-N",
    lambda a, w: grad_of_symbolic(lambda x: gc.tanh(gc.concat([x, x * x], 0)), a, w),
    (N, 2),
    (2 * N, 2),
)
case("grad:max", lambda a: grad_of(lambda x: gc.max(x * x, axis=1), a), Arg((3, 4), distinct))
case("grad:logsumexp", lambda a: grad_of(lambda x: gc.logsumexp(x, axis=(0, 1)), a), (3, 4))
case("grad:softmax", lambda a: grad_of(lambda x: gc.softmax(x, axis=0), a), (3, 4))
case("grad:log_softmax", lambda a: grad_of(gc.log_softmax, a), (3, 4))
case(
    "grad:sce-int-labels",
    lambda z, t: gc.grad(gc.mean(gc.softmax_cross_entropy(z, t, label_smoothing=0.1)), z),
    Arg((5, 4), normal(2)),
    Arg((5,), labels(4), "int32"),
)
case(
    "grad:sce-probabilities",
    lambda z, q: gc.grad(gc.sum(gc.softmax_cross_entropy(z * q, q)), z),
    Arg((3, 4), normal(2)),
    Arg((3, 4), probabilities),
)
case(
    "grad:matmul-batched",
    lambda a, b: gc.grad(gc.sum(gc.tanh(a @ b)), a),
    (2, 1, 3, 4),
    (5, 4, 2),
)
for _name in ("sigmoid", "softplus", "tanh", "relu", "abs", "sqrt", "log"):
    _fn = getattr(gc, _name)
    _sample = POS if _name in ("sqrt", "log") else KINKLESS
    case(f"grad:{_name}", lambda a, f=_fn: grad_of(lambda x: f(x) * x, a), Arg((3, 4), _sample))
case("grad:pow", lambda a, b: gc.grad(gc.sum(a**b), a), Arg((3, 4), POS), Arg((3, 4), POS))
case("grad:div", lambda a, b: gc.grad(gc.sum(a / b), b), (3, 4), Arg((3, 4), away_from_zero()))
case(
    "grad:maximum",
    lambda a, b: gc.grad(gc.sum(gc.maximum(a * b, b)), b),
    Arg((3, 4), uniform(1.5, 2.5)),
    Arg((3, 4), away_from_zero(0.5, 2.0)),
)
case("grad:elementwise-gelu", lambda a: grad_of(gelu, a), Arg((3, 4), normal(2)))
case("grad:elementwise-softsign", lambda a: grad_of(softsign, a), Arg((3, 4), KINKLESS))
case("grad:elementwise-two-operands", lambda a, b: gc.grad(gc.sum(wave(a, b)), b), (3, 4), (4,))
case(
    "grad:where",
    lambda c, a: grad_of(lambda x: gc.where(c > 0, x * x, gc.exp(x)), a),
    Arg((3, 4), KINKLESS),
    (3, 4),
)


# convolution (conv, conv_transpose, conv_wgrad; im2col/col2im of the GEMM lowering) ---------
case("conv-1d", gc.conv, (2, 3, 7), (4, 3, 3))
case(
    "conv-2d-stride-padding",
    lambda x, w: gc.conv(x, w, stride=2, padding=1),
    (2, 2, 6, 5),
    (3, 2, 3, 2),
)
case(
    "conv-2d-same-even-kernel",
    lambda x, w: gc.conv(x, w, padding="same"),
    (1, 2, 5, 5),
    (3, 2, 2, 2),
)
case(
    "conv-groups-dilation-full",
    lambda x, w: gc.conv(x, w, groups=2, dilation=2, padding="full"),
    (2, 4, 9),
    (6, 2, 3),
)
for _mode in ("reflect", "circular", "edge"):
    case(
        f"conv-padding_mode-{_mode}",
        lambda x, w, m=_mode: gc.conv(x, w, padding=1, padding_mode=m),
        (1, 2, 5, 4),
        (2, 2, 3, 3),
    )
case("conv-3d", gc.conv, (1, 2, 4, 4, 3), (2, 2, 2, 2, 2))
case("conv-N", lambda x, w: gc.conv(x, w, padding=1), (N, 2, 6), (3, 2, 3))
case("convolve", gc.convolve, (2, 3, 7), (4, 3, 3))
case(
    "conv_transpose",
    lambda y, w: gc.conv_transpose(y, w, stride=2, padding=1, output_shape=(8,)),
    (2, 4, 4),
    (4, 3, 3),
)
case(
    "conv_transpose-2d", lambda y, w: gc.conv_transpose(y, w, padding=1), (1, 3, 4, 3), (3, 2, 3, 2)
)
case(
    "grad:conv-x",  # conv_transpose, differentiated again
    lambda x, w: gc.grad(gc.sum(gc.tanh(gc.conv(x, w, stride=2))), x),
    (2, 3, 8),
    (4, 3, 3),
)
case(
    "grad:conv-w",  # conv_wgrad, differentiated again
    lambda x, w: gc.grad(gc.sum(gc.tanh(gc.conv(x, w, stride=2, dilation=1, padding=1))), w),
    (2, 3, 8),
    (4, 3, 3),
)
_PATCHES = dict(kernel_size=(3,), stride=(2,), padding=((1, 1),), dilation=(1,), groups=1)
case("im2col", lambda x: gc.lift(conv_ops.im2col)(x, _PATCHES), (2, 4, 7))
case(
    "grad:im2col",  # col2im, differentiated again
    lambda x: grad_of(lambda v: gc.tanh(gc.lift(conv_ops.im2col)(v, _PATCHES)), x),
    (2, 4, 7),
)
_TILES = (winograd.matrices(2, 3)[2], winograd.matrices(2, 2)[2])  # 4 x 4 and 3 x 3 taps
case(
    "winograd_tiles",  # overlapping tiles reaching past x on both sides
    lambda x: gc.lift(winograd.tiles)(x, _TILES, (2, 2), (-1, 0), (3, 3)),
    (2, 3, 6, 5),
)
case(
    "grad:winograd_tiles",  # winograd_untiles, differentiated again
    lambda x: grad_of(
        lambda v: gc.tanh(gc.lift(winograd.tiles)(v, _TILES, (2, 2), (-1, 0), (3, 3))), x
    ),
    (2, 3, 6, 5),
)
case(
    "conv-winograd",
    lambda x, w: gc.conv(x, w, padding=1, algo="winograd"),
    (2, 2, 6, 5),
    (3, 2, 3, 3),
)

# pooling --------------------------------------------------------------------------------------
case("max_pool-2d", lambda x: gc.max_pool(x, 2), Arg((2, 3, 6, 4), distinct))
case(
    "max_pool-stride-padding",
    lambda x: gc.max_pool(x, 3, stride=2, padding=1),
    Arg((2, 2, 7, 5), distinct),
)
case("max_pool-1d", lambda x: gc.max_pool(x, 3, stride=1), Arg((2, 2, 8), distinct))
case("max_pool-N", lambda x: gc.max_pool(x, (2, 1)), Arg((N, 2, 4, 3), distinct))
case(
    "grad:max_pool",
    lambda x: grad_of(lambda v: gc.max_pool(v, 2) ** 2, x),  # pool_scatter of a live value
    Arg((1, 2, 4, 6), distinct),
)
case(
    "jvp:max_pool",  # pool_gather, differentiated in the point and in the tangent
    lambda x, t: gc.jvp([gc.max_pool(gc.softplus(x), 2)], [x], [t])[0],
    Arg((1, 2, 4, 6), distinct),
    (1, 2, 4, 6),
)
case("avg_pool-2d", lambda x: gc.avg_pool(x, 2), (2, 3, 6, 4))
case("avg_pool-stride-padding", lambda x: gc.avg_pool(x, 3, stride=2, padding=1), (2, 3, 6, 5))
case("avg_pool-N", lambda x: gc.avg_pool(x, 2, stride=1), (N, 2, 5))
case("grad:avg_pool", lambda x: grad_of(lambda v: gc.avg_pool(gc.tanh(v), 2) ** 2, x), (2, 2, 4, 6))
case("unpool-nearest", lambda x: gc.unpool(x, 2), (2, 3, 3, 2))
case("unpool-zeros", lambda x: gc.unpool(x, (2, 3), mode="zeros"), (2, 3, 3, 2))


def _max_unpool(x: gc.Tensor, y: gc.Tensor) -> gc.Tensor:
    pooled, indices = gc.max_pool(x, 2, return_indices=True)  # pool_argmax
    return gc.unpool(pooled * y, 2, indices=indices)  # pool_scatter


case("unpool-indices", _max_unpool, Arg((1, 2, 4, 6), distinct), (1, 2, 2, 3))

# complex intermediates (real, imag, conj) and Fourier transforms, from and back to float64 ----


def _complex(a: gc.Tensor, b: gc.Tensor) -> gc.Tensor:
    """a (0.3 + 1.2i) + b (-0.7 + 0.4i): a complex tensor that depends on both."""
    za = gc.cast(a, "complex128") * gc.constant(np.asarray(0.3 + 1.2j))
    return za + gc.cast(b, "complex128") * gc.constant(np.asarray(-0.7 + 0.4j))


def _parts(z: gc.Tensor) -> gc.Tensor:
    """[Re z, Im z] stacked on a new first axis: a real tensor holding all of z."""
    return gc.concat([gc.real(z)[None], gc.imag(z)[None]], 0)


case("real", lambda a, b: gc.real(_complex(a, b) * _complex(b, a)), (3, 4), (4,))
case("imag", lambda a, b: gc.imag(_complex(a, b) * _complex(a, a)), (3, 4), (3, 4))
case("conj", lambda a, b: gc.real(gc.conj(_complex(a, b)) * _complex(b, b * b)), (3, 4), (3, 4))
case("imag-of-real", lambda a: gc.imag(a) + a, (3,))
case("rfft-even", lambda x: _parts(gc.rfft(x)), (3, 8))
case("rfft-odd-axis0", lambda x: _parts(gc.rfft(x, axis=0)), (7, 2))
case("rfft-n-crop-and-pad", lambda x: _parts(gc.rfft(x, n=5) * gc.rfft(x, n=8)[..., :3]), (2, 6))
case("irfft-even", lambda a, b: gc.irfft(_complex(a, b)), (2, 5), (2, 5))
case("irfft-odd-n", lambda a, b: gc.irfft(_complex(a, b), n=7, axis=0), (4, 3), (4, 3))
case("irfft-of-real", lambda a: gc.irfft(a, n=6), (2, 4))
case("fft", lambda a, b: _parts(gc.fft(_complex(a, b))), (3, 5), (3, 5))
case("ifft-axis0-n", lambda a, b: _parts(gc.ifft(_complex(a, b), n=6, axis=0)), (4, 3), (4, 3))
case("rfftn-irfftn", lambda x: gc.irfftn(gc.rfftn(x) * gc.rfftn(x * x), s=(4, 6)), (4, 6))
case("grad:rfft", lambda x: grad_of(lambda v: _parts(gc.rfft(gc.tanh(v))), x), (2, 6))
case(
    "grad:irfft-fft",
    lambda a, b: gc.grad(gc.sum(gc.irfft(gc.fft(_complex(a, b)) * _complex(b, a)) ** 2), a),
    (2, 5),
    (2, 5),
)

# structured matrices K(theta) (take, circulant and their adjoints) ------------------------
_INDEX = np.array([[0, 2, 2], [1, 0, 3]])
case("take", lambda a: gc.take(a, _INDEX), (4,))
case("grad:take", lambda a: grad_of(lambda v: gc.take(gc.tanh(v), _INDEX) ** 2, a), (4,))
case("circulant", gc.structured.circulant, (4,))
case("grad:circulant", lambda c: grad_of(lambda v: gc.structured.circulant(v) ** 2, c), (4,))
case("circulant-matmul", lambda c, y: gc.structured.circulant(c) @ y, (5,), (5, 2))
case("toeplitz", gc.structured.toeplitz, (3,), (4,))
case("diagonal", gc.structured.diagonal, (3,))
case("antisymmetric", lambda t: gc.structured.antisymmetric(t, 4), (6,))
case("m_matrix", lambda t: gc.structured.m_matrix(t, 3), (6,))
case(
    "from_q-dense",
    lambda t: gc.structured.from_q(np.arange(12.0).reshape(6, 2) / 5, t, (2, 3)),
    (2,),
)
