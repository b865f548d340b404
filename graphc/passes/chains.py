"""Elementwise chains as one sympy expression (a sub-pass of simplify).

A chain is a maximal tree of arithmetic elementwise nodes of one float dtype where every
node but the top one has a single consumer (so nothing outside needs its value). Its scalar
expression (graphc.ops.elementwise.scalar_expr, composed; scalar constants become numbers)
is tried in a few cheap forms: as sympy evaluates it (x*x -> x**2, like terms collected),
factor_terms (x*a + x*b -> x*(a + b)) and, for small ones, cancel; never sympy.simplify, and
only for expressions of at most MAX_OPS operations. (powsimp's exp(a)*exp(b) -> exp(a+b) is
simplify's exp_mul rule; as a form here it almost never won and cost as much as the rest.)
The smallest form that rebuilds (graphc/ops/from_sympy.py) into fewer nodes than the chain
replaces it, if it passes the probe check. Only chains that read some leaf more than once
are tried (otherwise there is nothing for sympy to share), at most MAX_DECISIONS per run.

The probe check keeps the IEEE meaning that sympy's algebra ignores (its symbols are finite
reals: it turns x - x into 0 and exp(log(x)) into x) and the accuracy it does not know of:
the old and new graphs are evaluated with the ops' numpy references on a grid of values for
the leaves (zeros of both signs, +-1 and values next to it, small, large and huge magnitudes,
+-inf, nan). A form is accepted only when, in float64, nan, inf and finite values agree, and
when in float32 its error against the float64 values is within 4x the chain's own (+4 ulps):
reassociation (2*(t*u) for (2*t)*u) passes, catastrophic cancellation does not.
Decisions are cached by the chain's structure, so recompiling a model costs no sympy time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import sympy

from graphc.node import Node, toposort
from graphc.ops.elementwise import scalar_expr
from graphc.ops.from_sympy import from_sympy
from graphc.ops.registry import ImplContext, get
from graphc.passes.rewrite import rebuild

CHAIN_OPS = frozenset(
    {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "sigmoid", "relu"}
    | {"softplus", "abs", "sqrt", "maximum", "minimum", "elementwise"}
)
FLOATS = ("float32", "float64")
MIN_NODES = 2  # a lone op is left to the pattern rules
MAX_NODES = 40  # longer chains are left alone (sympy time grows fast with size)
MAX_OPS = 60  # sympy.count_ops of the composed expression
MAX_CANCEL_OPS = 12  # sympy.cancel (the slowest form) only below this
MAX_DECISIONS = 32  # chains considered per simplify run, in graph order (others stay as they are)
PROBE_VALUES = (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 0.1, 10.0, -10.0, 100.0, -100.0)
PROBE_VALUES += (0.999, -0.999, 1.001, 1e-3, -1e-4, 800.0, -800.0, np.inf, -np.inf, np.nan)
MAX_PROBES = 2048

_decisions: dict = {}  # chain signature -> sympy expression in v0..vk, or None


def _in_chain(node: Node) -> bool:
    return node.op in CHAIN_OPS and node.dtype in FLOATS


def _scalar_constant(node: Node) -> bool:
    return node.op == "constant" and node.rank == 0 and node.dtype in FLOATS


def _number(node: Node) -> sympy.Expr:
    value = float(node.attrs["value"].array.item())
    if value.is_integer() and abs(value) < 2**53:
        return sympy.Integer(int(value))
    return sympy.Float(value, 17)


class _Chain:
    """The nodes of one chain (top last), its leaves and scalar constants, and its signature."""

    def __init__(self, top: Node, inside: Callable[[Node], bool]) -> None:
        self.top = top
        self.nodes: list = []
        self.leaves: list = []  # in first-seen order: leaf k is symbol v<k>
        self.constants: set = set()
        self.refs: dict = {}  # operand -> how many times chain nodes read it
        self.mixed = False  # a leaf of another dtype: sympy could move int arithmetic around
        signature: dict = {}
        stack = [(top, False)]
        while stack:  # post-order over the tree (a node used twice by one consumer: once)
            node, expanded = stack.pop()
            if node in signature:
                continue
            if node is not top and not inside(node):
                if _scalar_constant(node):
                    self.constants.add(node)
                    signature[node] = ("c", node.attrs["value"].array.item().hex())
                else:
                    signature[node] = ("v", len(self.leaves))
                    self.leaves.append(node)
                    self.mixed = self.mixed or node.dtype != top.dtype
                continue
            if not expanded:
                stack.append((node, True))
                stack.extend((i, False) for i in reversed(node.inputs))
                continue
            self.nodes.append(node)
            for i in node.inputs:
                self.refs[i] = self.refs.get(i, 0) + 1
            extra = str(node.attrs["expr"]) if node.op == "elementwise" else ""
            signature[node] = (node.op, extra, *(signature[i] for i in node.inputs))
        self.signature = (top.dtype, signature[top])

    def expression(self, symbols: list) -> sympy.Expr:
        values = dict(zip(self.leaves, symbols))
        for c in self.constants:
            values[c] = _number(c)
        for node in self.nodes:
            lam = scalar_expr(node)
            values[node] = lam.expr.xreplace(
                dict(zip(lam.variables, (values[i] for i in node.inputs)))
            )
        return values[self.top]

    def repeats(self) -> bool:
        """Some leaf is read more than once: only then can sympy's algebra share work (with
        each leaf read once, the pattern rules already do what is exact)."""
        return any(self.refs.get(leaf, 0) > 1 for leaf in self.leaves)

    def size(self) -> int:
        return len(self.nodes) + len(self.constants)


def _size(top: Node, leaves: Sequence[Node]) -> int:
    """Nodes of the graph of top that are not (inside) the leaves."""
    return len(_between(top, leaves))


def _probes(k: int) -> np.ndarray:
    """(k, P) float64 leaf values: every combination of PROBE_VALUES, or a fixed sample."""
    values = np.array(PROBE_VALUES)
    if len(values) ** k <= MAX_PROBES:
        grid = np.array(list(itertools.product(values, repeat=k))).reshape(-1, k)
        return grid.T
    rng = np.random.default_rng(0)
    sample = values[rng.integers(0, len(values), size=(k, MAX_PROBES))]
    return np.concatenate([sample, np.tile(values, (k, 1))], axis=1)  # and the diagonal


def _between(top: Node, leaves: Sequence[Node]) -> list:
    """The nodes of top's graph above the leaves, inputs first."""
    stop = set(leaves)
    order: list = []
    seen: set = set()
    stack = [(top, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif node not in seen and node not in stop:
            seen.add(node)
            stack.append((node, True))
            stack.extend((i, False) for i in node.inputs)
    return order


def _run(top: Node, leaves: Sequence[Node], probes: np.ndarray, dtype: str) -> np.ndarray | None:
    """top evaluated in `dtype` with leaf k set to probes[k] (numpy references, op by op)."""
    values = dict(zip(leaves, probes.astype(dtype)))
    shape = (probes.shape[1],)
    try:
        with np.errstate(all="ignore"):
            for node in _between(top, leaves):
                if node.op != "constant" and get(node.op).kind == "source":
                    return None  # reaches past the leaves: not comparable
                ctx = ImplContext(node.attrs, shape, dtype, node, None)
                out = get(node.op).impl(ctx, *(values[i] for i in node.inputs))
                values[node] = np.asarray(out, dtype=dtype)
    except Exception:  # noqa: BLE001 - a form that cannot be evaluated is not taken
        return None
    return np.broadcast_to(values[top], shape).astype("float64")


def _same_specials(a: np.ndarray, b: np.ndarray) -> bool:
    """nan where a has nan, the same infinities, and finite values that agree."""
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    a, b = a[~nan], b[~nan]
    inf = np.isinf(a) | np.isinf(b)
    if not np.array_equal(a[inf], b[inf]):
        return False
    return bool(np.all(np.isclose(a[~inf], b[~inf], rtol=1e-6, atol=1e-9)))


def _as_accurate(reference: np.ndarray, old: np.ndarray, new: np.ndarray) -> bool:
    """In float32, new is within 4x old's error of the float64 reference (plus 4 ulps):
    a form that cancels catastrophically (1 - t*t for (1 - t)*(1 + t) near t = 1) fails."""
    if np.any(np.isfinite(old) & ~np.isfinite(new)):
        return False  # overflows where the chain did not
    ok = np.isfinite(reference) & np.isfinite(old)
    ref, old, new = reference[ok], old[ok], new[ok]
    ulp = np.spacing(np.abs(ref).astype("float32")).astype("float64")
    return bool(np.all(np.abs(new - ref) <= 4 * np.abs(old - ref) + 4 * ulp))


class _Probe:
    """The chain's values on the probe grid: float64 (the reference) and float32."""

    def __init__(self, chain: _Chain) -> None:
        self.chain = chain
        self.probes = _probes(len(chain.leaves))
        self.reference = _run(chain.top, chain.leaves, self.probes, "float64")
        self.single = _run(chain.top, chain.leaves, self.probes, "float32")

    def accepts(self, node: Node) -> bool:
        if self.reference is None or self.single is None:
            return False
        leaves = self.chain.leaves
        wide = _run(node, leaves, self.probes, "float64")
        if wide is None or not _same_specials(self.reference, wide):
            return False
        single = _run(node, leaves, self.probes, "float32")
        return single is not None and _as_accurate(self.reference, self.single, single)


def _forms(expr: sympy.Expr) -> list:
    """expr as sympy evaluates it, and the forms of the few cheap transformations."""
    transforms: list = []
    if expr.has(sympy.Add):
        transforms.append(sympy.factor_terms)  # common factors come out of sums
    fractions = any(p.exp.is_negative for p in expr.atoms(sympy.Pow))
    if fractions and sympy.count_ops(expr) <= MAX_CANCEL_OPS:
        transforms.append(sympy.cancel)  # fractions over one denominator
    forms = [expr]
    for transform in transforms:
        try:
            form = transform(expr)
        except Exception:  # noqa: BLE001 - sympy gives up on some inputs: skip that form
            continue
        if form not in forms:
            forms.append(form)
    return forms


def _decide(chain: _Chain) -> sympy.Expr | None:
    """The smallest form of chain in symbols v0..vk that passes the probes, or None."""
    symbols = [sympy.Symbol(f"v{k}", real=True) for k in range(len(chain.leaves))]
    expr = chain.expression(symbols)
    if sympy.count_ops(expr) > MAX_OPS:
        return None
    old = chain.size()
    candidates = []
    for form in _forms(expr):
        try:
            node = from_sympy(form, dict(zip(symbols, chain.leaves)), chain.top.dtype)
        except Exception:  # noqa: BLE001 - a form from_sympy cannot build is not taken
            continue
        size = _size(node, chain.leaves)
        if size < old and node.shape == chain.top.shape and node.dtype == chain.top.dtype:
            candidates.append((size, len(candidates), form, node))
    if not candidates:
        return None
    probe = _Probe(chain)
    for _, _, form, node in sorted(candidates, key=lambda c: c[:2]):
        if probe.accepts(node):
            return form
    return None


def simplify_chains(roots: Sequence[Node], record: Callable[[str], None]) -> list:
    """roots with every elementwise chain replaced by its smallest safe sympy form."""
    order = toposort(roots)
    consumers: dict = {}
    for node in order:
        for i in set(node.inputs):
            consumers.setdefault(i, []).append(node)
    root_set = set(roots)

    def inside(node: Node) -> bool:  # an inner node: one consumer, itself in the chain
        users = consumers.get(node, [])
        return _in_chain(node) and node not in root_set and len(users) == 1 and _in_chain(users[0])

    new: dict = {}
    budget = MAX_DECISIONS
    for node in order:
        current = rebuild(node, [new[i] for i in node.inputs])
        if _in_chain(node) and not inside(node):
            chain = _Chain(node, inside)
            form = None
            eligible = MIN_NODES <= len(chain.nodes) <= MAX_NODES and not chain.mixed
            if eligible and chain.repeats() and budget > 0:
                budget -= 1  # cached or not, so that the result never depends on the cache
                if len(_decisions) > 10_000:
                    _decisions.clear()
                if chain.signature not in _decisions:
                    _decisions[chain.signature] = _decide(chain)
                form = _decisions[chain.signature]
                if form is not None:
                    symbols = [sympy.Symbol(f"v{k}", real=True) for k in range(len(chain.leaves))]
                    env = dict(zip(symbols, (new[leaf] for leaf in chain.leaves)))
                    built = from_sympy(form, env, node.dtype)
                    if built.shape == current.shape and built.dtype == current.dtype:
                        record(f"ew_chains: {len(chain.nodes)} ops as {form}")
                        current = built
        new[node] = current
    return [new[r] for r in roots]
