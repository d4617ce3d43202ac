"""Chapter 6: folding an eval-mode batch norm into the convolution or linear layer before it.

The graded values are the folded weights and bias themselves.  The checks API compares what a
function returns with the reference, so a case cannot compare *layer outputs* instead; equal
weights give equal outputs, and the reference checks that its own folded layer reproduces
conv -> BN(eval) on a random input before any student is compared with it
(:func:`conv_output_gap`, also usable from the test suite).
"""
import numpy as np

from autograder.checks import Case, Check, Mistake


# ---- provided NumPy helper, imported by the exercise notebook -----------------------------

from autograder.student.given import conv2d_numpy  # noqa: E402  (what the exercise hands out)


# ---- inputs --------------------------------------------------------------------------------

def _fold_inputs(w_shape, bias=True, eps=1e-5, var_range=(0.5, 2.0), mean_scale=1.0,
                 negative_gamma=False, dead_channel=False):
    """Arguments of fold_conv_bn / fold_linear_bn, in signature order; ``b`` may be None."""
    def make(rng):
        c = w_shape[0]
        gamma = rng.uniform(0.5, 2.0, c)
        if negative_gamma:
            gamma *= rng.choice([-1.0, 1.0], c)
            gamma[0] = -abs(gamma[0])
        running_var = rng.uniform(*var_range, c)
        if dead_channel:
            running_var[0] = 0.0      # a channel that was always zero during training
        return {
            "w": rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:])),
            "b": rng.standard_normal(c) if bias else None,
            "gamma": gamma,
            "beta": rng.uniform(-1.0, 1.0, c),
            "running_mean": mean_scale * rng.standard_normal(c),
            "running_var": running_var,
            "eps": eps,
        }
    return make


# ---- references ------------------------------------------------------------------------------

def conv_output_gap(w_folded, b_folded, inputs, seed=0):
    """Compare the folded conv with conv -> BN(eval) on a random x (torch, float64).

    ``inputs`` is a case's argument dict; ``x`` holds 2 images of 6x6 pixels, padded to keep
    their size. Returns ``(gap, size)``: max |conv(x; w_folded, b_folded) - BN(conv(x; w, b))|
    and max |BN(conv(x; w, b))|. Used to verify the reference below, and by tests that check a
    folding by its outputs rather than by its weights.
    """
    from autograder import reference as R
    x = np.random.default_rng(seed).standard_normal((2, inputs["w"].shape[1], 6, 6))
    padding = inputs["w"].shape[-1] // 2
    expected = R.conv_bn_eval(x, inputs["w"], inputs["b"], inputs["gamma"], inputs["beta"],
                              inputs["running_mean"], inputs["running_var"], inputs["eps"],
                              padding=padding)
    got = R.conv2d(x, w_folded, b_folded, padding=padding)
    return float(np.max(np.abs(got - expected))), float(np.max(np.abs(expected)))


def _conv_reference(inputs):
    from autograder import reference as R
    w_folded, b_folded = R.fold_conv_bn(**inputs)
    gap, size = conv_output_gap(w_folded, b_folded, inputs)
    if gap > 1e-10 * max(1.0, size):  # the folded conv must BE conv -> BN(eval)
        raise RuntimeError(f"reference fold_conv_bn does not reproduce conv -> BN (gap {gap:.3g})")
    return w_folded, b_folded


def _linear_reference(inputs):
    from autograder import reference as R
    return R.fold_linear_bn(**inputs)


# ---- known mistakes --------------------------------------------------------------------------

def _variant(scale_axis="out", mean_term=True, eps_where="inside", seed_rule=False):
    """Wrong foldings, for conv (4-D w) and linear (2-D w) alike."""
    def compute(inputs):
        import torch
        from autograder import reference as R
        w = R.tensor(inputs["w"])
        c = w.shape[0]
        b = torch.zeros(c, dtype=w.dtype, device=w.device) if inputs["b"] is None else R.tensor(inputs["b"])
        gamma, beta = R.tensor(inputs["gamma"]), R.tensor(inputs["beta"])
        mu, var, eps = R.tensor(inputs["running_mean"]), R.tensor(inputs["running_var"]), inputs["eps"]
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        if seed_rule:
            return R.numpy(w), R.numpy(b - mu + beta * std)
        s = gamma / std
        shape = [-1] + [1] * (w.ndim - 1) if scale_axis == "out" else [1, -1] + [1] * (w.ndim - 2)
        w_folded = w * s.reshape(shape)      # "in" only broadcasts when C_in == C_out
        b_folded = (b - mu) * s + beta if mean_term else b * s + beta
        return R.numpy(w_folded), R.numpy(b_folded)
    return compute


def _mistakes(unit, in_axis_hint):
    return (
        Mistake(f"scaled along the input {unit}s",
                f"BN scales each OUTPUT {unit}: multiply {in_axis_hint}",
                _variant(scale_axis="in")),
        Mistake("mean term missing from the bias",
                "the folded bias is (b - running_mean) * gamma / sqrt(running_var + eps) + beta; "
                "b * scale + beta forgets to subtract the running mean",
                _variant(mean_term=False)),
        Mistake("std without eps",
                "divide by sqrt(running_var + eps), not sqrt(running_var): BN adds eps in eval mode too",
                _variant(eps_where="missing")),
        Mistake("eps outside the square root", "use sqrt(running_var + eps), not sqrt(running_var) + eps",
                _variant(eps_where="outside")),
        Mistake("weights left unscaled",
                "that is the seed article's special case; every layer folds by the same rule: "
                f"the weights of each output {unit} must be multiplied by "
                "gamma / sqrt(running_var + eps)",
                _variant(seed_rule=True)),
    )


_DEAD = ("a channel with running_var = 0 is legal (it was always constant in training); "
         "eps keeps its scale finite")

CHECKS = [
    Check(
        function="fold_conv_bn",
        returns=("w_folded", "b_folded"),
        compared=("w_folded", "b_folded"),
        reference=_conv_reference,
        cases=(
            # C_in == C_out in the visible cases, so scaling the wrong axis still broadcasts
            # and the check can name that mistake instead of a broadcasting error.
            Case("C_out=C_in=4, 3x3, with bias", _fold_inputs((4, 4, 3, 3))),
            Case("no conv bias (b=None)", _fold_inputs((3, 3, 3, 3), bias=False),
                 hint="without a conv bias the folded conv still has one: beta - running_mean * scale"),
            Case("eps=0.1, small running_var", _fold_inputs((3, 3, 1, 1), eps=0.1, var_range=(0.01, 0.2))),
            Case("random shape 16x8x3x3", _fold_inputs((16, 8, 3, 3)), hidden=True,
                 hint="scale the first axis of w (C_out), whatever C_in is"),
            Case("1x1 conv 5x7, no bias", _fold_inputs((5, 7, 1, 1), bias=False), hidden=True),
            Case("depthwise weight 6x1x3x3", _fold_inputs((6, 1, 3, 3)), hidden=True),
            Case("a dead channel (running_var=0)", _fold_inputs((4, 4, 3, 3), dead_channel=True),
                 hidden=True, hint=_DEAD),
            Case("negative gamma, large running_mean, 5x5",
                 _fold_inputs((8, 8, 5, 5), negative_gamma=True, mean_scale=50.0), hidden=True),
            Case("C_out=C_in=1, 1x1, no bias", _fold_inputs((1, 1, 1, 1), bias=False), hidden=True),
        ),
        mistakes=_mistakes("channel", "w[c, :, :, :] by gamma[c] / sqrt(running_var[c] + eps), "
                                      "i.e. scale.reshape(-1, 1, 1, 1)"),
    ),
    Check(
        function="fold_linear_bn",
        returns=("w_folded", "b_folded"),
        compared=("w_folded", "b_folded"),
        reference=_linear_reference,
        cases=(
            Case("D_out=D_in=5, with bias", _fold_inputs((5, 5))),
            Case("no bias (b=None)", _fold_inputs((4, 4), bias=False),
                 hint="without a bias the folded layer still has one: beta - running_mean * scale"),
            Case("eps=0.1, small running_var", _fold_inputs((3, 3), eps=0.1, var_range=(0.01, 0.2))),
            Case("random shape 10x7", _fold_inputs((10, 7)), hidden=True,
                 hint="scale the rows of w (one per output feature): scale[:, None] * w"),
            Case("D_out=1, D_in=3, no bias", _fold_inputs((1, 3), bias=False), hidden=True),
            Case("a dead feature (running_var=0)", _fold_inputs((6, 6), dead_channel=True),
                 hidden=True, hint=_DEAD),
            Case("negative gamma, large running_mean", _fold_inputs((6, 9), negative_gamma=True,
                                                                    mean_scale=50.0), hidden=True),
        ),
        mistakes=_mistakes("feature", "row w[j, :] by gamma[j] / sqrt(running_var[j] + eps), "
                                      "i.e. scale[:, None] * w (w * scale scales the columns)"),
    ),
]
