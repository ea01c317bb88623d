"""partition/search/planner.py: plans where the optimum is known by hand, budgets, and that
every plan it emits partitions and runs with single-device numbers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.xla_oracle import check_local
from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.cluster import parse_cluster
from rhino_mlir.errors import RhinoError
from rhino_mlir.frontend import lower
from rhino_mlir.partition.search.apply import write_plan, write_result
from rhino_mlir.partition.search.coarsen import dim_classes
from rhino_mlir.partition.search.roles import roles
from rhino_mlir.partition.search.plan import Plan
from rhino_mlir.partition.search.planner import Request, plan_module
from rhino_mlir.passes import REGISTRY, PassContext


def module_of(fn, *args):
    text, _ = lower(fn, *args)
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    return m


def plan(fn, args, spec="1x2xcpu-test", **kw):
    return plan_module(module_of(fn, *args), Request(parse_cluster(spec), **kw))


def mlp(x, w1, w2):
    return jnp.tanh(x @ w1) @ w2


def s(shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def sgd(x, w1, w2):
    loss = lambda w1, w2: jnp.sum(mlp(x, w1, w2) ** 2)
    g1, g2 = jax.grad(loss, argnums=(0, 1))(w1, w2)
    return w1 - 0.1 * g1, w2 - 0.1 * g2


def test_big_weights_small_batch_training_is_megatron_column_then_row():
    # data parallel would all-reduce 2 x 16 MiB of gradients; Megatron moves 4x1024 floats
    res = plan(sgd, (s((4, 1024)), s((1024, 4096)), s((4096, 1024))))
    args = res.plan.args
    assert args[1] == '#sdy.sharding<@mesh, [{}, {"x"}]>'      # w1 column-parallel
    assert args[2] == '#sdy.sharding<@mesh, [{"x"}, {}]>'      # w2 row-parallel
    assert res.plan.prediction.step_time_s <= min(b["step_time_s"] for b in res.plan.baselines)


def test_batch_heavy_program_is_data_parallel():
    res = plan(mlp, (s((4096, 64)), s((64, 64)), s((64, 64))))
    assert res.plan.args[0] == '#sdy.sharding<@mesh, [{"x"}, {}]>'
    assert res.plan.args[1] == '#sdy.sharding<@mesh, [{}, {}]>'


def test_plan_respects_the_memory_budget_and_names_the_minimum():
    args = (s((256, 2048)), s((2048, 2048)), s((2048, 2048)))   # Megatron is fastest, DP smaller
    free = plan(mlp, args).plan
    budget = 30 * 2**20
    assert free.prediction.memory_per_device_bytes > budget
    m = module_of(mlp, *args)
    res = plan_module(m, Request(parse_cluster("1x2xcpu-test").with_memory(budget)))
    assert res.plan.prediction.memory_per_device_bytes <= budget
    assert res.plan.prediction.step_time_s >= free.prediction.step_time_s
    from rhino_mlir.partition.spmd.memory import memory_report        # the full model agrees
    rep = memory_report(m, shardings={res.graph.values[v]: sh for v, sh in enumerate(res.shardings)},
                        mesh=res.mesh)
    assert max(rep.peak, rep.xla_comparable) <= budget
    with pytest.raises(RhinoError, match=r"smallest plan found needs [\d.]+MiB per device; use --memory"):
        plan_module(module_of(mlp, *args), Request(parse_cluster("1x2xcpu-test").with_memory(1024)))
    again = plan(mlp, args).plan
    assert again.args == free.args and again.prediction == free.prediction    # deterministic


def test_baselines_are_reported():
    res = plan(mlp, (s((64, 256)), s((256, 256)), s((256, 256))), "1x4xcpu-test")
    names = {b["name"] for b in res.plan.baselines}
    assert {"dp", "megatron", "dp-tp"} <= names
    assert res.plan.prediction.step_time_s <= min(b["step_time_s"] for b in res.plan.baselines if b["fits"])


@pytest.mark.parametrize("level", ["zero1", "zero2", "zero3"])
def test_zero_baselines_shard_optimizer_state_and_run(level):
    m = zoo.get("mlp")
    args = [np.asarray(a) for a in jax.tree_util.tree_leaves(m.args("train_step"))]
    text, _ = m.lower("train_step")
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    REGISTRY["rhino-inline"]().apply(pctx, mod)
    res = plan_module(mod, Request(parse_cluster("1x4xcpu-test"), strategy=level))
    assert {b["name"] for b in res.plan.baselines} >= {"dp", "zero1", "zero2", "zero3"}
    ro = roles(res.graph, dim_classes(res.graph))
    opt = [res.graph.args.index(a) for a in ro.stateful if a not in ro.params]
    assert opt and all('"x"' in res.plan.args[i] for i in opt if res.graph.shapes[res.graph.args[i]][0] % 4 == 0)
    params = [res.graph.args.index(a) for a in ro.params]
    assert any('"x"' in res.plan.args[i] for i in params) == (level == "zero3")
    write_result(mod, res)
    annotated = str(mod)
    for p in ("rhino-propagate", "rhino-spmd-partition"):
        REGISTRY[p]().apply(pctx, mod)
    check_local(str(mod), annotated, args)


def test_plan_json_round_trip_and_program_hash():
    args = (s((64, 256)), s((256, 256)), s((256, 256)))
    res = plan(mlp, args, "1x4xcpu-test")
    back = Plan.from_json(res.plan.to_json())
    assert back == res.plan
    other = module_of(lambda x, w1, w2: mlp(x, w1, w2) * 2, *args)
    with pytest.raises(RhinoError, match="plan was made for program sha256"):
        write_plan(other, back)


@pytest.mark.parametrize("strategy", ["auto", pytest.param("dp", marks=pytest.mark.slow),
                                      pytest.param("megatron", marks=pytest.mark.slow), "dp-tp"])
def test_every_emitted_plan_runs_with_single_device_numbers(strategy):
    m = zoo.get("gpt-tiny", batch=8)
    fn = "train_step_sgd"
    args = [np.asarray(a) for a in jax.tree_util.tree_leaves(m.args(fn))]
    text, _ = m.lower(fn)
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    REGISTRY["rhino-inline"]().apply(pctx, mod)
    res = plan_module(mod, Request(parse_cluster("1x4xcpu-test"), strategy=strategy))
    write_result(mod, res)
    annotated = str(mod)
    for p in ("rhino-propagate", "rhino-spmd-partition"):
        REGISTRY[p]().apply(pctx, mod)
    check_local(str(mod), annotated, args)


def test_shardings_in_the_ir_are_fixed_constraints():
    from rhino_mlir.frontend import annotate
    from rhino_mlir.sharding import Mesh
    text, _ = lower(sgd, s((4, 1024)), s((1024, 4096)), s((4096, 1024)))
    # force data parallel on the weights (replicated) of a program whose optimum is Megatron
    text = annotate(text, Mesh("mesh", (("x", 2),)), ['[{"x"}, {}]', '[{}, {}]', '[{}, {}]'])
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    res = plan_module(m, Request(parse_cluster("1x2xcpu-test")))
    assert res.plan.args[:3] == ['#sdy.sharding<@mesh, [{"x"}, {}]>', '#sdy.sharding<@mesh, [{}, {}]>',
                                 '#sdy.sharding<@mesh, [{}, {}]>']
    with pytest.raises(RhinoError, match="mesh @mesh of 2 devices but cluster 1x4xcpu-test has 4"):
        plan_module(m, Request(parse_cluster("1x4xcpu-test")))


def test_strided_options_are_halves_of_an_axis():
    from rhino_mlir.partition.search.solve import options
    from rhino_mlir.sharding import Mesh
    m = Mesh("mesh", (("x", 2), ("y", 4)))
    plain, strided = options(m), options(m, strided=True)
    assert len(plain) == 5 and set(plain) < set(strided)
    texts = {tuple(a.to_text() for a in o) for o in strided}
    assert ('"y":(1)2',) in texts and ('"x"', '"y":(2)2') in texts
    assert ('"y":(1)2', '"y":(2)2') not in texts                 # that is just "y"


def test_o3_plan_with_strided_search_runs():
    def attn(x, wq, wk, wv, wo):                                   # 6 heads
        b, t, d = x.shape
        q, k, v = ((x @ w).reshape(b, t, 6, d // 6) for w in (wq, wk, wv))
        a = jax.nn.softmax(jnp.einsum("bshd,bthd->bhst", q, k), -1)
        return jnp.einsum("bhst,bthd->bshd", a, v).reshape(b, t, d) @ wo
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(sh).astype(np.float32) * 0.1
            for sh in [(2, 16, 48), (48, 48), (48, 48), (48, 48), (48, 48)]]
    m = module_of(attn, *args)
    res = plan_module(m, Request(parse_cluster("1x4xcpu-test"), level="O3", mesh=(("x", 4),)))
    assert "auto<strided" in {c.name for c in res.candidates}
    o2 = plan_module(module_of(attn, *args), Request(parse_cluster("1x4xcpu-test"), mesh=(("x", 4),)))
    assert res.plan.prediction.step_time_s <= o2.plan.prediction.step_time_s
    write_result(m, res)
    annotated = str(m)
    pctx = PassContext(m.context)
    for p in ("rhino-propagate", "rhino-spmd-partition"):
        REGISTRY[p]().apply(pctx, m)
    check_local(str(m), annotated, args)
