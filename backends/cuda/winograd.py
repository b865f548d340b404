"""The CUDA kernels of the Winograd tile ops (graphc/ops/winograd.py), any number of spatial
axes, one thread per output element, each followed by its epilogue.

winograd_tiles: element (a, c, n*T + t) sums M[a, u] x[n, c, origin + t*step + u] over the
tile's taps u (a product of one matrix entry per axis), skipping taps outside x.
winograd_untiles: element (n, c, p) gathers from every tile that reaches p: per axis, the
tap u of the block with origin + t*step + u = p fixes t (when it divides exactly), then the
sum over the tile's transformed values a of M[u, a] v[a, c, n*T + t]. Overlapping tiles
(the adjoint of winograd_tiles) are summed like the others. The matrices are constant
arrays in the kernel's source.
"""

from __future__ import annotations

from backends.cuda.render import Function, Renderer, numel
from backends.cuda.scalar import convert, ctype, literal
from graphc.kernels import Kernel


def _matrices(fn: Function, mats: tuple, ty: str) -> list:
    """Declare each axis' matrix as a flat constant array; their names."""
    names = []
    for mat in mats:
        name = fn.tmp("mat")
        values = ", ".join(literal(float(v), ty) for row in mat for v in row)
        fn.line(f"const {ty} {name}[{len(mat) * len(mat[0])}] = {{{values}}};")
        names.append(name)
    return names


def tiles(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = ctype(anchor.dtype)
    a = anchor.attrs
    count = numel(tuple(a["tiles"]))
    fn = r.function()
    names = _matrices(fn, a["mats"], ty)
    with fn.threads(anchor.shape, "o") as loops:
        ab, c, nt = loops
        outs = fn.split(ab, tuple(len(m) for m in a["mats"]), "a")
        n = fn.let("long long", f"{nt} / {count}", "n")
        t = fn.split(f"({nt} % {count})", tuple(a["tiles"]), "t")
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.serial(tuple(len(m[0]) for m in a["mats"]), "u") as taps:
            inside, index, coef = [], [], []
            for k, (tk, u, ak) in enumerate(zip(t, taps, outs)):
                mat, step, origin = a["mats"][k], a["step"][k], a["origin"][k]
                at = fn.let("long long", f"{origin} + {tk} * {step} + {u}", "at")
                ok = fn.let("bool", f"{at} >= 0 && {at} < {fn.size(x.shape[2 + k])}", "ok")
                inside.append(ok)
                index.append(fn.let("long long", f"{ok} ? {at} : 0", "safe"))
                coef.append(f"{names[k]}[{ak} * {len(mat[0])} + {u}]")
            value = convert(fn.at(x, [n, c, *index]), ctype(x.dtype), ty)
            fn.line(f"if ({' && '.join(inside)}) {acc} += {' * '.join(coef)} * {value};")
        r.finish(fn, kernel, acc, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def untiles(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (v,) = anchor.inputs
    ty = ctype(anchor.dtype)
    a = anchor.attrs
    count = numel(tuple(a["tiles"]))
    ins = tuple(len(m[0]) for m in a["mats"])
    fn = r.function()
    names = _matrices(fn, a["mats"], ty)
    with fn.threads(anchor.shape, "o") as loops:
        n, c, *pos = loops
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.serial(tuple(len(m) for m in a["mats"]), "u") as taps:
            found, t = [], []
            for k, (p, u) in enumerate(zip(pos, taps)):
                step, origin, tiles_k = a["step"][k], a["origin"][k], a["tiles"][k]
                at = fn.let("long long", f"(long long){p} - {origin} - {u}", "at")
                tk = fn.let("long long", f"{at} / {step}", "t")
                ok = f"{at} >= 0 && {at} % {step} == 0 && {tk} < {tiles_k}"
                found.append(fn.let("bool", ok, "ok"))
                t.append(tk)
            with fn.block(f"if ({' && '.join(found)})"):
                t_flat = fn.offset(tuple(a["tiles"]), t)
                with fn.serial(ins, "a") as values:
                    coef = [
                        f"{names[k]}[{u} * {ins[k]} + {ak}]"
                        for k, (u, ak) in enumerate(zip(taps, values))
                    ]
                    row = fn.offset(ins, values)
                    loaded = convert(
                        fn.at(v, [row, c, f"{n} * {count} + {t_flat}"]), ctype(v.dtype), ty
                    )
                    fn.line(f"{acc} += {' * '.join(coef)} * {loaded};")
        r.finish(fn, kernel, acc, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


KERNELS = {"winograd_tiles": tiles, "winograd_untiles": untiles}

__all__ = ["KERNELS"]
