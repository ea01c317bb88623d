"""analysis/lifetimes.py: the memory sweep over a folded graph (one copy per run, and how
many copies follow) finds the same peak, at the same node, as the sweep over every op."""
import numpy as np
import pytest

from harness.folded import built

from rhino_mlir.analysis import lifetimes


@pytest.mark.parametrize("seed", range(4))
def test_folded_sweep_equals_the_full_sweep(seed):
    _, g, full = built(n_layer=4)
    tf, tp = lifetimes.of_graph(g), lifetimes.of_graph(full)
    assert len(tf.seg) and tf.n < tp.n / 2
    rng = np.random.default_rng(seed)
    f2f = g.fold.full_to_folded
    lb = rng.random(len(g.values)) * (rng.random(len(g.values)) < 0.7)
    if seed % 2:                                   # only one run's values: its own peak
        info = g.fold.runs[seed // 2]
        keep = np.zeros(len(g.values), dtype=bool)
        keep[info.values[0]:info.values[1]] = True
        lb = np.where(keep, lb, 0.0)
    base = float(lb[np.array(g.args)].sum())
    peak, at = tf.sweep(lb, base)
    peak_full, at_full = tp.sweep(lb[f2f], float(lb[f2f][np.array(full.args)].sum()))
    assert peak == pytest.approx(peak_full, rel=1e-12) and at == at_full
    assert sorted(int(f2f[v]) for v in tp.outputs) == sorted(tf.outputs)
