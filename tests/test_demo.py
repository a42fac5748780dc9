"""The demo trains real networks end to end (tiny settings here)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from actfast import demo  # noqa: E402


def test_train_one_learns_and_records_curves():
    data = demo.load_digits_split()
    r = demo.train_one("elu", "he_normal", data, depth=3, width=32, epochs=4, seed=0)
    assert len(r.test_accuracy) == len(r.train_loss) == len(r.dead_fraction) == len(r.grad_norms) == 4
    assert len(r.grad_norms[0]) == 3
    assert r.test_accuracy[-1] > 0.8          # a shallow wide net learns digits quickly
    assert r.train_loss[-1] < r.train_loss[0]


def test_sigmoid_gradients_vanish_with_depth():
    data = demo.load_digits_split()
    r = demo.train_one("sigmoid", "he_normal", data, depth=10, width=8, epochs=1, seed=0)
    first, last = r.grad_norms[-1][0], r.grad_norms[-1][-1]
    assert first < 1e-2 * last
    assert len(r.saturation) == 1


def test_cli_table_and_plot(tmp_path, capsys):
    from actfast.__main__ import main

    png = tmp_path / "demo.png"
    args = ["demo", "--activations", "relu,leaky_relu", "--inits", "he_normal,rai", "--seeds", "1",
            "--epochs", "2", "--depth", "4", "--width", "8", "--markdown"]
    if _has_matplotlib():
        args += ["--plot", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| relu | he_normal |" in out and "| leaky_relu | rai |" in out
    if _has_matplotlib():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_summary_counts_collapsed_runs():
    r = demo.RunResult("relu", "he_normal", 0, test_accuracy=[0.1], train_loss=[2.3], dead_fraction=[1.0],
                       grad_norms=[[0.0, 1.0]])
    rows = demo.summary_rows([r])
    assert rows[0]["collapsed"] == 1 and rows[0]["dead_fraction"] == 1.0
    assert np.isnan(rows[0]["saturation"])
