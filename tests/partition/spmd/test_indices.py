"""partition/spmd/indices.py: a gather/scatter on a sharded addressed dimension equals the
single-device run (XLA oracle), and no index it emits ever leaves the local operand.

IREE 3.13 reads and writes past the buffer for out-of-bounds gather/scatter indices
(where XLA clamps / skips), so the second check runs the local program with every
gather/scatter index exposed as an extra result and bounds them on every device.
tests/launch/test_e2e_partitioner.py runs the same programs on IREE ranks.
"""
import numpy as np
import pytest

from harness.partitioner_cases import index_program, partition
from harness.xla_oracle import check_local, run_local
from rhino_mlir import ir as I
from rhino_mlir.analysis.indexing import indexing


def expose_indices(local: str):
    """The local program returning, after its results, the index operand of every
    gather/scatter; and per exposed index (op name, addressed dims, local operand shape)."""
    ctx = I.new_context()
    m = I.parse_module(local, ctx)
    with ctx, I.ir.Location.unknown():
        f = I.main_func(m)
        ret = I.block_ops(f.regions[0].blocks[0])[-1]
        found = [op for op in I.walk_ops(m.operation) if indexing(op) is not None]
        info = [(op.name, indexing(op), I.shape_of(op.operands[0].type)) for op in found]
        vals = list(ret.operands) + [op.operands[indexing(op).indices] for op in found]
        with I.ir.InsertionPoint(ret):
            I.ir.Operation.create("func.return", operands=vals)
        ret.erase()
        args = [a.type for a in f.regions[0].blocks[0].arguments]
        f.attributes["function_type"] = I.ir.TypeAttr.get(I.ir.FunctionType.get(args, [v.type for v in vals]))
        if "res_attrs" in f.attributes:
            old = list(f.attributes["res_attrs"])
            f.attributes["res_attrs"] = I.ir.ArrayAttr.get(old + [I.ir.DictAttr.get({})] * len(found))
    return str(m), info


@pytest.mark.parametrize("n,implicit", [(2, False), (4, False), (4, True)])
def test_sharded_gather_scatter_equal_single_device(n, implicit):
    text, args = index_program(n, implicit)
    local = partition(text)
    assert f"tensor<{-(-10 // n)}x8xf32>" in local     # the table stays sharded (10 rows on 4: 3)
    check_local(local, text, args)


@pytest.mark.parametrize("n,implicit", [(4, False), (4, True)])
def test_emitted_indices_stay_inside_the_local_operand(n, implicit):
    text, args = index_program(n, implicit)
    exposed, info = expose_indices(partition(text))
    assert sorted(name for name, _, _ in info) == ["stablehlo.gather"] + ["stablehlo.scatter"] * 4
    outs = run_local(exposed, args)
    for d in range(n):
        for (name, ix, shape), idx in zip(info, outs[d][5:]):
            idx = np.asarray(idx)
            comps = idx[..., None] if ix.vector_dim >= idx.ndim else np.moveaxis(idx, ix.vector_dim, -1)
            for k, dim in enumerate(ix.addressed):       # every window here is one element wide
                assert comps[..., k].min() >= 0 and comps[..., k].max() < shape[dim], \
                    (name, d, k, comps[..., k].tolist(), shape)


def test_overwrite_scatter_uses_a_spare_row_and_add_uses_the_identity():
    ctx = I.new_context()
    m = I.parse_module(partition(index_program(4)[0]), ctx)
    scatters = [op for op in I.walk_ops(m.operation) if op.name == "stablehlo.scatter"]
    # overwrite: the operand grows by one row (4 = 3 + 1), cropped off after the op;
    # add, max and the cell scatter write identities at index 0 into the shard as it is
    assert sorted(I.shape_of(op.operands[0].type)[0] for op in scatters) == [3, 3, 3, 4]
    # redirected updates share an index: no scatter may promise unique indices
    assert all(str(op.attributes["unique_indices"]) == "false" for op in scatters)
