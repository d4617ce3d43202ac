"""scikit-learn's bundled 8x8 digits, read without importing scikit-learn.

The chapters' data set is the CSV that scikit-learn installs with itself
(``sklearn/datasets/data/digits.csv.gz``: 64 grey levels 0..16 and the digit, per row), so
nothing is downloaded. ``sklearn.datasets.load_digits`` reads that same file, but importing
scikit-learn costs about a core-second, once per grading run, per Dask worker and per kit build;
``np.loadtxt`` reads it in a few milliseconds. Where the file is not found (a scikit-learn that
keeps it elsewhere), scikit-learn's own loader is used, so the values are the same either way
(``tests/test_reference.py`` compares them).
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import os

import numpy as np

CSV = ("datasets", "data", "digits.csv.gz")


def bundled_csv() -> str | None:
    """The path of scikit-learn's digits CSV, found without importing scikit-learn; None where
    scikit-learn is not installed or keeps no such file."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, *CSV)
        if os.path.isfile(path):
            return path
    return None


@functools.lru_cache(maxsize=1)
def _read() -> tuple[np.ndarray, np.ndarray]:
    path = bundled_csv()
    if path is None:
        from sklearn.datasets import load_digits
        data, target = load_digits(return_X_y=True)
    else:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
        if table.shape[1] != 65:
            raise ValueError(f"{path}: expected 65 columns (64 pixels and the digit), found {table.shape[1]}")
        data, target = table[:, :-1], table[:, -1]
    data, target = np.asarray(data, dtype=np.float64), np.asarray(target).astype(np.int64)
    data.flags.writeable = target.flags.writeable = False
    return data, target


def load() -> tuple[np.ndarray, np.ndarray]:
    """(data, target): 1797 images as rows of 64 grey levels 0..16 (float64), and their digits
    0..9 (int64); fresh copies, so a caller may change them."""
    data, target = _read()
    return data.copy(), target.copy()
