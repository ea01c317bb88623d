"""A pipeline rank's local shard of an argument (launch/rank/pipeline_rank.py)."""
import numpy as np

from rhino_mlir.launch.rank.layout import ValueSpec
from rhino_mlir.launch.rank.pipeline_rank import _shard
from rhino_mlir.sharding import Mesh


def test_an_unsharded_scalar_stays_a_scalar():
    # a stage without a mesh (one device per stage) reads the optimizer's step counter
    # whole; a 1-element vector in its place fails IREE's input check at run time
    spec = ValueSpec("arg0", "int32", (), None)
    x = _shard(np.asarray(7, np.int32), spec, Mesh("mesh", (("d", 1),)), 0)
    assert x.shape == () and x == 7 and x.flags.c_contiguous
    y = _shard(np.arange(6.0).reshape(2, 3).T, ValueSpec("arg1", "float64", (3, 2), None),
               Mesh("mesh", (("d", 1),)), 0)
    assert y.shape == (3, 2) and y.flags.c_contiguous
