"""Chapter 1: what normalizing the inputs buys, and what full whitening would cost.

* ``whiten(x_train, x_test, eps)`` -> ``(z_train, z_test)``: ZCA whitening with the training
  set's mean and (biased) covariance, eps added to every eigenvalue under the square root, as
  batch norm adds it to every variance. With uncorrelated features it IS batch norm's per-feature
  standardization; with correlated ones it also removes the correlations, at the price of an
  eigendecomposition (the BN paper's reason for normalizing each feature on its own).
* ``condition_number(x)`` -> ``kappa``: the condition number of the least-squares Hessian
  (1/N) A^T A, A = [x, 1], that the chapter uses to explain why standardized inputs train faster.

NumPy only at import time: the grading sandbox imports this module without torch. The reference
and the known-mistake variants import torch inside the functions that compute them.
"""
import numpy as np

from autograder.course.checks import Case, Check, Mistake

# ---- inputs --------------------------------------------------------------------------------

def _correlated(rng, n, d, loc=0.0, scale=1.0, mixing=True):
    """n rows of d features with offsets, different scales and (if ``mixing``) correlations."""
    z = rng.standard_normal((n, d)) * rng.uniform(0.2, 5.0, d)
    if mixing:
        z = z @ (np.eye(d) + 0.7 * rng.standard_normal((d, d)))
    return loc + rng.uniform(-5.0, 5.0, d) + scale * z


def _whiten_inputs(n_train, n_test, d, eps=1e-5, loc=0.0, scale=1.0, mixing=True,
                   constant_feature=False, test_shift=0.0, random_shape=False):
    def make(rng):
        n, m, dd = n_train, n_test, d
        if random_shape:
            dd = int(rng.integers(2, 40))
            n, m = int(rng.integers(dd + 1, 300)), int(rng.integers(1, 60))
        x = _correlated(rng, n + m, dd, loc, scale, mixing)
        x_train, x_test = x[:n], x[n:] + test_shift * x[:n].std(axis=0)
        if constant_feature:
            x_train[:, 0] = 2.0
            x_test[:, 0] = 2.0 + rng.standard_normal(m)
        return {"x_train": x_train, "x_test": x_test, "eps": eps}
    return make


def _kappa_inputs(n, d, loc=0.0, scale=1.0, mixing=True, standardized=False, whitened=False,
                  wide_feature=None, random_shape=False):
    def make(rng):
        nn, dd = n, d
        if random_shape:
            dd = int(rng.integers(1, 30))
            nn = int(rng.integers(dd + 2, 400))
        x = _correlated(rng, nn, dd, loc, scale, mixing)
        if wide_feature is not None:
            x[:, 0] *= wide_feature
        if standardized or whitened:
            x = x - x.mean(axis=0)
        if standardized:
            x = x / x.std(axis=0)
        if whitened:
            lam, u = np.linalg.eigh(x.T @ x / nn)
            x = x @ (u / np.sqrt(lam)) @ u.T
        return {"x": x}
    return make


# ---- whiten --------------------------------------------------------------------------------

def _whiten_reference(inputs):
    from autograder.course import reference as R
    return R.whiten(inputs["x_train"], inputs["x_test"], inputs["eps"])


def _whiten_variant(stats_from="train", unbiased=False, eps_where="inside", power=-0.5,
                    center=True, per_feature=False):
    """Wrong versions of whiten, for naming a student's mistake."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        xtr, xte, eps = R.tensor(inputs["x_train"]), R.tensor(inputs["x_test"]), inputs["eps"]

        def fit(x):
            mean = x.mean(dim=0) if center else torch.zeros(x.shape[1], dtype=R.DTYPE, device=R.DEVICE)
            xc = x - mean
            if per_feature:
                var = (xc ** 2).mean(dim=0)
                return mean, torch.diag(1.0 / torch.sqrt(var + eps))
            cov = xc.T @ xc / (x.shape[0] - (1 if unbiased else 0))
            lam, u = torch.linalg.eigh(cov)
            if eps_where == "outside":
                f = 1.0 / (torch.sqrt(torch.clamp(lam, min=0.0)) + eps)
            else:
                f = (lam + eps) ** power
            return mean, (u * f) @ u.T

        mean, w = fit(xtr)
        if stats_from == "own":
            mean_te, w_te = fit(xte)
            return R.numpy((xtr - mean) @ w), R.numpy((xte - mean_te) @ w_te)
        return R.numpy((xtr - mean) @ w), R.numpy((xte - mean) @ w)
    return compute


_WHITEN_MISTAKES = (
    Mistake("per-feature standardization",
            "that is batch norm's standardization, feature by feature; whitening also removes the "
            "correlations between features, so W is a full matrix, not a diagonal one",
            _whiten_variant(per_feature=True)),
    Mistake("test set whitened with its own statistics",
            "the test set must go through the transformation fitted on the training set: the "
            "training mean and the training W for both sets",
            _whiten_variant(stats_from="own")),
    Mistake("unbiased covariance",
            "the covariance divides by N, as batch norm's variance does",
            _whiten_variant(unbiased=True)),
    Mistake("eps outside the square root",
            "eps is added to every eigenvalue under the square root, as batch norm adds it to "
            "the variance under its square root",
            _whiten_variant(eps_where="outside")),
    Mistake("inverse covariance instead of its square root",
            "W is the inverse square ROOT of cov + eps I: W applied twice, not once, undoes it",
            _whiten_variant(power=-1.0)),
    Mistake("data not centered",
            "the covariance is taken around the training mean, and both sets are centered with it",
            _whiten_variant(center=False)),
)

# ---- condition_number -------------------------------------------------------------------------

def _kappa_reference(inputs):
    from autograder.course import reference as R
    return (R.condition_number(inputs["x"]),)


def _kappa_variant(bias_column=True, center=False, singular_values=False, inverted=False):
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        a = R.tensor(inputs["x"])
        if center:
            a = a - a.mean(dim=0)
        if bias_column:
            a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=R.DTYPE, device=R.DEVICE)], dim=1)
        lam = torch.linalg.eigvalsh(a.T @ a / a.shape[0])
        kappa = float(lam[0] / lam[-1]) if inverted else float(lam[-1] / lam[0])
        return (kappa ** 0.5 if singular_values else kappa,)
    return compute


_KAPPA_MISTAKES = (
    Mistake("bias column missing",
            "the model has a bias, so A has a column of ones beside the features; without it "
            "raw offsets barely change kappa",
            _kappa_variant(bias_column=False)),
    Mistake("singular values instead of eigenvalues",
            "kappa is the ratio of the eigenvalues of the Hessian; the singular values of A are "
            "their square roots",
            _kappa_variant(singular_values=True)),
    Mistake("covariance instead of the Hessian",
            "the Hessian uses the raw features and the column of ones; centering first hides "
            "exactly the offsets that make kappa large",
            _kappa_variant(bias_column=False, center=True)),
    Mistake("ratio inverted",
            "kappa is the largest eigenvalue over the smallest, so it is at least 1",
            _kappa_variant(inverted=True)),
)

_ONE_PASS = ("with mean 1e6 and std 1e-3, a covariance computed as the mean of the products minus "
             "the product of the means cancels catastrophically; center before multiplying")

CHECKS = [
    Check(
        function="whiten",
        returns=("z_train", "z_test"),
        compared=("z_train", "z_test"),
        reference=_whiten_reference,
        rtol=1e-6,
        atol=1e-8,
        cases=(
            Case("N_train=50, N_test=7, D=4, correlated", _whiten_inputs(50, 7, 4)),
            Case("eps=0.1", _whiten_inputs(30, 5, 3, eps=0.1)),
            Case("a feature constant in training", _whiten_inputs(40, 6, 5, constant_feature=True),
                 hint="a direction with variance 0 is scaled by one over the square root of eps: "
                      "the result stays finite"),
            Case("random N and D", _whiten_inputs(0, 0, 0, random_shape=True), hidden=True),
            Case("N_train=2, D=3: a rank-1 covariance", _whiten_inputs(2, 2, 3), hidden=True,
                 hint="with N <= D the covariance is singular: eps keeps every scale finite"),
            Case("independent features, diagonal covariance",
                 _whiten_inputs(60, 10, 6, mixing=False), hidden=True),
            Case("test set shifted", _whiten_inputs(80, 20, 5, test_shift=3.0), hidden=True),
            Case("mean 1e6, std 1e-3", _whiten_inputs(100, 10, 3, loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_WHITEN_MISTAKES,
    ),
    Check(
        function="condition_number",
        returns=("kappa",),
        compared=("kappa",),
        reference=_kappa_reference,
        rtol=1e-6,
        atol=0.0,
        cases=(
            Case("raw features with offsets, N=100, D=5", _kappa_inputs(100, 5)),
            Case("standardized features", _kappa_inputs(80, 4, standardized=True)),
            Case("random N and D", _kappa_inputs(0, 0, random_shape=True), hidden=True),
            Case("whitened features: kappa = 1", _kappa_inputs(50, 6, whitened=True), hidden=True),
            Case("N = D + 2, a single feature", _kappa_inputs(3, 1), hidden=True),
            # Uncorrelated features: with correlated ones an offset of 1e3 makes kappa up to 1e20,
            # pure rounding noise on which two correct methods disagree by 10 %.
            Case("offset 1e3", _kappa_inputs(200, 3, loc=1e3, mixing=False), hidden=True, rtol=1e-6),
            Case("one feature 1000 times wider", _kappa_inputs(60, 4, wide_feature=1e3, mixing=False),
                 hidden=True),
        ),
        mistakes=_KAPPA_MISTAKES,
    ),
]
