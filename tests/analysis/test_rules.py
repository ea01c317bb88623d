"""analysis/rules.py (factor rules from Shardy's registry) and analysis/local_rules.py.

1. Round trip: a JAX program with one of each op family is lowered, `rules.populate`
   attaches Shardy's rules, and for every op carrying `sdy.sharding_rule`
   `parse_rule(text).to_text()` must print exactly what Shardy printed.
2. Registry style (Shardy's test/op_sharding_rule_registry.mlir): one small function and
   one expected rule string per op.
3. Ops without a rule: generated rules for nullary ops, None plus one warning otherwise.
4. local_rules: combiners, identity values, restrict().
"""
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from rhino_mlir import ir as I
from rhino_mlir import lower
from rhino_mlir.analysis import local_rules, rules
from rhino_mlir.passes import REGISTRY, PassContext

WRAP = "#sdy.op_sharding_rule<{}>"


def module_of(text):
    ctx = I.new_context()
    return ctx, I.parse_module(text, ctx)


def populated(text, inline=False):
    ctx, m = module_of(text)
    if inline:
        REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    with ctx:
        rules.populate(m)
    return ctx, m


def ops_named(m, name):
    return [op for op in I.walk_ops(m.operation) if op.name == name]


# ----------------------------------------------------------------------------- 1. round trip

def many_ops(x, w, img, k, idx, upd, key):
    a = x @ w                                                    # dot_general (8,16)x(16,8)
    b = a.reshape(4, 2, 8).transpose(1, 0, 2)                    # reshape, transpose
    c = b.sum(axis=2)                                            # reduce
    d = jnp.broadcast_to(c[:, :, None], (2, 4, 3))               # broadcast_in_dim
    e = jnp.pad(d[:, 1:3, :], ((0, 0), (1, 1), (0, 0)))          # slice, pad
    g = jnp.concatenate([e, e], axis=1)                          # concatenate
    h = jnp.take(w, idx, axis=0)                                 # gather
    s = w.at[idx].set(upd)                                       # scatter
    srt = jnp.sort(x, axis=1)                                    # sort
    rev = jnp.flip(x, axis=0)                                    # reverse
    rw = lax.reduce_window(x, 0.0, lax.add, (1, 2), (1, 1), "VALID")
    cv = lax.conv_general_dilated(img, k, (1, 1), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
    pool = lambda z: lax.reduce_window(z, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    gpool = jax.grad(lambda z: pool(z).sum())(img)               # select_and_scatter
    ds = lax.dynamic_slice(x, (idx[0], 0), (2, 4))               # dynamic_slice
    dus = lax.dynamic_update_slice(x, ds, (idx[1], 0))           # dynamic_update_slice
    io = lax.iota(jnp.int32, 8)                                  # iota
    cst = jnp.array([1.0, 2.0, 3.0], jnp.float32)                # non-splat constant
    am = jnp.argmax(x, axis=1)                                   # variadic reduce
    tk = lax.top_k(x, 2)[0]                                      # chlo.top_k -> sort
    loop = lax.fori_loop(0, 3, lambda i, y: y * 2.0 + 1.0, x)    # while
    br = lax.cond(x[0, 0] > 0, lambda y: y + 1.0, lambda y: y - 1.0, x)   # case
    _, bits = lax.rng_bit_generator(key, (4, 8))                 # rng_bit_generator
    return (a, g, h, s, srt, rev, rw, cv, pool(img), gpool, dus, io, cst, am, tk, loop, br,
            bits, jnp.where(x > 0, x, -x).astype(jnp.int32))


MANY_ARGS = (np.ones((8, 16), np.float32), np.ones((16, 8), np.float32),
             np.ones((2, 8, 8, 3), np.float32), np.ones((3, 3, 3, 4), np.float32),
             np.array([1, 3], np.int32), np.ones((2, 8), np.float32),
             np.zeros((4,), np.uint32))

MUST_HAVE_RULES = """dot_general reshape transpose reduce broadcast_in_dim slice pad concatenate
    gather scatter sort reverse reduce_window convolution select_and_scatter dynamic_slice
    dynamic_update_slice rng_bit_generator compare select convert negate multiply""".split()


@pytest.fixture(scope="module")
def many():
    text, _ = lower(many_ops, *MANY_ARGS)
    return populated(text, inline=True)


def test_every_printed_rule_round_trips(many):
    ctx, m = many
    seen = set()
    with ctx:
        for op in I.walk_ops(m.operation):
            if "sdy.sharding_rule" not in op.attributes:
                continue
            text = str(op.attributes["sdy.sharding_rule"])
            assert WRAP.format(rules.parse_rule(text).to_text()) == text, op.name
            # rule_of reads the same attribute: same object content
            assert rules.rule_of(op) == rules.parse_rule(text)
            seen.add(op.name.removeprefix("stablehlo."))
    missing = [n for n in MUST_HAVE_RULES if n not in seen]
    assert not missing, f"program lost ops (or Shardy their rules): {missing}"


def test_nullary_and_dataflow_ops_of_the_program(many):
    ctx, m = many
    with ctx, warnings.catch_warnings():
        warnings.simplefilter("error")                  # none of these may warn
        for name in ("stablehlo.iota", "stablehlo.constant"):
            ops = ops_named(m, name)
            assert ops, name
            for op in ops:
                r = rules.rule_of(op)
                shape = I.shape_of(op.results[0].type)
                assert r.operands == () and r.sizes == tuple(shape)
                assert r.results == (tuple((i,) for i in range(len(shape))),)
        for name in ("stablehlo.while", "stablehlo.case", "func.return", "stablehlo.return"):
            assert ops_named(m, name), name
            assert all(rules.rule_of(op) is None for op in ops_named(m, name))


def test_factor_names_past_z_round_trip():
    # rank 20: factors i..z then z_1, z_2 (Shardy's naming), compound "z_1z_2" on a reshape
    ones = "x".join(["1"] * 18)
    src = f"""
    func.func @main(%t: tensor<{ones}x2x3xf32>) -> tensor<6xf32> {{
      %0 = stablehlo.reshape %t : (tensor<{ones}x2x3xf32>) -> tensor<6xf32>
      return %0 : tensor<6xf32>
    }}"""
    ctx, m = populated(src)
    with ctx:
        text = str(ops_named(m, "stablehlo.reshape")[0].attributes["sdy.sharding_rule"])
        r = rules.parse_rule(text)
    assert "([z_1z_2])" in text and "z_2=3" in text
    assert WRAP.format(r.to_text()) == text
    assert r.results == (((18, 19),),) and r.sizes[18:] == (2, 3)


# ----------------------------------------------------------------------------- 2. registry style

def rule_text(body, args, results, op):
    """Rule of the first `op` in a one-op @main, printed by rules.py."""
    src = f"func.func @main({args}) -> ({results}) {{\n{body}\n}}"
    ctx, m = populated(src)
    with ctx:
        return rules.rule_of(ops_named(m, op)[0]).to_text()


@pytest.mark.parametrize("op, args, results, body, expected", [
    ("stablehlo.dot_general", "%a: tensor<8x32xf32>, %b: tensor<32x16xf32>", "tensor<8x16xf32>", """
      %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<8x32xf32>, tensor<32x16xf32>) -> tensor<8x16xf32>
      return %0 : tensor<8x16xf32>""",
     "([i, k], [k, j])->([i, j]) {i=8, j=16, k=32} reduction={k}"),
    ("stablehlo.dot_general", "%a: tensor<4x8x32xf32>, %b: tensor<4x32x16xf32>", "tensor<4x8x16xf32>", """
      %0 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [1] : (tensor<4x8x32xf32>, tensor<4x32x16xf32>) -> tensor<4x8x16xf32>
      return %0 : tensor<4x8x16xf32>""",
     "([i, j, l], [i, l, k])->([i, j, k]) {i=4, j=8, k=16, l=32} reduction={l}"),
    ("stablehlo.reshape", "%a: tensor<8x16xf32>", "tensor<2x4x16xf32>", """
      %0 = stablehlo.reshape %a : (tensor<8x16xf32>) -> tensor<2x4x16xf32>
      return %0 : tensor<2x4x16xf32>""",
     "([ij, k])->([i, j, k]) {i=2, j=4, k=16}"),
    ("stablehlo.reshape", "%a: tensor<2x4x16xf32>", "tensor<8x16xf32>", """
      %0 = stablehlo.reshape %a : (tensor<2x4x16xf32>) -> tensor<8x16xf32>
      return %0 : tensor<8x16xf32>""",
     "([i, j, k])->([ij, k]) {i=2, j=4, k=16}"),
    ("stablehlo.slice", "%a: tensor<8x16xf32>", "tensor<8x4xf32>", """
      %0 = stablehlo.slice %a [0:8, 2:6] : (tensor<8x16xf32>) -> tensor<8x4xf32>
      return %0 : tensor<8x4xf32>""",
     "([i, j])->([i, j]) {i=8, j=16} permutation={j}"),
    ("stablehlo.sort", "%a: tensor<8x16xf32>", "tensor<8x16xf32>", """
      %0 = "stablehlo.sort"(%a) ({
      ^bb0(%p: tensor<f32>, %q: tensor<f32>):
        %c = stablehlo.compare GT, %p, %q : (tensor<f32>, tensor<f32>) -> tensor<i1>
        stablehlo.return %c : tensor<i1>
      }) {dimension = 1 : i64} : (tensor<8x16xf32>) -> tensor<8x16xf32>
      return %0 : tensor<8x16xf32>""",
     "([i, j])->([i, j]) {i=8, j=16} need_replication={j}"),
    ("stablehlo.transpose", "%a: tensor<8x16xf32>", "tensor<16x8xf32>", """
      %0 = stablehlo.transpose %a, dims = [1, 0] : (tensor<8x16xf32>) -> tensor<16x8xf32>
      return %0 : tensor<16x8xf32>""",
     "([j, i])->([i, j]) {i=16, j=8}"),
    ("stablehlo.concatenate", "%a: tensor<8x4xf32>, %b: tensor<8x4xf32>", "tensor<8x8xf32>", """
      %0 = stablehlo.concatenate %a, %b, dim = 1 : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x8xf32>
      return %0 : tensor<8x8xf32>""",
     "([i, j], [i, j])->([i, j]) {i=8, j=8} need_replication={j}"),
    ("stablehlo.dynamic_slice", "%a: tensor<8x16xf32>, %s: tensor<i32>", "tensor<8x4xf32>", """
      %0 = stablehlo.dynamic_slice %a, %s, %s, sizes = [8, 4] : (tensor<8x16xf32>, tensor<i32>, tensor<i32>) -> tensor<8x4xf32>
      return %0 : tensor<8x4xf32>""",
     "([i, j], [], [])->([i, j]) {i=8, j=16} need_replication={j} blocked_propagation={j}"),
])
def test_registry_rule(op, args, results, body, expected):
    assert rule_text(body, args, results, op) == expected


@pytest.mark.parametrize("body, results, expected", [
    ("%0 = stablehlo.iota dim = 1 : tensor<4x8xi32>\n return %0 : tensor<4x8xi32>",
     "tensor<4x8xi32>", "()->([i, j]) {i=4, j=8}"),
    ("%0 = stablehlo.constant dense<1.0> : tensor<6xf32>\n return %0 : tensor<6xf32>",
     "tensor<6xf32>", "()->([i]) {i=6}"),
    ("%0 = stablehlo.constant dense<1> : tensor<i32>\n return %0 : tensor<i32>",
     "tensor<i32>", "()->([])"),
])
def test_generated_rules_for_nullary_ops(body, results, expected):
    op = body.split("=")[1].split()[0]
    assert rule_text(body, "", results, op) == expected


# ----------------------------------------------------------------------------- 3. no rule

TUPLE = """
  %0 = stablehlo.tuple %a : tuple<tensor<4xf32>>
  %1 = stablehlo.get_tuple_element %0[0] : (tuple<tensor<4xf32>>) -> tensor<4xf32>
  return %1 : tensor<4xf32>"""
CUSTOM = """
  %0 = stablehlo.custom_call @my_kernel(%a) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>"""


def no_rule_warnings(body, op, monkeypatch):
    monkeypatch.setattr(rules, "_warned", set())        # warn-once state is per process
    ctx, m = populated(f"func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {{{body}\n}}")
    with ctx, warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        target = ops_named(m, op)[0]
        assert "sdy.sharding_rule" not in target.attributes
        assert rules.rule_of(target) is None
        assert rules.rule_of(target) is None            # second time: no second warning
    return [str(x.message) for x in w]


def test_op_without_rule_warns_once_naming_it(monkeypatch):
    msgs = no_rule_warnings(TUPLE, "stablehlo.tuple", monkeypatch)
    assert msgs == ["rhino: no sharding rule for 'stablehlo.tuple'; it runs replicated"]


def test_custom_call_without_rule_warns(monkeypatch):
    msgs = no_rule_warnings(CUSTOM, "stablehlo.custom_call", monkeypatch)
    assert any("stablehlo.custom_call" in m for m in msgs)


def test_custom_call_has_no_rule(monkeypatch):
    no_rule_warnings(CUSTOM, "stablehlo.custom_call", monkeypatch)   # asserts rule_of is None


def test_parse_rule_rejects_garbage():
    with pytest.raises(ValueError, match="cannot read sharding rule"):
        rules.parse_rule("not a rule")


# ----------------------------------------------------------------------------- 4. local_rules

def first(text, name, populate=True):
    ctx, m = populated(text) if populate else module_of(text)
    return ctx, m, ops_named(m, name)[0]


def reduce_src(body_op, init, elem="f32"):
    return f"""
    func.func @main(%a: tensor<8x16x{elem}>) -> tensor<8x{elem}> {{
      %z = stablehlo.constant dense<{init}> : tensor<{elem}>
      %0 = stablehlo.reduce(%a init: %z) applies {body_op} across dimensions = [1] : (tensor<8x16x{elem}>, tensor<{elem}>) -> tensor<8x{elem}>
      return %0 : tensor<8x{elem}>
    }}"""


@pytest.mark.parametrize("src, expected", [
    (reduce_src("stablehlo.add", "0.0"), "add"),
    (reduce_src("stablehlo.maximum", "0xFF800000"), "max"),           # init -inf
    (reduce_src("stablehlo.minimum", "2147483647", "i32"), "min"),
    (reduce_src("stablehlo.multiply", "1", "i32"), "mul"),
    (reduce_src("stablehlo.add", "1.0"), None),                       # init is not the identity
    (reduce_src("stablehlo.or", "false", "i1"), None),                # boolean reduce
])
def test_combiner_of_reduce(src, expected):
    ctx, _, op = first(src, "stablehlo.reduce")
    with ctx:
        assert local_rules.combiner(op) == expected


def test_combiner_of_dot_and_argmax():
    text, _ = lower(lambda x, w: (x @ w, jnp.argmax(x, axis=1)),
                    np.ones((8, 16), np.float32), np.ones((16, 4), np.float32))
    ctx, m = populated(text, inline=True)
    with ctx:
        assert local_rules.combiner(ops_named(m, "stablehlo.dot_general")[0]) == "add"
        (argmax,) = [op for op in ops_named(m, "stablehlo.reduce") if len(op.results) == 2]
        assert local_rules.combiner(argmax) is None
        r = rules.rule_of(argmax)
        assert local_rules.restrict(argmax, r).need_replication == r.need_replication | r.reduction


@pytest.mark.parametrize("elem, add, mul, lo, hi", [
    ("f32", 0, 1, -math.inf, math.inf),
    ("bf16", 0, 1, -math.inf, math.inf),
    ("i32", 0, 1, -2**31, 2**31 - 1),
    ("ui8", 0, 1, 0, 255),
])
def test_identity_values(elem, add, mul, lo, hi):
    ctx = I.new_context()
    with ctx:
        t = I.ir.Type.parse(elem)
        assert local_rules.identity("add", t) == add
        assert local_rules.identity("mul", t) == mul
        assert local_rules.identity("max", t) == lo        # max starts from the lowest value
        assert local_rules.identity("min", t) == hi


RESTRICT = """
func.func @main(%k: tensor<2xui64>, %a: tensor<8x16xf32>, %b: tensor<16x4xf32>) -> (tensor<4x8xui32>, tensor<3xf32>, tensor<3xf32>, tensor<8x4xf32>) {
  %s, %bits = stablehlo.rng_bit_generator %k, algorithm = DEFAULT : (tensor<2xui64>) -> (tensor<2xui64>, tensor<4x8xui32>)
  %c = stablehlo.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %d = stablehlo.constant dense<2.0> : tensor<3xf32>
  %e = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  return %bits, %c, %d, %e : tensor<4x8xui32>, tensor<3xf32>, tensor<3xf32>, tensor<8x4xf32>
}"""


def test_restrict_marks_rng_and_non_splat_constants():
    ctx, m = populated(RESTRICT)
    with ctx:
        rng = ops_named(m, "stablehlo.rng_bit_generator")[0]
        nonsplat, splat = ops_named(m, "stablehlo.constant")
        dot = ops_named(m, "stablehlo.dot_general")[0]
        for op in (rng, nonsplat):
            r = local_rules.restrict(op, rules.rule_of(op))
            assert r.need_replication == frozenset(range(r.num_factors)), op.name
            assert not any(r.shardable(f) for f in range(r.num_factors))
        for op in (splat, dot):                          # nothing to restrict: same rule
            r = rules.rule_of(op)
            assert local_rules.restrict(op, r) == r
