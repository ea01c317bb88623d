"""Model zoo: small, configurable plain-JAX models for the demo, tests and benchmarks.

    m = zoo.get("gpt-tiny", n_layer=3)       # config fields as overrides
    params = m.init(seed=0)
    args = m.args("train_step", abstract=True)   # ShapeDtypeStructs: no memory needed
    text, info = m.lower("train_step")
Every model has "forward", "train_step" (forward + backward + Adam) and
"train_step_sgd"; GPT and T5 also "generate" (greedy decoding in a while loop); each
function's argument layout is in `Model.signature`. Families: GPT (gpt-tiny,
gpt-125m ... gpt-175b), BERT, T5, GShard MoE, Wide-ResNet, ViT (a tiny config each,
big ones lower from shapes only), plus mlp, cnn, moe and transformer-block.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import bert, cnn, gpt, gshard, mlp, moe, t5, transformer, vit, wrn
from .optim import adam_init
from .params import Keys


@dataclass
class Model:
    name: str
    cfg: Any
    fns: dict[str, Callable]
    _init: Callable[[Keys], Any]
    _batch: Callable[[int], Any]
    _inputs: Callable[[int], Any] | None = None      # default: the batch's first item
    # per function: which example values it takes, in order
    signature: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: {
        "forward": ("params", "inputs"),
        "generate": ("params", "inputs"),
        "encode": ("params", "inputs"),
        "loss": ("params", "batch"),
        "train_step_sgd": ("params", "batch"),
        "train_step": ("params", "opt_state", "batch")})

    def init(self, seed: int = 0):
        """Concrete parameters (numpy)."""
        return self._init(Keys(seed))

    def batch(self, seed: int = 0):
        return self._batch(seed)

    def inputs(self, seed: int = 0):
        return self._inputs(seed) if self._inputs else self._batch(seed)[0]

    def args(self, fn: str = "forward", seed: int = 0, abstract: bool = False) -> tuple:
        """Example arguments of `fn`; abstract=True gives jax.ShapeDtypeStructs."""
        import jax
        if fn not in self.fns:
            raise KeyError(f"model '{self.name}' has no function '{fn}' (has: {', '.join(self.fns)})")
        make = {"params": lambda: self._init(Keys(seed, abstract)),
                "opt_state": lambda: adam_init(self._init(Keys(seed, abstract))),
                "batch": lambda: self._batch(seed),
                "inputs": lambda: self.inputs(seed)}
        if abstract:  # shapes only, traced: never allocates the parameters
            return tuple(jax.eval_shape(lambda: tuple(make[k]() for k in self.signature[fn])))
        # concrete: numpy throughout (eager jax would compile once per shape)
        vals = [make[k]() if k != "opt_state" else jax.tree_util.tree_map(
                    lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(make[k]))
                for k in self.signature[fn]]
        return tuple(jax.tree_util.tree_map(np.asarray, vals))

    def n_params(self) -> int:
        """Number of parameters, from shapes alone."""
        import jax
        shapes = jax.eval_shape(lambda: self._init(Keys(0, True)))
        return int(sum(np.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes)))

    def lower(self, fn: str = "forward", abstract: bool = True, donate_argnums=()):
        from ..frontend import lower
        return lower(self.fns[fn], *self.args(fn, abstract=abstract), donate_argnums=donate_argnums)


def _mlp(**kw) -> Model:
    cfg = mlp.Config(**kw)
    return Model("mlp", cfg, {"forward": mlp.forward, "loss": mlp.loss,
                              "train_step_sgd": mlp.train_step_sgd, "train_step": mlp.train_step_adam},
                 lambda k: mlp.init(cfg, k), lambda s: mlp.batch(cfg, s))


def _family(module, name: str, base):
    """A model of a family module (Config, CONFIGS, init, make -> fns, batch[, inputs])."""
    def make(**kw) -> Model:
        cfg = dataclasses.replace(base, **kw)
        inputs = getattr(module, "inputs", None)
        return Model(name, cfg, module.make(cfg), lambda k: module.init(cfg, k),
                     lambda s: module.batch(cfg, s), (lambda s: inputs(cfg, s)) if inputs else None)
    return make


def _block(**kw) -> Model:
    cfg = dataclasses.replace(transformer.Config(n_layer=1), **kw)
    fwd = transformer.make_block(cfg)

    def x(s):
        rng = np.random.default_rng(s + 1)
        return (rng.standard_normal((cfg.batch, cfg.seq, cfg.d_model)).astype(cfg.dtype),)
    loss = lambda p, b: (fwd(p, b[0]) ** 2).mean()  # noqa: E731
    from .optim import make_train_steps
    sgd_step, adam_step = make_train_steps(loss)
    return Model("transformer-block", cfg, {"forward": fwd, "loss": loss,
                                            "train_step_sgd": sgd_step, "train_step": adam_step},
                 lambda k: transformer.init_block(cfg, k), x)


def _cnn(**kw) -> Model:
    cfg = cnn.Config(**kw)
    return Model("cnn", cfg, {"forward": cnn.forward, "loss": cnn.loss,
                              "train_step_sgd": cnn.train_step_sgd, "train_step": cnn.train_step_adam},
                 lambda k: cnn.init(cfg, k), lambda s: cnn.batch(cfg, s))


def _moe(**kw) -> Model:
    cfg = moe.Config(**kw)
    fwd, loss, adam_step, sgd_step = moe.make(cfg)
    return Model("moe", cfg, {"forward": fwd, "loss": loss, "train_step_sgd": sgd_step,
                              "train_step": adam_step},
                 lambda k: moe.init(cfg, k), lambda s: moe.batch(cfg, s))


_REGISTRY: dict[str, Callable[..., Model]] = {
    "mlp": _mlp,
    "transformer-block": _block,
    "cnn": _cnn,
    "moe": _moe,
}
for _mod in (gpt, bert, t5, gshard, wrn, vit):
    for _name, _cfg in _mod.CONFIGS.items():
        _REGISTRY[_name] = _family(_mod, _name, _cfg)


def names() -> list[str]:
    return sorted(_REGISTRY)


# one small config per family: seconds to lower, plan and run on 4 CPU devices
SMALL = ("mlp", "transformer-block", "cnn", "moe", "gpt-tiny", "bert-tiny", "t5-tiny",
         "gshard-moe-tiny", "wrn-tiny", "vit-tiny")


def get(name: str, **overrides) -> Model:
    """A zoo model; keyword overrides replace fields of its config."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown zoo model '{name}' (known: {', '.join(names())})")
    return _REGISTRY[name](**overrides)
