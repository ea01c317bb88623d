"""Every zoo model lowers; small ones run on XLA and train."""
import jax
import numpy as np
import pytest

from harness.signature import signature
from harness.xla_oracle import assert_close, run_global
from rhino_mlir import zoo

SMALL = list(zoo.SMALL)


def test_registry():
    assert {"mlp", "transformer-block", "gpt-tiny", "gpt2-small", "cnn", "moe"} <= set(zoo.names())
    with pytest.raises(KeyError, match="unknown zoo model 'nope'"):
        zoo.get("nope")
    assert zoo.get("gpt-tiny", n_layer=3).cfg.n_layer == 3


@pytest.mark.parametrize("name", SMALL)
def test_every_function_lowers(name):
    m = zoo.get(name)
    for fn in m.fns:
        text, info = m.lower(fn)
        assert len(info.arg_paths) == len(signature(text).args), fn


# XLA compiles cost seconds on 2 cores: run each model once, train steps for the small ones
RUNS = [(n, "forward") for n in SMALL] + [("mlp", "train_step"), ("mlp", "train_step_sgd"),
                                          ("cnn", "train_step"), ("moe", "train_step")]


@pytest.mark.parametrize("name,fn", RUNS)
def test_lowered_runs_like_jax(name, fn):
    m = zoo.get(name)
    text, info = m.lower(fn, abstract=False)
    args = m.args(fn)
    flat = jax.tree_util.tree_leaves(args)
    assert len(info.arg_paths) == len(flat) == len(signature(text).args)
    got = run_global(text, flat)
    want = jax.tree_util.tree_leaves(jax.jit(m.fns[fn])(*args))
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, np.asarray(w), what=f"{name}.{fn} result {i}")


@pytest.mark.parametrize("name", ["mlp", "moe"])
def test_adam_reduces_loss(name):
    m = zoo.get(name)
    step = jax.jit(m.fns["train_step"])
    params, state, batch = m.args("train_step")
    losses = []
    for _ in range(5):
        params, state, loss = step(params, state, batch)
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses


def test_gpt2_small_lowers_from_shapes():
    m = zoo.get("gpt2-small")
    assert (m.cfg.n_layer, m.cfg.d_model, m.cfg.n_head, m.cfg.vocab, m.cfg.seq) == (12, 768, 12, 50257, 1024)
    text, info = m.lower("train_step")             # ShapeDtypeStructs: ~124M params never allocated
    assert "tensor<50257x768xf32>" in text
    n_params = 12 * 12 + 4                         # 12 leaves per block + wte, wpe, ln_f
    assert len(info.arg_paths) == 3 * n_params + 1 + 2   # params, m, v, step, (idx, targets)
    assert text.count("stablehlo.dot_general") > 12 * 6


def test_scan_layers_is_a_while_loop():
    text, _ = zoo.get("gpt-tiny", scan_layers=True).lower("forward")
    assert "stablehlo.while" in text
