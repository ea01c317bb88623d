"""Predicted step time and memory of a plan, op by op, fast enough to search with.

Each op is priced exactly as rhino-spmd-partition will run it: partition/spmd/strategy.py
picks its factor sharding and reshard steps, a timer turns FLOPs and steps into
seconds. Values are reduced to keys (shape, decision group of each dim): values with
one key always get one sharding, so ops with equal (label, operand keys, result keys)
cost the same and are priced once, times their count (identical layers collapse).
Memory is a liveness sweep (arguments live throughout, outputs to the end) done with
numpy over precomputed allocation and free events (analysis/lifetimes.py). On a folded
graph (analysis/fold.py) a node counts for every copy it stands for, each copy priced
with its own operands (`Node.bindings`), and the sweep runs over one copy per run.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ...analysis import lifetimes
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
    static: tuple = ()            # the part of its price key that no decision changes


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
            res = tuple(self.vkey[v] for v in n.results)
            for ops, count in ([(n.operands, n.mult)] if not n.alt else n.bindings()):
                k = (n.label, n.kind, tuple(self.vkey[v] for v in ops), res)
                t = types.get(k)
                if t is None:
                    types[k] = OpType(n, float(n.trips * count), k[2], k[3])
                else:
                    t.count += n.trips * count
        self.types = list(types.values())
        for t in self.types:
            t.static = (t.node.label, t.node.kind, tuple(self.keys[k][:2] for k in t.ops + t.res))
        self.group_keys = [[] for _ in range(len(dc.groups))]       # group -> keys it shapes
        for k, key in enumerate(self.keys):
            for gi in set(key[2]):
                if gi >= 0:
                    self.group_keys[gi].append(k)
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
        self.lifetimes = tl = lifetimes.of_graph(g)
        self.n_nodes = tl.n
        self.vkey_arr = np.array(self.vkey, dtype=np.int64)
        self.arg_v = np.array(g.args, dtype=np.int64)                     # value ids, one per argument
        self.out_v = np.array(tl.outputs, dtype=np.int64)                 # returned, not arguments


class Evaluator:
    def __init__(self, space: Space, mesh: Mesh, timer):
        self.space, self.g, self.mesh, self.timer = space, space.g, mesh, timer
        self.cache: dict = {}
        self.lb_memo: dict = {}                    # (key, dims) -> local bytes

    # ------------------------------------------------------------------ time
    def type_cost(self, t: OpType, asg) -> Cost:
        ks = asg.key_sharding
        key = (t.static, tuple(ks(k).dims for k in t.ops), tuple(ks(k).dims for k in t.res))
        c = self.cache.get(key)
        if c is None:
            n = t.node
            c = self.cache[key] = self._price(n, [ks(k) for k in t.ops], [ks(k) for k in t.res])
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
        sp, ks, memo = self.space, asg.key_sharding, self.lb_memo
        lb = []
        for k in range(len(sp.keys)):
            s = ks(k)
            b = memo.get((k, s.dims))
            if b is None:
                b = memo[(k, s.dims)] = self.local_bytes(k, s)
            lb.append(b)
        return self._memory(np.array(lb, dtype=np.float64)[sp.vkey_arr])

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
            for ops, count in ([(n.operands, n.mult)] if not n.alt else n.bindings()):
                vk = [self.space.vkey[v] for v in ops + n.results]
                key = ((n.label, n.kind, tuple(keys[k][:2] for k in vk)), tuple(sh[v].dims for v in ops),
                       tuple(sh[v].dims for v in n.results))
                c = self.cache.get(key)
                if c is None:
                    c = self.cache[key] = self._price(n, [sh[v] for v in ops], [sh[v] for v in n.results])
                out.add(c, n.trips * count)
        return out

    def outputs_cost(self, sh, results) -> Cost:
        """Reshards at the return: each output value to the sharding @main gives it."""
        g = self.g
        if g.fold is None:
            return self._comm([reshard_plan(sh[v], r, g.shapes[v], self.mesh, g.ebytes[v])
                               for v, r in zip(g.outputs, results) if g.shapes[v] and r.dims != sh[v].dims])
        count: dict = {}                            # copies return alike: price each pair once
        for v, r in zip(g.outputs, results):
            if g.shapes[v] and r.dims != sh[v].dims:
                count[(v, r)] = count.get((v, r), 0) + 1
        out = Cost()
        for (v, r), k in count.items():
            out.add(self._comm([reshard_plan(sh[v], r, g.shapes[v], self.mesh, g.ebytes[v])]), k)
        return out

    def _memory(self, lb) -> dict:
        """Liveness sweep over per-value local bytes `lb`."""
        sp = self.space
        args = float(lb[sp.arg_v].sum()) if len(sp.arg_v) else 0.0
        outs = float(lb[sp.out_v].sum()) if len(sp.out_v) else 0.0
        peak, at = sp.lifetimes.sweep(lb, args)
        return {"peak": peak, "arguments": args, "outputs": outs,
                "temporaries": max(0.0, peak - args - outs), "peak_node": at}

    def local_bytes(self, k: int, s: TensorSharding) -> float:
        """Bytes per device of value key `k` under sharding `s` (ceil-divided dims)."""
        shape, eb, _ = self.space.keys[k]
        n = float(eb)
        for d, axes in zip(shape, s.dims):
            n *= -(-d // axes_size(axes, self.mesh)) if axes else d
        return n
