"""mhlo.sharding strings -> Mesh + TensorSharding, checked against jax's own
device -> index semantics (jax._src.op_shardings; private API kept in this test)."""
import numpy as np
import pytest
from jax._src import op_shardings
from jax._src.lib import xla_client as xc

from harness import layout
from rhino_mlir.errors import ShardingError
from rhino_mlir.sharding.mhlo import parse_mhlo_sharding, parse_mhlo_shardings


def _ours(text, shape):
    mesh, sh = parse_mhlo_sharding(text, len(shape))
    n = max(mesh.size, max(mesh.device_ids) + 1 if mesh.device_ids else 0)
    return {layout.position_device(mesh, p): tuple(
        slice(s, e) for s, e in layout.shard_bounds(shape, sh, mesh, layout.position_device(mesh, p)))
        for p in range(n)}


def _jax(text, shape):
    h = xc.HloSharding.from_string(text)
    n = h.num_devices() if not h.is_replicated() else 1
    idx = op_shardings.op_sharding_to_indices(h, shape, n)
    norm = lambda s, g: slice(s.start or 0, g if s.stop is None else s.stop)  # noqa: E731
    return {d: tuple(norm(s, g) for s, g in zip(ix, shape)) for d, ix in enumerate(idx)}


CASES = [
    ("{devices=[2,1]0,1}", (4, 6)),
    ("{devices=[2,1]1,0}", (4, 6)),
    ("{devices=[2,2]<=[4]}", (4, 6)),
    ("{devices=[2,2]<=[2,2]T(1,0)}", (4, 6)),
    ("{devices=[4,2]<=[2,4]T(1,0)}", (8, 6)),
    ("{devices=[2,4]<=[2,2,2]T(2,0,1)}", (8, 8)),
    ("{devices=[8,1]<=[2,4]T(1,0)}", (8, 3)),
    ("{devices=[4,2]<=[8]}", (8, 2)),
    ("{devices=[2,1,2]<=[4] last_tile_dim_replicate}", (4, 6)),
    ("{devices=[1,2,4]<=[2,4]T(1,0) last_tile_dim_replicate}", (4, 6)),
    ("{devices=[2,2,2]<=[8] last_tile_dims={replicated}}", (4, 6)),
    ("{devices=[2,1,2]0,3,1,2 last_tile_dim_replicate}", (4, 6)),
    ("{devices=[2,2]3,1,0,2}", (4, 6)),
    ("{replicated}", (4, 6)),
]


@pytest.mark.parametrize("text,shape", CASES)
def test_device_to_shard_matches_jax(text, shape):
    assert _ours(text, shape) == _jax(text, shape)


def test_forms():
    mesh, sh = parse_mhlo_sharding("{devices=[2,2]<=[2,2]T(1,0)}")
    assert mesh.to_text() == '<["axis_0"=2, "axis_1"=2]>'
    assert sh.to_text() == '#sdy.sharding<@mesh, [{"axis_1"}, {"axis_0"}]>'
    mesh, sh = parse_mhlo_sharding("{devices=[4,2]<=[8]}")   # one iota dim split in two
    assert mesh.to_text() == '<["axis_0_0"=4, "axis_0_1"=2]>'
    mesh, sh = parse_mhlo_sharding("{devices=[2,1]1,0}", 2)
    assert mesh.device_ids == (1, 0) and sh.to_text() == '#sdy.sharding<@mesh, [{"axis_0"}, {}]>'
    mesh, sh = parse_mhlo_sharding("{maximal device=3}", 2)
    assert mesh.device_ids == (3,) and sh.is_replicated()
    mesh, sh = parse_mhlo_sharding("{replicated}", 3)
    assert sh.rank == 3 and sh.is_replicated()
    pairs = parse_mhlo_shardings("{{devices=[2]<=[2]}, {replicated}}", [1, 0])
    assert pairs[0][1].dims == ((pairs[0][1].dims[0][0],),) and pairs[1][1].rank == 0
    _, sh = parse_mhlo_sharding("{devices=[2,1]<=[2] metadata={op_name=\"x\"}}")
    assert sh.rank == 2


def test_named_sharding_round_trip():
    # what jax itself writes for NamedShardings, read back into the same layout
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    devs = np.array(jax.devices()[:8]).reshape(2, 4)
    mesh = Mesh(devs, ("x", "y"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    for spec in [P("x", "y"), P("y", "x"), P(("y", "x"), None), P(None, "y"), P("y")]:
        text = str(NamedSharding(mesh, spec)._to_xla_hlo_sharding(2))
        assert _ours(text, (8, 8)) == _jax(text, (8, 8)), (spec, text)


@pytest.mark.parametrize("text,msg", [
    ("{manual}", "cannot read"),
    ("{devices=[2,2]<=[4] last_tile_dims={manual}}", "manual"),
    ("{devices=[3,2]<=[2,3]}", "straddles"),
    ("{devices=[2,2]0,1,2}", "lists 3 devices"),
    ("devices=[2]0,1", "expected"),
])
def test_errors(text, msg):
    with pytest.raises(ShardingError, match=msg):
        parse_mhlo_sharding(text, 2) if text.startswith("{") else parse_mhlo_shardings(text)


def test_rank_checked():
    with pytest.raises(ShardingError, match="rank 2 but the value has rank 3"):
        parse_mhlo_sharding("{devices=[2,1]0,1}", 3)
    with pytest.raises(ShardingError, match="needs the value's rank"):
        parse_mhlo_sharding("{replicated}")
