"""Predicted step time and memory of a plan, op by op, fast enough to search with.

Each op is priced exactly as rhino-spmd-partition will run it: partition/spmd/strategy.py
picks its factor sharding and reshard steps, a timer turns FLOPs and steps into
seconds. Values are reduced to keys (shape, decision group of each dim): values with
one key always get one sharding, so ops with equal (label, operand keys, result keys)
cost the same and are priced once, times their count (identical layers collapse).
Memory is a liveness sweep (arguments live throughout, outputs to the end) done with
numpy over precomputed allocation and free events.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ...analysis.graph import Graph
from ...sharding import Mesh, TensorSharding, axes_size
from .coarsen import DimClasses
from ..spmd.reshard import plan as reshard_plan
from ..spmd.strategy import Layout, Tensor, choose, parallelism, steps


@dataclass
class Cost:
    time: float = 0.0
    compute: float = 0.0
    comm: float = 0.0
    bytes_by_axis: dict = field(default_factory=dict)

    def add(self, other: "Cost", k: float = 1.0) -> None:
        self.time += k * other.time
        self.compute += k * other.compute
        self.comm += k * other.comm
        for a, b in other.bytes_by_axis.items():
            self.bytes_by_axis[a] = self.bytes_by_axis.get(a, 0.0) + k * b


@dataclass
class OpType:
    node: object                  # a representative graph Node
    count: float                  # how many ops (times trips) share it
    ops: tuple[int, ...]          # operand value keys
    res: tuple[int, ...]          # result value keys


class Space:
    """Value keys, op types and memory events of one graph under one coarsening."""

    def __init__(self, g: Graph, dc: DimClasses):
        self.g, self.dc = g, dc
        keys: dict = {}
        self.vkey = []
        for v, shape in enumerate(g.shapes):
            k = (tuple(shape), g.ebytes[v], tuple(dc.group_of[c] if (c := dc.of.get((v, d))) is not None else -1
                                                  for d in range(len(shape))))
            self.vkey.append(keys.setdefault(k, len(keys)))
        self.keys = list(keys)
        types: dict = {}
        for n in g.nodes:
            k = (n.label, n.kind, tuple(self.vkey[v] for v in n.operands), tuple(self.vkey[v] for v in n.results))
            t = types.get(k)
            if t is None:
                types[k] = OpType(n, float(n.trips), k[2], k[3])
            else:
                t.count += n.trips
        self.types = list(types.values())
        by_group = defaultdict(set)
        for i, t in enumerate(self.types):
            for k in t.ops + t.res:
                for gi in self.keys[k][2]:
                    if gi >= 0:
                        by_group[gi].add(i)
        self.scope = [sorted(by_group[gi]) for gi in range(len(dc.groups))]
        self._events()

    def _events(self) -> None:
        g = self.g
        last = [-1] * len(g.values)
        for n in g.nodes:
            for v in n.operands:
                last[v] = n.idx
        outs = set(g.outputs)
        args = set(g.args)
        alloc_k, alloc_t, free_k, free_t = [], [], [], []
        seen = set(args)
        for n in g.nodes:
            if n.kind == "tie":
                continue
            for v in n.results:
                if v not in seen:
                    seen.add(v)
                    alloc_k.append(v)
                    alloc_t.append(n.idx)
                    if v not in outs and last[v] >= 0:
                        free_k.append(v)
                        free_t.append(last[v])
        self.n_nodes = max(1, len(g.nodes))
        self.vkey_arr = np.array(self.vkey, dtype=np.int64)
        self.arg_v = np.array(g.args, dtype=np.int64)                     # value ids
        self.out_v = np.array(sorted(outs - args), dtype=np.int64)
        self.alloc = (np.array(alloc_k, dtype=np.int64), np.array(alloc_t, dtype=np.int64))
        self.free = (np.array(free_k, dtype=np.int64), np.array(free_t, dtype=np.int64))


class Evaluator:
    def __init__(self, space: Space, mesh: Mesh, timer):
        self.space, self.g, self.mesh, self.timer = space, space.g, mesh, timer
        self.cache: dict = {}

    # ------------------------------------------------------------------ time
    def type_cost(self, t: OpType, asg) -> Cost:
        key = (t.node.label, t.node.kind, tuple(self.space.keys[k][:2] for k in t.ops + t.res),
               tuple(asg.key_sharding(k).dims for k in t.ops), tuple(asg.key_sharding(k).dims for k in t.res))
        c = self.cache.get(key)
        if c is None:
            n = t.node
            c = self.cache[key] = self._price(n, [asg.key_sharding(k) for k in t.ops],
                                              [asg.key_sharding(k) for k in t.res])
        return c

    def _price(self, n, ops_sh, res_sh) -> Cost:
        g, mesh = self.g, self.mesh
        t = lambda v: Tensor(tuple(g.shapes[v]), g.ebytes[v])  # noqa: E731
        dtype = g.dtypes[n.results[0]] if n.results else "f32"
        if n.kind == "tie":
            a = n.operands[0]
            return self._comm([reshard_plan(ops_sh[0], res_sh[0], g.shapes[a], mesh, g.ebytes[a])])
        if n.kind == "opaque":
            rep = lambda s: TensorSharding.replicated_of(mesh.name, s.rank)  # noqa: E731
            c = self._comm([reshard_plan(s, rep(s), g.shapes[v], mesh, g.ebytes[v])
                            for v, s in zip(n.operands, ops_sh)])
            c.compute = self.timer.compute(n.flops, n.bytes, dtype)
            c.time += c.compute
            return c
        r = n.rule
        layouts = [Layout(s) for s in ops_sh]
        ops_t, res_t = [t(v) for v in n.operands], [t(v) for v in n.results]
        fsh = choose(r, n.comb, res_sh, layouts, ops_t, res_t, mesh)
        c = self._comm(steps(r, n.comb, fsh, res_sh, layouts, ops_t, res_t, mesh))
        par = parallelism(fsh, mesh)
        c.compute = self.timer.compute(n.flops / par, n.bytes / par, dtype)
        c.time += c.compute
        return c

    def _comm(self, step_lists) -> Cost:
        c = Cost()
        for ss in step_lists:
            for s in ss:
                if s.kind == "slice":
                    continue
                c.comm += self.timer.comm(s, self.mesh)
                key = ",".join(a.to_text() for a in s.axes)
                c.bytes_by_axis[key] = c.bytes_by_axis.get(key, 0.0) + s.bytes
        c.time = c.comm
        return c

    def total(self, asg) -> Cost:
        out = Cost()
        for t in self.space.types:
            out.add(self.type_cost(t, asg), t.count)
        return out

    def scope_time(self, gi: int, asg) -> float:
        types = self.space.types
        return sum(self.type_cost(types[i], asg).time * types[i].count for i in self.space.scope[gi])

    # ------------------------------------------------------------------ memory
    def memory(self, asg) -> dict:
        sp = self.space
        lb = np.array([self.local_bytes(k, asg.key_sharding(k)) for k in range(len(sp.keys))], dtype=np.float64)
        return self._memory(lb[sp.vkey_arr])

    def memory_values(self, sh) -> dict:
        """Memory of a plan given as one sharding per value (not via decision groups)."""
        sp = self.space
        return self._memory(np.array([self.local_bytes(k, s) for k, s in zip(sp.vkey, sh)], dtype=np.float64))

    def total_values(self, sh, base: tuple | None = None) -> Cost:
        """Time of a plan given as one sharding per value: every op priced on its own.

        With `base` = (Cost, shardings) of a plan that differs from `sh` in few values,
        only the ops touching those values are priced again."""
        g, out = self.g, Cost()
        keys = self.space.keys
        nodes = g.nodes
        if base is not None:
            cost0, sh0 = base
            changed = [v for v in range(len(sh)) if sh[v].dims != sh0[v].dims]
            touched = sorted({n for v in changed for n in g.users[v] + ([g.producer[v]] if g.producer[v] >= 0 else [])})
            out.add(cost0)
            out.add(self.total_values_of([g.nodes[i] for i in touched], sh0), -1.0)
            nodes = [g.nodes[i] for i in touched]
        out.add(self.total_values_of(nodes, sh))
        return out

    def total_values_of(self, nodes, sh) -> Cost:
        out, keys = Cost(), self.space.keys
        for n in nodes:
            vk = [self.space.vkey[v] for v in n.operands + n.results]
            key = (n.label, n.kind, tuple(keys[k][:2] for k in vk), tuple(sh[v].dims for v in n.operands),
                   tuple(sh[v].dims for v in n.results))
            c = self.cache.get(key)
            if c is None:
                c = self.cache[key] = self._price(n, [sh[v] for v in n.operands], [sh[v] for v in n.results])
            out.add(c, n.trips)
        return out

    def outputs_cost(self, sh, results) -> Cost:
        """Reshards at the return: each output value to the sharding @main gives it."""
        g = self.g
        return self._comm([reshard_plan(sh[v], r, g.shapes[v], self.mesh, g.ebytes[v])
                           for v, r in zip(g.outputs, results) if g.shapes[v] and r.dims != sh[v].dims])

    def _memory(self, lb) -> dict:
        """Liveness sweep over per-value local bytes `lb`."""
        sp = self.space
        args = float(lb[sp.arg_v].sum()) if len(sp.arg_v) else 0.0
        outs = float(lb[sp.out_v].sum()) if len(sp.out_v) else 0.0
        a = np.bincount(sp.alloc[1], weights=lb[sp.alloc[0]], minlength=sp.n_nodes).cumsum()
        f = np.bincount(sp.free[1], weights=lb[sp.free[0]], minlength=sp.n_nodes).cumsum()
        live = args + a - np.concatenate([[0.0], f[:-1]])
        at = int(np.argmax(live)) if len(live) else 0
        peak = float(max(args, live[at] if len(live) else args))
        return {"peak": peak, "arguments": args, "outputs": outs,
                "temporaries": max(0.0, peak - args - outs), "peak_node": at}

    def local_bytes(self, k: int, s: TensorSharding) -> float:
        """Bytes per device of value key `k` under sharding `s` (ceil-divided dims)."""
        shape, eb, _ = self.space.keys[k]
        n = float(eb)
        for d, axes in zip(shape, s.dims):
            n *= -(-d // axes_size(axes, self.mesh)) if axes else d
        return n
