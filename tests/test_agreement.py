"""The CPU-vs-GPU agreement tool tells a reference drift from a known-mistake drift."""
import numpy as np

from autograder.tools import agreement


def _dump(path, expected, mistake):
    tol = np.array([1e-7, 1e-9])
    np.savez(path, **{"f|case|expected0": expected, "f|case|expected0|tol": tol,
                      "f|case|a mistake0": mistake, "f|case|a mistake0|tol": tol})


def test_agreeing_dumps_pass_and_a_reference_drift_fails(tmp_path, capsys):
    x = np.linspace(-3, 3, 12)
    _dump(tmp_path / "a.npz", x, x)
    _dump(tmp_path / "b.npz", x + 1e-12, x + 1e-3)          # mistakes may drift: no score moves
    assert agreement.compare(str(tmp_path / "a.npz"), str(tmp_path / "b.npz")) == 0
    _dump(tmp_path / "c.npz", x + 1e-7, x)                   # the reference moved past 10 % of tol
    assert agreement.compare(str(tmp_path / "a.npz"), str(tmp_path / "c.npz")) == 1
    assert "DISAGREE (reference values): f" in capsys.readouterr().out


def test_nan_on_one_device_only_is_a_disagreement(tmp_path):
    x = np.ones(3)
    _dump(tmp_path / "a.npz", x, x)
    _dump(tmp_path / "b.npz", np.array([1.0, np.nan, 1.0]), x)
    assert agreement.compare(str(tmp_path / "a.npz"), str(tmp_path / "b.npz")) == 1
