"""Tiny random-initialised keras-hub models as plain-JAX train steps, lowered to StableHLO.

Real model code (keras-hub's GPT-2, Llama, Mixtral, BERT, ResNet) is the input the product
must handle unannotated: chlo ops in every norm, top_k routers, attention masks, gathers
from embedding tables, max-pool gradients. Every model is built from a config (no
downloads), with dropout off (no RNG loops) and sizes small enough that a train step
compiles and runs in seconds on two cores.

A step is `(params, state, m, v, t, batch) -> (loss, params', state', m', v')`: loss and
gradients of the model's `stateless_call` (jax.grad), then Adam written in jax. `state` is
keras' non-trainable variables (BatchNorm statistics); `t` is the step number (f32).
Lowered by `rhino_mlir.frontend.lower`, so @main's argument i is flattened leaf i and the
inputs are saved as `arg<i>` in an npz.

    KERAS_BACKEND=jax python tests/harness/keras_steps.py gpt2 -o DIR   # DIR/step.mlir, in.npz
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np

MODELS = ("gpt2", "llama", "mixtral", "bert", "resnet")
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def available() -> str | None:
    """None when keras-hub can build models here, else why not (a skip reason). Looks for
    the packages without importing them (test collection stays fast)."""
    import importlib.util
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        return f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}; these steps need the jax backend"
    missing = [m for m in ("keras", "keras_hub") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed; `make venv` installs keras==3.15.* and "
                "keras-hub==0.32.* (--no-deps)")
    return None


@dataclass
class Step:
    name: str
    text: str                       # global StableHLO of the train step
    inputs: list[np.ndarray]        # @main arguments, in order (arg0, arg1, ...)
    fn: Callable                    # the step as a JAX function of `args`
    args: tuple                     # (params, state, m, v, t, batch)
    arg_paths: list[str]
    result_paths: list[str]

    def save(self, out: str | os.PathLike) -> tuple[Path, Path]:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "step.mlir").write_text(self.text)
        np.savez(out / "in.npz", **{f"arg{i}": x for i, x in enumerate(self.inputs)})
        return out / "step.mlir", out / "in.npz"

    def reference(self):
        """The step run by JAX (XLA) on one device, the oracle for the ranks' outputs, with
        its rounding noise (a rerun on one-ulp-perturbed inputs, as `--check` measures it):
        a `check.References` for `check.compare`."""
        import jax
        from rhino_mlir.launch.build.check import References, noise_of, perturb
        f = jax.jit(self.fn)
        tree = jax.tree_util.tree_structure(self.args)
        run = lambda xs: [np.asarray(r) for r in jax.tree_util.tree_leaves(  # noqa: E731
            f(*jax.tree_util.tree_unflatten(tree, xs)))]
        refs = run(self.inputs)
        return References(refs, noise_of(refs, run(perturb(self.inputs))))


# ----------------------------------------------------------------------------- models

def _lm_batch(rng, batch: int, seq: int, vocab: int, segments: bool = False) -> dict:
    ids = rng.integers(0, vocab, (batch, seq + 1)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    mask[0, -2:] = 0                               # a padded tail: the masks matter
    b = {"token_ids": ids[:, :-1], "padding_mask": mask, "labels": ids[:, 1:]}
    if segments:
        b["segment_ids"] = np.zeros((batch, seq), np.int32)
    return b


def _build(name: str, rng, vocab: int = 64, layers: int = 2):
    """(keras model mapping batch features -> logits, batch dict, loss kind)."""
    import keras_hub as kh
    V, S, B, L = vocab, 8, 2, layers
    if name == "gpt2":
        bb = kh.models.GPT2Backbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, dropout=0.0, max_sequence_length=S)
        return kh.models.GPT2CausalLM(backbone=bb, preprocessor=None), _lm_batch(rng, B, S, V), "lm"
    if name == "llama":
        bb = kh.models.LlamaBackbone(vocabulary_size=V, num_layers=L, num_query_heads=4,
                                     num_key_value_heads=2, hidden_dim=16, intermediate_dim=32)
        return kh.models.LlamaCausalLM(backbone=bb, preprocessor=None), _lm_batch(rng, B, S, V), "lm"
    if name == "mixtral":
        bb = kh.models.MixtralBackbone(vocabulary_size=V, num_layers=L, num_query_heads=4,
                                       num_key_value_heads=2, hidden_dim=16, intermediate_dim=32,
                                       num_experts=4, top_k=2, sliding_window=S)
        return kh.models.MixtralCausalLM(backbone=bb, preprocessor=None), _lm_batch(rng, B, S, V), "lm"
    if name == "bert":
        bb = kh.models.BertBackbone(vocabulary_size=V, num_layers=L, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, dropout=0.0, max_sequence_length=S)
        model = kh.models.BertTextClassifier(backbone=bb, num_classes=3, preprocessor=None,
                                             dropout=0.0)
        b = _lm_batch(rng, B, S, V, segments=True)
        b["labels"] = rng.integers(0, 3, (B,)).astype(np.int32)
        return model, b, "cls"
    if name == "resnet":
        # keras-hub's ResNet stem pools by max (pool1_pool): select_and_scatter in the backward
        bb = kh.models.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[3],
                                      stackwise_num_filters=[64], stackwise_num_blocks=[1],
                                      stackwise_num_strides=[1], block_type="basic_block",
                                      image_shape=(16, 16, 3))
        model = kh.models.ResNetImageClassifier(backbone=bb, num_classes=3, preprocessor=None)
        b = {"images": rng.standard_normal((B, 16, 16, 3)).astype(np.float32),
             "labels": rng.integers(0, 3, (B,)).astype(np.int32)}
        return model, b, "cls"
    raise ValueError(f"unknown keras model '{name}' (expected one of {', '.join(MODELS)})")


def _features(batch: dict):
    x = {k: v for k, v in batch.items() if k != "labels"}
    return x["images"] if set(x) == {"images"} else x


def make_step(model, kind: str) -> Callable:
    import jax
    import jax.numpy as jnp

    def loss_fn(params, state, batch):
        logits, state = model.stateless_call(params, state, _features(batch), training=True)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        nll = -jnp.take_along_axis(logp, batch["labels"][..., None], axis=-1)[..., 0]
        if kind == "lm":                           # mean over real (unpadded) tokens
            w = batch["padding_mask"].astype(jnp.float32)
            return jnp.sum(nll * w) / jnp.sum(w), state
        return jnp.mean(nll), state

    def step(params, state, m, v, t, batch):
        (loss, state), g = jax.value_and_grad(loss_fn, has_aux=True)(params, state, batch)
        t = t + 1.0
        m = [B1 * a + (1 - B1) * b for a, b in zip(m, g)]
        v = [B2 * a + (1 - B2) * jnp.square(b) for a, b in zip(v, g)]
        lr = LR * jnp.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        params = [p - lr * a / (jnp.sqrt(b) + EPS) for p, a, b in zip(params, m, v)]
        return loss, params, state, m, v
    return step


def build_step(name: str, seed: int = 0, donate: bool = False, vocab: int = 64,
               fresh: bool = False, layers: int = 2) -> Step:
    """The lowered train step of one model, with its concrete inputs; `donate` marks
    params, state and moments as aliased to their updates (jax's donate_argnums)."""
    reason = available()
    if reason:
        raise RuntimeError(reason)
    import jax
    import keras
    from rhino_mlir.frontend import lower
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras runs the {keras.backend.backend()} backend; set KERAS_BACKEND=jax "
                           "before keras is imported")
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model, batch, kind = _build(name, rng, vocab, layers)
    params = [np.asarray(v.value) for v in model.trainable_variables]
    state = [np.asarray(v.value) for v in model.non_trainable_variables]
    if fresh:       # the first step: zero moments (a zero gradient leaves pure noise in m, v)
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
    else:           # non-zero moments: zeros would hide errors in the m/v update
        m = [rng.standard_normal(p.shape).astype(p.dtype) * 1e-3 for p in params]
        v = [np.abs(rng.standard_normal(p.shape)).astype(p.dtype) * 1e-6 for p in params]
    args = (params, state, m, v, np.float32(0.0 if fresh else 3.0), batch)
    fn = make_step(model, kind)
    text, info = lower(fn, *args, donate_argnums=(0, 1, 2, 3) if donate else ())
    inputs = [np.asarray(x) for x in jax.tree_util.tree_leaves(args)]
    return Step(name, text, inputs, fn, args, info.arg_paths, info.result_paths)


def ops_count(text: str) -> int:
    """Operations in the program, nested regions included (module and functions not)."""
    from rhino_mlir import ir as I
    mod = I.parse_module(text, I.new_context())
    return sum(1 for op in I.walk_ops(mod.operation)
               if op.name not in ("builtin.module", "func.func"))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=MODELS)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--reference", action="store_true", help="also write ref.npz (JAX outputs)")
    ap.add_argument("--donate", action="store_true", help="params and moments donated (aliased)")
    ap.add_argument("--fresh", action="store_true", help="first step: zero Adam moments")
    ap.add_argument("--vocab", type=int, default=64, help="vocabulary size of the language models")
    ap.add_argument("--layers", type=int, default=2, help="transformer layers")
    a = ap.parse_args()
    st = build_step(a.model, donate=a.donate, vocab=a.vocab, fresh=a.fresh, layers=a.layers)
    mlir, npz = st.save(a.out)
    if a.reference:
        np.savez(Path(a.out) / "ref.npz", **{f"out{i}": r for i, r in enumerate(st.reference())})
    print(f"{mlir}: {ops_count(st.text)} ops, {len(st.inputs)} inputs -> {npz}")
