"""launch/rank/layout.py: slicing with ceil-size padded shards, assembly, input checks."""
import numpy as np
import pytest

from harness import layout as ref_layout
from rhino_mlir.errors import RhinoError
from rhino_mlir.launch.rank.layout import (ValueSpec, assemble_value, check_input, slice_value,
                                      to_wire)
from rhino_mlir.sharding import Mesh, parse_sharding

MESHES = {"m": Mesh("m", (("x", 2), ("y", 2))),
          "r": Mesh("r", (("x", 2), ("y", 2)), device_ids=(3, 1, 2, 0))}


@pytest.mark.parametrize("mesh", ["m", "r"])
@pytest.mark.parametrize("sharding,shape", [
    ('[{"x"}, {"y"}]', (8, 6)),
    ('[{"x"}, {"y"}]', (5, 3)),            # padded shards: ceil(5/2) = 3, ceil(3/2) = 2
    ('[{"y", "x"}, {}]', (7, 2)),          # 4-way on dim 0, last shard 1 of 2 rows real
    ('[{}, {}]', (3, 3)),
    ('[{"y":(1)2}, {}]', (4, 1)),
])
def test_slice_assemble_round_trip_matches_harness(mesh, sharding, shape):
    spec = ValueSpec("arg0", "float32", shape, f"#sdy.sharding<@{mesh}, {sharding}>")
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    shards = slice_value(x, spec, MESHES, 4)
    s = parse_sharding(spec.sharding)
    want = ref_layout.slice_global(x, s, MESHES[mesh], fill=0)
    for got, w in zip(shards, want):
        assert got.shape == w.shape and np.array_equal(got, w)
    assert np.array_equal(assemble_value(shards, spec, MESHES, 4), x)


def test_padding_is_cropped_on_assembly():
    spec = ValueSpec("out0", "int32", (5,), '#sdy.sharding<@m, [{"x", "y"}]>')
    shards = [np.array([1, 2]), np.array([3, 4]), np.array([5, 99]), np.array([98, 97])]
    assert assemble_value(shards, spec, MESHES, 4).tolist() == [1, 2, 3, 4, 5]


def test_replicated_without_sharding():
    spec = ValueSpec("arg0", "float32", (2, 2), None)
    x = np.ones((2, 2), np.float32)
    assert all(np.array_equal(s, x) for s in slice_value(x, spec, {}, 3))


def test_scalar_stays_a_scalar():
    # an optimizer's step count: shape () on every device, not (1,)
    spec = ValueSpec("arg0", "int32", (), None)
    assert [s.shape for s in slice_value(np.asarray(7, np.int32), spec, {}, 2)] == [(), ()]


def test_check_input_names_the_argument():
    spec = ValueSpec("arg1", "float32", (2, 3), None)
    with pytest.raises(RhinoError, match=r"input arg1: shape \[3, 2\] but the program expects \[2, 3\]"):
        check_input("arg1", np.zeros((3, 2), np.float32), spec)
    with pytest.raises(RhinoError, match="input arg1: dtype int32 but the program expects float32"):
        check_input("arg1", np.zeros((2, 3), np.int32), spec)


def test_bf16_travels_as_uint16_bits():
    import ml_dtypes
    spec = ValueSpec("arg0", "bfloat16", (3,), None)
    x = np.array([1.5, -2, 3], ml_dtypes.bfloat16)
    back = check_input("arg0", to_wire(x), spec)
    assert back.dtype == x.dtype and np.array_equal(back, x)
    with pytest.raises(RhinoError, match="bf16 travels as uint16 bits"):
        check_input("arg0", np.zeros(3, np.float32), spec)
