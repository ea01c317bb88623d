"""analysis/cost.py time model: roofline, alpha-beta ring collectives, reshard Step lists."""
import pytest

from rhino_mlir.analysis.cost import (collective_time, compute_time, ring_bytes, ring_steps,
                                      steps_time, wire_time)
from rhino_mlir.cluster import Link, parse_cluster
from rhino_mlir.devices import get_profile
from rhino_mlir.partition.spmd.reshard import Step, plan
from rhino_mlir.sharding import AxisRef, Mesh, TensorSharding

TEST = get_profile("cpu-test")       # 100 GFLOP/s, 10 GB/s, 10 us per kernel
MiB = 2**20


def test_roofline_compute_bound():
    # 1 GFLOP over 1 MB: math takes 10 ms, memory 0.1 ms
    assert compute_time(1e9, 1e6, "f32", TEST) == pytest.approx(1e-2 + 1e-5)


def test_roofline_memory_bound():
    # elementwise: 1 kFLOP over 100 MB is all memory traffic (10 ms at 10 GB/s)
    assert compute_time(1e3, 1e8, "f32", TEST) == pytest.approx(1e-2 + 1e-5)


def test_roofline_uses_the_dtype_peak():
    h100 = get_profile("H100")
    n = 8192
    flops, nbytes = 2 * n**3, 3 * n * n * 2
    bf16 = compute_time(flops, nbytes, "bf16", h100)
    f32 = compute_time(flops, 2 * nbytes, "f32", h100)
    assert bf16 == pytest.approx(flops / 989.4e12 + 4e-6)
    assert f32 == pytest.approx(flops / 67e12 + 4e-6)  # no tensor cores for plain f32
    assert compute_time(0, 0, "f32", h100) == 0.0


@pytest.mark.parametrize("kind, n, steps", [
    ("all_reduce", 8, 14), ("all_gather", 8, 7), ("reduce_scatter", 4, 3),
    ("all_to_all", 2, 1), ("collective_permute", 8, 1), ("all_reduce", 1, 0),
])
def test_ring_steps(kind, n, steps):
    assert ring_steps(kind, n) == steps


def test_collective_time_is_alpha_beta():
    link = Link(bandwidth=100e9, latency=2e-6, overhead=1e-5)
    # all_reduce of 64 MiB over 8: 14 steps, 2*7/8 * 64 MiB on the wire per device
    expect = 1e-5 + 14 * 2e-6 + 2 * 7 / 8 * 64 * MiB / 100e9
    assert collective_time("all_reduce", 64 * MiB, 8, link) == pytest.approx(expect)
    assert collective_time("all_gather", 64 * MiB, 1, link) == 0.0
    assert wire_time("all_gather", ring_bytes("all_gather", 8 * MiB, 4), 4, link) == \
        pytest.approx(1e-5 + 3 * 2e-6 + 6 * MiB / 100e9)


def test_inter_node_axis_is_slower():
    c = parse_cluster("2x8xH100")
    mesh = Mesh("m", (("dp", 2), ("tp", 8)))
    inter, intra = c.axis_link(mesh, "dp"), c.axis_link(mesh, "tp")
    t_inter = collective_time("all_reduce", 256 * MiB, 2, inter)
    t_intra = collective_time("all_reduce", 256 * MiB, 2, intra)
    assert t_inter > 5 * t_intra                     # 50 GB/s InfiniBand vs 450 GB/s NVLink
    # the same Step priced on either axis
    dp = [Step("all_reduce", axes=(AxisRef("dp"),), bytes=ring_bytes("all_reduce", MiB, 2))]
    tp = [Step("all_reduce", axes=(AxisRef("tp", 1, 2),), bytes=ring_bytes("all_reduce", MiB, 2))]
    assert steps_time(dp, mesh, c) > steps_time(tp, mesh, c)


def test_step_over_two_axes_uses_the_slowest_link():
    c = parse_cluster("2x8xH100")
    mesh = Mesh("m", (("dp", 2), ("tp", 8)))
    wire = ring_bytes("all_gather", 16 * MiB, 16)
    s = Step("all_gather", dim=0, axes=(AxisRef("dp"), AxisRef("tp")), bytes=wire)
    ib = c.axis_link(mesh, "dp")
    assert steps_time([s], mesh, c) == pytest.approx(
        ib.overhead + 15 * ib.latency + wire / ib.bandwidth)


def test_reshard_plan_price_equals_hand_computation():
    # (1024, 1024) f32 on a (dp=2, tp=8) mesh over 2 nodes of 8 H100s:
    # rows on dp, a partial sum over tp  ->  rows on dp, columns on tp, complete
    c = parse_cluster("2x8xH100")
    mesh = Mesh("m", (("dp", 2), ("tp", 8)))
    dp, tp = AxisRef("dp"), AxisRef("tp")
    src = TensorSharding("m", ((dp,), ()))
    dst = TensorSharding("m", ((dp,), (tp,)))
    steps = plan(src, dst, (1024, 1024), mesh, 4, partial=(tp,))
    assert [s.kind for s in steps] == ["reduce_scatter"]
    local = 512 * 1024 * 4                           # the dp-sharded operand, 2 MiB
    nv = c.axis_link(mesh, "tp")
    hand = 10e-6 + 7 * 1e-6 + 7 / 8 * local / 450e9  # overhead + 7 steps + bytes / NVLink4
    assert (nv.overhead, nv.latency, nv.bandwidth) == (10e-6, 1e-6, 450e9)
    assert steps_time(steps, mesh, c) == pytest.approx(hand)
    # now move the rows back off dp (an all_gather over InfiniBand) and slice on tp
    back = plan(dst, TensorSharding("m", ((), (tp,))), (1024, 1024), mesh, 4)
    assert [s.kind for s in back] == ["all_gather"]
    gathered = 1024 * 128 * 4                        # result of the gather, per device
    hand_ib = 10e-6 + 1 * 5e-6 + 1 / 2 * gathered / 50e9
    assert steps_time(back, mesh, c) == pytest.approx(hand_ib)
    assert steps_time(steps + back, mesh, c) == pytest.approx(hand + hand_ib)


def test_slices_are_free_and_cpu_ranks_share_the_link():
    c = parse_cluster("1x4xcpu-test")
    mesh = Mesh("m", (("x", 4),))
    assert steps_time([Step("slice", dim=0, axes=(AxisRef("x"),))], mesh, c) == 0.0
    wire = ring_bytes("all_reduce", 4 * MiB, 4)
    # 4 ranks on 2 cores: half the 1 GB/s link each, a step waits twice the 20 us
    s = Step("all_reduce", axes=(AxisRef("x"),), bytes=wire)
    assert steps_time([s], mesh, c) == pytest.approx(400e-6 + 6 * 40e-6 + wire / 0.5e9)
