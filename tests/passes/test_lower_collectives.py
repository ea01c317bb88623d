"""rhino-lower-collectives: collectives -> rhino imports (import), untouched (native)."""
from pathlib import Path

import pytest

from rhino_mlir import ir as rir
from rhino_mlir.errors import PassError
from rhino_mlir.collective_imports import Collective, decode
from rhino_mlir.passes import PassContext, get

PROGRAMS = Path(__file__).parent.parent / "launch" / "rank" / "programs"


def _lower(text: str, mode: str = "import"):
    ctx = rir.new_context()
    m = rir.parse_module(text, ctx)
    with ctx, rir.ir.Location.unknown():
        get("rhino-lower-collectives").from_options({"mode": mode}).apply(PassContext(ctx), m)
    assert m.operation.verify()
    return m


def _imports(m) -> list[str]:
    return sorted(f.attributes["sym_name"].value for f in rir.funcs(m)
                  if f.attributes["sym_name"].value.startswith("rhino."))


def test_import_mode_replaces_every_collective():
    m = _lower((PROGRAMS / "collectives_4.mlir").read_text())
    text = str(m)
    assert "stablehlo.all_" not in text and "stablehlo.partition_id" not in text
    assert "collective_permute\"" not in text and "reduce_scatter\"" not in text
    assert _imports(m) == [
        "rhino.all_gather.d0.g0_2.g1_3.t0",
        "rhino.all_gather.d1.g0_1.g2_3.t0",
        "rhino.all_reduce.sum.g0_1_2_3.t0",
        "rhino.all_to_all.s0.c1.g0_1.g2_3.t0",
        "rhino.all_to_all.s1.c0.g0_1.g2_3.t0",
        "rhino.collective_permute.p0_1.p1_0.p2_3.p3_2.t0",
        "rhino.partition_id",
        "rhino.reduce_scatter.sum.d0.g0_2.g1_3.t0",
    ]
    assert "call @rhino.partition_id() : () -> tensor<ui32>" in text


def test_same_collective_other_type_gets_own_declaration():
    src = """
    module attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
      func.func @main(%a: tensor<4xf32>, %b: tensor<2xf32>) -> (tensor<4xf32>, tensor<2xf32>, tensor<4xf32>) {
        %0 = "stablehlo.all_reduce"(%a) ({
        ^bb0(%x: tensor<f32>, %y: tensor<f32>):
          %s = stablehlo.maximum %x, %y : tensor<f32>
          stablehlo.return %s : tensor<f32>
        }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
        %1 = "stablehlo.all_reduce"(%b) ({
        ^bb0(%x: tensor<f32>, %y: tensor<f32>):
          %s = stablehlo.maximum %x, %y : tensor<f32>
          stablehlo.return %s : tensor<f32>
        }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 2, type = 1>, use_global_device_ids} : (tensor<2xf32>) -> tensor<2xf32>
        %2 = "stablehlo.all_reduce"(%0) ({
        ^bb0(%x: tensor<f32>, %y: tensor<f32>):
          %s = stablehlo.maximum %x, %y : tensor<f32>
          stablehlo.return %s : tensor<f32>
        }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, use_global_device_ids} : (tensor<4xf32>) -> tensor<4xf32>
        return %0, %1, %2 : tensor<4xf32>, tensor<2xf32>, tensor<4xf32>
      }
    }"""
    m = _lower(src)
    assert _imports(m) == ["rhino.all_reduce.max.g0_1.t0", "rhino.all_reduce.max.g0_1.t1"]
    assert all(decode(n) == Collective("all_reduce", "max", ((0, 1),)) for n in _imports(m))


def test_native_mode_keeps_collectives():
    m = _lower((PROGRAMS / "collectives_4.mlir").read_text(), mode="native")
    assert "stablehlo.all_reduce" in str(m) and not _imports(m)


def test_bad_reduce_body_is_named():
    src = (PROGRAMS / "dot_allreduce_2.mlir").read_text().replace(
        "%s = stablehlo.add %x, %y : tensor<f32>",
        "%t = stablehlo.add %x, %y : tensor<f32>\n      %s = stablehlo.multiply %t, %y : tensor<f32>")
    with pytest.raises(PassError, match="rhino-lower-collectives: stablehlo.all_reduce reduces with "
                                         "'stablehlo.add, stablehlo.multiply'"):
        _lower(src)


def test_unknown_mode():
    with pytest.raises(PassError, match="unknown mode 'nccl'"):
        _lower((PROGRAMS / "dot_allreduce_2.mlir").read_text(), mode="nccl")


@pytest.mark.parametrize("c", [
    Collective("partition_id"),
    Collective("all_reduce", "prod", ((0, 1), (2, 3))),
    Collective("all_gather", groups=((0, 1, 2, 3),), dim=2),
    Collective("reduce_scatter", "min", ((1, 0),), dim=1),
    Collective("all_to_all", groups=((0, 2), (1, 3)), split_dim=1, concat_dim=0),
    Collective("collective_permute", pairs=((0, 1), (1, 2), (2, 0))),
])
def test_name_round_trip(c):
    assert decode(c.symbol(3)) == c


def test_native_mode_compiles_for_cuda():
    """Compile-only: IREE lowers the kept collectives to its own channels for CUDA."""
    import iree.compiler as ic
    m = _lower((PROGRAMS / "dot_allreduce_2.mlir").read_text(), mode="native")
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    run_pipeline_str(m, "rhino-strip-sharding", PassContext(m.context))
    vmfb = ic.compile_str(str(m), input_type="stablehlo",
                          extra_args=["--iree-hal-target-device=cuda", "--iree-cuda-target=sm_80"])
    assert len(vmfb) > 1000
