"""partition/stages/schedule.py: GPipe and 1F1B task orders against their textbook definitions
(GPipe: Huang et al. 2019; 1F1B / PipeDream-Flush: Narayanan et al. 2021), the in-flight
micro-batch counts read off those orders, and the timeline against closed-form step times."""
import pytest

from rhino_mlir.errors import RhinoError
from rhino_mlir.partition.stages.schedule import in_flight, schedule, timeline

TRAIN = {"fwd", "bwd", "update"}
GRID = [(S, s, m) for S in range(1, 5) for s in range(S) for m in range(1, 7)]


def gpipe(m):
    return [("fwd", i) for i in range(m)] + [("bwd", i) for i in range(m)]


def one_f_one_b(S, s, m):
    """Stage s runs forward i before backward j exactly when i <= j + (S - 1 - s): the
    S - 1 - s warm-up forwards, then one forward ahead of each backward. Sorting on that
    key gives the order (forwards and backwards each stay in micro-batch order)."""
    w = S - 1 - s
    ev = [((i - w, 0), ("fwd", i)) for i in range(m)] + [((j, 1), ("bwd", j)) for j in range(m)]
    return [t for _, t in sorted(ev)]


def most_in_flight(order):
    """Most micro-batches forwarded but not yet backwarded at once (activations held)."""
    held = peak = 0
    for fn, _ in order:
        held += 1 if fn == "fwd" else -1
        peak = max(peak, held)
    return peak


def test_orders_match_the_textbook():
    for S, s, m in GRID:
        assert schedule("gpipe", s, S, m, TRAIN) == gpipe(m) + [("update", None)], (S, s, m)
        order = schedule("1f1b", s, S, m, TRAIN)
        assert order[-1] == ("update", None)
        assert order[:-1] == one_f_one_b(S, s, m), (S, s, m)
    # e.g. the first of 4 stages with 6 micro-batches: 3 warm-up forwards, then 1F1B
    assert one_f_one_b(4, 0, 6) == [("fwd", 0), ("fwd", 1), ("fwd", 2), ("fwd", 3), ("bwd", 0), ("fwd", 4),
                                    ("bwd", 1), ("fwd", 5), ("bwd", 2), ("bwd", 3), ("bwd", 4), ("bwd", 5)]


def test_in_flight_is_what_the_order_holds():
    for S, s, m in GRID:
        assert in_flight("gpipe", s, S, m) == most_in_flight(gpipe(m)) == m
        assert in_flight("1f1b", s, S, m) == most_in_flight(one_f_one_b(S, s, m)) == min(S - s, m), (S, s, m)


def test_stage_without_backward_or_update_runs_forwards_only():
    assert schedule("1f1b", 1, 2, 3, {"fwd"}) == [("fwd", 0), ("fwd", 1), ("fwd", 2)]
    assert schedule("inference", 0, 2, 2, {"fwd"}) == [("fwd", 0), ("fwd", 1)]
    assert schedule("gpipe", 0, 2, 1, {"bwd", "update"}) == [("bwd", 0), ("update", None)]


def test_bad_schedules_are_named():
    with pytest.raises(RhinoError, match="unknown schedule 'zb'"):
        schedule("zb", 0, 2, 2, TRAIN)
    with pytest.raises(RhinoError, match="'inference' runs no backward"):
        schedule("inference", 0, 2, 2, TRAIN)


def training(S, f, b):
    dur = {**{("fwd", s): f for s in range(S)}, **{("bwd", s): b for s in range(S)}}
    deps = [(("fwd", s), ("fwd", s + 1), 0.0) for s in range(S - 1)] + \
           [(("bwd", s + 1), ("bwd", s), 0.0) for s in range(S - 1)]
    return dur, deps


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize("S,m", [(2, 2), (3, 4), (4, 8), (4, 2)])
def test_uniform_training_pipeline_takes_m_plus_s_minus_1_slots(kind, S, m):
    f, b, u = 1.0, 2.0, 0.5
    dur, deps = training(S, f, b)
    tl = timeline(kind, S, m, dur, deps, update={s: u for s in range(S)})
    assert tl.step_s == pytest.approx((m + S - 1) * (f + b) + u)
    assert tl.busy_s == pytest.approx([m * (f + b) + u] * S)
    assert len(tl.rows) == S * (2 * m + 1)
    # a stage's update starts when its last micro-batch task ends (none depends on another)
    for s in range(S):
        last = max(e for a, fn, _, _, e in tl.rows if a == s and fn != "update")
        assert [st for a, fn, _, st, _ in tl.rows if a == s and fn == "update"] == [last]
    for s_, fn, mb, st, _ in tl.rows:                   # dependencies hold in the rows
        if fn == "fwd" and s_ > 0:
            assert st >= next(e for a, g, k, _, e in tl.rows if (a, g, k) == (s_ - 1, "fwd", mb))
        if fn == "bwd" and s_ < S - 1:
            assert st >= next(e for a, g, k, _, e in tl.rows if (a, g, k) == (s_ + 1, "bwd", mb))


def test_inference_with_transfers():
    # stage s starts at s * (f + t) and never waits after that
    S, m, f, t = 3, 5, 2.0, 0.5
    tl = timeline("inference", S, m, {("fwd", s): f for s in range(S)},
                  [(("fwd", s), ("fwd", s + 1), t) for s in range(S - 1)])
    assert tl.step_s == pytest.approx((S - 1) * (f + t) + m * f)
    assert tl.bubble == pytest.approx(1 - S * m * f / (S * tl.step_s))


def test_a_cycle_deadlocks():
    with pytest.raises(RhinoError, match="schedule deadlock"):
        timeline("inference", 2, 1, {("fwd", 0): 1.0, ("fwd", 1): 1.0},
                 [(("fwd", 0), ("fwd", 1), 0.0), (("fwd", 1), ("fwd", 0), 0.0)])
