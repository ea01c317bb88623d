"""rhino-opt: I/O, one-line errors, split input, diagnostics verification."""
import os
import subprocess
import sys

import pytest

from rhino_mlir import ir as I
from rhino_mlir.passes import REGISTRY
from rhino_mlir.tools import rhino_opt

PROGRAM = """func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @double(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @double(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""
RECURSIVE = """func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @f(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @f(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


def run(capsys, *argv):
    rc = rhino_opt.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def src(tmp_path):
    p = tmp_path / "in.mlir"
    p.write_text(PROGRAM)
    return p


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rhino-opt: ")
    assert "Traceback" not in err
    return lines[0]


def test_pipeline_to_stdout(capsys, src):
    rc, out, err = run(capsys, str(src), "--pass-pipeline=builtin.module(rhino-inline)")
    assert rc == 0 and err == ""
    assert "call" not in out and "stablehlo.add %arg0, %arg0" in out


def test_output_file_written_and_not_clobbered_on_failure(capsys, src, tmp_path):
    out = tmp_path / "out.mlir"
    assert run(capsys, str(src), "-p", "rhino-inline", "-o", str(out))[0] == 0
    first = out.read_text()
    assert "@double" not in first
    bad = tmp_path / "bad.mlir"
    bad.write_text(RECURSIVE)
    rc, _, err = run(capsys, str(bad), "-p", "rhino-inline", "-o", str(out))
    # the pass names the op; the driver adds where it is
    assert one_error_line(err).startswith(f"rhino-opt: rhino-inline: {bad}:6: @f is recursive")
    assert out.read_text() == first                      # untouched
    assert sorted(os.listdir(tmp_path)) == ["bad.mlir", "in.mlir", "out.mlir"]


def test_stdin_and_entry_point():
    exe = os.path.join(os.path.dirname(sys.executable), "rhino-opt")
    r = subprocess.run([exe, "-", "--pass-pipeline=rhino-inline"], input=PROGRAM,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "call" not in r.stdout
    r = subprocess.run([exe, "-", "-p", "nope"], input=PROGRAM, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert one_error_line(r.stderr).startswith("rhino-opt: pipeline: unknown pass 'nope'")


def test_bytecode_input(capsys, tmp_path):
    ctx = I.new_context()
    m = I.parse_module(PROGRAM, ctx)
    p = tmp_path / "in.mlirbc"
    with open(p, "wb") as f:
        m.operation.write_bytecode(f)
    rc, out, _ = run(capsys, str(p), "-p", "rhino-inline")
    assert rc == 0 and "stablehlo.add" in out and "call" not in out


@pytest.mark.parametrize("text, argv, expected", [
    (PROGRAM, ["-p", "frob"], "rhino-opt: pipeline: unknown pass 'frob'; known rhino passes"),
    (PROGRAM, ["-p", "rhino-inline{x=1}"], "rhino-opt: pipeline: unknown option 'x'"),
    ("func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n  return %a, : tensor<4xf32>\n}\n",
     [], "in.mlir:2:13: "),
    ("func.func @main(%arg0: tensor<?x4xf32>) -> tensor<?x4xf32> {\n"
     "  return %arg0 : tensor<?x4xf32>\n}\n", [],
     "rhino-opt: dynamic shapes are not supported: %arg0 : tensor<?x4xf32>"),
    ("func.func @main(%arg0: tensor<4xf32>, %s: tensor<1xi64>) -> tensor<1xi64> {\n"
     "  %0 = stablehlo.dynamic_reshape %arg0, %s : (tensor<4xf32>, tensor<1xi64>) -> tensor<?xf32>\n"
     "  return %s : tensor<1xi64>\n}\n", [],
     "dynamic shapes are not supported: %0 : tensor<?xf32>"),
])
def test_errors_are_one_line(capsys, tmp_path, text, argv, expected):
    p = tmp_path / "in.mlir"
    p.write_text(text)
    rc, out, err = run(capsys, str(p), *argv)
    assert rc == 1 and out == ""
    assert expected in one_error_line(err)


def test_missing_file_and_debug_traceback(capsys, tmp_path):
    rc, _, err = run(capsys, str(tmp_path / "nope.mlir"))
    assert rc == 1
    assert "input: cannot read" in one_error_line(err)
    rc, _, err = run(capsys, str(tmp_path / "nope.mlir"), "--debug")
    assert rc == 1 and "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("rhino-opt: input: cannot read")


def test_list_passes(capsys):
    rc, out, _ = run(capsys, "--list-passes")
    assert rc == 0
    for name, cls in REGISTRY.items():
        assert f"{name} " in out and cls.summary() in out
    assert "legalize-chlo: bool = True" in out


def test_split_input_file(capsys, tmp_path):
    p = tmp_path / "in.mlir"
    p.write_text(PROGRAM + "\n// -----\n" + PROGRAM.replace("@main", "@other"))
    rc, out, _ = run(capsys, str(p), "--split-input-file", "-p", "rhino-inline")
    assert rc == 0
    first, second = out.split("\n// -----\n")
    assert "@main" in first and "@other" not in first
    assert "@other" in second and "call" not in second


def test_print_ir_after_all_goes_to_stderr(capsys, src):
    rc, out, err = run(capsys, str(src), "--print-ir-after-all", "-p", "rhino-inline,cse")
    assert rc == 0
    assert "IR Dump After rhino-inline" in err and "IR Dump After cse" in err
    assert "IR Dump" not in out


DIAG_OK = """func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @f(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @f(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  // expected-error @-1 {{@f is recursive}}
  return %0 : tensor<4xf32>
}
// -----
func.func @ok(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
  // expected-error @above {{}}
}
"""


def test_verify_diagnostics(capsys, tmp_path):
    p = tmp_path / "in.mlir"
    good, _, _ = DIAG_OK.partition("// -----")
    p.write_text(good)
    rc, out, err = run(capsys, str(p), "--verify-diagnostics", "--split-input-file",
                       "-p", "rhino-inline")
    assert (rc, err) == (0, "")
    # the second chunk expects an error that never comes; the first is still fine
    p.write_text(DIAG_OK)
    rc, _, err = run(capsys, str(p), "--verify-diagnostics", "--split-input-file",
                     "-p", "rhino-inline")
    assert rc == 1
    assert f"{p}:12: expected error \"\" was not produced" in one_error_line(err)


def test_verify_diagnostics_wrong_line_fails(capsys, tmp_path):
    p = tmp_path / "in.mlir"
    p.write_text(DIAG_OK.partition("// -----")[0].replace("@-1", "@-2"))
    rc, _, err = run(capsys, str(p), "--verify-diagnostics", "-p", "rhino-inline")
    assert rc == 1
    lines = err.strip().splitlines()
    assert f"{p}:6: unexpected error: rhino-inline: @f is recursive" in lines[0]
    assert f"{p}:5: expected error" in lines[1]


def test_expectation_designators():
    text = "a\n// expected-error @below {{x}}\n// expected-error@+2 {{y}}\nb\nc // expected-error {{z}}\n"
    got = [(e.line, e.text) for e in rhino_opt.expectations(text)]
    assert got == [(4, "x"), (5, "y"), (5, "z")]


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        rhino_opt.main(["--frobnicate"])
    assert e.value.code == 2
    assert "usage: unrecognized arguments: --frobnicate" in one_error_line(capsys.readouterr().err)
