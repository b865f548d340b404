"""graphc: a symbolic computation-graph compiler for deep learning.

The public API; this module only re-exports. See README.md for a tour.
"""

from graphc import data, structured
from graphc import ops as _ops
from graphc.annotate import latex
from graphc.autodiff import DifferentiationError, check_grad, check_jvp, grad, hvp, jvp, vjp
from graphc.backend import ExecutionError, available_backends
from graphc.compile import Function, compile
from graphc.graph import as_networkx
from graphc.node import Node
from graphc.ops import conv as _conv
from graphc.ops import elementwise as _ew
from graphc.ops import fft as _fft
from graphc.ops import linalg as _linalg
from graphc.ops import nn as _nn
from graphc.ops import pool as _pool
from graphc.ops import reduce as _reduce
from graphc.ops import shape as _shape
from graphc.ops import sources as _sources
from graphc.ops.registry import UnknownOpError
from graphc.shapes import BindError, ShapeError, dim
from graphc.tensor import Tensor, as_tensor, lift
from graphc.trace import function
from graphc.viz import save_graph, to_dot

__version__ = "0.1.0"

# leaves
input = lift(_sources.input)  # noqa: A001
param = lift(_sources.param)
constant = lift(_sources.constant)

# elementwise (the table in graphc/ops/elementwise.py)
exp = lift(lambda a: _ew.ew("exp", a))
log = lift(lambda a: _ew.ew("log", a))
tanh = lift(lambda a: _ew.ew("tanh", a))
sigmoid = lift(lambda a: _ew.ew("sigmoid", a))
relu = lift(lambda a: _ew.ew("relu", a))
softplus = lift(lambda a: _ew.ew("softplus", a))
abs = lift(lambda a: _ew.ew("abs", a))  # noqa: A001
sqrt = lift(lambda a: _ew.ew("sqrt", a))
maximum = lift(lambda a, b: _ew.ew("maximum", a, b))
minimum = lift(lambda a, b: _ew.ew("minimum", a, b))
add = lift(lambda a, b: _ew.ew("add", a, b))
subtract = lift(lambda a, b: _ew.ew("sub", a, b))
multiply = lift(lambda a, b: _ew.ew("mul", a, b))
divide = lift(lambda a, b: _ew.ew("div", a, b))
power = lift(lambda a, b: _ew.ew("pow", a, b))
negative = lift(lambda a: _ew.ew("neg", a))
equal = lift(lambda a, b: _ew.ew("eq", a, b))
not_equal = lift(lambda a, b: _ew.ew("ne", a, b))
less = lift(lambda a, b: _ew.ew("lt", a, b))
less_equal = lift(lambda a, b: _ew.ew("le", a, b))
greater = lift(lambda a, b: _ew.ew("gt", a, b))
greater_equal = lift(lambda a, b: _ew.ew("ge", a, b))
where = lift(_ew.where)
cast = lift(_ew.cast)


def elementwise(fn, name=None):  # noqa: ANN001, ANN201
    """A user's scalar function of sympy symbols as an elementwise op on Tensors."""
    return lift(_ew.elementwise(fn, name))


# linear algebra, shapes, reductions, losses
matmul = lift(_linalg.matmul)
conv = lift(_conv.conv)
convolve = lift(_conv.convolve)
conv_transpose = lift(_conv.conv_transpose)
transpose = lift(_shape.transpose)
reshape = lift(_shape.reshape)
broadcast_to = lift(_shape.broadcast_to)
concat = lift(_shape.concat)
pad = lift(_shape.pad)
sum = lift(_reduce.sum)  # noqa: A001
mean = lift(_reduce.mean)
max = lift(_reduce.max)  # noqa: A001
logsumexp = lift(_reduce.logsumexp)
softmax = lift(_reduce.softmax)
log_softmax = lift(_reduce.log_softmax)
one_hot = lift(_nn.one_hot)
softmax_cross_entropy = lift(_nn.softmax_cross_entropy)
mse = lift(_nn.mse)

# complex numbers and Fourier transforms (numpy's conventions)
conj = lift(_ew.conj)
real = lift(_ew.real)
imag = lift(_ew.imag)
rfft = lift(_fft.rfft)
irfft = lift(_fft.irfft)
fft = lift(_fft.fft)
ifft = lift(_fft.ifft)
rfftn = lift(_fft.rfftn)
irfftn = lift(_fft.irfftn)
take = structured.take
max_pool = lift(_pool.max_pool)
avg_pool = lift(_pool.avg_pool)
unpool = lift(_pool.unpool)

for _name, _fn in list(globals().items()):
    if callable(_fn) and getattr(_fn, "__name__", "") == "<lambda>":
        _fn.__name__ = _fn.__qualname__ = _name

OPS = _ops.OPS

# layers, optimizers, training (they build graphs with the API above, so they come last)
from graphc import init, models, nn, optim, train  # noqa: E402
from graphc.nn.functional import batch_norm, dropout, layer_norm  # noqa: E402

__all__ = [
    "BindError",
    "DifferentiationError",
    "ExecutionError",
    "Function",
    "Node",
    "OPS",
    "ShapeError",
    "Tensor",
    "UnknownOpError",
    "abs",
    "add",
    "as_networkx",
    "as_tensor",
    "available_backends",
    "avg_pool",
    "batch_norm",
    "check_grad",
    "check_jvp",
    "broadcast_to",
    "cast",
    "compile",
    "concat",
    "conj",
    "conv",
    "conv_transpose",
    "convolve",
    "constant",
    "data",
    "dim",
    "divide",
    "dropout",
    "elementwise",
    "equal",
    "exp",
    "fft",
    "function",
    "grad",
    "greater",
    "greater_equal",
    "hvp",
    "ifft",
    "imag",
    "init",
    "input",
    "irfft",
    "irfftn",
    "jvp",
    "layer_norm",
    "less",
    "less_equal",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "max_pool",
    "maximum",
    "mean",
    "minimum",
    "models",
    "mse",
    "multiply",
    "negative",
    "nn",
    "not_equal",
    "one_hot",
    "optim",
    "pad",
    "param",
    "power",
    "real",
    "relu",
    "reshape",
    "rfft",
    "rfftn",
    "save_graph",
    "latex",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softplus",
    "sqrt",
    "structured",
    "subtract",
    "sum",
    "take",
    "tanh",
    "to_dot",
    "train",
    "transpose",
    "unpool",
    "vjp",
    "where",
]
