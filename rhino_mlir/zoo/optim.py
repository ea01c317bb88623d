"""Optimizers as pure functions over pytrees (no optax: the zoo stays plain JAX).

A training step is one function (forward + backward + update in one graph), so the
partitioner sees the optimizer state and its element-wise updates like any other op.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def sgd(params, grads, lr=1e-2):
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


def adam_init(params):
    zeros = lambda p: jnp.zeros_like(p)  # noqa: E731
    return {"m": jax.tree_util.tree_map(zeros, params),
            "v": jax.tree_util.tree_map(zeros, params),
            "step": jnp.zeros((), jnp.int32)}


def adam(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    step = state["step"] + 1
    t = step.astype(jnp.float32)
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state["v"], grads)
    # bias-corrected step: lr * m_hat / (sqrt(v_hat) + eps)
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    new = jax.tree_util.tree_map(
        lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
    return new, {"m": m, "v": v, "step": step}


def make_train_steps(loss_fn):
    """(train_step_sgd, train_step_adam) for a loss(params, batch) -> scalar."""
    def train_step_sgd(params, batch, lr=1e-2):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        return sgd(params, grads, lr), loss

    def train_step_adam(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        params, opt_state = adam(params, grads, opt_state)
        return params, opt_state, loss

    return train_step_sgd, train_step_adam
