"""The differential suite's programs are well-formed, cover what issue 2 asks, and the
harness judges them right: the replicate-everything partitioner passes the numbers
(and fails the communication checks), the do-nothing one fails."""
import numpy as np
import pytest

import programs
from harness import comm
from harness.mutants import do_nothing, replicate_everything
from harness.signature import signature
from harness.xla_oracle import check_local, reference


def _params(cases):
    return [pytest.param(n, v, id=f"{n}-{v}",
                         marks=[pytest.mark.slow] if (n, v) in programs.SLOW else [])
            for n, v in cases]


def test_coverage():
    assert len(programs.PROGRAMS) >= 15
    sizes, sub, ids, both, uneven = set(), False, False, False, False
    for name, v in programs.CASES:
        if (name, v) in programs.SLOW:
            continue
        sig = signature(programs.get(name, v)[0])
        mesh = sig.mesh()
        sizes.add(tuple(s for _, s in mesh.axes))
        ids |= mesh.device_ids is not None
        for a in sig.args:
            if a.sharding is None:
                continue
            used = {ax.name for ax in a.sharding.used_axes()}
            both |= len(used) == 2
            sub |= any(ax.is_sub() for ax in a.sharding.used_axes())
            uneven |= any(g % k for g, k in zip(a.shape, a.sharding.shards(mesh)))
    assert sizes == {(4,), (2, 2), (2, 4)}
    assert sub and ids and both and uneven


@pytest.mark.parametrize("name,variant", _params(programs.CASES))
def test_replicate_everything_passes(name, variant):
    text, inputs = programs.get(name, variant)
    sig = signature(text)
    assert any(a.sharding is not None and any(a.sharding.dims) for a in sig.args)
    assert [list(np.shape(x)) for x in inputs] == [a.shape for a in sig.args]
    local = replicate_everything(text)
    refs = reference(text, inputs)
    check_local(local, text, inputs, refs=refs)
    # ...and its communication is what the contract forbids: gathered global values
    assert comm.count(local)["all_gather"] >= 1
    assert comm.materialized_globals(local)


@pytest.mark.parametrize("name,variant", [("mlp_forward", "megatron_2x2"),
                                          ("uneven_dims", "rows_4"), ("argmax_sort", "2x2")])
def test_do_nothing_fails(name, variant):
    text, inputs = programs.get(name, variant)
    with pytest.raises(AssertionError):
        check_local(do_nothing(text), text, inputs)


def test_comm_bytes_match_ring_formulas():
    text, _ = programs.get("mlp_forward", "both_axes_2x4")
    cs = comm.collectives(replicate_everything(text))
    assert cs and all(not c.in_loop for c in cs)
    for c in cs:
        n = c.group_size
        res = int(np.prod([int(d) for d in c.result_types[0][7:].split("x")[:-1]])) * 4
        assert c.bytes == pytest.approx((n - 1) / n * res)
