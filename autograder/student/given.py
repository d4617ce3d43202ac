"""What the exercises hand out besides the checks: NumPy only, and none of it a graded answer.

* ``load_digits()``: scikit-learn's bundled 8x8 digits, so exercises can use the chapters' data
  without scikit-learn; the kit builder stores them as ``visible/digits.npz``.
* ``conv2d_numpy``: the convolution chapter 6's exercise folds batch norm into (stride, padding,
  dilation, groups, and a per-channel pad value);
* ``run_layers``: runs a list of layers in chapter 6's format, to compare a folded list with the
  original by their outputs.
"""
from __future__ import annotations

import os

import numpy as np

DIGITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "visible", "digits.npz")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(data, target): 1797 images as rows of 64 grey levels 0..16, and their digits 0..9."""
    with np.load(DIGITS, allow_pickle=False) as z:
        return z["data"].astype(np.float64), z["target"].astype(np.int64)


def conv2d_numpy(x, w, b=None, padding=1, stride=1, dilation=1, groups=1, pad_value=None):
    """Cross-correlation as in ``torch.nn.functional.conv2d``.

    x: (N, C_in, H, W); w: (C_out, C_in // groups, kH, kW); b: (C_out,) or None.
    ``padding``, ``stride`` and ``dilation`` are ints, used for both H and W; ``groups`` splits
    the input and output channels into that many groups of consecutive channels, output group g
    seeing only input group g. The border is padded with zeros, or with ``pad_value[c]`` on
    input channel c when ``pad_value`` (shape (C_in,)) is given.
    Returns (N, C_out, H_out, W_out), H_out = (H + 2*padding - dilation*(kH - 1) - 1) // stride + 1.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_numpy needs x (N, C, H, W) and w (C_out, C_in // groups, kH, kW); "
                         f"got x {x.shape} and w {w.shape}")
    n, c_in, h, wd = x.shape
    c_out, c_group, kh, kw = w.shape
    g, p, s, d = int(groups), int(padding), int(stride), int(dilation)
    if c_in != c_group * g or c_out % g:
        raise ValueError(f"w {w.shape} does not fit x with {c_in} channels in {g} group(s)")
    fill = 0.0 if pad_value is None else np.asarray(pad_value, dtype=np.float64).reshape(1, c_in, 1, 1)
    xp = np.empty((n, c_in, h + 2 * p, wd + 2 * p))
    xp[...] = fill
    xp[:, :, p:p + h, p:p + wd] = x
    span = (d * (kh - 1) + 1, d * (kw - 1) + 1)
    windows = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    windows = windows[:, :, ::s, ::s, ::d, ::d]            # (N, C_in, H_out, W_out, kH, kW)
    h_out, w_out = windows.shape[2:4]
    windows = windows.reshape(n, g, c_group, h_out, w_out, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", windows, w.reshape(g, c_out // g, c_group, kh, kw))
    out = out.reshape(n, c_out, h_out, w_out)
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out


def run_layers(layers, x):
    """Run a list of layers (chapter 6's format, eval mode) on ``x`` with NumPy.

    Each layer is a dict with a "kind":
    - "conv": "w", "b" (or None), and "stride", "padding", "dilation", "groups" (ints; missing
      ones default to 1, 0, 1, 1) and optionally "pad_value"; see :func:`conv2d_numpy`;
    - "linear": "w" (D_out, D_in) and "b" (or None): x @ w.T + b;
    - "bn": "gamma", "beta", "running_mean", "running_var", "eps", on axis 1 (eval mode);
    - "relu"; "flatten" (to (N, everything else)).
    """
    h = np.asarray(x, dtype=np.float64)
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict) or "kind" not in layer:
            raise ValueError(f"layer {k} is {type(layer).__name__}, not a dict with a 'kind'")
        kind = layer["kind"]
        try:
            if kind == "conv":
                h = conv2d_numpy(h, layer["w"], layer.get("b"), padding=layer.get("padding", 0),
                                 stride=layer.get("stride", 1), dilation=layer.get("dilation", 1),
                                 groups=layer.get("groups", 1), pad_value=layer.get("pad_value"))
            elif kind == "linear":
                h = h @ np.asarray(layer["w"], dtype=np.float64).T
                if layer.get("b") is not None:
                    h = h + layer["b"]
            elif kind == "bn":
                shape = (1, -1) + (1,) * (h.ndim - 2)
                scale = np.asarray(layer["gamma"]) / np.sqrt(np.asarray(layer["running_var"]) + layer["eps"])
                h = ((h - np.reshape(layer["running_mean"], shape)) * scale.reshape(shape)
                     + np.reshape(layer["beta"], shape))
            elif kind == "relu":
                h = np.maximum(h, 0.0)
            elif kind == "flatten":
                h = h.reshape(len(h), -1)
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except KeyError as exc:
            raise ValueError(f"layer {k} ({kind!r}) has no {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ValueError(f"layer {k} ({kind!r}): {exc}") from None
    return h
