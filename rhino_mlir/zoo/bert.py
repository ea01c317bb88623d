"""BERT (Devlin et al. 2019): bidirectional post-LN encoder, masked-LM pre-training step.

embed = token + segment + position embeddings (gathers), LayerNorm; each layer
x = LN(x + attn(x)); x = LN(x + ffn(x)) (GELU); MLM head dense + GELU + LN, decoder tied
to the token embedding plus a bias. The loss is cross-entropy at the masked positions
(weights (B, T), 15% ones). Shapes: BERT-base 12 x 768 (12 heads), BERT-large 24 x 1024
(16 heads); vocab 30522 (WordPiece), 512 positions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import layers as L
from . import transformer
from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config(transformer.Config):
    """The transformer's sizes plus BERT's token-type vocabulary."""
    type_vocab: int = 2


CONFIGS = {
    "bert-tiny": Config(),
    "bert-base": Config(n_layer=12, d_model=768, n_head=12, vocab=30522, seq=512, batch=32),
    "bert-large": Config(n_layer=24, d_model=1024, n_head=16, vocab=30522, seq=512, batch=32),
}


def _layer(cfg: Config, keys: Keys):
    D, dt = cfg.d_model, cfg.dtype
    return {"attn": L.attn_params(keys, D, dt), "ln1": L.norm_params(keys, D, dt),
            "ffn": L.ffn_params(keys, D, cfg.mlp_ratio * D, dt), "ln2": L.norm_params(keys, D, dt)}


def init(cfg: Config, keys: Keys):
    D, dt = cfg.d_model, cfg.dtype
    return {"tok": keys.normal((cfg.vocab, D), 0.02, dt), "seg": keys.normal((cfg.type_vocab, D), 0.02, dt),
            "pos": keys.normal((cfg.seq, D), 0.02, dt), "ln_emb": L.norm_params(keys, D, dt),
            "layers": L.stack([_layer(cfg, keys) for _ in range(cfg.n_layer)], keys, cfg.scan_layers),
            "mlm": {"w": keys.normal((D, D), 0.02, dt), "b": keys.zeros(D, dt),
                    "ln": L.norm_params(keys, D, dt), "bias": keys.zeros(cfg.vocab, dt)}}


def make(cfg: Config) -> dict:
    def layer(p, x):                                               # post-LN
        x = L.norm(p["ln1"], x + L.self_attention(p["attn"], x, cfg.n_head))
        return L.norm(p["ln2"], x + L.ffn(p["ffn"], x, L.gelu))

    def encode(params, inputs):                                    # tokens, segments (B, T)
        tok, seg = inputs
        T = tok.shape[1]
        x = params["tok"][tok] + params["seg"][seg] + params["pos"][:T]  # (B, T, D)
        x = L.norm(params["ln_emb"], x)
        return L.apply_layers(layer, x, params["layers"], cfg.scan_layers)

    def forward(params, inputs):                                   # MLM logits (B, T, V)
        h = L.gelu(encode(params, inputs) @ params["mlm"]["w"] + params["mlm"]["b"])
        h = L.norm(params["mlm"]["ln"], h)
        return h @ params["tok"].T + params["mlm"]["bias"]

    def loss(params, batch):
        tok, seg, targets, weights = batch
        return L.cross_entropy(forward(params, (tok, seg)), targets, weights)

    sgd_step, adam_step = make_train_steps(loss)
    return {"forward": forward, "encode": encode, "loss": loss,
            "train_step_sgd": sgd_step, "train_step": adam_step}


def batch(cfg: Config, seed: int = 0):
    """(tokens, segments, targets, weights): 15% of positions are predicted."""
    rng = np.random.default_rng(seed + 1)
    shape = (cfg.batch, cfg.seq)
    targets = L.tokens(rng, cfg.vocab, shape)
    weights = (rng.random(shape) < 0.15).astype(np.float32)
    weights[:, 0] = 1.0                                            # at least one per row
    tok = np.where(weights > 0, 0, targets).astype(np.int32)       # id 0 plays [MASK]
    seg = (np.arange(cfg.seq)[None, :] >= cfg.seq // 2).astype(np.int32).repeat(cfg.batch, 0)
    return tok, seg, targets, weights


def inputs(cfg: Config, seed: int = 0):
    return batch(cfg, seed)[:2]
