"""partition/search/coarsen.py: dimension classes tied by the factor rules, and their groups
across identical layers, on programs small enough to derive the classes by hand."""
from rhino_mlir import ir as I
from rhino_mlir.analysis import graph, rules
from rhino_mlir.partition.search.coarsen import dim_classes


def build(text):
    """(module, graph): keep the module alive while the graph's values are used."""
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    with ctx, I.ir.Location.unknown():
        rules.populate(m)
        return m, graph.build(m)


def classes(dc) -> set[frozenset]:
    return {frozenset(m) for m in dc.members}


def check_consistent(g, dc):
    """`of`, `members`, `groups`, `group_of` and `nbytes` describe one partition."""
    assert sorted(dc.of) == sorted(p for m in dc.members for p in m)
    assert all(dc.of[p] == c for c, m in enumerate(dc.members) for p in m)
    assert sorted(c for cs in dc.groups for c in cs) == list(range(len(dc.members)))
    assert all(dc.group_of[c] == gi for gi, cs in enumerate(dc.groups) for c in cs)
    assert dc.nbytes == [sum(g.nbytes(v) for v, _ in m) for m in dc.members]
    sizes = [sum(dc.nbytes[c] for c in cs) for cs in dc.groups]
    assert sizes == sorted(sizes, reverse=True)           # biggest decisions first


DOT_T = """
func.func @main(%x: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> tensor<32x8xf32> {
  %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = stablehlo.transpose %0, dims = [1, 0] : (tensor<8x32xf32>) -> tensor<32x8xf32>
  return %1 : tensor<32x8xf32>
}"""


def test_dot_then_transpose_has_three_classes():
    m, g = build(DOT_T)
    x, w, y, t = 0, 1, 2, 3                                # values in definition order
    assert g.shapes == [[8, 16], [16, 32], [8, 32], [32, 8]]
    dc = dim_classes(g)
    check_consistent(g, dc)
    # rows i: x0, y0, t1 (the transpose moves them); contraction k: x1, w0; columns j: w1, y1, t0
    assert classes(dc) == {frozenset({(x, 0), (y, 0), (t, 1)}), frozenset({(x, 1), (w, 0)}),
                           frozenset({(w, 1), (y, 1), (t, 0)})}
    cols = dc.of[(w, 1)]
    assert dc.nbytes[cols] == 4 * (16 * 32 + 8 * 32 + 32 * 8)
    assert dc.groups[0] == [cols]                          # 4096 bytes > 2560 for the others
    assert len(dc.groups) == 3                             # no two classes look alike


RESHAPE_SORT = """
func.func @main(%x: tensor<8x16xf32>, %y: tensor<1x16xf32>) -> (tensor<8x4x4xf32>, tensor<8x16xf32>, tensor<1x16xf32>) {
  %0 = stablehlo.reshape %x : (tensor<8x16xf32>) -> tensor<8x4x4xf32>
  %1 = "stablehlo.sort"(%x) <{dimension = 1 : i64, is_stable = true}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %c = stablehlo.compare LT, %a, %b : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %c : tensor<i1>
  }) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %2 = stablehlo.negate %y : tensor<1x16xf32>
  return %0, %1, %2 : tensor<8x4x4xf32>, tensor<8x16xf32>, tensor<1x16xf32>
}"""


def test_compound_sorted_and_unit_dims_are_not_tied():
    m, g = build(RESHAPE_SORT)
    x, y, r, s, n = 0, 1, 2, 3, 4
    dc = dim_classes(g)
    check_consistent(g, dc)
    assert (y, 0) not in dc.of and (n, 0) not in dc.of    # size-1 dims are never decided
    assert classes(dc) == {
        frozenset({(x, 0), (r, 0), (s, 0)}),               # rows pass through both ops
        frozenset({(x, 1)}), frozenset({(r, 1)}), frozenset({(r, 2)}),   # 16 -> 4x4: compound
        frozenset({(s, 1)}),                               # the sorted dim (need_replication)
        frozenset({(y, 1), (n, 1)}),
    }


def layers(n):
    T, W = "tensor<8x16xf32>", "tensor<16x16xf32>"
    body = []
    for i in range(n):
        body.append(f"  %d{i} = stablehlo.dot_general %h{i}, %w{i}, contracting_dims = [1] x [0] : ({T}, {W}) -> {T}")
        body.append(f"  %h{i + 1} = stablehlo.tanh %d{i} : {T}")
    args = ", ".join([f"%h0: {T}"] + [f"%w{i}: {W}" for i in range(n)])
    return f"func.func @main({args}) -> {T} {{\n" + "\n".join(body) + f"\n  return %h{n} : {T}\n}}"


def test_identical_layers_share_a_group():
    n = 8
    m, g = build(layers(n))
    dc = dim_classes(g)
    check_consistent(g, dc)
    w = lambda i: 1 + i                                    # noqa: E731  (value id of w_i)
    # classes: the batch (all activations' dim 0), the input width (h0 dim 1, w0 dim 0),
    # and one per hidden width between layers i and i+1 (w_i dim 1, w_{i+1} dim 0, ...)
    assert len(dc.members) == 2 + n
    for i in range(n - 1):
        assert dc.of[(w(i), 1)] == dc.of[(w(i + 1), 0)]
    hidden = [dc.of[(w(i), 1)] for i in range(n)]
    assert len(set(hidden)) == n
    # the layers far from both ends look alike to the structural labels: one decision,
    # which then holds the most bytes (at least 4 x 3072 > 8704 for the batch class)
    shared = dc.groups[0]
    assert set(hidden[2:6]) <= set(shared)
    assert hidden[n - 1] not in shared                     # the last width feeds no weight
    assert len(dc.groups) < len(dc.members)
    # the batch class (all nine activations and eight dot results) has a group of its own
    batch = dc.of[(0, 0)]
    assert dc.nbytes[batch] == 17 * 8 * 16 * 4
    assert dc.groups[dc.group_of[batch]] == [batch]
