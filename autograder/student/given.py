"""What the exercises hand out besides the checks: NumPy only, and none of it a graded answer.

* ``load_digits()``: scikit-learn's bundled 8x8 digits, so exercises can use the chapters' data
  without scikit-learn; the kit builder stores them as ``visible/digits.npz``.
* ``conv2d_numpy``: the convolution chapter 6's exercise folds batch norm into.
"""
from __future__ import annotations

import os

import numpy as np

DIGITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "visible", "digits.npz")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(data, target): 1797 images as rows of 64 grey levels 0..16, and their digits 0..9."""
    with np.load(DIGITS, allow_pickle=False) as z:
        return z["data"].astype(np.float64), z["target"].astype(np.int64)


def conv2d_numpy(x, w, b=None, padding=1):
    """Cross-correlation as in ``torch.nn.functional.conv2d`` (stride 1, zero padding).

    x: (N, C_in, H, W); w: (C_out, C_in, kH, kW); b: (C_out,) or None.
    Returns (N, C_out, H + 2*padding - kH + 1, W + 2*padding - kW + 1).
    """
    p = int(padding)
    xp = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    out = np.einsum("nchwij,ocij->nohw", windows, w)
    if b is not None:
        out = out + np.asarray(b)[None, :, None, None]
    return out
