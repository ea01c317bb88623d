"""Vision Transformer (Dosovitskiy et al. 2021): patches -> pre-LN encoder -> [CLS] head.

image (B, H, W, C) -> (B, N, P*P*C) patches (reshape/transpose: a stride-P conv written
as a matmul) -> linear embed (B, N, D); [CLS] token prepended, learned positions (N+1);
pre-LN blocks x + attn(ln(x)), x + mlp(ln(x)) (GELU, bidirectional); final LN, head on
[CLS]. ViT-Base/16: 12 x 768, 12 heads, MLP 3072, 224 x 224 images (196 patches),
1000 classes: 86.6M parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from . import layers as L
from .optim import make_train_steps
from .params import Keys


@dataclass(frozen=True)
class Config:
    n_layer: int = 2
    d_model: int = 32
    n_head: int = 4
    mlp_ratio: int = 4
    size: int = 16               # H = W
    patch: int = 4
    channels: int = 3
    classes: int = 10
    batch: int = 4
    dtype: str = "float32"
    scan_layers: bool = False


CONFIGS = {
    "vit-tiny": Config(),
    "vit-base": Config(n_layer=12, d_model=768, n_head=12, size=224, patch=16, classes=1000, batch=64),
}


def _layer(cfg, keys):
    D, dt = cfg.d_model, cfg.dtype
    return {"ln1": L.norm_params(keys, D, dt), "attn": L.attn_params(keys, D, dt),
            "ln2": L.norm_params(keys, D, dt), "ffn": L.ffn_params(keys, D, cfg.mlp_ratio * D, dt)}


def init(cfg: Config, keys: Keys):
    D, dt = cfg.d_model, cfg.dtype
    n, pdim = (cfg.size // cfg.patch) ** 2, cfg.patch * cfg.patch * cfg.channels
    return {"embed": {"w": keys.normal((pdim, D), 0.02, dt), "b": keys.zeros(D, dt)},
            "cls": keys.normal((1, 1, D), 0.02, dt), "pos": keys.normal((n + 1, D), 0.02, dt),
            "layers": L.stack([_layer(cfg, keys) for _ in range(cfg.n_layer)], keys, cfg.scan_layers),
            "ln_f": L.norm_params(keys, D, dt),
            "head": {"w": keys.normal((D, cfg.classes), 0.02, dt), "b": keys.zeros(cfg.classes, dt)}}


def make(cfg: Config) -> dict:
    P, nh = cfg.patch, cfg.n_head

    def layer(p, x):
        x = x + L.self_attention(p["attn"], L.norm(p["ln1"], x), nh)
        return x + L.ffn(p["ffn"], L.norm(p["ln2"], x), L.gelu)

    def forward(params, img):                                      # (B, H, W, C) -> (B, classes)
        B, H, W, C = img.shape
        x = img.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(B, (H // P) * (W // P), P * P * C)            # (B, N, P*P*C)
        x = x @ params["embed"]["w"] + params["embed"]["b"]         # (B, N, D)
        cls = jnp.broadcast_to(params["cls"], (B, 1, x.shape[-1]))
        x = jnp.concatenate([cls, x], axis=1) + params["pos"]       # (B, N+1, D)
        x = L.norm(params["ln_f"], L.apply_layers(layer, x, params["layers"], cfg.scan_layers))
        return x[:, 0] @ params["head"]["w"] + params["head"]["b"]

    def loss(params, batch):
        img, labels = batch
        return L.cross_entropy(forward(params, img), labels)

    sgd_step, adam_step = make_train_steps(loss)
    return {"forward": forward, "loss": loss, "train_step_sgd": sgd_step, "train_step": adam_step}


def batch(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((cfg.batch, cfg.size, cfg.size, cfg.channels)).astype(cfg.dtype),
            rng.integers(0, cfg.classes, (cfg.batch,), dtype=np.int32))
