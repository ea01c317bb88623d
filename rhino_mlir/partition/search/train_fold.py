"""Training facts of a deep program from two short versions of it: the fold-first path.

The facts train_facts.py reads (layer groups, batch dims, accumulators, live intervals)
come from walks over every op, in Python: seconds for a 96-layer step. A program whose
layers are runs of identical copies (analysis/repeats.py: the forward, the backward and
the optimizer update each a run of C copies) is instead cut short twice, from its text,
before anything walks it: each run keeps its first and last h copies (h = 2 and 3: a
4-layer and a 6-layer version of the same step). The set kept is symmetric in the copy
index, so the backward keeps the layers the forward keeps, whichever order it runs them
in; the first copy kept after the gap reads the last one before it in place of the copy
just dropped, the return leaves out the results of dropped copies, and every argument
stays (unused ones included: argument numbers and bytes do not change).

Everything a plan's price reads is then affine in the number of copies kept: the layer
and accumulator counts, and the live bytes at each point of the kept copies and the glue
(a residual of layer j is live where layer j's backward has not yet run). Within a run
the live bytes at a fixed offset are affine in the copy index too, so over the copies
left out they peak at a copy that is kept. The plan's memory is the two versions'
profiles, point by point, extrapolated to C copies (training.py); its time is priced on
the folded graph as before. tests/partition/search/test_train_fold.py checks the result
against the facts of the whole program. Anything that does not line up (runs of unequal
copy counts, a copy reading past the gap, glue reading a dropped copy, a parse error,
groups that differ between the versions) falls back to the whole program.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ... import ir as I
from ...analysis.fold import _walk_count
from ...analysis.repeats import _NAME, LOCAL, Repeats

KEEP = (2, 3)                  # copies kept at each end of every run
MIN_COPIES = 10                # fewer copies: the whole program is cheap enough

_ALIAS = re.compile(r"tf\.aliasing_output = (\d+) : i32")
_DONOR = re.compile(r"jax\.buffer_donor = true")
_ARG = re.compile(r"%arg(\d+)")


@dataclass
class Short:
    """A cut-short program: its module, and its walk indices in the whole program."""
    module: object
    copies: int                # copies each run keeps
    base: np.ndarray           # top-level op -> its walk index here
    full_base: np.ndarray      # top-level op -> the walk index of the same op in the whole program
    results: list[int]         # result -> the program's result number

    def walk(self, w: int) -> int:
        t = int(np.searchsorted(self.base, w, side="right")) - 1
        return int(self.full_base[t]) + (w - int(self.base[t]))


def usable(reps: Repeats | None) -> bool:
    if reps is None or reps.chunks is None or not reps.runs:
        return False
    cs = {r.copies for r in reps.runs}
    return len(cs) == 1 and cs.pop() >= MIN_COPIES


def shorten(reps: Repeats, walk_base: np.ndarray, h: int, ctx) -> Short | None:
    """@main with each run cut to its first and last `h` copies (module docstring), or None."""
    n = reps.n_ops
    first, codes = reps.first_code, reps.codes
    run_of, copy_of, tok_op, top, prod, sign = _tokens(reps)
    kept = np.ones(n, dtype=bool)
    for r in reps.runs:
        kept[r.op_start(h):r.op_start(r.copies - h)] = False
    bad = np.flatnonzero(top & ~kept[np.maximum(prod, 0)] & kept[tok_op])
    subs: dict[int, dict[str, str]] = {}
    drop_out: set[int] = set()
    ret = n - 1
    C = reps.runs[0].copies
    for ti in bad.tolist():
        i, c, p = int(tok_op[ti]), int(codes[ti]), int(prod[ti])
        if i == ret:
            drop_out.add(ti - int(reps.ptr[ret]))
            continue
        a, b = int(run_of[i]), int(run_of[p])
        if a < 0 or (a, b) not in sign:
            return None                    # the glue reads a dropped copy
        j, x = int(copy_of[i]), int(copy_of[p])
        js = j if j < h else j - (C - 2 * h)                # j's index in the short program
        if sign[a, b] > 0:                                  # x = j + d: the same order
            xs = js + (x - j)
        else:                                               # x = C - 1 - j + d: reversed
            xs = 2 * h - 1 - js + (x + j - (C - 1))
        if not 0 <= xs < 2 * h:
            return None
        X = xs if xs < h else xs + C - 2 * h
        r = reps.runs[b]
        c2 = c - int(first[r.op_start(x)]) + int(first[r.op_start(X)])
        names = _NAME.findall(reps.chunks[i])
        old = names[ti - int(reps.ptr[i])]
        subs.setdefault(i, {})[old] = _result_name(reps, c2)
    # arguments only dropped copies read give up their donation (their result is gone)
    arg_tok = (codes < 0) & (codes > LOCAL) & (codes >= -reps.nargs)
    by_kept = set((-1 - codes[arg_tok & kept[tok_op]]).tolist())
    by_dropped = set((-1 - codes[arg_tok & ~kept[tok_op]]).tolist())
    orphan = by_dropped - by_kept
    body = []
    for i in np.flatnonzero(kept[:-1]).tolist():
        ch = reps.chunks[i]
        s = subs.get(i)
        body.append(ch if s is None else _NAME.sub(lambda m: s.get(m.group(0), m.group(0)), ch))
    ret_text, res_keep = _return(reps.chunks[ret], reps.indent, drop_out)
    if ret_text is None:
        return None
    body.append(ret_text)
    head = _header(reps, res_keep, orphan)
    if head is None:
        return None
    text = reps.text[:head[0]] + head[1] + "\n" + "\n".join(body) + reps.text[reps.span[1]:]
    try:
        m = I.parse_module(text, ctx)
    except Exception:                      # noqa: BLE001 - any parse failure: the whole program
        return None
    f = I.main_func(m)
    ops = I.block_ops(f.regions[0].blocks[0])
    kidx = np.flatnonzero(kept)
    if len(ops) != len(kidx):
        return None
    counts = np.array([_walk_count(op) for op in ops], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return Short(m, 2 * h, base, np.asarray(walk_base, dtype=np.int64)[kidx], res_keep)


def _tokens(reps: Repeats) -> tuple:
    """Per op its run and copy; per token (a name an op's text holds) its op, whether it is a
    top-level result, the op that makes it; and _orders. Once per Repeats."""
    got = getattr(reps, "_tokens", None)
    if got is None:
        n = reps.n_ops
        run_of = np.full(n, -1, dtype=np.int64)
        copy_of = np.full(n, -1, dtype=np.int64)
        for ri, r in enumerate(reps.runs):
            run_of[r.start:r.end] = ri
            copy_of[r.start:r.end] = np.arange(r.end - r.start) // r.period
        tok_op = np.repeat(np.arange(n), np.diff(reps.ptr))
        top = reps.codes >= 0
        prod = np.full(len(reps.codes), -1, dtype=np.int64)
        prod[top] = np.searchsorted(reps.first_code, reps.codes[top], side="right") - 1
        got = reps._tokens = (run_of, copy_of, tok_op, top, prod, _orders(reps, tok_op, prod, top, run_of, copy_of))
    return got


def _orders(reps: Repeats, tok_op, prod, top, run_of, copy_of) -> dict:
    """(reader run, producer run) -> +1 when copy j reads copies j + d (a few offsets d: the
    same order, as a run reads its previous copy), -1 when it reads C - 1 - j + d (the
    backward reads the forward in reverse); pairs that fit neither are left out."""
    t = np.flatnonzero(top)
    rd, pr = tok_op[t], prod[t]
    a, b = run_of[rd], run_of[pr]
    j, x = copy_of[rd], copy_of[pr]
    cross = (a >= 0) & (b >= 0) & ((a != b) | (j != x))
    a, b, j, x = a[cross], b[cross], j[cross], x[cross]
    C = reps.runs[0].copies
    out = {}
    for key in set(zip(a.tolist(), b.tolist())):
        sel = (a == key[0]) & (b == key[1])
        same, rev = np.unique(x[sel] - j[sel]), np.unique(x[sel] + j[sel] - (C - 1))
        if len(same) <= 4 and len(same) <= len(rev):
            out[key] = 1
        elif len(rev) <= 4:
            out[key] = -1
    return out


def _result_name(reps: Repeats, code: int) -> str:
    """The printed name of a top-level result code (%5, %5#1, or the r-th of "%a, %b")."""
    i = int(np.searchsorted(reps.first_code, code, side="right")) - 1
    r = code - int(reps.first_code[i])
    ch = reps.chunks[i]
    lhs = ch[reps.indent:ch.find(" = ", reps.indent)]
    for part in lhs.split(", "):
        nm, _, k = part.partition(":")
        k = int(k or 1)
        if r < k:
            return f"{nm}#{r}" if part.count(":") else nm
        r -= k
    raise ValueError(code)


_SIG = re.compile(r'"(?:[^"\\]|\\.)*"|[()\[\]{}<>,]')     # strings, brackets and commas


def _split_top(s: str) -> list[str]:
    """`s` split at commas outside brackets and strings."""
    out, depth, cur = [], 0, 0
    for m in _SIG.finditer(s):
        ch = m.group(0)
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(s[cur:m.start()])
            cur = m.end()
    out.append(s[cur:])
    return [x.strip() for x in out]


def _close(s: str, i: int) -> int:
    """Index of the bracket closing the one at s[i]."""
    depth = 0
    for m in _SIG.finditer(s, i):
        ch = m.group(0)
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def _return(chunk: str, indent: int, drop: set[int]) -> tuple[str | None, list[int]]:
    """The return op without the operands at `drop`, and the result numbers it keeps."""
    body = chunk[indent:]
    head, sep, types = body.partition(" : ")
    word, _, names = head.partition(" ")
    if not sep or word not in ("return", "func.return", "stablehlo.return"):
        return None, []
    names_l = [x.strip() for x in names.split(",")]
    types_l = _split_top(types)
    if len(names_l) != len(types_l):
        return None, []
    keep = [r for r in range(len(names_l)) if r not in drop]
    if not keep:
        return None, []
    text = " " * indent + f"{word} " + ", ".join(names_l[r] for r in keep) + " : " + \
        ", ".join(types_l[r] for r in keep)
    return text, keep


def _header(reps: Repeats, res_keep: list[int], orphan: set[int]):
    """(start, new text) of @main's signature line with the results in `res_keep` only, result
    aliases renumbered, and the donations of `orphan` arguments dropped."""
    got = _signature(reps)
    if got is None:
        return None
    lo, line, a0, a1, r0, res, tail = got
    renum = {old: new for new, old in enumerate(res_keep)}

    def arg_of(m) -> int:                   # the argument whose attributes hold match m
        i = m.string.rfind("%arg", 0, m.start())
        return int(_ARG.match(m.string, i).group(1))

    def alias(m):
        r = int(m.group(1))
        return f"tf.aliasing_output = {renum[r]} : i32" if r in renum and arg_of(m) not in orphan \
            else f"rhino.was_aliased = {r} : i32"
    args = _ALIAS.sub(alias, line[a0 + 1:a1])
    if orphan and "jax.buffer_donor" in args:
        args = _DONOR.sub(lambda m: "rhino.was_donor = true" if arg_of(m) in orphan else m.group(0), args)
    if res is None:                         # one result: nothing to leave out
        if res_keep != [0]:
            return None
        res_text = ""
    else:
        res_text = "(" + ", ".join(res[r] for r in res_keep) + ")"
    return lo, line[:a0 + 1] + args + line[a1:r0] + res_text + tail


def _signature(reps: Repeats):
    """@main's signature line, parsed once per Repeats: (its start, the line, the argument
    list's brackets, where the results begin, the results (None: one, unbracketed), the rest)."""
    got = getattr(reps, "_signature", False)
    if got is not False:
        return got
    reps._signature = None
    text, body_lo = reps.text, reps.span[0]
    lo = text.rfind("\n", 0, body_lo - 1) + 1
    line = text[lo:body_lo - 1]
    m = re.search(r"@[\w$.\-]+\(", line)
    if m is None:
        return None
    a0 = m.end() - 1
    a1 = _close(line, a0)
    m = re.compile(r"\s*->\s*").match(line, a1 + 1) if a1 >= 0 else None
    if m is None:
        return None
    r0 = m.end()
    if line[r0:r0 + 1] == "(":
        r1 = _close(line, r0)
        res, tail = _split_top(line[r0 + 1:r1]), line[r1 + 1:]
    else:
        res, tail = None, line[r0:]
    reps._signature = (lo, line, a0, a1, r0, res, tail)
    return reps._signature


def point_keys(lv, short: Short) -> list[tuple[int, int]]:
    """(walk index in the whole program, occurrence) of each point of a short program's
    liveness walk (a loop has several points with its walk index; the entry is -1)."""
    seen: Counter = Counter()
    out = []
    for w in lv.point_ops:
        fw = -1 if w is None else short.walk(w)
        out.append((fw, seen[fw]))
        seen[fw] += 1
    return out


def affine(lv, keys: list[tuple[int, int]], reps: Repeats, walk_base: np.ndarray) -> bool:
    """The extrapolation's premise, checked on the 6-copy program's walk (`keys`: point_keys):
    in every run the live bytes (global sizes) at each offset of copies 1 to 4 (short
    numbering) lie on a line. Sharding scales a value's bytes alike in every copy."""
    prof = lv.profile(lv.global_bytes)
    fw = np.array([k[0] for k in keys], dtype=np.int64)
    occ = np.array([k[1] for k in keys], dtype=np.int64)
    op = np.searchsorted(walk_base, np.maximum(fw, 0), side="right") - 1
    run_of, copy_of = _tokens(reps)[:2]
    C = reps.runs[0].copies
    inside = fw >= 0
    for ri, r in enumerate(reps.runs):
        rows = []
        for x in (1, 2, C - 3, C - 2):                      # short copies 1..4 of the 6-copy program
            sel = np.flatnonzero(inside & (run_of[op] == ri) & (copy_of[op] == x))
            key = (op[sel] - r.op_start(x)) * (1 << 20) + (fw[sel] - walk_base[op[sel]]) * 64 + occ[sel]
            rows.append((key[np.argsort(key)], sel[np.argsort(key)]))
        if any(len(k) != len(rows[0][0]) or not np.array_equal(k, rows[0][0]) for k, _ in rows):
            return False
        p = [prof[sel].astype(np.float64) for _, sel in rows]
        if not (np.allclose(p[0] - 2 * p[1] + p[2], 0, atol=0.5) and np.allclose(p[1] - 2 * p[2] + p[3], 0, atol=0.5)):
            return False
    return True
