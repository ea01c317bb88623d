"""Broken local programs for `--check` (it must FAIL on them) and a noisy one (it must pass).

The program is one Adam step, from zero moments, of a causal attention layer with a key
bias, its sequence split over the devices: the query positions of a device start at a
partition_id-derived offset (the causal mask's iota), and the gradients are summed over
the sequence shards by all_reduce / reduce_scatter. The key bias gradient is zero in exact
arithmetic (softmax ignores a per-row constant), so it, its Adam moments and its update
are rounding noise on every side: the case `--check` used to cry wolf on.

Mutants edit the local program text:
  shard_table   the table of shard indices read with partition_id, e.g. [0, 1] -> [1, 0]
                (swapped shards) or [0, 0] (device 1 at device 0's offset)
  drop_all_reduce   the k-th all_reduce removed, its operand used in its place (a partial
                sum where a total belongs)
`outputs_reached` names the @main results that depend on a value (text def-use), so a test
can assert that `--check` names only outputs the mutation can reach.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np


def attention_step(p, m, v, x, y):
    """(loss, params', m', v'): one Adam step (zero moments, step 1) of causal attention."""
    import jax
    import jax.numpy as jnp

    def loss(p):
        q = x @ p["wq"] + p["bq"]                          # (B, S, D)
        k = x @ p["wk"] + p["bk"]                          # bk: a constant per query row
        s = jnp.einsum("bqd,bkd->bqk", q, k) / 4.0         # (B, S, S)
        pos = jnp.arange(x.shape[1])
        a = jax.nn.softmax(jnp.where(pos[:, None] >= pos[None, :], s, -1e9), axis=-1)
        o = jnp.einsum("bqk,bkd->bqd", a, x @ p["wv"]) @ p["wo"]
        return jnp.mean((o - y) ** 2)
    lval, g = jax.value_and_grad(loss)(p)
    m = {n: 0.9 * m[n] + 0.1 * g[n] for n in p}
    v = {n: 0.999 * v[n] + 0.001 * g[n] ** 2 for n in p}
    p = {n: p[n] - 1e-3 * (m[n] / 0.1) / (jnp.sqrt(v[n] / 0.001) + 1e-8) for n in p}
    return lval, p, m, v


def attention_args(batch: int = 2, seq: int = 8, d: int = 16, seed: int = 0):
    r = np.random.default_rng(seed)
    f = lambda *s: (r.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    p = {"wq": f(d, d), "bq": f(d), "wk": f(d, d), "bk": f(d), "wv": f(d, d), "wo": f(d, d)}
    zeros = {n: np.zeros_like(a) for n, a in p.items()}
    return p, zeros, dict(zeros), f(batch, seq, d), f(batch, seq, d)


def annotated_attention(n: int = 2) -> tuple[str, list[np.ndarray], list[np.ndarray], list[str]]:
    """(global program with x, y sharded on the sequence over n devices, inputs, JAX
    outputs, result paths)."""
    import jax
    from rhino_mlir.frontend import annotate, lower
    from rhino_mlir.sharding import Mesh
    args = attention_args()
    text, info = lower(attention_step, *args)
    sh = [(None, "x", None) if p in ("[3]", "[4]") else None for p in info.arg_paths]
    text = annotate(text, Mesh("mesh", (("x", n),)), sh)
    inputs = [np.asarray(a) for a in jax.tree_util.tree_leaves(args)]
    refs = [np.asarray(r) for r in jax.tree_util.tree_leaves(jax.jit(attention_step)(*args))]
    return text, inputs, refs, info.result_paths


# ----------------------------------------------------------------------------- mutants

_TABLE = re.compile(r"(stablehlo\.constant dense<)\[([0-9, ]+)\](> : tensor<\d+xi32>)")


def shard_table(text: str, table: list[int]) -> tuple[str, str]:
    """(text with the first partition_id lookup table `dense<[0, 1, ...]>` replaced by
    `table`, the SSA name of that constant)."""
    m = next((m for m in _TABLE.finditer(text)
              if [int(v) for v in m.group(2).split(",")] == list(range(len(table)))), None)
    if m is None:
        raise ValueError("no identity shard-index table in the local program")
    name = re.search(r"(%[\w.]+) = $", text[:m.start()].rsplit("\n", 1)[1]).group(1)
    new = m.group(1) + "[" + ", ".join(map(str, table)) + "]" + m.group(3)
    return text[:m.start()] + new + text[m.end():], name


def drop_all_reduce(text: str, k: int = 0) -> tuple[str, str]:
    """(text with the k-th all_reduce removed and its operand used instead, the SSA name
    of the removed result: what changed is what it reached in the original text)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if '"stablehlo.all_reduce"(' in line]
    i = starts[k]
    m = re.match(r"\s*(%[\w.]+) = \"stablehlo\.all_reduce\"\((%[\w.#]+)\)", lines[i])
    res, arg = m.group(1), m.group(2)
    end = i
    while not lines[end].lstrip().startswith("}) :"):   # the reducer region's end
        end += 1
    rest = "\n".join(lines[:i] + lines[end + 1:])
    return re.sub(re.escape(res) + r"(?![\w.#])", arg, rest) + "\n", res


def outputs_reached(text: str, value: str) -> set[int]:
    """Indices of @main results that depend on SSA `value` (forward closure over the text)."""
    main = text[text.index("func.func public @main"):]
    body = main[:main.index("\n    return ") + 1 + main[main.index("\n    return "):].index("\n", 1)]
    reached = {value}
    for line in body.splitlines():
        m = re.match(r"\s*(%[\w.]+)(?::\d+)? = (.*)", line)
        if m and any(u in reached for u in re.findall(r"%[\w.]+", m.group(2))):
            reached.add(m.group(1))
    ret = body.splitlines()[-1].split("return", 1)[1].split(":")[0]
    names = [re.sub(r"#\d+$", "", v.strip()) for v in ret.split(",")]
    return {i for i, v in enumerate(names) if v in reached}


# ----------------------------------------------------------------------------- running

def run_local_threads(local_text: str, global_text: str, inputs: list[np.ndarray],
                      out: Path) -> tuple[dict, object]:
    """Compile one local program into an artifact at `out` and run it on the threads
    backend (one thread per device, the ranks' Executor): (outputs by name, artifact)."""
    from rhino_mlir.launch.artifact import read_artifact
    from rhino_mlir.launch.build.single_stage import compile_local
    from rhino_mlir.launch.rank.comm import ThreadWorld
    from rhino_mlir.launch.rank.layout import assemble_value, slice_value
    from rhino_mlir.launch.rank.runtime import Executor
    art = read_artifact(compile_local(local_text, out, global_text=global_text), verify=False)
    n, meshes = art.num_devices, art.meshes
    per_arg = [slice_value(x, s, meshes, n) for x, s in zip(inputs, art.inputs)]
    prog = art.program("main")
    world = ThreadWorld(n, timeout=60)
    comms, res, errs = world.communicators(), [None] * n, []

    def body(d):
        try:
            with Executor(art.path(prog.vmfb), comms[d], entry=prog.entry,
                          imports=prog.imports, device_index=d) as ex:
                res[d] = ex(*[pa[d] for pa in per_arg])
        except Exception as e:                          # noqa: BLE001 (re-raised below)
            errs.append(e)
            world.barrier_.abort()
    threads = [threading.Thread(target=body, args=(d,)) for d in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    if errs:
        raise errs[0]
    return {s.name: assemble_value([res[d][i] for d in range(n)], s, meshes, n)
            for i, s in enumerate(art.outputs)}, art
