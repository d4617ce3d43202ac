"""Chapter 1: standardizing inputs with training statistics; percentiles of a sigmoid input.

NumPy only at import time: the grading sandbox imports this module without torch. The reference
and the known-mistake variants import torch inside the functions that compute them.
"""
import numpy as np

from autograder.checks import Case, Check, Mistake


# ---- standardize(x_train, x_test, eps) ----------------------------------------------------

def _standardize_inputs(n_train, n_test, d, eps=1e-8, loc=0.0, test_shift=0.0, test_scale=1.0,
                        constant_feature=None, integer=False):
    """Features on mixed scales, as raw data has them; ``test_shift`` makes a covariate shift.

    ``constant_feature`` (a float) sets feature 0 to zero in every training row and to that
    value in the test rows, like a pixel that happens to be blank in every training image.
    """
    def make(rng):
        if integer:  # 8x8-digit-like pixel intensities 0..16, given as integers
            x_train = rng.integers(0, 17, (n_train, d))
            x_test = rng.integers(0, 17, (n_test, d))
        else:
            scales = rng.uniform(0.1, 10.0, d)
            centers = loc + rng.uniform(-5.0, 5.0, d)
            x_train = centers + scales * rng.standard_normal((n_train, d))
            x_test = (centers + test_shift * scales
                      + test_scale * scales * rng.standard_normal((n_test, d)))
        if constant_feature is not None:
            x_train[:, 0] = 0
            x_test[:, 0] = constant_feature
        return {"x_train": x_train, "x_test": x_test, "eps": eps}
    return make


def _standardize_reference(inputs):
    from autograder import reference as R
    return R.standardize(inputs["x_train"], inputs["x_test"], inputs["eps"])


def _standardize_variant(stats_from="train", unbiased=False, eps_where="outside", axis=0):
    """Wrong versions of standardize, for naming a student's mistake."""
    def compute(inputs):
        import torch
        from autograder import reference as R
        xtr, xte, eps = R.tensor(inputs["x_train"]), R.tensor(inputs["x_test"]), inputs["eps"]

        def scale(x, source):
            mean = source.mean(dim=axis, keepdim=True)
            var = source.var(dim=axis, keepdim=True, unbiased=unbiased)
            if eps_where == "outside":
                return (x - mean) / (torch.sqrt(var) + eps)
            if eps_where == "inside":
                return (x - mean) / torch.sqrt(var + eps)
            return (x - mean) / torch.sqrt(var)

        if stats_from == "own":
            return R.numpy(scale(xtr, xtr)), R.numpy(scale(xte, xte))
        source = torch.cat([xtr, xte]) if stats_from == "pooled" else xtr
        return R.numpy(scale(xtr, source)), R.numpy(scale(xte, source))
    return compute


_ONE_PASS = ("with mean 1e6 and std 1e-3, E[x^2] - E[x]^2 cancels catastrophically: "
             "np.std (or the mean of (x - mean)**2) computes it in two passes")

_STANDARDIZE_MISTAKES = (
    Mistake("test set standardized with its own statistics",
            "use the TRAINING mean and std for both sets: the test set must go through the same "
            "transformation the model was trained with",
            _standardize_variant(stats_from="own")),
    Mistake("train and test pooled for the statistics",
            "compute mean and std from x_train only; pooling lets the test set leak into the "
            "preprocessing",
            _standardize_variant(stats_from="pooled")),
    Mistake("unbiased std",
            "use the biased std (divide by N: np.std's default ddof=0), not ddof=1",
            _standardize_variant(unbiased=True)),
    Mistake("eps inside a square root",
            "this exercise's convention is (x - mean) / (std + eps); sqrt(var + eps) is batch "
            "norm's convention (Chapter 2)",
            _standardize_variant(eps_where="inside")),
    Mistake("eps missing",
            "divide by (std + eps): a feature that is constant in the training set has std 0",
            _standardize_variant(eps_where="missing")),
    Mistake("statistics over the wrong axis",
            "mean and std are per feature: reduce over the rows (axis=0), one value per column",
            _standardize_variant(stats_from="own", axis=1)),
)


# ---- activation_percentiles(acts, q) ------------------------------------------------------

def _percentile_inputs(steps, units, q=(15, 50, 85), drift=True, integer=False, loc=0.0):
    """Row t is what one sigmoid input looked like at recorded step t; it drifts over steps."""
    def make(rng):
        if integer:  # many ties between values
            acts = rng.integers(-3, 4, (steps, units)).astype(np.float64)
        else:
            t = np.linspace(0.0, 1.0, steps)[:, None]
            center = loc + (2.0 * t - 0.5 if drift else 0.0)
            spread = 0.2 + (1.5 * t if drift else 1.0)
            acts = center + spread * rng.standard_normal((steps, units))
        return {"acts": acts, "q": tuple(q)}
    return make


def _percentile_reference(inputs):
    from autograder import reference as R
    return (R.activation_percentiles(inputs["acts"], inputs["q"]),)


def _percentile_variant(dim=1, q_scale=1.0 / 100.0, interpolation="linear"):
    def compute(inputs):
        import torch
        from autograder import reference as R
        a = R.tensor(inputs["acts"])
        qs = torch.tensor([float(v) * q_scale for v in inputs["q"]], dtype=R.DTYPE, device=R.DEVICE)
        return (R.numpy(torch.quantile(a, qs, dim=dim, interpolation=interpolation).T),)
    return compute


_PERCENTILE_MISTAKES = (
    Mistake("percentiles over the wrong axis",
            "each row of acts is one training step: take the percentiles across a row (axis=1, "
            "over the units), not down a column (axis=0, over the steps)",
            _percentile_variant(dim=0)),
    Mistake("q treated as fractions",
            "q is in percent (15 means the 15th percentile): np.percentile takes it as it is; "
            "only np.quantile wants fractions, q / 100",
            _percentile_variant(q_scale=1.0 / 10000.0)),
    Mistake("percentile rounded down to a data point",
            "between two sorted values, interpolate linearly (np.percentile's default)",
            _percentile_variant(interpolation="lower")),
    Mistake("percentile rounded to the nearest data point",
            "between two sorted values, interpolate linearly (np.percentile's default)",
            _percentile_variant(interpolation="nearest")),
)


CHECKS = [
    Check(
        function="standardize",
        returns=("z_train", "z_test"),
        compared=("z_train", "z_test"),
        reference=_standardize_reference,
        cases=(
            Case("N_train=20, N_test=7, D=4", _standardize_inputs(20, 7, 4)),
            Case("eps=0.1", _standardize_inputs(12, 5, 3, eps=0.1)),
            Case("a feature that is zero in every training row",
                 _standardize_inputs(15, 6, 5, constant_feature=0.0),
                 hint="a feature with std 0 must come out as 0, not NaN: divide by (std + eps)"),
            Case("random shape 200x30, 50 test rows", _standardize_inputs(200, 50, 30), hidden=True),
            Case("test set shifted (covariate shift)",
                 _standardize_inputs(40, 25, 6, test_shift=3.0, test_scale=2.0), hidden=True),
            Case("zero in training, not in test",
                 _standardize_inputs(30, 8, 4, constant_feature=1.0), hidden=True,
                 hint="a feature that is constant in training gives (x_test - mean) / eps in test"),
            Case("N_train=2, one test row", _standardize_inputs(2, 1, 3), hidden=True),
            Case("integer pixels 0..16", _standardize_inputs(64, 16, 10, integer=True), hidden=True,
                 hint="integer inputs: compute in floating point (no in-place arithmetic on an "
                      "integer array)"),
            Case("mean 1e6, std about 1e-3",
                 lambda rng: {"x_train": 1e6 + 1e-3 * rng.standard_normal((50, 4)),
                              "x_test": 1e6 + 1e-3 * rng.standard_normal((10, 4)), "eps": 1e-8},
                 hidden=True, rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_STANDARDIZE_MISTAKES,
    ),
    Check(
        function="activation_percentiles",
        returns=("percentiles",),
        compared=("percentiles",),
        reference=_percentile_reference,
        cases=(
            # Square on purpose: percentiles over the wrong axis then have the right shape, so
            # the check can name that mistake instead of only reporting a shape.
            Case("10 steps x 10 units", _percentile_inputs(10, 10)),
            Case("30 steps x 100 units", _percentile_inputs(30, 100)),
            Case("q=(0, 50, 100)", _percentile_inputs(8, 25, q=(0, 50, 100))),
            Case("random shape 57x40, five percentiles",
                 _percentile_inputs(57, 40, q=(5, 25, 50, 75, 95)), hidden=True),
            Case("one step", _percentile_inputs(1, 9), hidden=True),
            Case("one unit", _percentile_inputs(12, 1), hidden=True),
            Case("two units, median only", _percentile_inputs(6, 2, q=(50,)), hidden=True),
            Case("ties (integer activations)", _percentile_inputs(20, 15, integer=True), hidden=True),
            Case("no drift, offset 1e3", _percentile_inputs(16, 16, drift=False, loc=1e3),
                 hidden=True),
        ),
        mistakes=_PERCENTILE_MISTAKES,
    ),
]
