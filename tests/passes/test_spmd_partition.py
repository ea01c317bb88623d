"""rhino-spmd-partition: numbers and communication, and two mutants the checks must catch.

Numbers: every device's outputs equal the single-device run (tests/harness, XLA CPU
devices, input padding filled with NaN). Communication: collectives counted in the
emitted IR equal what partition/spmd/reshard.py predicted; known plans emit known
collectives; no sharded value is materialized at global size unless reported.
"""
import numpy as np
import pytest

from harness.xla_oracle import check_local
from rhino_mlir import ir as I
from rhino_mlir.analysis.cost import collective_bytes
from rhino_mlir.errors import PassError
from rhino_mlir.passes import REGISTRY, PassContext

COLLECTIVES = ("stablehlo.all_reduce", "stablehlo.all_gather", "stablehlo.reduce_scatter",
               "stablehlo.all_to_all", "stablehlo.collective_permute")
RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def partition(text):
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    pctx = PassContext(ctx)
    for p in ("rhino-inline", "rhino-propagate", "rhino-spmd-partition"):
        REGISTRY[p]().apply(pctx, m)
    return str(m), pctx.stats["rhino-spmd-partition"]


def collectives(local):
    ctx = I.new_context()
    m = I.parse_module(local, ctx)
    with ctx:
        return [(op.name, collective_bytes(op), I.shape_of(op.operands[0].type))
                for op in I.walk_ops(m.operation) if op.name in COLLECTIVES]


def max_elems(local):
    ctx = I.new_context()
    m = I.parse_module(local, ctx)
    with ctx:
        sizes = [int(np.prod(I.shape_of(v.type))) for op in I.walk_ops(m.operation)
                 for v in op.results if I.is_tensor(v.type)]
    return max(sizes)


MLP = """
sdy.mesh @mesh = <["x"=MX, "y"=MY]>
func.func @main(%x: tensor<BxDxf32> {sdy.sharding = #sdy.sharding<@mesh, [XS, {}]>},
                %w1: tensor<DxHxf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, W1]>},
                %w2: tensor<HxDxf32> {sdy.sharding = #sdy.sharding<@mesh, [W1, {}]>}) -> tensor<BxDxf32> {
  %0 = stablehlo.dot_general %x, %w1, contracting_dims = [1] x [0] : (tensor<BxDxf32>, tensor<DxHxf32>) -> tensor<BxHxf32>
  %1 = stablehlo.tanh %0 : tensor<BxHxf32>
  %2 = stablehlo.dot_general %1, %w2, contracting_dims = [1] x [0] : (tensor<BxHxf32>, tensor<HxDxf32>) -> tensor<BxDxf32>
  return %2 : tensor<BxDxf32>
}"""


def mlp(b=64, d=16, h=32, mx=4, my=1, xs='{"x"}', w1="{}"):
    t = MLP
    for k, v in (("MX", mx), ("MY", my), ("XS", xs), ("W1", w1), ("B", b), ("D", d), ("H", h)):
        t = t.replace(k, str(v))
    return t, [f32(b, d), f32(d, h), f32(h, d)]


def test_data_parallel_mlp_emits_no_collective():
    text, args = mlp()
    local, stats = partition(text)
    check_local(local, text, args)
    assert collectives(local) == [] and stats["collectives"] == 0
    assert max_elems(local) < 64 * 32          # the global activation never appears


def test_megatron_mlp_emits_one_all_reduce_of_b_by_d():
    text, args = mlp(b=8, mx=1, my=2, xs="{}", w1='{"y"}')
    local, stats = partition(text)
    check_local(local, text, args)
    coll = collectives(local)
    assert [(k, s) for k, _, s in coll] == [("stablehlo.all_reduce", [8, 16])]
    assert sum(b for _, b, _ in coll) == stats["bytes"]


def test_transpose_of_sharded_value_is_one_all_to_all():
    text = """
sdy.mesh @mesh = <["x"=4]>
func.func @main(%x: tensor<8x12xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
    -> (tensor<8x12xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>}) {
  %0 = stablehlo.negate %x : tensor<8x12xf32>
  return %0 : tensor<8x12xf32>
}"""
    local, stats = partition(text)
    check_local(local, text, [f32(8, 12)])
    assert [k for k, _, _ in collectives(local)] == ["stablehlo.all_to_all"]


def test_contracting_dim_sharded_to_sharded_consumer_is_reduce_scatter():
    text = """
sdy.mesh @mesh = <["x"=2]>
func.func @main(%a: tensor<8x6xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>},
                %b: tensor<6x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>})
    -> (tensor<8x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) {
  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<8x6xf32>, tensor<6x4xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}"""
    local, stats = partition(text)
    check_local(local, text, [f32(8, 6), f32(6, 4)])
    assert [k for k, _, _ in collectives(local)] == ["stablehlo.reduce_scatter"]


@pytest.mark.parametrize("b,mx,my,xs,w1", [(10, 4, 1, '{"x"}', "{}"), (8, 2, 2, '{"x"}', '{"y"}'),
                                           (6, 2, 4, '{"x", "y"}', "{}")])
def test_ir_bytes_equal_predicted_bytes(b, mx, my, xs, w1):
    text, args = mlp(b=b, d=12, h=20, mx=mx, my=my, xs=xs, w1=w1)
    local, stats = partition(text)
    check_local(local, text, args)
    assert sum(c[1] for c in collectives(local)) == pytest.approx(stats["bytes"])


def test_partition_without_mesh_is_an_error():
    text = "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> { return %a : tensor<4xf32> }"
    with pytest.raises(PassError, match="no sdy.mesh"):
        partition(text)


# ------------------------------------------------------------------ mutants

def do_nothing(text):
    """A 'partitioner' that copies its input."""
    return text


def replicate_everything(text):
    """All-gathers every input, runs the global program, slices the outputs."""
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    with ctx, I.ir.Location.unknown():
        f = I.main_func(m)
        block = f.regions[0].blocks[0]
        first = I.block_ops(block)[0]
        for a in block.arguments:
            rank = len(I.shape_of(a.type))
            rep = I.attr("#sdy.sharding<@mesh, [" + ", ".join(["{}"] * rank) + "]>")
            with I.ir.InsertionPoint(first):
                c = I.ir.Operation.create("sdy.sharding_constraint", results=[a.type], operands=[a],
                                          attributes={"sharding": rep})
            a.replace_all_uses_except(c.result, c)
    return partition(str(m))[0]


@pytest.mark.parametrize("mutant", [do_nothing, replicate_everything])
def test_mutants_fail_the_checks(mutant):
    text, args = mlp()
    with pytest.raises(AssertionError):
        local = mutant(text)
        check_local(local, text, args)
        assert collectives(local) == []
        assert max_elems(local) < 64 * 32


# ------------------------------------------------------------------ vocabulary-parallel lookups

def _lower_annotated(fn, args, mesh_text, shardings, results=None):
    from rhino_mlir.frontend import annotate, lower
    from rhino_mlir.sharding import meshes_in
    text, _ = lower(fn, *args)
    mesh = meshes_in(f"sdy.mesh @mesh = {mesh_text}\n")["mesh"]
    return annotate(text, mesh, shardings, results)


@pytest.mark.parametrize("what", ["gather", "scatter"])
def test_vocab_sharded_table_stays_sharded(what):
    import jax
    import jax.numpy as jnp
    tab = f32(50, 8)                                   # 50 rows on 4 devices: uneven
    ids = np.random.default_rng(1).integers(0, 50, (6, 5)).astype(np.int32)
    fn = (lambda t, i: jnp.take(t, i, axis=0)) if what == "gather" else \
        jax.grad(lambda t, i: jnp.sum(jnp.take(t, i, axis=0) ** 2))
    # the gradient of a vocabulary-sharded table is wanted vocabulary-sharded too
    text = _lower_annotated(fn, [tab, ids], '<["x"=4]>', ['[{"x"}, {}]', None],
                            None if what == "gather" else ['[{"x"}, {}]'])
    local, stats = partition(text)
    check_local(local, text, [tab, ids])
    kinds = [k for k, _, _ in collectives(local)]
    assert "stablehlo.all_gather" not in kinds          # the table is never gathered
    assert max_elems(local) < 50 * 8


def test_mhlo_shardings_on_one_mesh_are_read_and_mixed_layouts_refused():
    text = """
func.func @main(%a: tensor<8x4xf32> {mhlo.sharding = "{devices=[2,1]0,1}"}) -> tensor<8x4xf32> {
  %0 = stablehlo.exponential %a : tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}"""
    local, stats = partition(text)
    assert "tensor<4x4xf32>" in local and "mhlo.sharding" not in local
    mixed = text.replace('-> tensor<8x4xf32> {', ', %b: tensor<8x4xf32> {mhlo.sharding = "{devices=[4,1]<=[4]}"})'
                         ' -> tensor<8x4xf32> {').replace("tensor<8x4xf32>}) ,", "")
    mixed = mixed.replace('"{devices=[2,1]0,1}"}) , %b', '"{devices=[2,1]0,1}"}, %b')
    from rhino_mlir.errors import ShardingError
    with pytest.raises(ShardingError, match="2 different device layouts"):
        partition(mixed)


# ------------------------------------------------------------------ pass-through results

@pytest.mark.parametrize("n", [2, 4])
def test_result_that_is_the_argument_keeps_its_global_type(n):
    # `return %arg0` (device_put-style): the result's global type was read after the
    # argument had been localized, so the manifest called a (3, 1) shard the whole value
    from harness.partitioner_cases import passthrough_program
    text, args = passthrough_program(n)
    local, _ = partition(text)
    assert local.count("rhino.global_type = tensor<3x4xf32>") == 6      # 1 argument, 5 results
    outs = check_local(local, text, args)
    assert [o.shape for o in outs] == [(3, 4)] * 5


# ------------------------------------------------------------------ batch-sharded scatter-add

@pytest.mark.parametrize("n,rows", [(2, 6), (4, 6)])
def test_scatter_add_of_batch_sharded_updates_stays_partial(n, rows):
    # an embedding gradient: a scatter-add of batch-sharded updates into zeros. Each device
    # scatters its own rows into its own zeros (partial, analysis/local_rules.py): one
    # all_reduce of the table completes it, where the indices and updates were gathered
    import jax
    import jax.numpy as jnp
    tab = f32(10, 8)
    ids = np.random.default_rng(2).integers(0, 10, (rows, 5)).astype(np.int32)   # 6 on 4: uneven
    fn = jax.grad(lambda t, i: jnp.sum(jnp.take(t, i, axis=0) ** 2))
    text = _lower_annotated(fn, [tab, ids], f'<["x"={n}]>', [None, '[{"x"}, {}]'])
    assert '"stablehlo.scatter"' in text and "broadcast_in_dim" in text
    local, stats = partition(text)
    check_local(local, text, [tab, ids])
    assert [(k, shape) for k, _, shape in collectives(local)] == [("stablehlo.all_reduce", [10, 8])]


def test_scatter_add_into_a_replicated_table_counts_it_once():
    # operand + the updates: the first device of the group scatters into the table, the
    # others into zeros (partition/spmd/indices.py count_once), then one all_reduce
    tab, ids, upd = f32(10, 8), np.random.default_rng(3).integers(0, 10, (6,)).astype(np.int32), f32(6, 8)
    text = _lower_annotated(lambda t, i, u: t.at[i].add(u), [tab, ids, upd], '<["x"=2]>',
                            [None, '[{"x"}]', '[{"x"}, {}]'])
    local, stats = partition(text)
    check_local(local, text, [tab, ids, upd])
    assert [(k, shape) for k, _, shape in collectives(local)] == [("stablehlo.all_reduce", [10, 8])]
