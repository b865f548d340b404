"""The generator's steps: each adds one op (or a short idiom that keeps an op in its domain:
log(softplus(x) + 0.1), sqrt(exp(x)), x / (1 + x*x), (softplus(x) + 0.5) ** e, ...) to
the graph, on operands from the pool, and returns the new value with a bound on its
magnitude; Reject (or a ShapeError) when it does not apply, and the builder tries another.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import graphc as gc

from .base import MAX_ELEMENTS, MAX_RANK, BuilderBase, N, Reject, Val, dims, is_int, numel


class Steps(BuilderBase):
    def step_unary(self) -> Val:
        a = self.pick()
        t, b = a.t, a.bound
        kind = self.choice(
            "exp log log_exp log_1px2 log_sigmoid tanh sigmoid relu softplus abs abs_operator "
            "sqrt sqrt_exp sqrt_x2 neg".split()
        )
        self.steps.append(kind)
        if kind == "exp":
            a = self.limited(a, 3.0)
            return Val(gc.exp(a.t), math.exp(a.bound))
        if kind == "log":
            return Val(gc.log(gc.softplus(t) + 0.1), max(2.31, math.log(b + 0.8)))
        if kind == "log_exp":
            a = self.limited(a, 3.0)
            return Val(gc.log(gc.exp(a.t)), a.bound)
        if kind == "log_1px2":
            return Val(gc.log(1.0 + t * t), math.log1p(b * b))
        if kind == "log_sigmoid":
            return Val(gc.log(gc.sigmoid(t)), b + 0.7)
        if kind in ("tanh", "sigmoid"):
            return Val(getattr(gc, kind)(t), 1.0)
        if kind in ("relu", "abs"):
            return Val(getattr(gc, kind)(t), b)
        if kind == "abs_operator":
            return Val(abs(t), b)
        if kind == "softplus":
            return Val(gc.softplus(t), b + 0.7)
        if kind == "sqrt":
            return Val(gc.sqrt(gc.softplus(t) + 0.1), math.sqrt(b + 0.8))
        if kind == "sqrt_exp":
            a = self.limited(a, 3.0)
            return Val(gc.sqrt(gc.exp(a.t)), math.exp(a.bound / 2))
        if kind == "sqrt_x2":
            return Val(gc.sqrt(t * t + 0.5), math.sqrt(b * b + 0.5))
        return Val(-t if self.chance(0.5) else gc.negative(t), b)

    def step_binary(self) -> Val:
        a = self.pick()
        b = self.partner(a)
        bb = b.bound if isinstance(b, Val) else abs(b)
        bt = b.t if isinstance(b, Val) else b
        kind = self.choice("add sub mul div pow maximum minimum".split())
        swap = self.chance(0.5)
        self.steps.append(kind + ("-scalar" if not isinstance(b, Val) else ""))
        x, y = (bt, a.t) if swap else (a.t, bt)
        if kind == "add":
            return Val(gc.add(x, y) if self.chance(0.2) else x + y, a.bound + bb)
        if kind == "sub":
            return Val(gc.subtract(x, y) if self.chance(0.2) else x - y, a.bound + bb)
        if kind == "mul":
            return Val(gc.multiply(x, y) if self.chance(0.2) else x * y, a.bound * bb)
        if kind in ("maximum", "minimum"):
            return Val(getattr(gc, kind)(x, y), max(a.bound, bb))
        if kind == "div":
            return self.divide(a, b)
        return self.power(a, b)

    def divide(self, a: Val, b: Val | float) -> Val:
        """a / d with d away from zero: 1 + b*b, softplus(b) + 0.5, exp(b), a scalar; or a
        scalar over 1 + a*a."""
        if not isinstance(b, Val):
            if self.chance(0.5):
                return Val(b / (1.0 + a.t * a.t), abs(b))
            return Val(a.t / b if self.chance(0.7) else gc.divide(a.t, b), a.bound / abs(b))
        kind = self.choice(("1+x2", "softplus", "exp"))
        if kind == "1+x2":
            return Val(a.t / (1.0 + b.t * b.t), a.bound)
        if kind == "softplus":
            return Val(a.t / (gc.softplus(b.t) + 0.5), 2 * a.bound)
        b = self.limited(b, 2.0)
        return Val(a.t / gc.exp(b.t), a.bound * math.exp(b.bound))

    def power(self, a: Val, b: Val | float) -> Val:
        """x ** e with x > 0 (softplus(a) + 0.5, 1 + a*a), e a tensor in [-1.5, 1.5] or a
        scalar; a ** 2 and a ** 3 for any a; 2.0 ** a."""
        kind = self.choice(("positive-base", "integer", "scalar-base"))
        self.steps[-1] += f":{kind}"
        if kind == "integer":
            a = self.limited(a, 4.0)
            e = self.choice((2, 3, 2.0))
            return Val(a.t**e, a.bound**e)
        if kind == "scalar-base":
            a = self.limited(a, 3.0)
            base = self.choice((2.0, 0.5, 1.5))
            return Val(base**a.t, max(base, 1 / base) ** a.bound)
        a = self.limited(a, 4.0)
        if self.chance(0.5):
            base, top = gc.softplus(a.t) + 0.5, max(a.bound + 1.2, 2.0)  # >= 0.5
        else:
            base, top = 1.0 + a.t * a.t, 1.0 + a.bound * a.bound  # >= 1
        if isinstance(b, Val):
            e = gc.tanh(b.t) * 1.5
            return Val(base**e, top**1.5)
        e = b
        return Val(base**e if self.chance(0.8) else gc.power(base, e), top ** abs(e))

    def comparison(self, a: Val) -> gc.Tensor:
        """A bool tensor comparing a with a scalar or a partner."""
        b = self.partner(a)
        bt = b.t if isinstance(b, Val) else self.choice((0.0, 0.5, -0.5))
        kind = self.choice("lt le gt ge eq ne".split())
        self.steps.append(kind)
        operators = {
            "lt": lambda x, y: x < y,
            "le": lambda x, y: x <= y,
            "gt": lambda x, y: x > y,
            "ge": lambda x, y: x >= y,
        }
        functions = {
            "lt": gc.less,
            "le": gc.less_equal,
            "gt": gc.greater,
            "ge": gc.greater_equal,
            "eq": gc.equal,
            "ne": gc.not_equal,
        }
        if kind in operators and self.chance(0.6):
            return operators[kind](a.t, bt)
        return functions[kind](a.t, bt)

    def step_where(self) -> Val:
        a = self.pick()
        cond = self.comparison(self.pick() if self.chance(0.5) else a)
        other = self.partner(a)
        ob = other.bound if isinstance(other, Val) else abs(other)
        ot = other.t if isinstance(other, Val) else other
        x, y = (a.t, ot) if self.chance(0.5) else (ot, a.t)
        out = gc.where(cond, x, y)
        if out.dtype != self.dtype or numel(dims(out)) > MAX_ELEMENTS:
            raise Reject("where")
        if self.chance(0.1):
            self.extras.append(cond)
        self.steps.append("where")
        return Val(out, max(a.bound, ob))

    def step_matmul(self) -> Val:
        a = self.pick(lambda v: v.rank >= 1)
        s = a.shape
        k = s[-1]
        n = self.randint(1, 4)
        kind = self.choice(("2d", "batched", "vector", "left"))
        if kind == "left" and a.rank >= 2:
            # w (m, k) @ a (..., k, n): the contraction on a's axis -2
            m = self.randint(1, 3)
            w = self.pick_or_leaf(lambda v: v.rank == 2 and v.shape[1] == s[-2], lambda: (m, s[-2]))
            out = w.t @ a.t
            self.steps.append("matmul:left")
            return Val(out, a.bound * w.bound * numel((s[-2],)))
        if kind == "vector":
            w = self.leaf((k,))
            self.steps.append("matmul:vector")
            return Val(gc.matmul(a.t, w.t), a.bound * w.bound * numel((k,)))
        if kind == "batched" and a.rank >= 2:
            batch = list(s[:-2])
            batch = [1 if self.chance(0.3) else d for d in batch]
            if len(batch) < 2 and self.chance(0.5):
                batch.insert(0, self.randint(1, 2))
            w = self.leaf((*batch, k, n))
            self.steps.append("matmul:batched")
        else:
            w = self.pick_or_leaf(lambda v: v.rank == 2 and v.shape[0] == k, lambda: (k, n))
            self.steps.append("matmul:2d")
        out = a.t @ w.t if self.chance(0.7) else gc.matmul(a.t, w.t)
        return Val(out, a.bound * w.bound * numel((k,)))

    def step_transpose(self) -> Val:
        a = self.pick(lambda v: v.rank >= 2)
        self.steps.append("transpose")
        if a.rank == 2 and self.chance(0.5):
            return Val(a.t.T, a.bound)
        perm = [int(p) for p in self.r.permutation(a.rank)]
        if self.chance(0.3):
            perm = [p - a.rank for p in perm]  # negative axes
        return Val(gc.transpose(a.t, perm) if self.chance(0.5) else a.t.transpose(perm), a.bound)

    def step_reshape(self) -> Val:
        a = self.pick()
        s = list(a.shape)
        kind = self.choice(("flatten", "merge", "split", "unit"))
        self.steps.append(f"reshape:{kind}")
        if kind == "flatten" or not s:
            if s and not is_int(s[0]) and self.chance(0.5):
                rest = [d for d in s[1:]]
                if all(is_int(d) for d in rest):
                    return Val(a.t.reshape(s[0], -1), a.bound)
            return Val(gc.reshape(a.t, (-1,)), a.bound)
        if kind == "merge" and len(s) >= 2:
            k = self.randint(0, len(s) - 2)
            merged = s[:k] + [s[k] * s[k + 1]] + s[k + 2 :]
            return Val(gc.reshape(a.t, tuple(merged)), a.bound)
        if kind == "split":
            axes = [k for k, d in enumerate(s) if is_int(d) and d in (4, 6, 8, 9, 12)]
            if axes:
                k = self.choice(axes)
                f = 2 if s[k] % 2 == 0 else 3
                split = s[:k] + [f, s[k] // f] + s[k + 1 :]
                if len(split) <= MAX_RANK:
                    return Val(a.t.reshape(tuple(split)), a.bound)
        # insert or drop size-1 axes
        if 1 in s and self.chance(0.5):
            k = s.index(1)
            return Val(gc.reshape(a.t, tuple(s[:k] + s[k + 1 :])), a.bound)
        if len(s) >= MAX_RANK:
            raise Reject("rank")
        k = self.randint(0, len(s))
        return Val(gc.reshape(a.t, tuple(s[:k] + [1] + s[k:])), a.bound)

    def step_broadcast_to(self) -> Val:
        a = self.pick()
        s = [self.randint(2, 3) if d == 1 else d for d in a.shape]
        if len(s) < MAX_RANK and (self.chance(0.4) or s == list(a.shape)):
            s.insert(0, self.randint(2, 3))
        self.steps.append("broadcast_to")
        return Val(gc.broadcast_to(a.t, tuple(s)), a.bound)

    def step_concat(self) -> Val:
        a = self.pick(lambda v: v.rank >= 1)
        axis = self.randint(0, a.rank - 1)
        others = []
        shape = list(a.shape)

        def joinable(v: Val) -> bool:
            same = all(d == e for k, (d, e) in enumerate(zip(v.shape, shape)) if k != axis)
            return v.rank == a.rank and same

        for _ in range(self.choice((1, 1, 2))):
            kind = self.choice(("self", "leaf", "leaf", "pool"))
            if kind == "self":
                others.append(self.limited(a, 4.0) if self.chance(0.5) else a)
                continue
            if kind == "pool":
                try:
                    others.append(self.pick(joinable))
                    continue
                except Reject:
                    pass
            s = list(shape)
            s[axis] = N if self.use_n and self.chance(0.2) and axis == 0 else self.randint(1, 3)
            others.append(self.leaf(tuple(s)))
        parts = [a] + others
        self.r.shuffle(parts)
        if self.chance(0.3):
            axis -= a.rank
        self.steps.append("concat")
        return Val(gc.concat([p.t for p in parts], axis), max(p.bound for p in parts))

    def step_pad(self) -> Val:
        a = self.pick(lambda v: v.rank >= 1)
        mode = self.choice(("constant", "reflect", "circular", "edge"))
        widths = []
        for d in a.shape:
            if not is_int(d):
                # reflect needs N > width and circular N >= width: a symbolic axis only gets
                # constant or edge padding
                ok = mode in ("constant", "edge")
                widths.append((self.randint(0, 1), self.randint(0, 1)) if ok else (0, 0))
                continue
            top = d - 1 if mode == "reflect" else (d if mode == "circular" else 2)
            top = min(top, 2)
            widths.append((self.randint(0, top), self.randint(0, top)))
        if all(w == (0, 0) for w in widths):
            raise Reject("no padding")
        value = 0.0
        kwargs: dict = {}
        if mode == "constant" and self.chance(0.5):
            value = self.scalar()
            kwargs["value"] = value
        self.steps.append(f"pad:{mode}")
        pad_width: Any = tuple(widths)
        if len(set(widths)) == 1 and self.chance(0.5):
            pad_width = widths[0] if widths[0][0] != widths[0][1] else widths[0][0]
        return Val(gc.pad(a.t, pad_width, mode, **kwargs), max(a.bound, abs(value)))

    def step_slice(self) -> Val:
        a = self.pick(lambda v: v.rank >= 1)
        index: list = []
        dropped = 0
        for d in a.shape:
            if not is_int(d):
                # keeps >= 1 element for every N >= 1
                options = [slice(None)] * 2 + [slice(None, None, 2), slice(None, 1)]
                options += [slice(-1, None), slice(None, None, -1), slice(None, None, -2)]
                options += [slice(0, 3)] + ([0, -1] if a.rank - dropped > 1 else [])
                item = self.choice(options)
                dropped += isinstance(item, int)
                index.append(item)
                continue
            options = [slice(None), slice(None, None, -1)]
            if d >= 2:
                lo = self.randint(-d, d - 1)  # a negative start counts from the end
                length = self.randint(1, d - (lo % d))
                stop = (lo % d) + length
                step = self.choice((1, 1, 2))
                options += [
                    slice(lo, stop, step),
                    slice(None, None, self.choice((2, -2, 3))),
                    slice(stop - 1, (lo % d) - 1 if lo % d > 0 else None, -1),
                ]
            if a.rank - dropped > 1:
                options.append(self.randint(-d, d - 1))
            item = self.choice(options)
            dropped += isinstance(item, int)
            index.append(item)
        if a.rank < MAX_RANK and self.chance(0.15):
            index.insert(self.randint(0, len(index)), None)
        if self.chance(0.2) and index and not isinstance(index[-1], int):
            index = [Ellipsis] + index[self.randint(1, len(index)) :]
        self.steps.append("slice")
        return Val(a.t[tuple(index)], a.bound)

    def axes_of(self, a: Val) -> Any:
        """None, an int (maybe negative) or a tuple of axes of a."""
        if a.rank == 0 or self.chance(0.2):
            return None
        k = self.randint(1, a.rank)
        axes = [int(x) for x in self.r.choice(a.rank, k, replace=False)]
        axes = [x - a.rank if self.chance(0.3) else x for x in axes]
        if k == 1 and self.chance(0.6):
            return axes[0]
        return tuple(axes)

    def step_reduce(self) -> Val:
        a = self.pick()
        kind = self.choice(("sum", "mean", "max", "logsumexp"))
        axis = self.axes_of(a)
        keep = self.chance(0.4)
        self.steps.append(kind)
        if axis is None:
            count = numel(a.shape)
        else:
            count = numel(tuple(a.shape[x] for x in np.atleast_1d(axis)))
        if kind == "sum":
            t = a.t.sum(axis, keep) if self.chance(0.3) else gc.sum(a.t, axis=axis, keepdims=keep)
            return Val(t, a.bound * count)
        if kind == "mean":
            t = a.t.mean(axis, keep) if self.chance(0.3) else gc.mean(a.t, axis, keepdims=keep)
            return Val(t, a.bound)
        if kind == "max":
            t = a.t.max(axis, keep) if self.chance(0.3) else gc.max(a.t, axis=axis, keepdims=keep)
            return Val(t, a.bound)
        return Val(gc.logsumexp(a.t, axis=axis, keepdims=keep), a.bound + math.log(count))

    def step_softmax(self) -> Val:
        a = self.pick(lambda v: v.rank >= 1)
        kind = self.choice(("softmax", "log_softmax"))
        axis = self.randint(-a.rank, a.rank - 1)
        self.steps.append(kind)
        kwargs = {} if axis == -1 and self.chance(0.5) else {"axis": axis}
        if kind == "softmax":
            return Val(gc.softmax(a.t, **kwargs), 1.0)
        k = numel((a.shape[axis],))
        return Val(gc.log_softmax(a.t, **kwargs), 2 * a.bound + math.log(k))

    def step_cross_entropy(self) -> Val:
        a = self.pick(lambda v: v.rank >= 1 and is_int(v.shape[-1]))
        s = a.shape
        k = s[-1]
        eps = self.choice((0.0, 0.0, 0.1, 0.3))
        kind = self.choice(("labels", "probabilities", "softmax"))
        if kind == "labels":
            target = self.int_input(s[:-1], k)
        elif kind == "probabilities":
            target = self.prob_input(s)
        else:
            other = self.partner(a, scalar_ok=False)
            if other.shape != s:
                other = Val(gc.broadcast_to(other.t, s), other.bound)
            target = gc.softmax(other.t)
        self.steps.append(f"softmax_cross_entropy:{kind}")
        kwargs = {"label_smoothing": eps} if eps or self.chance(0.5) else {}
        out = gc.softmax_cross_entropy(a.t, target, **kwargs)
        return Val(out, 2 * a.bound + math.log(k))

    def step_mse(self) -> Val:
        a = self.limited(self.pick(), 3.0)
        b = self.pick_or_leaf(lambda v: v.shape == a.shape and v is not a, lambda: a.shape)
        b = self.limited(b, 3.0)
        reduction = self.choice(("mean", "sum", "none"))
        self.steps.append(f"mse:{reduction}")
        kwargs = {} if reduction == "mean" and self.chance(0.5) else {"reduction": reduction}
        bound = (a.bound + b.bound) ** 2
        return Val(
            gc.mse(a.t, b.t, **kwargs), bound * (numel(a.shape) if reduction == "sum" else 1)
        )

    def image(self, d: int) -> Val:
        """An (N, C, *spatial) value with d spatial axes: from the pool, reshaped, or new."""

        def usable(v: Val) -> bool:
            return (
                v.rank == d + 2
                and all(is_int(x) for x in v.shape[1:])
                and 1 <= v.shape[1] <= 4
                and all(2 <= x <= 9 for x in v.shape[2:])
            )

        if self.chance(0.6):
            try:
                return self.pick(usable)
            except Reject:
                pass
        if self.chance(0.4):
            # a pool value of rank d + 1 with concrete tail, given a channel axis of 1
            try:
                v = self.pick(
                    lambda v: (
                        v.rank == d + 1 and all(is_int(x) and 2 <= x <= 9 for x in v.shape[1:])
                    )
                )
                return Val(gc.reshape(v.t, (v.shape[0], 1, *v.shape[1:])), v.bound)
            except Reject:
                pass
        batch = N if self.use_n and self.chance(0.7) else self.randint(1, 2)
        spatial = [self.randint(3, 8)] if d == 1 else [self.randint(2, 5) for _ in range(2)]
        return self.leaf((batch, self.randint(1, 3), *spatial))

    def step_conv(self) -> Val:
        d = self.choice((1, 1, 2))
        x = self.image(d)
        c_in = x.shape[1]
        groups = 2 if c_in % 2 == 0 and self.chance(0.4) else 1
        c_out = groups * self.randint(1, 2)
        kernel = tuple(self.randint(1, 3) for _ in range(d))
        stride = self.choice((1, 1, 2))
        dilation = self.choice((1, 1, 2))
        padding: Any = self.choice((0, 1, "valid", "full", "same", "pairs"))
        if padding == "same" and stride != 1:
            padding = 1
        if padding == "pairs":
            padding = tuple((self.randint(0, 2), self.randint(0, 1)) for _ in range(d))
        mode = self.choice(("zeros",) * 3 + ("reflect", "circular", "edge"))
        algo = self.choice(("direct", "gemm", "fft", "winograd", "auto"))
        w = self.pick_or_leaf(
            lambda v: v.shape == (c_out, c_in // groups, *kernel),
            lambda: (c_out, c_in // groups, *kernel),
        )
        kwargs: dict = {"algo": algo}
        if stride != 1 or self.chance(0.3):
            kwargs["stride"] = stride
        if dilation != 1:
            kwargs["dilation"] = dilation
        if groups != 1:
            kwargs["groups"] = groups
        if padding != 0:
            kwargs["padding"] = padding
        if mode != "zeros":
            kwargs["padding_mode"] = mode
        if self.chance(0.15):
            out = gc.convolve(x.t, w.t, **kwargs)
            self.steps.append(f"convolve:{algo}")
        else:
            out = gc.conv(x.t, w.t, **kwargs)
            self.steps.append(f"conv{d}d:{algo}" + (f":{mode}" if mode != "zeros" else ""))
        if any(is_int(s) and s < 1 for s in dims(out)):
            raise Reject("empty conv")
        return Val(out, x.bound * w.bound * (c_in // groups) * math.prod(kernel))

    def step_pool(self) -> Val:
        d = self.choice((1, 2))
        x = self.image(d)
        window = tuple(self.randint(1, 3) for _ in range(d))
        stride: Any = self.choice((None, 1, 2))
        padding = tuple(self.randint(0, f // 2) for f in window)
        kind = self.choice(("max_pool", "avg_pool"))
        w_arg: Any = window[0] if len(set(window)) == 1 and self.chance(0.5) else window
        p_arg: Any = padding if any(padding) else 0
        self.steps.append(kind)
        if kind == "max_pool" and self.chance(0.2):
            out, indices = gc.max_pool(
                x.t, w_arg, stride=stride, padding=p_arg, return_indices=True
            )
            self.extras.append(indices)
            return Val(out, x.bound)
        return Val(getattr(gc, kind)(x.t, w_arg, stride=stride, padding=p_arg), x.bound)

    STEPS = {
        "unary": 14,
        "binary": 14,
        "where": 4,
        "matmul": 6,
        "transpose": 3,
        "reshape": 4,
        "broadcast_to": 2,
        "concat": 3,
        "pad": 4,
        "slice": 5,
        "reduce": 7,
        "softmax": 3,
        "cross_entropy": 3,
        "mse": 2,
        "conv": 6,
        "pool": 4,
    }
