"""sharding/factors.py: tensor <-> factor shardings through compound factors."""
from rhino_mlir.sharding.factors import dedupe, legalize, normalize, project, tensor_sharding
from rhino_mlir.sharding import AxisRef, Mesh, parse_sharding

M = Mesh("m", (("x", 4), ("y", 2)))
X, Y = AxisRef("x"), AxisRef("y")


def test_single_factor_takes_all_axes_even_uneven():
    proj, exact = project([(0,), (1,)], [10, 3], parse_sharding('<@m, [{"x", "y"}, {}]>'), M)
    assert exact and proj == {0: (X, Y)}


def test_axis_split_across_compound_factors_gives_sub_axes():
    # dim [ij] with i=2, j=4 sharded on x=4: i -> x:(1)2, j -> x:(2)2 (strided heads)
    proj, exact = project([(0, 1)], [2, 4], parse_sharding('<@m, [{"x"}]>'), M)
    assert exact and proj == {0: (AxisRef("x", 1, 2),), 1: (AxisRef("x", 2, 2),)}
    back = tensor_sharding("m", [(0, 1)], [proj[0], proj[1]], M)
    assert back.dims == ((X,),)         # sub-axes merge back into the axis


def test_legalize_drops_minor_factor_after_partial_one():
    fsh = legalize([[(0, 1)]], [8, 2], [(AxisRef("y"),), (X,)], M)
    assert fsh == [(AxisRef("y"),), ()]


def test_dedupe_keeps_an_axis_in_one_factor():
    assert dedupe([(X,), (X, Y)], [0, 1], M) == [(X,), ()]


def test_normalize_merges_contiguous_sub_axes():
    assert normalize([AxisRef("x", 1, 2), AxisRef("x", 2, 2)], M) == (X,)
