"""remat/plan.py analyze: its top-level ops (taken from the micro-batch analysis, not a second
walk of the block), producers, users, value ids and forward set equal the direct per-op
computation written out here, on the 4- and 8-layer GPT and the MLP training steps."""
import pytest

from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.analysis import dataflow
from rhino_mlir.partition.remat import plan as R
from rhino_mlir.passes import REGISTRY, PassContext

MODELS = {"gpt4": ("gpt-tiny", dict(n_layer=4, seq=8, vocab=48, batch=4)),
          "gpt8": ("gpt-tiny", dict(n_layer=8, seq=8, vocab=48, batch=4)),
          "mlp": ("mlp", dict(dims=(16, 32, 32, 32, 8)))}


def _nested(op):
    return [op, *I.walk_ops(op)]


def _reference_ancestors(ops, producer, roots):
    """One sweep from the end of the block (a producer comes before its users), unlike the
    worklist in plan.py."""
    seen = {producer[v] for v in roots if v in producer}
    for i in range(len(ops) - 1, -1, -1):
        if i in seen:
            seen.update(producer[v] for o in _nested(ops[i]) for v in o.operands if v in producer)
    return seen


@pytest.mark.parametrize("name", sorted(MODELS))
def test_analyze_uses_equal_the_direct_computation(name):
    model, cfg = MODELS[name]
    text, _ = zoo.get(model, **cfg).lower("train_step")
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    with ctx:
        an = R.analyze(m)
    f = I.main_func(m)
    walked = list(I.walk_ops(f))
    ids = {r: f"{k}:{j}" for k, op in enumerate(walked) for j, r in enumerate(op.results)}
    assert an.ids == ids
    ops = [op for op in I.block_ops(f.regions[0].blocks[0]) if op.name not in dataflow.TERMINATORS]
    assert an.ops == ops
    producer = {v: i for i, op in enumerate(ops) for v in op.results}
    assert an.producer == producer
    users: dict = {}
    for i, op in enumerate(ops):
        for o in _nested(op):
            for v in o.operands:
                lst = users.setdefault(v, [])
                if not lst or lst[-1] != i:
                    lst.append(i)
    assert an.users == users
    assert an.forward == _reference_ancestors(ops, producer, [an.loss])
    assert len(an.layers) >= (cfg.get("n_layer") or 3)
