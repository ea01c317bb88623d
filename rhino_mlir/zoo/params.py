"""Parameter initialisation with jax.random, so `jax.eval_shape(init)` gives shapes
without allocating (a GPT-2-small train step lowers from ShapeDtypeStructs alone)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


class Keys:
    """An endless stream of PRNG keys from one seed."""

    def __init__(self, seed: int):
        self.key = jax.random.key(seed)

    def __call__(self):
        self.key, k = jax.random.split(self.key)
        return k


def normal(keys: Keys, shape, scale, dtype):
    return (scale * jax.random.normal(keys(), shape, jnp.float32)).astype(dtype)


def zeros(shape, dtype):
    return jnp.zeros(shape, dtype)


def ones(shape, dtype):
    return jnp.ones(shape, dtype)
