"""partition/search/train_fold.py: the training facts of a deep step taken from its 4- and
6-copy versions price every candidate plan exactly as the whole program's facts do."""
import numpy as np
import pytest

from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.analysis import rules
from rhino_mlir.cluster import load_cluster
from rhino_mlir.partition.search import train_fold
from rhino_mlir.partition.search.planner import Request, _search_graph, plan_module
from rhino_mlir.passes import REGISTRY, PassContext


def _module(text: str):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    return m


def _step(n_layer: int, donate: bool = False, **ov) -> str:
    model = zoo.get("gpt-tiny", n_layer=n_layer, **ov)
    return model.lower("train_step", donate_argnums=(0, 1) if donate else ())[0]


def _memory(c) -> dict:
    return {k: v for k, v in c.memory.items() if k != "peak_node"}


@pytest.mark.parametrize("donate, spec, share", [
    (False, "1x4xcpu-test", None),
    (False, "1x4xcpu-test", 0.25),     # accumulation and full recomputation chosen
    (True, "2x4xcpu-test", 0.4),       # donated arguments, a 2-D mesh
])
def test_every_candidate_is_priced_as_on_the_whole_program(donate, spec, share):
    text = _step(12, donate, batch=64)
    cl = load_cluster(spec)
    if share is not None:
        whole = plan_module(_module(text), Request(cl, fold_first=False))
        cl = cl.with_memory(int(whole.plan.prediction.memory_per_device_bytes * share))
    short = plan_module(_module(text), Request(cl))
    whole = plan_module(_module(text), Request(cl, fold_first=False))
    assert short.context.facts.parts is not None and whole.context.facts.parts is None
    by = {(c.name, c.mesh.axes): c for c in short.candidates}
    assert len(by) == len(whole.candidates)
    for c in whole.candidates:
        d = by[(c.name, c.mesh.axes)]
        assert d.time == pytest.approx(c.time, rel=1e-9), c.name
        assert _memory(d) == _memory(c), c.name
    a, b = short.plan, whole.plan
    assert (a.mesh, a.values, a.microbatches, a.remat) == (b.mesh, b.values, b.microbatches, b.remat)
    if share == 0.25:
        assert a.microbatches > 1 and any(r["policy"] != "none" for r in a.remat)
    # the pipeline search's per-layer costs (its kept activations extrapolated the same way)
    from rhino_mlir.partition.stages import joint
    cl2 = load_cluster("2x4xcpu-test").with_memory(cl.memory_per_device)
    got = [joint.search(r.context.space, r.context.facts, r.context.roles, r.context.timer, cl2,
                        cl2.memory_per_device).best for r in (short, whole)]
    assert got[0] is not None and got[0].to_json() == got[1].to_json()


def test_the_short_program_is_the_step_with_fewer_layers():
    text = _step(12, donate=True, batch=8)
    m = _module(text)
    printed = I.print_module(m)
    with m.context, I.ir.Location.unknown():
        rules.populate(m)
        g = _search_graph(m, printed)
    reps = g.fold.reps
    assert train_fold.usable(reps) and {r.copies for r in reps.runs} == {12}
    glue = reps.n_ops - sum(r.copies * r.period for r in reps.runs)
    f = I.main_func(m)
    nres = len(f.type.results)
    for h in train_fold.KEEP:
        s = train_fold.shorten(reps, g.fold.walk_base, h, m.context)
        assert s is not None and s.copies == 2 * h
        assert I.verify_error(s.module) is None
        sf = I.main_func(s.module)
        ops = I.block_ops(sf.regions[0].blocks[0])
        assert len(ops) == glue + 2 * h * sum(r.period for r in reps.runs)
        # every argument stays; results of the copies left out go, the rest keep their aliases
        assert len(sf.regions[0].blocks[0].arguments) == len(f.regions[0].blocks[0].arguments)
        assert len(s.results) == len(sf.type.results) < nres and s.results == sorted(s.results)
        aliased = [int(a.split("= ")[1].split(" :")[0]) for a in str(sf.attributes["arg_attrs"]).split(", ")
                   if "tf.aliasing_output" in a]
        assert aliased and len(set(aliased)) == len(aliased) and max(aliased) < len(s.results)
        # walk indices of the short program name the same ops in the whole one
        whole_ops = list(I.walk_ops(f))
        for w, op in list(enumerate(I.walk_ops(sf)))[::97]:
            assert whole_ops[s.walk(w)].name == op.name


@pytest.mark.parametrize("model, ov", [("gpt-tiny", dict(n_layer=6, batch=8)),      # too few copies
                                       ("t5-tiny", dict(n_layer=10))])               # runs of unequal copies
def test_other_programs_use_the_whole_program(model, ov):
    text, _ = zoo.get(model, **ov).lower("train_step")
    res = plan_module(_module(text), Request(load_cluster("1x4xcpu-test")))
    assert res.context.facts is not None and res.context.facts.parts is None


def test_the_memory_extrapolates_from_4_and_6_copies():
    from rhino_mlir.partition.search.train_memory import extrapolate
    a, b = np.array([10.0, 20.0]), np.array([16.0, 20.0])      # 3 bytes more per copy, and none
    assert extrapolate(a, b, (96 - 4) / 2).tolist() == [10 + 3 * 92, 20]


def test_a_profile_off_the_line_is_refused():
    """train_fold.affine: the live bytes of the 6-copy program at each offset of its middle
    copies lie on a line; one buffer grown in one middle copy breaks it."""
    from rhino_mlir.analysis.liveness import liveness
    text = _step(12, batch=8)
    m = _module(text)
    printed = I.print_module(m)
    with m.context, I.ir.Location.unknown():
        rules.populate(m)
        g = _search_graph(m, printed)
    reps, base = g.fold.reps, g.fold.walk_base
    s = train_fold.shorten(reps, base, 3, m.context)
    with s.module.context, I.ir.Location.unknown():
        lv = liveness(s.module)
    keys = train_fold.point_keys(lv, s)
    assert train_fold.affine(lv, keys, reps, base)
    r = reps.runs[0]                                  # the forward's copy 2 (short copy 2)
    lo, hi = base[r.op_start(2)], base[r.op_start(3)]
    mid = [i for i, p in enumerate(lv.start.tolist())
           if lv.kind[i] == 0 and lo <= keys[p][0] < hi and lv.end[i] > p]
    assert mid
    i = mid[len(mid) // 2]
    lv.shapes[i] = (int(np.prod(lv.shapes[i])) * 1000 + 7,)
    assert not train_fold.affine(lv, keys, reps, base)
