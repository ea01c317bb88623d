"""partition/spmd/reshard.py: the steps chosen for each kind of resharding, and their bytes."""
from rhino_mlir.analysis.cost import ring_bytes
from rhino_mlir.partition.spmd.reshard import plan, total_bytes
from rhino_mlir.sharding import Mesh, parse_sharding

M = Mesh("m", (("x", 2), ("y", 4)))


def sh(text):
    return parse_sharding(f"<@m, {text}>")


def kinds(steps):
    return [s.kind for s in steps]


def test_identity_is_free():
    assert plan(sh('[{"x"}, {}]'), sh('[{"x"}, {}]'), [8, 8], M, 4) == []


def test_partial_to_replicated_is_one_all_reduce():
    steps = plan(sh("[{}, {}]"), sh("[{}, {}]"), [8, 16], M, 4, partial=[sh('[{"y"}]').dims[0][0]])
    assert kinds(steps) == ["all_reduce"]
    assert total_bytes(steps) == ring_bytes("all_reduce", 8 * 16 * 4, 4)


def test_partial_to_sharded_is_reduce_scatter():
    y = sh('[{"y"}]').dims[0][0]
    steps = plan(sh("[{}, {}]"), sh('[{}, {"y"}]'), [8, 16], M, 4, partial=[y])
    assert kinds(steps) == ["reduce_scatter"]
    assert steps[0].dim == 1


def test_moving_an_axis_between_dims_is_all_to_all():
    steps = plan(sh('[{"x"}, {}]'), sh('[{}, {"x"}]'), [8, 12], M, 4)
    assert kinds(steps) == ["all_to_all"]
    assert total_bytes(steps) == ring_bytes("all_to_all", 4 * 12 * 4, 2)


def test_dropping_a_minor_axis_gathers_only_it():
    steps = plan(sh('[{"x", "y"}, {}]'), sh('[{"x"}, {}]'), [16, 4], M, 4)
    assert kinds(steps) == ["all_gather"] and steps[0].axes == sh('[{"y"}]').dims[0]


def test_adding_axes_is_a_local_slice():
    steps = plan(sh("[{}, {}]"), sh('[{"x"}, {"y"}]'), [8, 8], M, 4)
    assert kinds(steps) == ["slice", "slice"] and total_bytes(steps) == 0


def test_uneven_dim_gathers_whole_then_slices():
    steps = plan(sh('[{"x"}, {}]'), sh('[{"y"}, {}]'), [9, 3], M, 4)
    assert kinds(steps) == ["all_gather", "slice"]
    assert steps[0].crop == 9 and steps[1].full == sh('[{"y"}]').dims[0]


def test_sub_axis_gather():
    src = sh('[{"y":(1)2, "y":(2)2}, {}]')
    steps = plan(src, sh('[{"y":(1)2}, {}]'), [8, 2], M, 4)
    assert kinds(steps) == ["all_gather"]
