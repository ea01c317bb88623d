"""rhino-accumulate: K micro-batches in a loop inside @main compute the one-batch step.

The rewritten program runs on XLA CPU (tests/harness) and must equal the original step
(DESIGN.md tolerances: f32 rtol 1e-5) for the zoo MLP and GPT train steps with Adam; it
must still partition (rhino-propagate + rhino-spmd-partition: the loop carries keep their
shardings, the per-device program equals the single-device one); and it must lower XLA's
peak temporary memory, since only one micro-batch's activations are live at a time.
"""
import re

import numpy as np
import pytest

import programs
from harness.train_steps import later_step, leaves, rewrite, same
from harness.xla_memory import xla_memory
from harness.xla_oracle import check_local, promote_f32, run_global
from rhino_mlir import zoo
from rhino_mlir.errors import RhinoError

MLP = dict(dims=(16, 32, 32, 8))                       # batch 8
GPT = dict(n_layer=2, seq=8, vocab=48, batch=4)


@pytest.mark.parametrize("k", [2, 4])
def test_mlp_adam_step_equals_one_batch(k):
    m = zoo.get("mlp", **MLP)
    text, _ = m.lower("train_step")
    args = later_step(m)
    new, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": k}))
    s = pctx.stats["rhino-accumulate"]
    assert (s["microbatches"], s["batch"]) == (k, 8)
    # 3 weight + 3 bias gradients and the loss sum, all summed over micro-batches
    assert len(s["accumulators"]) == 7 and {a["combiner"] for a in s["accumulators"]} == {"add"}
    assert sorted(i for i, _ in s["sliced_args"]) == [len(args) - 2, len(args) - 1]   # x, y
    assert new.count("stablehlo.while") == 1 and f"tensor<{8 // k}x16xf32>" in new
    same(run_global(new, args), run_global(text, args))


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 4])
def test_gpt_tiny_adam_step_equals_one_batch(k):
    m = zoo.get("gpt-tiny", **GPT)
    text, _ = m.lower("train_step")
    args = later_step(m)
    new, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": k}))
    assert pctx.stats["rhino-accumulate"]["batch"] == 4
    same(run_global(new, args), run_global(text, args))


def test_one_microbatch_is_identity():
    m = zoo.get("mlp", **MLP)
    text, _ = m.lower("train_step")
    before, _ = rewrite(text)
    after, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": 1}))
    assert after == before and pctx.stats["rhino-accumulate"]["accumulators"] == []


def test_bf16_gradients_are_summed_in_f32():
    m = zoo.get("mlp", dims=(16, 32, 8), dtype="bfloat16")
    text, _ = m.lower("train_step_sgd")
    args = leaves(m.args("train_step_sgd"))
    new, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": 4}))
    accs = pctx.stats["rhino-accumulate"]["accumulators"]
    assert accs and all(a["type"].endswith("xf32>") or a["type"] == "tensor<f32>" for a in accs)
    ref = run_global(promote_f32(text), [a.astype(np.float32) for a in args])
    same(run_global(new, args), ref, dtype="bfloat16")


def test_partitioned_data_and_tensor_parallel():
    # batch over "x", Megatron MLP over "y": the loop partitions, each device slices its own
    # rows of every micro-batch, and the per-device program equals the one-device step
    text, args = programs.get("mlp_train_adam", "dp_tp_2x2")
    local, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": 2}), ("rhino-propagate", {}),
                          ("rhino-spmd-partition", {}))
    assert "stablehlo.while" in local and "tensor<2x2x16xf32>" in local    # (8, 16) -> 2 devices x (2, 2, 16)
    check_local(local, text, args)


def _loop_body(text: str) -> str:
    start = text.index("} do {")
    return text[start:text.index("\n    }\n", start)]


@pytest.mark.parametrize("k", [2, 4])
def test_data_parallel_gradients_complete_once_after_the_loop(k):
    # batch over "x"=4, weights replicated: each micro-batch's gradients are partial over
    # "x"; the accumulator carries stay partial (partition/spmd/carry.py), so the body has
    # no collective and each of the 5 sums (4 gradients, the loss) is all-reduced once
    m = zoo.get("mlp")                                          # (8, 16) -> 32 -> 8, Adam
    text, args = programs.build(m.fns["train_step"], m.args("train_step"), programs.M4,
                                {r"^\[2\]": ("x", None)})
    local, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": k}), ("rhino-propagate", {}),
                          ("rhino-spmd-partition", {}))
    assert "all_reduce" not in _loop_body(local)
    kinds = pctx.stats["rhino-spmd-partition"]["kinds"]
    assert kinds.count("all_reduce") == len(pctx.stats["rhino-accumulate"]["accumulators"]) == 5
    check_local(local, text, args)


def test_data_parallel_bf16_gradients_complete_once_in_f32():
    # rhino-accumulate sums bf16 gradients in f32 (c + convert(g)): each device widens its
    # own partial gradient, so the carries still stay partial and complete once, in f32
    m = zoo.get("mlp", dims=(16, 32, 8), dtype="bfloat16")
    text, args = programs.build(m.fns["train_step_sgd"], m.args("train_step_sgd"), programs.M4,
                                {r"^\[1\]": ("x", None)})
    local, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": 2}), ("rhino-propagate", {}),
                          ("rhino-spmd-partition", {}))
    assert "all_reduce" not in _loop_body(local)
    assert pctx.stats["rhino-spmd-partition"]["kinds"].count("all_reduce") == 5
    reduced = re.findall(r'"stablehlo.all_reduce".*?\}\) : \(tensor<([^>]*)>\)', local, re.S)
    assert len(reduced) == 5 and all(t.endswith("f32") for t in reduced), reduced    # in f32
    check_local(local, text, args)


def test_data_parallel_gpt_step_has_no_collective_in_the_loop():
    # gpt-tiny, batch 8 over "x"=4, 2 micro-batches: the token-embedding gradient is a
    # scatter-add of batch-sharded updates into zeros, partial like the matmul gradients
    # (analysis/local_rules.py), so it joins its partial carry: the body has no collective
    import jax
    from rhino_mlir.zoo import optim, transformer
    m = zoo.get("gpt-tiny", n_layer=1, seq=8, vocab=48, batch=8)
    _, loss, _, _ = transformer.make(m.cfg)

    def train_step(params, opt_state, batch):
        value, grads = jax.value_and_grad(loss)(params, batch)
        params, opt_state = optim.adam(params, grads, opt_state, eps=1e-5)   # see programs.gpt_train_step
        return params, opt_state, value

    params, state, batch = m.args("train_step")
    rng = np.random.default_rng(19)
    params = jax.tree_util.tree_map(lambda x: (x + 0.02 * rng.standard_normal(x.shape)).astype(x.dtype), params)
    text, args = programs.build(train_step, (params, state, batch), programs.M4, {r"^\[2\]": ("x", None)})
    local, pctx = rewrite(text, ("rhino-accumulate", {"microbatches": 2}), ("rhino-propagate", {}),
                          ("rhino-spmd-partition", {}))
    body = _loop_body(local)
    assert '"stablehlo.scatter"' in body
    # its operand is a zero table carried unchanged: seen through, no select of the first device
    assert "partition_id" not in body
    assert not re.search(r'"stablehlo\.(all_reduce|all_gather|reduce_scatter|all_to_all|collective_permute)"', body)
    check_local(local, text, args)


@pytest.mark.slow
def test_partitioned_gpt_train_step():
    text, args = programs.get("gpt_train_step", "dp_tp_2x2")
    local, _ = rewrite(text, ("rhino-accumulate", {"microbatches": 2}), ("rhino-propagate", {}),
                       ("rhino-spmd-partition", {}))
    check_local(local, text, args)


def test_four_microbatches_lower_the_xla_peak():
    # activations dominate: batch 4096 through four 256-wide layers (8 MiB per activation,
    # 0.8 MiB of weights); measured 37 MiB of temporaries -> 8 MiB (4.6x) with K = 4
    m = zoo.get("mlp", dims=(64, 256, 256, 256, 256, 64), batch=4096)
    text, _ = m.lower("train_step")
    base, _ = rewrite(text)
    new, _ = rewrite(text, ("rhino-accumulate", {"microbatches": 4}))
    before, after = xla_memory(base, 1).temporaries, xla_memory(new, 1).temporaries
    assert after * 3 < before, (before, after)


# ----------------------------------------------------------------------------- bad input

BN = """
func.func @main(%x: tensor<8x4xf32>, %w: tensor<4x4xf32>) -> tensor<8x4xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %1 = stablehlo.reduce(%0 init: %z) applies stablehlo.add across dimensions = [0] : (tensor<8x4xf32>, tensor<f32>) -> tensor<4xf32>
  %2 = stablehlo.broadcast_in_dim %1, dims = [1] : (tensor<4xf32>) -> tensor<8x4xf32>
  %3 = stablehlo.subtract %0, %2 : tensor<8x4xf32>
  return %3 : tensor<8x4xf32>
}
"""


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_microbatches_must_divide_the_batch():
    m = zoo.get("mlp", **MLP)
    text, _ = m.lower("train_step")
    with pytest.raises(RhinoError) as e:
        rewrite(text, ("rhino-accumulate", {"microbatches": 3}))
    assert one_line(e).startswith("rhino-accumulate: batch size 8 does not divide into 3 micro-batches; "
                                  "choose one of 1, 2, 4, 8")


def test_batch_statistic_mixed_back_is_refused():
    with pytest.raises(RhinoError) as e:
        rewrite(BN, ("rhino-accumulate", {"microbatches": 2, "batch_args": (0,)}))
    assert one_line(e).startswith("rhino-accumulate: %3 (stablehlo.subtract) mixes a value reduced over "
                                  "the whole batch")
