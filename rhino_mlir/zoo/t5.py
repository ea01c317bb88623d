"""T5 (Raffel et al. 2020): encoder-decoder, pre-RMSNorm, relative position biases.

encoder: x + attn(rms(x)) (bidirectional, bias from relative-position buckets),
x + ffn(rms(x)) (ReLU, no biases); decoder adds causal self-attention (its own
buckets) and cross-attention to the encoder output. Embedding shared by encoder,
decoder and the output projection (scaled by d^-0.5, as in T5). No 1/sqrt(hs) in
attention (T5 folds it into the initialisation). The bucket tables are computed from
iota in the program, so no (T, S) constant is baked into the IR.
Shapes: T5-base 12 + 12 layers, d 768, 12 heads, d_ff 3072, vocab 32128 (SentencePiece),
inputs 512 / targets 128 tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import layers as L
from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    n_layer: int = 2             # encoder layers (and decoder layers unless n_dec_layer)
    n_dec_layer: int = 0         # 0: same as n_layer
    d_model: int = 32
    n_head: int = 4
    d_ff: int = 64
    vocab: int = 64
    seq: int = 16                # encoder tokens
    dec_seq: int = 8             # decoder tokens
    batch: int = 2
    buckets: int = 32
    max_distance: int = 128
    gen_tokens: int = 4
    dtype: str = "float32"
    scan_layers: bool = False


CONFIGS = {
    "t5-tiny": Config(),
    "t5-base": Config(n_layer=12, d_model=768, n_head=12, d_ff=3072, vocab=32128, seq=512,
                      dec_seq=128, batch=32),
}


def rel_buckets(T: int, S: int, bidirectional: bool, n_buckets: int, max_distance: int):
    """(T, S) int32 bucket of key position - query position (T5's log-spaced buckets)."""
    n = jnp.arange(T, dtype=jnp.int32)[:, None] - jnp.arange(S, dtype=jnp.int32)[None, :]
    out = jnp.zeros((T, S), jnp.int32)
    if bidirectional:
        n_buckets //= 2
        out = out + (n < 0).astype(jnp.int32) * n_buckets
        n = jnp.abs(n)
    else:
        n = jnp.maximum(n, 0)
    exact = n_buckets // 2
    far = exact + (jnp.log(jnp.maximum(n, 1).astype(jnp.float32) / exact)
                   / np.log(max_distance / exact) * (n_buckets - exact)).astype(jnp.int32)
    return out + jnp.where(n < exact, n, jnp.minimum(far, n_buckets - 1))


def _bias(table, T, S, bidirectional, cfg):                        # (1, nh, T, S)
    b = table[rel_buckets(T, S, bidirectional, cfg.buckets, cfg.max_distance)]  # (T, S, nh)
    return b.transpose(2, 0, 1)[None]


def _enc_layer(cfg, keys):
    D, dt = cfg.d_model, cfg.dtype
    return {"ln1": L.norm_params(keys, D, dt, bias=False), "attn": L.attn_params(keys, D, dt, bias=False),
            "ln2": L.norm_params(keys, D, dt, bias=False), "ffn": L.ffn_params(keys, D, cfg.d_ff, dt, bias=False)}


def _dec_layer(cfg, keys):
    p = _enc_layer(cfg, keys)
    p["ln_x"] = L.norm_params(keys, cfg.d_model, cfg.dtype, bias=False)
    p["xattn"] = L.attn_params(keys, cfg.d_model, cfg.dtype, bias=False, cross=True)
    return p


def init(cfg: Config, keys: Keys):
    D, dt, s = cfg.d_model, cfg.dtype, cfg.scan_layers
    n_dec = cfg.n_dec_layer or cfg.n_layer
    return {"emb": keys.normal((cfg.vocab, D), 1.0, dt),
            "enc_rel": keys.normal((cfg.buckets, cfg.n_head), 0.1, dt),
            "dec_rel": keys.normal((cfg.buckets, cfg.n_head), 0.1, dt),
            "enc": L.stack([_enc_layer(cfg, keys) for _ in range(cfg.n_layer)], keys, s),
            "dec": L.stack([_dec_layer(cfg, keys) for _ in range(n_dec)], keys, s),
            "enc_ln": L.norm_params(keys, D, dt, bias=False), "dec_ln": L.norm_params(keys, D, dt, bias=False)}


def make(cfg: Config) -> dict:
    nh, relu = cfg.n_head, jax.nn.relu

    def encode(params, src):                                       # src (B, S) -> (B, S, D)
        S = src.shape[1]
        bias = _bias(params["enc_rel"], S, S, True, cfg)

        def layer(p, x):
            x = x + L.self_attention(p["attn"], L.norm(p["ln1"], x), nh, bias=bias, scale=False)
            return x + L.ffn(p["ffn"], L.norm(p["ln2"], x), relu)
        x = L.apply_layers(layer, params["emb"][src], params["enc"], cfg.scan_layers)
        return L.norm(params["enc_ln"], x)

    def decode(params, mem, tgt):                                  # tgt (B, T) -> logits (B, T, V)
        T = tgt.shape[1]
        bias, causal = _bias(params["dec_rel"], T, T, False, cfg), L.causal_mask(T)

        def layer(p, x):
            x = x + L.self_attention(p["attn"], L.norm(p["ln1"], x), nh, causal, bias, scale=False)
            x = x + L.cross_attention(p["xattn"], L.norm(p["ln_x"], x), mem, nh, scale=False)
            return x + L.ffn(p["ffn"], L.norm(p["ln2"], x), relu)
        x = L.apply_layers(layer, params["emb"][tgt], params["dec"], cfg.scan_layers)
        x = L.norm(params["dec_ln"], x) * (cfg.d_model ** -0.5)
        return x @ params["emb"].T

    def forward(params, inputs):                                   # teacher forcing
        src, tgt = inputs
        return decode(params, encode(params, src), tgt)

    def generate(params, inputs):
        """Greedy: encoder once, then gen_tokens decoder passes writing positions 1..n."""
        src, tgt = inputs
        mem = encode(params, src)
        n = min(cfg.gen_tokens, tgt.shape[1] - 1)

        def step(t, buf):
            logits = decode(params, mem, buf)                      # (B, T, V)
            cur = jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)
            return jax.lax.dynamic_update_index_in_dim(buf, jnp.argmax(cur, -1).astype(buf.dtype), t + 1, 1)
        return jax.lax.fori_loop(0, n, step, tgt)

    def loss(params, batch):
        src, tgt_in, tgt_out = batch
        return L.cross_entropy(forward(params, (src, tgt_in)), tgt_out)

    sgd_step, adam_step = make_train_steps(loss)
    return {"forward": forward, "generate": generate, "loss": loss,
            "train_step_sgd": sgd_step, "train_step": adam_step}


def batch(cfg: Config, seed: int = 0):
    """(source, decoder input = targets shifted right with start id 0, targets)."""
    rng = np.random.default_rng(seed + 1)
    src = L.tokens(rng, cfg.vocab, (cfg.batch, cfg.seq))
    tgt = L.tokens(rng, cfg.vocab, (cfg.batch, cfg.dec_seq))
    tgt_in = np.concatenate([np.zeros((cfg.batch, 1), np.int32), tgt[:, :-1]], axis=1)
    return src, tgt_in, tgt


def inputs(cfg: Config, seed: int = 0):
    return batch(cfg, seed)[:2]
