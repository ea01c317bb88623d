"""GPT configurations from GPT-2 small to GPT-3 175B shapes, and greedy generation.

The model itself is transformer.py (nanoGPT layout, tied embeddings). Shapes follow the
GPT-2 paper (Radford et al. 2019, 117M/345M/1.5B; vocab 50257, context 1024) and the
GPT-3 paper (Brown et al. 2020, Table 2.1: 1.3B = 24 x 2048, 6.7B = 32 x 4096,
175B = 96 x 12288 with 96 heads; context 2048). The 1.3B uses 16 heads of 128 as in
Megatron-LM. Batches are per step (sequences), small where one node is the target; the
175B's 64 sequences are a micro-batch (the paper's 1536-sequence batch does not fit one
step without pipelining: its attention scores alone are 1.6 TB per device on 1024 GPUs).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from . import transformer


@dataclass(frozen=True)
class Config(transformer.Config):
    gen_tokens: int = 4          # generate(): new tokens written at the end of the buffer


CONFIGS = {
    "gpt-tiny": Config(),
    "gpt2-small": Config(**vars(transformer.GPT2_SMALL)),
    "gpt-125m": Config(n_layer=12, d_model=768, n_head=12, vocab=50257, seq=1024, batch=8),
    "gpt-350m": Config(n_layer=24, d_model=1024, n_head=16, vocab=50257, seq=1024, batch=8),
    "gpt-1.3b": Config(n_layer=24, d_model=2048, n_head=16, vocab=50257, seq=2048, batch=8),
    "gpt-1.5b": Config(n_layer=48, d_model=1600, n_head=25, vocab=50257, seq=1024, batch=8),
    "gpt-6.7b": Config(n_layer=32, d_model=4096, n_head=32, vocab=50257, seq=2048, batch=8),
    "gpt-175b": Config(n_layer=96, d_model=12288, n_head=96, vocab=50257, seq=2048, batch=64),
}


def make_generate(cfg: Config, forward):
    """generate(params, idx (B, T)) -> idx with its last gen_tokens positions replaced by
    greedy choices, one full forward per new token (a while loop over positions)."""
    T, n = cfg.seq, min(cfg.gen_tokens, cfg.seq - 1)

    def generate(params, idx):
        def step(t, buf):                                          # buf (B, T) int32
            logits = forward(params, buf)                          # (B, T, V)
            prev = jax.lax.dynamic_index_in_dim(logits, t - 1, axis=1, keepdims=False)  # (B, V)
            nxt = jnp.argmax(prev, axis=-1).astype(buf.dtype)      # (B,)
            return jax.lax.dynamic_update_index_in_dim(buf, nxt, t, axis=1)
        return jax.lax.fori_loop(T - n, T, step, idx)
    return generate


def make(cfg: Config) -> dict:
    fwd, loss, adam_step, sgd_step = transformer.make(cfg)
    return {"forward": fwd, "generate": make_generate(cfg, fwd), "loss": loss,
            "train_step_sgd": sgd_step, "train_step": adam_step}


init, batch = transformer.init, transformer.batch
