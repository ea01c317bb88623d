"""rhino-strip-sharding: the result has no sdy and compiles and runs with IREE."""
import iree.compiler as ic
import iree.runtime as rt
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from rhino_mlir import ir as I
from rhino_mlir.errors import PassError
from rhino_mlir.passes import PassContext
from rhino_mlir.passes.pass_pipeline import run_pipeline_str

IREE_ARGS = ["--iree-llvmcpu-target-cpu=host"]


def strip(text: str, pipeline="rhino-inline,rhino-strip-sharding") -> str:
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    run_pipeline_str(m, pipeline, PassContext(ctx))
    return str(m)


def sharded_program():
    mesh = jax.make_mesh((2, 2), ("x", "y"), axis_types=(AxisType.Auto,) * 2)

    def f(x, w):
        y = jax.lax.with_sharding_constraint(x @ w, NamedSharding(mesh, P("x", None)))
        return jax.nn.relu(y)

    jf = jax.jit(f, in_shardings=(NamedSharding(mesh, P("x", None)),
                                  NamedSharding(mesh, P(None, "y"))),
                 out_shardings=NamedSharding(mesh, P("x", "y")))
    return f, jf.lower(jnp.ones((4, 8)), jnp.ones((8, 8))).as_text()


def test_jax_sharded_program_runs_on_iree():
    f, text = sharded_program()
    assert "sdy.mesh" in text and "sdy.sharding_constraint" in text
    out = strip(text)
    assert "sdy" not in out and "mhlo.sharding" not in out
    assert 'jax.result_info = "result"' in out          # unrelated attributes stay
    vmfb = ic.compile_str(out, input_type="stablehlo", target_backends=["llvm-cpu"],
                          extra_args=IREE_ARGS)
    mod = rt.load_vm_flatbuffer(vmfb, driver="local-task")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8), dtype=np.float32)
    w = rng.standard_normal((8, 8), dtype=np.float32)
    np.testing.assert_allclose(mod.main(x, w).to_host(), np.asarray(f(x, w)), rtol=1e-5,
                               atol=1e-5)
    del mod


LOCAL = """
module @local attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {
  sdy.mesh @mesh = <["x"=2, "y"=2]>
  func.func public @main(%arg0: tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>, rhino.global_type = tensor<4x8xf32>}) -> (tensor<2x8xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>}) {
    %0 = stablehlo.partition_id : tensor<ui32>
    %1 = "stablehlo.all_reduce"(%arg0) ({
      ^bb0(%a: tensor<f32>, %b: tensor<f32>):
        %s = stablehlo.add %a, %b : tensor<f32>
        stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids, sdy.sharding = #sdy.sharding_per_value<[<@mesh, [{"x"}, {}]>]>} : (tensor<2x8xf32>) -> tensor<2x8xf32>
    %2 = sdy.reshard %1 <@mesh, [{"x"}, {}]> : tensor<2x8xf32>
    return %2 : tensor<2x8xf32>
  }
}"""


def test_local_program_with_collectives_compiles():
    out = strip(LOCAL, "rhino-strip-sharding")
    assert "sdy" not in out and "rhino." not in out
    assert "mhlo.num_partitions = 4" in out and "stablehlo.partition_id" in out
    ic.compile_str(out, input_type="stablehlo", target_backends=["llvm-cpu"],
                   extra_args=IREE_ARGS)


def test_manual_computation_is_refused():
    text = """
    sdy.mesh @mesh = <["x"=2]>
    func.func public @main(%arg0: tensor<8xf32>) -> tensor<8xf32> {
      %0 = sdy.manual_computation(%arg0) in_shardings=[<@mesh, [{"x"}]>] out_shardings=[<@mesh, [{"x"}]>] manual_axes={"x"} (%a: tensor<4xf32>) {
        sdy.return %a : tensor<4xf32>
      } : (tensor<8xf32>) -> tensor<8xf32>
      return %0 : tensor<8xf32>
    }"""
    with pytest.raises(PassError, match="rhino-strip-sharding: 'sdy.manual_computation'"):
        strip(text, "rhino-strip-sharding")
