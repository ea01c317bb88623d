"""launch/rank/layout.py: slicing with ceil-size padded shards, assembly, input checks."""
import numpy as np
import pytest

from harness import layout as ref_layout
from rhino_mlir.errors import RhinoError
from rhino_mlir.launch.rank.layout import (ValueSpec, assemble_value, bounds, check_input,
                                           shard_index, slice_value, to_wire)
from rhino_mlir.sharding import AxisRef, Mesh, TensorSharding, parse_sharding

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


def _random_case(rng):
    """A mesh of 1-3 axes (sizes 1..8, half with permuted device_ids) and a sharding that
    uses each axis whole, cut into a chain of sub-axes, or not at all, over dims of random
    size 0..13 (uneven, smaller than the shard count, empty)."""
    while True:
        axes = tuple((f"a{i}", int(rng.choice([1, 2, 3, 4, 6, 8]))) for i in range(rng.integers(1, 4)))
        size = int(np.prod([s for _, s in axes]))
        if size <= 48:
            break
    ids = tuple(int(d) for d in rng.permutation(size)) if rng.random() < 0.5 else None
    mesh = Mesh("m", axes, ids)
    rank = int(rng.integers(0, 4))
    dims = [[] for _ in range(rank)]
    for name, n in axes:
        pieces, rest = [], n                     # major -> minor factors of the axis
        while rest > 1:
            f = int(rng.choice([d for d in range(2, rest + 1) if rest % d == 0]))
            pieces.append(f)
            rest //= f
        whole = len(pieces) == 1 and rng.random() < 0.6
        pre = 1
        for f in pieces:
            if rank and rng.random() < 0.75:
                dims[rng.integers(rank)].append(AxisRef(name) if whole else AxisRef(name, pre, f))
            pre *= f
    for d in dims:
        rng.shuffle(d)
    sh = TensorSharding("m", tuple(tuple(d) for d in dims))
    shape = tuple(int(g) for g in rng.integers(0, 14, rank))
    sh.validate(mesh, shape, "random case")
    return mesh, sh, shape


def test_product_and_reference_agree_on_random_layouts():
    # the product's mixed-radix shard numbers (launch/rank/layout.py) against the
    # harness's tile grid (tests/harness/layout.py), which XLA checks (test_mhlo.py)
    rng = np.random.default_rng(0)
    subs = uneven = ids = 0
    for _ in range(300):
        mesh, sh, shape = _random_case(rng)
        text = sh.to_text()
        assert parse_sharding(text).dims == sh.dims                 # the text the manifest carries
        spec = ValueSpec("arg0", "float32", shape, text)
        meshes = {"m": mesh}
        n = mesh.size
        why = f"{text} on {mesh.to_text()} of {list(shape)}"
        assert spec.local_shape(meshes, n) == ref_layout.local_shape(shape, sh, mesh), why
        for d in range(n):
            assert shard_index(sh, mesh, d) == ref_layout.shard_index(sh, mesh, d), (why, d)
            assert bounds(shape, sh, mesh, d) == ref_layout.shard_bounds(shape, sh, mesh, d), (why, d)
        # the reference's tiles partition the tensor: every element on its replica count
        reps = n // int(np.prod(sh.shards(mesh)))
        assert (ref_layout.covered(shape, sh, mesh) == reps).all(), why
        x = np.arange(1, int(np.prod(shape)) + 1, dtype=np.float32).reshape(shape)
        got = slice_value(x, spec, meshes, n)
        want = ref_layout.slice_global(x, sh, mesh, fill=0)
        assert all(g.shape == w.shape and np.array_equal(g, w) for g, w in zip(got, want)), why
        assert np.array_equal(assemble_value(want, spec, meshes, n), x), why
        assert np.array_equal(ref_layout.assemble(got, shape, sh, mesh), x), why
        subs += any(a.is_sub() for d in sh.dims for a in d)
        uneven += any(g % k for g, k in zip(shape, sh.shards(mesh)))
        ids += mesh.device_ids is not None
    assert subs > 50 and uneven > 50 and ids > 100        # the cases meant are drawn


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
