"""Pipeline strings: syntax, grouping of upstream passes, options, errors."""
from dataclasses import dataclass
from typing import ClassVar

import pytest

from rhino_mlir import ir as I
from rhino_mlir.errors import PassError, PipelineError
from rhino_mlir.passes import REGISTRY, ModulePass, PassContext
from rhino_mlir.passes.pass_pipeline import (RhinoStep, UpstreamStep, parse_elements, parse_pipeline,
                                 run_pipeline_str, split_options)

PROGRAM = """
func.func @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @double(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func private @double(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


@pytest.fixture
def ctx():
    return I.new_context()


def test_elements_keep_nesting_and_options():
    es = parse_elements("builtin.module(rhino-inline, func.func(canonicalize{max-iterations=3}),"
                        "p{a=1 b=x,y})")
    assert [e.name for e in es] == ["rhino-inline", "func.func", "p"]
    assert es[1].children[0].options == "max-iterations=3"
    assert es[1].text == "func.func(canonicalize{max-iterations=3})"
    assert es[2].options == "a=1 b=x,y"
    assert [e.name for e in parse_elements("a,b")] == ["a", "b"]
    assert parse_elements("") == []


def test_split_options():
    assert split_options('a=1 b=x,y c="q r" flag  d={1 2}') == {
        "a": "1", "b": "x,y", "c": "q r", "flag": "", "d": "{1 2}"}


def test_upstream_passes_grouped_between_rhino_passes(ctx):
    steps = parse_pipeline("builtin.module(rhino-inline,func.func(canonicalize),cse,"
                           "rhino-strip-sharding,sdy-drop-sharding-and-mesh)", ctx)
    assert [type(s) for s in steps] == [RhinoStep, UpstreamStep, RhinoStep, UpstreamStep]
    assert steps[0].pass_.name == "rhino-inline"
    assert steps[1].pipeline == "builtin.module(func.func(canonicalize),cse)"
    assert steps[3].elements == ("sdy-drop-sharding-and-mesh",)


def test_rhino_options_become_fields(ctx):
    (step,) = parse_pipeline("rhino-inline{legalize-chlo=false}", ctx)
    assert step.pass_.legalize_chlo is False
    (step,) = parse_pipeline("rhino-inline", ctx)
    assert step.pass_.legalize_chlo is True


@pytest.mark.parametrize("text, message", [
    ("builtin.module(rhino-inline,frob)", "unknown pass 'frob'; known rhino passes: "),
    ("func.func(frob)", "unknown pass 'frob'"),
    ("rhino-inline{nope=1}", "unknown option 'nope' for pass 'rhino-inline'"),
    ("rhino-inline{legalize-chlo=perhaps}", "bad value 'perhaps'"),
    ("canonicalize{nope=1}", "bad option for pass 'canonicalize'"),
    ("func.func(rhino-inline)", "rhino pass 'rhino-inline' runs on the whole module"),
    ("builtin.module(cse", "malformed pipeline at column 19"),
    ("builtin.module{x=1}(cse)", "builtin.module takes no options"),
])
def test_bad_pipelines(ctx, text, message):
    with pytest.raises(PipelineError, match=None) as e:
        parse_pipeline(text, ctx)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_pass_lists_every_rhino_pass(ctx):
    with pytest.raises(PipelineError) as e:
        parse_pipeline("frob", ctx)
    for name in REGISTRY:
        assert name in str(e.value)


def test_run_mixes_rhino_and_upstream_passes(ctx):
    m = I.parse_module(PROGRAM, ctx)
    seen = []
    run_pipeline_str(m, "builtin.module(rhino-inline,func.func(canonicalize),cse)",
                     PassContext(ctx), print_after_all=lambda label, mod: seen.append(label))
    text = str(m)
    assert "call" not in text and "@double" not in text   # inlined and erased
    assert text.count("stablehlo.add") == 1               # dead add gone (canonicalize)
    assert seen == ["rhino-inline", "func.func(canonicalize)", "cse"]


def test_internal_error_names_the_pass(ctx, monkeypatch):
    @dataclass(frozen=True)
    class Broken(ModulePass):
        """Always crashes."""
        name: ClassVar[str] = "test-broken"

        def apply(self, pctx, module):
            raise KeyError("boom")

    monkeypatch.setitem(REGISTRY, "test-broken", Broken)
    m = I.parse_module(PROGRAM, ctx)
    with pytest.raises(PassError) as e:
        run_pipeline_str(m, "test-broken", PassContext(ctx))
    assert str(e.value).startswith("test-broken: internal error: KeyError")
    assert isinstance(e.value.__cause__, KeyError)


def test_invalid_ir_from_a_pass_is_caught(ctx, monkeypatch):
    @dataclass(frozen=True)
    class Corrupt(ModulePass):
        """Makes the return type disagree with the signature."""
        name: ClassVar[str] = "test-corrupt"

        def apply(self, pctx, module):
            f = I.main_func(module)
            ret = I.block_ops(f.regions[0].blocks[0])[-1]
            ret.operands[0].set_type(I.ir.Type.parse("tensor<8xf32>"))

    monkeypatch.setitem(REGISTRY, "test-corrupt", Corrupt)
    m = I.parse_module(PROGRAM, ctx)
    with pytest.raises(PassError, match="test-corrupt: produced invalid IR"):
        run_pipeline_str(m, "test-corrupt", PassContext(ctx))
