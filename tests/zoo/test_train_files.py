"""`rhino export MODEL --train-files DIR`: the donated step plus rhino train's init/data files."""
from __future__ import annotations

import jax
import numpy as np

from rhino_mlir import zoo
from rhino_mlir.tools import rhino
from rhino_mlir.tools.train_cmd import aliasing


def test_train_files_match_the_model(tmp_path, capsys):
    out, files = tmp_path / "step.mlir", tmp_path / "files"
    assert rhino.main(["export", "mlp", "-o", str(out), "--train-files", str(files), "--batches", "2"]) == 0
    m = zoo.get("mlp")
    params, opt, _ = m.args("train_step")
    carried = jax.tree_util.tree_leaves((params, opt))
    with np.load(files / "init.npz") as z:
        assert sorted(z.files, key=lambda k: int(k[3:])) == [f"arg{j}" for j in range(len(carried))]
        for j, x in enumerate(carried):
            np.testing.assert_array_equal(z[f"arg{j}"], np.asarray(x))
    leaves = [jax.tree_util.tree_leaves(m.batch(seed=s)) for s in range(2)]
    for b in range(len(leaves[0])):
        got = np.load(files / "data" / f"arg{len(carried) + b}.npy")
        assert got.shape == (2, *np.shape(leaves[0][b]))
        np.testing.assert_array_equal(got[1], np.asarray(leaves[1][b]))
    # the carried arguments are donated: result i aliases argument j for each of them
    assert sorted(j for _, j in aliasing(out.read_text())) == list(range(len(carried)))
    assert "rhino train" in capsys.readouterr().err


def test_train_files_errors_leave_nothing(tmp_path, capsys):
    files = tmp_path / "files"
    assert rhino.main(["export", "mlp", "--train-files", str(files)]) == 1
    assert "needs -o" in capsys.readouterr().err and not files.exists()
    assert rhino.main(["export", "mlp", "--fn", "forward", "-o", str(tmp_path / "f.mlir"),
                       "--train-files", str(files)]) == 1
    assert "drop --fn forward" in capsys.readouterr().err
    files.mkdir()
    (files / "x").write_text("keep")
    assert rhino.main(["export", "mlp", "-o", str(tmp_path / "s.mlir"), "--train-files", str(files)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["files"]
