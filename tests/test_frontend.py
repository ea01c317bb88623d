"""rhino_mlir.frontend: lowering JAX functions, loading files, writing sdy annotations."""
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rhino_mlir
from harness.signature import signature
from harness.xla_oracle import run_global
from rhino_mlir import ir as I
from rhino_mlir.errors import ParseError, ShardingError
from rhino_mlir.frontend import annotate, load, lower
from rhino_mlir.sharding import Mesh


def _f(p, x, *, scale):
    return {"y": jnp.tanh(x @ p["w"]) * scale}, jnp.sum(x)


ARGS = ({"w": jnp.ones((4, 8)), "b": jnp.ones((3,)), "unused": jnp.ones(5)},
        jax.ShapeDtypeStruct((2, 4), jnp.float32))


def test_lower_records_paths_and_keeps_unused():
    text, info = rhino_mlir.lower(_f, *ARGS, scale=2.0)
    assert info.arg_paths == ["[0]['b']", "[0]['unused']", "[0]['w']", "[1]", "['scale']"]
    assert info.arg_types == ["tensor<3xf32>", "tensor<5xf32>", "tensor<4x8xf32>",
                              "tensor<2x4xf32>", "tensor<f32>"]
    assert info.result_paths == ["[0]['y']", "[1]"]
    assert 'rhino.arg_path = "[0][\'unused\']"' in text
    assert len(signature(text).args) == 5           # unused leaves stay arguments


def test_lowered_program_runs():
    text, _ = lower(lambda a, b: (a * b + 1.0, a.sum()), np.ones((2, 3), np.float32),
                    np.full((2, 3), 2.0, np.float32))
    out = run_global(text, [np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)])
    np.testing.assert_array_equal(out[0], np.full((2, 3), 3.0))
    assert float(out[1]) == 6.0


def test_shape_dtype_struct_lowers_big_without_memory():
    big = jax.ShapeDtypeStruct((1 << 16, 1 << 16), jnp.bfloat16)    # 8 GiB if materialized
    text, info = lower(lambda w: w.T, big)
    assert info.arg_types == ["tensor<65536x65536xbf16>"]


def test_load_text_bytecode_and_portable_artifact(tmp_path):
    text, _ = lower(lambda x: x * 2.0, np.ones(3, np.float32))
    (tmp_path / "a.mlir").write_text(text)
    ctx = I.new_context()
    mod = I.parse_module(text, ctx)
    buf = io.BytesIO()
    mod.operation.write_bytecode(buf)
    (tmp_path / "a.mlirbc").write_bytes(buf.getvalue())
    art = I.stablehlo.serialize_portable_artifact_str(text, I.stablehlo.get_current_version())
    (tmp_path / "a.stablehlo").write_bytes(art)
    for name in ("a.mlir", "a.mlirbc", "a.stablehlo"):
        got = load(tmp_path / name)
        assert "stablehlo.multiply" in got, name
        np.testing.assert_array_equal(run_global(got, [np.arange(3, dtype=np.float32)])[0], [0, 2, 4])
    assert "stablehlo.multiply" in load(text)


def test_load_malformed_names_line(tmp_path):
    p = tmp_path / "bad.mlir"
    p.write_text("module {\n  func.func @main( {\n}\n")
    with pytest.raises(ParseError, match=r"bad.mlir:2:\d+"):
        load(p)


MESH = Mesh("mesh", (("x", 2), ("y", 2)))


def test_annotate_writes_mesh_and_shardings():
    text, _ = lower(lambda w, x: x @ w, np.ones((4, 8), np.float32), np.ones((6, 4), np.float32))
    out = annotate(text, MESH, [(None, "y"), '[{"x"}, {}]'], ['[{"x"}, {"y"}]'])
    sig = signature(out)
    assert sig.mesh() == MESH
    assert sig.args[0].sharding.to_text() == '#sdy.sharding<@mesh, [{}, {"y"}]>'
    assert sig.args[1].sharding.to_text() == '#sdy.sharding<@mesh, [{"x"}, {}]>'
    assert sig.results[0].sharding.to_text() == '#sdy.sharding<@mesh, [{"x"}, {"y"}]>'
    assert sig.args[0].type == "tensor<4x8xf32>"
    # idempotent on the mesh; a dict updates only the named argument
    again = annotate(out, MESH, {0: '[{"x"}, {}]'})
    assert again.count("sdy.mesh") == 1
    assert signature(again).args[1].sharding == sig.args[1].sharding
    # XLA still runs it (sdy dropped by the oracle for one device)
    r = run_global(out, [np.ones((4, 8), np.float32), np.ones((6, 4), np.float32)])
    np.testing.assert_array_equal(r[0], np.full((6, 8), 4.0))


def test_annotate_sub_axis_and_device_ids():
    mesh = Mesh("m", (("x", 2), ("y", 4)), device_ids=tuple(reversed(range(8))))
    text, _ = lower(lambda a: a + 1, np.ones((8, 3), np.float32))
    out = annotate(text, mesh, ['[{"y":(2)2, "x"}, {}]'])
    sig = signature(out)
    assert sig.mesh().device_ids == tuple(reversed(range(8)))
    assert sig.args[0].sharding.dims[0][0].to_text() == '"y":(2)2'


@pytest.mark.parametrize("sh,msg", [
    ('[{"z"}, {}]', "unknown axis 'z'"),
    ('[{"x"}]', "rank 1 but tensor has rank 2"),
    ('[{"x"}, {"x"}]', "used twice"),
])
def test_annotate_rejects_bad_shardings(sh, msg):
    text, _ = lower(lambda a: a + 1, np.ones((8, 3), np.float32))
    with pytest.raises(ShardingError, match=msg):
        annotate(text, MESH, [sh])
