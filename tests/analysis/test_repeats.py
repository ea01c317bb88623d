"""analysis/repeats.py: runs of identical layers are found in the printed program, with the
weights of layer j folding onto layer 0's, and not where the layers differ (other
constants, other wiring)."""
import functools
import re

from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.analysis import repeats
from rhino_mlir.passes import REGISTRY, PassContext

T, W = "tensor<8x16xf32>", "tensor<16x16xf32>"


def find(text: str):
    """(module, Repeats or None) of a program after rhino-inline, as the planner sees it."""
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    f = I.main_func(m)
    block = f.regions[0].blocks[0]
    reps = repeats.find(I.print_module(m), f.attributes["sym_name"].value,
                        [str(a.type) for a in block.arguments], len(block.operations))
    return m, reps


def layers(n: int, scale=lambda i: 2.0, swap: int = -1) -> str:
    """n layers of 10 ops: h' = (exp(-t*t) + h - t) * exp(-t*t), t = tanh(h @ w + b) * s_i."""
    body = []
    for i in range(n):
        res = f"%h{i}, %e{i}" if i == swap else f"%e{i}, %h{i}"
        body += [f"%d{i} = stablehlo.dot_general %h{i}, %w{i}, contracting_dims = [1] x [0] : ({T}, {W}) -> {T}",
                 f"%b{i} = stablehlo.broadcast_in_dim %c{i}, dims = [1] : (tensor<16xf32>) -> {T}",
                 f"%a{i} = stablehlo.add %d{i}, %b{i} : {T}",
                 f"%k{i} = stablehlo.constant dense<{scale(i)}> : {T}",
                 f"%t{i} = stablehlo.tanh %a{i} : {T}",
                 f"%u{i} = stablehlo.multiply %t{i}, %k{i} : {T}",
                 f"%s{i} = stablehlo.multiply %u{i}, %u{i} : {T}",
                 f"%e{i} = stablehlo.exponential %s{i} : {T}",
                 f"%r{i} = stablehlo.add {res} : {T}",
                 f"%h{i + 1} = stablehlo.subtract %r{i}, %u{i} : {T}"]
    args = ", ".join([f"%h0: {T}"] + [f"%w{i}: {W}, %c{i}: tensor<16xf32>" for i in range(n)])
    return f"func.func @main({args}) -> {T} {{\n" + "\n".join(body) + f"\nreturn %h{n} : {T}\n}}"


def test_identical_layers_are_one_run_and_their_weights_fold():
    _, reps = find(layers(12))
    assert [(r.start, r.period, r.copies) for r in reps.runs] == [(0, 10, 12)]
    # arguments: h0, then (w_i, c_i) per layer; layer i's fold onto layer 0's
    assert reps.arg_rep == [0] + [1, 2] * 12
    r = reps.runs[0]
    assert r.ext.shape == (12, 4)                  # each copy reads h_i, w_i, c_i (h_i twice)
    assert r.escapes[:, -1].all() and r.escapes[:, :-1].sum() == 0   # only h_{i+1} leaves a copy


def test_layers_with_other_constants_are_not_repeats():
    _, reps = find(layers(12, scale=lambda i: 1.0 + i))
    assert reps is None


def test_a_layer_wired_otherwise_is_left_out():
    # layer 8 adds (h, e) instead of (e, h): the same text once names are blanked, but it
    # reads its values in other places, so it splits the run in two
    _, reps = find(layers(20, swap=8))
    assert [(r.start, r.end) for r in reps.runs] == [(0, 80), (90, 200)]


@functools.lru_cache(maxsize=None)
def gpt(n_layer: int) -> str:
    text, _ = zoo.get("gpt-tiny", n_layer=n_layer).lower("train_step")
    return text


def test_four_layer_gpt_train_step():
    m, reps = find(gpt(4))
    runs = reps.runs
    # the forward, the backward and the optimizer's passes over the layers: 4 copies each,
    # and together most of the program
    assert len(runs) >= 3 and all(r.copies == 4 for r in runs)
    assert sum((r.copies - 1) * r.period for r in runs) > 0.6 * reps.n_ops
    header = next(ln for ln in I.print_module(m).split("\n") if "func.func public @main" in ln)
    path = {p: int(k) for k, p in re.findall(r'%arg(\d+): [^{]*\{rhino\.arg_path = "([^"]*)"', header)}
    for name in ("['attn']['w_qkv']", "['mlp']['w_fc']", "['ln1_g']"):
        first = path[f"[0]['layers'][0]{name}"]
        assert all(reps.arg_rep[path[f"[0]['layers'][{j}]{name}"]] == first for j in (1, 2, 3))
        # Adam's moments are read only where their layer is updated: they fold too
        m0 = path[f"[1]['m']['layers'][0]{name}"]
        assert reps.arg_rep[path[f"[1]['m']['layers'][3]{name}"]] == m0
    wte = path["[0]['wte']"]                       # read by the glue: no copies
    assert reps.arg_rep[wte] == wte
