"""sharding/device_index.py: shard indices and replica groups, sub-axes and device_ids."""
from rhino_mlir.sharding.device_index import index_table, replica_groups
from rhino_mlir.sharding import AxisRef, Mesh

M = Mesh("m", (("x", 4), ("y", 2)))


def test_groups_of_one_axis():
    assert replica_groups(M, [AxisRef("x")]) == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert replica_groups(M, [AxisRef("y")]) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_groups_of_minor_sub_axis():
    assert replica_groups(M, [AxisRef("x", 2, 2)]) == [[0, 2], [1, 3], [4, 6], [5, 7]]


def test_group_order_follows_axis_order():
    # y major, x:(1)2 minor: members ordered by y*2 + x//2
    assert replica_groups(M, [AxisRef("y"), AxisRef("x", 1, 2)]) == [[0, 4, 1, 5], [2, 6, 3, 7]]


def test_device_ids_are_honoured():
    m = Mesh("m", (("x", 2),), device_ids=(1, 0))
    assert replica_groups(m, [AxisRef("x")]) == [[1, 0]]
    assert index_table(m, [AxisRef("x")]) == [1, 0]
