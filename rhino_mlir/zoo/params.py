"""Parameter initialisation that works two ways from the same model code:

- Keys(seed)               : numpy, concrete and fast (no per-shape XLA compiles);
- Keys(seed, abstract=True): jax.random, so `jax.eval_shape(init)` gives shapes without
  allocating (a GPT-2-small train step lowers from ShapeDtypeStructs alone).
"""
from __future__ import annotations

import numpy as np


class Keys:
    def __init__(self, seed: int, abstract: bool = False):
        self.abstract = abstract
        if abstract:
            import jax
            self.key = jax.random.key(seed)
        else:
            self.rng = np.random.default_rng(seed)

    def normal(self, shape, scale, dtype):
        if not self.abstract:
            return (scale * self.rng.standard_normal(shape)).astype(dtype)
        import jax
        import jax.numpy as jnp
        self.key, k = jax.random.split(self.key)
        return (scale * jax.random.normal(k, shape, jnp.float32)).astype(dtype)

    def zeros(self, shape, dtype):
        return self._np().zeros(shape, dtype)

    def ones(self, shape, dtype):
        return self._np().ones(shape, dtype)

    def stack(self, xs):
        return self._np().stack(xs)

    def _np(self):
        if self.abstract:
            import jax.numpy as jnp
            return jnp
        return np
