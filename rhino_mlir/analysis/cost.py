"""FLOPs and bytes per op, and bytes on the wire per collective.

Counting conventions (one multiply-add = 2 FLOPs):
    dot_general   2 * prod(batch) * M * N * K   = 2 * out_elems * prod(contracting)
    convolution   2 * out_elems * prod(kernel spatial) * in_features / feature_groups
                  (the kernel's input-feature dim already is in_features / groups)
    elementwise   1 per output element
    reduce        1 per input element (per reduced input; windows: out * window)
    anything else 0 (data movement: reshape, transpose, gather, collectives, ...)
Bytes are those read plus those written: every tensor operand and result once.

Collectives use ring algorithms; per-device bytes on the wire, n = group size:
    all_gather          (n-1)/n * result bytes      (each shard visits n-1 peers)
    reduce_scatter      (n-1)/n * operand bytes
    all_reduce        2*(n-1)/n * bytes             (reduce_scatter + all_gather)
    all_to_all          (n-1)/n * bytes             (keeps 1/n locally)
    collective_permute  operand bytes               (one send per device)
`ring_bytes` is the one formula; partition/spmd/reshard.py prices edges with it, so the
predicted traffic of a plan is exactly what is counted here in the emitted IR.

Time (seconds), on a devices.DeviceProfile and cluster.Link:
    compute     max(flops / peak(dtype), bytes / memory bandwidth) + launch overhead
    collective  overhead + ring_steps * latency + ring_bytes / bandwidth   (alpha-beta)
    ring_steps  all_reduce 2(n-1) (reduce_scatter then all_gather), all_gather,
                reduce_scatter and all_to_all n-1, collective_permute 1
A reshard Step over several mesh axes runs at the slowest of their links; an axis whose
groups cross nodes uses the inter-node link (cluster.Cluster.axis_link).
"""
from __future__ import annotations

from math import prod

from .. import ir as I

# unary/binary/ternary ops computing one value per output element
ELEMENTWISE = frozenset("stablehlo." + n for n in """
    abs add and atan2 cbrt ceil clamp compare complex convert cosine count_leading_zeros
    divide exponential exponential_minus_one floor imag is_finite log log_plus_one logistic
    maximum minimum multiply negate not or popcnt power real reduce_precision remainder
    round_nearest_afz round_nearest_even rsqrt select shift_left shift_right_arithmetic
    shift_right_logical sign sine sqrt subtract tan tanh xor""".split())

# ops whose regions are program code, run as written (their ops have their own cost);
# the regions of every other op (reduce, sort, scatter bodies) are per-element
# combiners whose cost the formulas above already include
CONTROL_FLOW = frozenset({"stablehlo.while", "stablehlo.case", "stablehlo.if",
                          "sdy.manual_computation"})

COLLECTIVES = frozenset({"all_gather", "reduce_scatter", "all_reduce", "all_to_all",
                         "collective_permute"})


def _elems(t) -> int:
    return prod(I.shape_of(t)) if I.is_tensor(t) else 0


def _tensors(values) -> list:
    return [v.type for v in values if I.is_tensor(v.type)]


def op_flops(op) -> int:
    """FLOPs of one op by the conventions above (nested region ops not included)."""
    name = op.name
    if name in ("stablehlo.dot_general", "stablehlo.dot"):
        lhs = I.shape_of(op.operands[0].type)
        if name == "stablehlo.dot":
            contracting = [len(lhs) - 1]
        else:
            dn = I.stablehlo.DotDimensionNumbers(op.attributes["dot_dimension_numbers"])
            contracting = list(dn.lhs_contracting_dimensions)
        return 2 * _elems(op.results[0].type) * prod(lhs[d] for d in contracting)
    if name == "stablehlo.convolution":
        kernel = I.shape_of(op.operands[1].type)
        dn = I.stablehlo.ConvDimensionNumbers(op.attributes["dimension_numbers"])
        per_out = prod(kernel[d] for d in dn.kernel_spatial_dimensions)
        per_out *= kernel[dn.kernel_input_feature_dimension]
        return 2 * _elems(op.results[0].type) * per_out
    if name in ELEMENTWISE:
        return sum(_elems(t) for t in _tensors(op.results))
    if name == "stablehlo.reduce":
        inputs = op.operands[:len(op.operands) // 2]   # operands = inputs + init values
        return sum(_elems(v.type) for v in inputs)
    if name == "stablehlo.reduce_window":
        window = prod(I.ir.DenseI64ArrayAttr(op.attributes["window_dimensions"]))
        return len(op.results) * _elems(op.results[0].type) * window
    return 0


def costed_ops(root):
    """Ops that carry their own cost, in program order: skips combiner bodies."""
    for region in root.regions:
        for block in region.blocks:
            for op in block.operations:
                op = op.operation
                if op.name.endswith(".return"):
                    continue
                yield op
                if op.name in CONTROL_FLOW:
                    yield from costed_ops(op)


def op_bytes(op) -> int:
    """Bytes read plus bytes written: each tensor operand and result once."""
    return (sum(I.nbytes(t) for t in _tensors(op.operands))
            + sum(I.nbytes(t) for t in _tensors(op.results)))


def ring_bytes(kind: str, nbytes: int, n: int) -> float:
    """Per-device bytes on the wire for collective `kind` over a group of `n` devices.

    `nbytes` is the result size for all_gather, the operand size otherwise (the
    full, unsharded buffer in both cases)."""
    kind = kind.removeprefix("stablehlo.")
    if kind not in COLLECTIVES:
        raise ValueError(f"unknown collective '{kind}'; expected one of {sorted(COLLECTIVES)}")
    if kind == "collective_permute":
        return float(nbytes)
    if n <= 1:
        return 0.0
    factor = 2 if kind == "all_reduce" else 1
    return factor * (n - 1) * nbytes / n


def group_size(op) -> int:
    """Devices per replica group; an empty group list means every device."""
    shape = I.shape_of(op.attributes["replica_groups"].type)
    if len(shape) == 2 and shape[0] * shape[1] > 0:
        return shape[1]
    parent = op
    while parent is not None and parent.name != "builtin.module":
        parent = parent.parent
    attrs = parent.attributes if parent is not None else {}
    key = "mhlo.num_partitions" if "use_global_device_ids" in op.attributes \
        else "mhlo.num_replicas"
    return int(attrs[key].value) if key in attrs else 1


def collective_bytes(op) -> float:
    """Per-device bytes on the wire of a StableHLO collective op; 0 for other ops."""
    kind = op.name.removeprefix("stablehlo.")
    if not op.name.startswith("stablehlo.") or kind not in COLLECTIVES:
        return 0.0
    if kind == "collective_permute":
        return ring_bytes(kind, sum(I.nbytes(t) for t in _tensors(op.operands)), 1)
    side = op.results if kind == "all_gather" else op.operands
    return ring_bytes(kind, sum(I.nbytes(t) for t in _tensors(side)), group_size(op))


# ---------------------------------------------------------------- time model

def compute_time(op_flops: float, op_bytes: float, dtype: str, profile) -> float:
    """Roofline time of one kernel: the slower of its math and its memory traffic, plus
    the launch overhead; an op with neither (a no-op) costs nothing."""
    if op_flops <= 0 and op_bytes <= 0:
        return 0.0
    return (max(op_flops / profile.peak(dtype), op_bytes / profile.hbm_bandwidth)
            + profile.launch_overhead)


def ring_steps(kind: str, n: int) -> int:
    """Latency-bound steps of the ring algorithm behind ring_bytes."""
    kind = kind.removeprefix("stablehlo.")
    if kind not in COLLECTIVES:
        raise ValueError(f"unknown collective '{kind}'; expected one of {sorted(COLLECTIVES)}")
    if kind == "collective_permute":
        return 1
    if n <= 1:
        return 0
    return 2 * (n - 1) if kind == "all_reduce" else n - 1


def wire_time(kind: str, wire_bytes: float, n: int, link) -> float:
    """Alpha-beta time of a collective whose per-device bytes on the wire are known."""
    steps = ring_steps(kind, n)
    if steps == 0:
        return 0.0                         # a group of one: nothing is emitted
    return link.overhead + steps * link.latency + wire_bytes / link.bandwidth


def collective_time(kind: str, nbytes: float, n: int, link) -> float:
    """Time of collective `kind` over `n` devices on `link`; `nbytes` as in ring_bytes
    (the full buffer: the result of an all_gather, the operand otherwise)."""
    return wire_time(kind, ring_bytes(kind, nbytes, n), n, link)


def step_time(step, mesh, cluster, offset: int = 0) -> float:
    """Time of one partition/spmd/reshard.py Step: its `bytes` are already ring_bytes, its
    group spans `axes` and runs at the slowest of their links. A slice moves nothing."""
    if step.kind == "slice" or not step.axes:
        return 0.0
    n = 1
    link = None
    for a in step.axes:
        n *= a.length(mesh)
        k = cluster.axis_link(mesh, a, offset)
        link = k if link is None else link.slower(k)
    return wire_time(step.kind, step.bytes, n, link)


def steps_time(steps, mesh, cluster, offset: int = 0) -> float:
    """Time of a reshard Step list on `mesh` laid on `cluster` from device `offset`."""
    return sum(step_time(s, mesh, cluster, offset) for s in steps)
