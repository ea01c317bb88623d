"""docs/passes.md is generated from the pass registry and must not go stale."""
from pathlib import Path

from rhino_mlir.passes import REGISTRY
from rhino_mlir.tools.gen_pass_docs import generate

DOC = Path(__file__).resolve().parents[2] / "docs" / "passes.md"
REGEN = "python -m rhino_mlir.tools.gen_pass_docs > docs/passes.md"


def test_committed_docs_equal_generated():
    assert DOC.read_text() == generate(), f"docs/passes.md is stale; regenerate it: {REGEN}"


def test_every_pass_and_option_is_documented():
    text = generate()
    for name, cls in REGISTRY.items():
        assert f"## `{name}`" in text
        assert cls.summary() in text
        for f in cls.options():
            assert f"| `{f.name.replace('_', '-')}` |" in text


def test_option_types_and_defaults():
    text = generate()
    assert "| `legalize-chlo` | `bool` | `true` |" in text          # rhino-inline
    assert "| `mode` | `str` | `import` |" in text                  # rhino-lower-collectives
