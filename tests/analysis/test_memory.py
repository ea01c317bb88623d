"""analysis/memory.py and analysis/liveness.py: exact peaks on hand-made programs, then
XLA's own memory analysis of the same sharding as the oracle (|error| <= 15%).

Every tensor below is 16x16xf32 = 1024 bytes unless said, so peaks are counted by hand.
"""
import numpy as np
import pytest

from rhino_mlir import ir as I
from rhino_mlir.analysis import memory as M
from rhino_mlir.partition.spmd import memory as SM
from rhino_mlir.sharding import Mesh, parse_sharding

T = "tensor<16x16xf32>"
KB = 1024
DOT = "stablehlo.dot_general {a}, {b}, contracting_dims = [1] x [0] : ({t}, {t}) -> {t}"


def module(body: str, args: str = f"%a: {T}", results: str = T, mesh: str = "") -> tuple:
    ctx = I.new_context()
    text = f"module {{\n{mesh}\n  func.func @main({args}) -> ({results}) {{\n{body}\n  }}\n}}"
    return ctx, I.parse_module(text, ctx)


def dot(a, b, t=T):
    return DOT.format(a=a, b=b, t=t)


def live(body, **kw):
    ctx, mod = module(body, **kw)
    return mod, M.liveness(mod)


# ----------------------------------------------------------------------------- liveness

def test_chain_peak_is_two_live_temporaries():
    # a -> d0 -> d1 -> d2 -> sum: at most two intermediates live at once (operand + result)
    ctx, mod = module(f"""
    %0 = {dot('%a', '%a')}
    %1 = {dot('%0', '%0')}
    %2 = {dot('%1', '%1')}
    %z = stablehlo.constant dense<0.0> : tensor<f32>
    %3 = stablehlo.reduce(%2 init: %z) applies stablehlo.add across dimensions = [0, 1]
           : ({T}, tensor<f32>) -> tensor<f32>
    return %3 : tensor<f32>""", results="tensor<f32>")
    r = SM.memory_report(mod, reshard=False)
    assert (r.arguments, r.outputs, r.temporaries) == (KB, 4, 2 * KB)
    assert r.peak == 3 * KB and r.peak_op == "stablehlo.dot_general" and r.peak_point == 2
    assert r.peak_op_index == 1                          # %1, the second op in walk order
    assert r.xla_comparable == KB + 4 + 2 * KB          # no result buffer to borrow: all temps count


def test_fused_elementwise_gets_no_buffer_and_its_input_lives_on():
    # e = exp(d) read once by m = e * d, which feeds a dot: e is recomputed inside m
    body = f"""
    %0 = {dot('%a', '%a')}
    %1 = stablehlo.exponential %0 : {T}
    %2 = stablehlo.multiply %1, %0 : {T}
    %3 = {dot('%2', '%a')}
    return %3 : {T}"""
    ctx, mod = module(body)
    fused, unfused = M.liveness(mod), M.liveness(mod, fusion=False)
    assert [n for n in fused.names if n != "%arg0"] == ["%0", "%2", "%3"]
    assert len(unfused) == len(fused) + 1
    assert fused.peak(fused.global_bytes)[0] == 3 * KB    # a, %0 and %2 at the multiply
    # unfused: a, %0, %1 and %2 all live at the multiply
    assert unfused.peak(unfused.global_bytes)[0] == 4 * KB


def test_expensive_value_read_twice_is_stored_and_dead_value_is_not():
    body = f"""
    %0 = {dot('%a', '%a')}
    %1 = stablehlo.exponential %0 : {T}
    %2 = stablehlo.add %1, %a : {T}
    %3 = stablehlo.subtract %1, %a : {T}
    %4 = {dot('%2', '%3')}
    %5 = {dot('%a', '%4')}
    return %4 : {T}"""
    lv = live(body)[1]
    names = set(lv.names)
    assert "%1" in names            # exp with two users: computed once, stored
    assert "%5" not in names        # never read: the compiler deletes it


def test_while_body_live_set_and_outside_values_live_to_loop_end():
    # %w is defined before the loop and read in every iteration: live until the loop exits
    body = f"""
    %c0 = stablehlo.constant dense<0> : tensor<i32>
    %c1 = stablehlo.constant dense<1> : tensor<i32>
    %c3 = stablehlo.constant dense<3> : tensor<i32>
    %w = {dot('%a', '%a')}
    %r:2 = stablehlo.while(%i = %c0, %h = %a) : tensor<i32>, {T}
      cond {{
        %p = stablehlo.compare LT, %i, %c3 : (tensor<i32>, tensor<i32>) -> tensor<i1>
        stablehlo.return %p : tensor<i1>
      }} do {{
        %n = {dot('%h', '%w')}
        %t = stablehlo.tanh %n : {T}
        %i1 = stablehlo.add %i, %c1 : tensor<i32>
        stablehlo.return %i1, %t : tensor<i32>, {T}
      }}
    return %r#1 : {T}"""
    lv = live(body)[1]
    w, n = lv.keys.index(("op", 3, 0)), lv.keys.index(("op", 7, 0))   # walk order: c0 c1 c3 w while ...
    exit_point = lv.points.index("stablehlo.while.exit")
    assert lv.end[w] == exit_point - 1 and lv.end[w] > lv.start[n]
    carries = [i for i, k in enumerate(lv.keys) if k[0] == "carry"]
    assert len(carries) == 2 and all(lv.end[i] == exit_point - 1 for i in carries)
    # inside the body: a, w, the carried h and i, n and t (the new carry): 5 KB + 4 bytes
    peak, at = lv.peak(lv.global_bytes)
    assert peak == 5 * KB + 4 and lv.points[at] == "stablehlo.tanh"


def test_donated_argument_is_not_counted_twice():
    body = f"""
    %0 = {dot('%a', '%b')}
    %1 = stablehlo.add %0, %a : {T}
    return %1 : {T}"""
    args = f"%a: {T} {{tf.aliasing_output = 0 : i32}}, %b: {T}"
    plain = SM.memory_report(module(body, args=f"%a: {T}, %b: {T}")[1], reshard=False)
    donated = SM.memory_report(module(body, args=args)[1], reshard=False)
    assert (plain.peak, donated.peak) == (4 * KB, 3 * KB)
    assert donated.aliased == KB and donated.xla_comparable == plain.xla_comparable - KB


def test_barrier_passes_buffers_through_and_a_copy_behind_it_reads_the_producers_inputs():
    # rhino-remat's shape: h = relu(z + b) is kept; behind a barrier, the anchor h + g (an
    # element-wise user) gets a copy of relu(z + b), so z lives up to it; the barrier's
    # results are h's and g's buffers, not copies
    body = f"""
    %z = {dot('%a', '%a')}
    %bb = stablehlo.broadcast_in_dim %b, dims = [1] : (tensor<16xf32>) -> {T}
    %s = stablehlo.add %z, %bb : {T}
    %c0 = stablehlo.constant dense<0.0> : tensor<f32>
    %zero = stablehlo.broadcast_in_dim %c0, dims = [] : (tensor<f32>) -> {T}
    %h = stablehlo.maximum %s, %zero : {T}
    %y = {dot('%h', '%a')}
    %g = {dot('%y', '%a')}
    %w:2 = stablehlo.optimization_barrier %g, %h : {T}, {T}
    %anchored = stablehlo.add %w#1, %w#0 : {T}
    %r = {dot('%anchored', '%a')}
    return %r : {T}"""
    mod, lv = live(body, args=f"%a: {T}, %b: tensor<16xf32>")
    at = {k[1]: i for i, k in enumerate(lv.keys) if k[0] == "op"}    # walk index -> buffer
    z, h, anchored = at[0], at[5], at[9]
    assert 8 not in at                                          # the barrier: no buffers of its own
    assert lv.end[z] == lv.start[anchored]                      # read by the copy in the anchor
    assert lv.end[h] < lv.start[anchored]                       # the copy does not read h
    # the same without the barrier: an element-wise user of h reads h (no copy), z dies early
    plain = body.replace(f"%w:2 = stablehlo.optimization_barrier %g, %h : {T}, {T}\n", "")
    mod, lv = live(plain.replace("%w#1, %w#0", "%h, %g"), args=f"%a: {T}, %b: tensor<16xf32>")
    at = {k[1]: i for i, k in enumerate(lv.keys) if k[0] == "op"}
    z, h, anchored = at[0], at[5], at[8]
    assert lv.end[z] < lv.end[h] == lv.start[anchored]


# ----------------------------------------------------------------------------- shardings

MESH4 = 'sdy.mesh @mesh = <["x"=4]>'


def test_local_bytes_use_ceil_sized_shards_and_roles_split_arguments():
    t = "tensor<10x8xf32>"
    ctx, mod = module(f"""
    %0 = stablehlo.add %a, %b : {t}
    return %0 : {t}""", args=f"%a: {t}, %b: {t}", results=t, mesh=MESH4)
    lv = M.liveness(mod)
    x = parse_sharding('#sdy.sharding<@mesh, [{"x"}, {}]>')
    w = M.local_bytes(lv, {("arg", 0): x}, Mesh("mesh", (("x", 4),)))
    assert list(w) == [3 * 8 * 4, 10 * 8 * 4, 10 * 8 * 4]      # 10 rows on 4: shards of 3
    r = M.report(lv, {("arg", 0): x}, Mesh("mesh", (("x", 4),)), roles=["parameters", "batch"])
    assert r.by_role == {"parameters": 96, "batch": 320}
    assert M.roles_from_paths(["[0]['w']", "[1]['m']['w']", "[2][0]"], ("params", "opt_state", "batch")) \
        == ["parameters", "optimizer_state", "batch"]


def test_partial_dot_and_gathered_operand_add_reshard_buffers():
    # d = a @ b with the contraction sharded and d replicated: the partial product is a
    # second buffer at the dot; sort of a row-sharded value gathers it first
    t = "tensor<16x16xf32>"
    x0 = '#sdy.sharding<@mesh, [{}, {"x"}]>'
    x1 = '#sdy.sharding<@mesh, [{"x"}, {}]>'
    rep = '#sdy.sharding_per_value<[<@mesh, [{}, {}]>]>'
    ctx, mod = module(f"""
    %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] {{sdy.sharding = {rep}}} : ({t}, {t}) -> {t}
    %1 = "stablehlo.sort"(%b) <{{dimension = 0 : i64}}> ({{
      ^bb0(%p: tensor<f32>, %q: tensor<f32>):
        %c = stablehlo.compare LT, %p, %q : (tensor<f32>, tensor<f32>) -> tensor<i1>
        stablehlo.return %c : tensor<i1>
      }}) {{sdy.sharding = {rep}}} : ({t}) -> {t}
    return %0, %1 : {t}, {t}""", args=f"%a: {t} {{sdy.sharding = {x0}}}, %b: {t} {{sdy.sharding = {x1}}}",
        results=f"{t}, {t}", mesh=MESH4)
    with_rs, without = SM.memory_report(mod), SM.memory_report(mod, reshard=False)
    assert with_rs.arguments == without.arguments == 2 * KB // 4
    starts, ends, nbytes = SM.reshards(M.liveness(mod), *M.shardings_from_ir(mod, M.liveness(mod)))
    assert sorted(nbytes.tolist()) == [KB, KB]          # partial 16x16 product, gathered b
    assert with_rs.temporaries == without.temporaries + KB and with_rs.reshards == KB


def test_result_resharded_at_the_return_is_a_replicated_output_plus_its_shard():
    # u = a + a computed row-sharded and returned replicated (an updated parameter under
    # ZeRO): the output buffer is the replicated 1 KiB, the shard stays a temporary
    t = "tensor<16x16xf32>"
    x = '#sdy.sharding<@mesh, [{"x"}, {}]>'
    rep = '#sdy.sharding<@mesh, [{}, {}]>'
    ctx, mod = module(f"""
    %0 = stablehlo.add %a, %a {{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{{"x"}}, {{}}]>]>}} : {t}
    return %0 : {t}""", args=f"%a: {t} {{sdy.sharding = {x}}}", results=f"{t} {{sdy.sharding = {rep}}}",
        mesh=MESH4)
    r = SM.memory_report(mod, reshard=False)
    assert (r.arguments, r.outputs) == (KB // 4, KB)
    assert r.xla_temporaries == KB // 4 and r.xla_comparable == KB // 4 + KB + KB // 4
    same = SM.memory_report(module(f"""
    %0 = stablehlo.add %a, %a {{sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{{"x"}}, {{}}]>]>}} : {t}
    return %0 : {t}""", args=f"%a: {t} {{sdy.sharding = {x}}}", results=f"{t} {{sdy.sharding = {x}}}",
        mesh=MESH4)[1], reshard=False)
    assert (same.outputs, same.xla_temporaries) == (KB // 4, 0)


# ----------------------------------------------------------------------------- fast API

def test_peak_api_array_callable_and_batched_agree():
    lv = M.Liveness.from_intervals([(4, 4)] * 4, [4] * 4, start=[0, 1, 2, 3], end=[3, 2, 3, 3],
                                   kinds=[1, 0, 0, 2])
    w = lv.global_bytes                                   # 64 bytes each
    # live sets: t0 {0}, t1 {0,1}, t2 {0,1,2}, t3 {0,2,3}: first reaches 192 at t2
    assert lv.peak(w) == (192, 2) == lv.peak(lambda i: int(w[i]))
    assert M.peak_bytes(lv, w) == 192
    cands = np.stack([w, w // 2, np.array([64, 0, 0, 64])])
    assert lv.peaks(cands).tolist() == [192, 96, 128]


# ----------------------------------------------------------------------------- vs XLA

@pytest.mark.parametrize("name", ["mlp_train_dp8", "block_train_dp2_tp4", "gpt_tiny_train_dp2_tp4"])
def test_matches_xla_memory_analysis(name):
    from harness import xla_memory as X
    case = next(c for c in X.CASES if c.name == name)
    text, roles = X.build(case)
    ctx = I.new_context()
    ours = SM.memory_report(I.parse_module(text, ctx), roles=roles)
    xla = X.xla_memory(text, int(np.prod([s for _, s in case.mesh])))
    assert ours.arguments == xla.arguments               # same sharding, same arguments
    assert abs(ours.outputs - xla.outputs) <= 0.01 * xla.outputs
    assert ours.aliased == xla.aliased
    err = (ours.xla_comparable - xla.comparable) / xla.comparable
    assert abs(err) <= 0.15, f"{name}: ours {ours.xla_comparable} vs XLA {xla.comparable} ({err:+.1%})"
    assert set(ours.by_role) >= {"parameters", "optimizer_state", "batch"}


def test_stacked_update_in_a_loop_is_in_place_and_counts_the_stack_once():
    # a scan's saved residuals: a 4x16x16 stack (4 KB) takes one 16x16 row per iteration.
    # The carry %s dies at the update, so the update writes into its buffer (XLA does).
    S, R = "tensor<4x16x16xf32>", "tensor<1x16x16xf32>"
    body = f"""
    %c0 = stablehlo.constant dense<0> : tensor<i32>
    %c1 = stablehlo.constant dense<1> : tensor<i32>
    %c4 = stablehlo.constant dense<4> : tensor<i32>
    %z = stablehlo.constant dense<0.0> : {S}
    %r:3 = stablehlo.while(%i = %c0, %h = %a, %s = %z) : tensor<i32>, {T}, {S}
      cond {{
        %p = stablehlo.compare LT, %i, %c4 : (tensor<i32>, tensor<i32>) -> tensor<i1>
        stablehlo.return %p : tensor<i1>
      }} do {{
        %n = {dot('%h', '%h')}
        %row = stablehlo.reshape %n : ({T}) -> {R}
        %s1 = stablehlo.dynamic_update_slice %s, %row, %i, %c0, %c0 : ({S}, {R}, tensor<i32>, tensor<i32>, tensor<i32>) -> {S}
        %i1 = stablehlo.add %i, %c1 : tensor<i32>
        stablehlo.return %i1, %n, %s1 : tensor<i32>, {T}, {S}
      }}
    %f0 = stablehlo.constant dense<0.0> : tensor<f32>
    %o = stablehlo.reduce(%r#2 init: %f0) applies stablehlo.add across dimensions = [0] : ({S}, tensor<f32>) -> {T}
    return %o : {T}"""
    lv = live(body)[1]
    stacks = [i for i, s in enumerate(lv.shapes) if s == (4, 16, 16)]
    upd = lv.points.index("stablehlo.dynamic_update_slice")
    live_stacks = [sum(lv.start[i] <= t <= lv.end[i] for i in stacks) for t in range(len(lv.points))]
    assert max(live_stacks) == 1 and live_stacks[upd] == 1
    # at the reshape and the update: a, h, n, row (4 KB), one stack (4 KB), i and c0 (8 bytes);
    # out of place the update would hold the carried stack and its result: 12 KB + 8
    peak, at = lv.peak(lv.global_bytes)
    assert peak == 8 * KB + 8


def test_update_at_top_level_is_in_place_only_when_its_operand_dies_there():
    R = "tensor<1x16xf32>"
    upd = f"stablehlo.dynamic_update_slice %t, %row, %c0, %c0 : ({T}, {R}, tensor<i32>, tensor<i32>) -> {T}"
    head = f"""
    %c0 = stablehlo.constant dense<0> : tensor<i32>
    %t = {dot('%a', '%a')}
    %row = stablehlo.slice %a [0:1, 0:16] : ({T}) -> {R}
    %u = {upd}"""
    dies = live(head + f"\n    %v = {dot('%u', '%a')}\n    return %v : {T}")[1]
    read_later = live(head + f"\n    %v = {dot('%u', '%t')}\n    return %v : {T}")[1]
    # in place: a, t|u, row (64 bytes) and c0 at the update, then a, u, v at the dot (3 KB);
    # out of place the update would hold a, t, u, row and c0 (3 KB + 68)
    assert dies.peak(dies.global_bytes)[0] == 3 * KB
    assert read_later.peak(read_later.global_bytes)[0] == 4 * KB
