"""analysis/fold.py: the folded graph of a 4-layer GPT train step builds one copy of each
layer, and maps every value of the program onto it with the shapes, names and counts the
full graph has; copies that would tie unrelated tensors are left out."""
import numpy as np

from harness.folded import built
from rhino_mlir import ir as I
from rhino_mlir.analysis import fold, repeats, rules
from rhino_mlir.partition.search.planner import _value_names


def test_folded_gpt_maps_every_value_of_the_program():
    _, g, full = built(n_layer=4)
    assert g.fold is not None and len(g.nodes) < len(full.nodes) / 2
    f2f = g.fold.full_to_folded
    assert len(f2f) == len(full.values) and g.n_full_nodes == len(full.nodes)
    assert all(full.shapes[v] == g.shapes[f2f[v]] and full.dtypes[v] == g.dtypes[f2f[v]]
               for v in range(len(full.values)))
    assert [int(f2f[a]) for a in full.args] == g.args and [int(f2f[v]) for v in full.outputs] == g.outputs
    names = _value_names(full)
    assert g.fold.names() == [names.get(v) for v in range(len(full.values))]
    # each folded value stands for as many program values as map onto it
    assert np.bincount(f2f, minlength=len(g.values)).tolist() == g.mult
    # a copy-0 node counts every copy; the first layer reads the embedding, the others the
    # previous layer's output: two operand lists for the node reading the residual stream
    per_node = [n.mult for n in g.nodes]
    assert max(per_node) == 4 and sum(per_node) == len(full.nodes)
    assert any(n.alt and sum(c for _, c in n.bindings()) == 4 for n in g.nodes)


def test_folded_costs_equal_the_full_graphs():
    _, g, full = built(n_layer=4)

    def totals(gr):
        out: dict = {}
        for n in gr.nodes:
            k = (n.name, n.kind)
            out[k] = out.get(k, 0.0) + n.flops * n.trips * n.mult
        return out
    a, b = totals(g), totals(full)
    assert a.keys() == b.keys() and all(np.isclose(a[k], b[k]) for k in a)


def test_two_layers_are_not_worth_folding():
    # copies after the first would be under half the program: the full graph, as before
    _, g, full = built(n_layer=2)
    assert g.fold is None and len(g.nodes) == len(full.nodes)


def updates(k: int) -> str:
    """k identical 10-op updates of p_i (16x16); the glue also contracts p_0 with z."""
    t = "tensor<16x16xf32>"
    body, outs = [f"%g = stablehlo.dot_general %p0, %z, contracting_dims = [1] x [0] : ({t}, "
                  f"tensor<16x32xf32>) -> tensor<16x32xf32>"], ["%g"]
    for i in range(k):
        x = f"%p{i}"
        for j, op in enumerate(["tanh", "exponential", "negate", "abs", "sqrt", "tanh", "negate", "exponential",
                                "abs", "sqrt"]):
            body.append(f"%u{i}_{j} = stablehlo.{op} {x} : {t}")
            x = f"%u{i}_{j}"
        outs.append(x)
    args = ", ".join(["%z: tensor<16x32xf32>"] + [f"%p{i}: {t}" for i in range(k)])
    types = ", ".join(["tensor<16x32xf32>"] + [t] * k)
    return (f"func.func @main({args}) -> ({types}) {{\n" + "\n".join(body)
            + f"\nreturn {', '.join(outs)} : {types}\n}}")


def test_a_copy_reading_other_tensors_is_left_out():
    # p_0 is also contracted with z by the glue, so its dims belong to z's classes: the
    # first update cannot stand for the others (it would tie p_1..p_k to z)
    ctx = I.new_context()
    m = I.parse_module(updates(12), ctx)
    with ctx, I.ir.Location.unknown():
        text = I.print_module(m)
        rules.populate(m)
        block = I.main_func(m).regions[0].blocks[0]
        reps = repeats.find(text, "main", [str(a.type) for a in block.arguments], len(block.operations))
        assert [(r.start, r.copies) for r in reps.runs] == [(1, 12)]
        assert reps.arg_rep[1] == 1 and reps.arg_rep[3] == 2          # p_0 alone; p_2 onto p_1
        g = fold.build(m, reps)
    assert [(i.run.start, i.run.copies) for i in g.fold.runs] == [(11, 11)]
    assert len(g.nodes) == 1 + 10 + 10 and g.mult[g.args[1]] == 1 and g.mult[g.args[2]] == 11


def test_rules_are_read_for_the_glue_and_one_copy_of_each_layer(monkeypatch):
    # the per-op work (rules, costs, the graph) happens after the repeats are found: only
    # the ops fold.build keeps (glue + copy 0 of each run) have their rule read
    m, _, full = built(n_layer=4)
    f = I.main_func(m)
    block = f.regions[0].blocks[0]
    reps = repeats.find(I.print_module(m), "main", [str(a.type) for a in block.arguments],
                        len(block.operations))
    seen = []
    real = rules.rule_of
    monkeypatch.setattr(rules, "rule_of", lambda op: seen.append(op) or real(op))
    with m.context, I.ir.Location.unknown():
        g = fold.build(m, reps)
    ops = I.block_ops(block)
    top = {op: k for k, op in enumerate(ops)}
    read = sorted({top[op] for op in seen if op in top})
    assert g.fold is not None and len(read) > 100
    assert not any(g.fold.rep_of[k] >= 0 for k in read)          # never a copy after the first
    copies = sum((r.copies - 1) * r.period for r in g.fold.reps.runs)
    assert len(read) <= len(ops) - copies and copies > len(ops) / 2
