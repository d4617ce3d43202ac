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
import functools

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
            "each feature was scaled by its own standard deviation, which is batch norm's "
            "standardization: the correlations between features survive it, so the result's "
            "covariance is not the identity",
            _whiten_variant(per_feature=True),
            correction="W = U diag(1 / sqrt(lam + eps)) U^T from the full covariance"),
    Mistake("test set whitened with its own statistics",
            "the test rows were centered and scaled with a mean and W fitted on the test set: "
            "a test row's output then depends on the other test rows, not on what training saw",
            _whiten_variant(stats_from="own"),
            correction="z_test = (x_test - mean_train) @ W_train"),
    Mistake("unbiased covariance",
            "the covariance was divided by one less than the number of training rows (Bessel's "
            "correction), while batch norm's variance, which this generalizes, is not",
            _whiten_variant(unbiased=True),
            correction="cov = xc.T @ xc / N"),
    Mistake("eps outside the square root",
            "eps was added to the square roots of the eigenvalues: that agrees with the "
            "specification only along directions whose variance is large next to eps",
            _whiten_variant(eps_where="outside"),
            correction="1 / np.sqrt(lam + eps)"),
    Mistake("inverse covariance instead of its square root",
            "your W is the inverse of cov + eps I: W applied twice, not once, would undo the "
            "covariance, so each direction is scaled by one over its variance instead of one "
            "over its standard deviation",
            _whiten_variant(power=-1.0),
            correction="W = U diag((lam + eps) ** -0.5) U^T"),
    Mistake("data not centered",
            "the covariance and the outputs were computed around 0, not around the training "
            "mean: the offsets of the features leak into W and into z",
            _whiten_variant(center=False),
            correction="xc = x_train - x_train.mean(axis=0)"),
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
            "the model has a bias, and your Hessian was built from the features alone: without "
            "the constant column, raw offsets barely change kappa",
            _kappa_variant(bias_column=False),
            correction="A = np.hstack([x, np.ones((N, 1))])"),
    Mistake("singular values instead of eigenvalues",
            "your kappa is the square root of the expected one: it is a ratio of singular values "
            "of A, and each of those is the square root of a curvature of the loss, not the "
            "curvature itself",
            _kappa_variant(singular_values=True),
            correction="eigenvalues of A.T @ A / N"),
    Mistake("covariance instead of the Hessian",
            "the features were centered before the Hessian was formed: centering hides exactly "
            "the offsets that make kappa large",
            _kappa_variant(bias_column=False, center=True),
            correction="H = A.T @ A / N with the raw x in A"),
    Mistake("ratio inverted",
            "your kappa is below 1: the smallest eigenvalue was divided by the largest",
            _kappa_variant(inverted=True),
            correction="kappa = lam.max() / lam.min()"),
)

_ONE_PASS = ("with mean 1e6 and std 1e-3, a covariance computed as the mean of the products minus "
             "the product of the means subtracts two numbers near the square of the mean that agree in every digit a "
             "float64 holds: what is left is rounding noise")

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
                 hint="a direction with variance 0: the scale along it must stay finite"),
            Case("random N and D", _whiten_inputs(0, 0, 0, random_shape=True), hidden=True),
            Case("N_train=2, D=3: a rank-1 covariance", _whiten_inputs(2, 2, 3), hidden=True,
                 hint="with N <= D the covariance is singular: some directions have variance 0, and the "
                      "scale along them must stay finite"),
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
            # Uncorrelated: a random mixing matrix can make kappa 1e10 and more, where two correct
            # eigenvalue routines disagree in the third digit (submission key 18 of the suite).
            Case("random N and D", _kappa_inputs(0, 0, random_shape=True, mixing=False), hidden=True),
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


# ---- the graded experiment: a sigmoid network with and without BN, from the student's layers ---

SIGMOID_GRADIENTS = ("loss",) + tuple(f"d{k}" for k in ("W3", "b3", "gamma2", "beta2", "W2", "b2",
                                                        "gamma1", "beta1", "W1", "b1"))
_PARAMS = ("W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3")


@functools.lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled digits, blank pixels dropped, standardized (as in the notebook)."""
    from autograder.course import digits
    x, y = digits.load()
    x = x[:, x.std(axis=0) > 0]
    return (x - x.mean(axis=0)) / x.std(axis=0), y


def _sigmoid_params(rng, dims, scale, trained=False):
    """Weights from N(0, scale^2); a fresh network has b = 0, gamma = 1, beta = 0, a ``trained``
    one has them anywhere (so that a gradient check sees every parameter at work)."""
    params = {}
    for i in (1, 2, 3):
        params[f"W{i}"] = scale * rng.standard_normal((dims[i - 1], dims[i]))
        params[f"b{i}"] = 0.3 * rng.standard_normal(dims[i]) if trained else np.zeros(dims[i])
        if i < 3:
            params[f"gamma{i}"] = rng.uniform(0.5, 2.0, dims[i]) if trained else np.ones(dims[i])
            params[f"beta{i}"] = rng.uniform(-1.0, 1.0, dims[i]) if trained else np.zeros(dims[i])
    return {k: params[k] for k in _PARAMS}


def _gradient_inputs(n, hidden, batchnorm, scale=0.3, random_sizes=False, dead_unit=False):
    def make(rng):
        nn, (h1, h2) = n, hidden
        if random_sizes:
            nn, h1, h2 = int(rng.integers(2, 40)), int(rng.integers(2, 30)), int(rng.integers(2, 30))
        x, y = _digits()
        idx = rng.choice(len(x), nn, replace=False)
        params = _sigmoid_params(rng, [x.shape[1], h1, h2, 10], scale, trained=True)
        if dead_unit:
            params["W1"][:, 0] = 0.0   # unit 0 of layer 1: the same value for every example
        return {"params": params, "x": x[idx], "y": [int(v) for v in y[idx]],
                "batchnorm": batchnorm}
    return make


def _training_inputs(n, steps, hidden, batchnorm, scale, lr, random_sizes=False):
    def make(rng):
        nn, tt, (h1, h2) = n, steps, hidden
        if random_sizes:
            nn, tt = int(rng.integers(2, 40)), int(rng.integers(2, 9))
            h1, h2 = int(rng.integers(2, 30)), int(rng.integers(2, 30))
        x, y = _digits()
        batches = [rng.choice(len(x), nn, replace=False) for _ in range(tt)]
        return {"params": _sigmoid_params(rng, [x.shape[1], h1, h2, 10], scale),
                "x_batches": [x[b] for b in batches],
                "y_batches": [[int(v) for v in y[b]] for b in batches],
                "lr": lr, "batchnorm": batchnorm}
    return make


def _gradient_reference(inputs):
    from autograder.course import reference as R
    loss, grads = R.sigmoid_mlp_gradients(**inputs)
    return (loss, *(grads[name[1:]] for name in SIGMOID_GRADIENTS[1:]))


def _training_reference(inputs):
    from autograder.course import reference as R
    return (R.sigmoid_mlp_train(**inputs),)


def _torch_network(stats_constant=False, unbiased=False, bn_after_sigmoid=False, sigmoid_prime_of_z=False):
    """The sigmoid network's mean loss, written out in torch, wrong in one of the ways students are."""
    import torch
    import torch.nn.functional as F

    class WrongSigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return torch.sigmoid(z)

        @staticmethod
        def backward(ctx, grad):
            (z,) = ctx.saved_tensors
            return grad * z * (1 - z)          # the derivative formula applied to the input

    sigmoid = WrongSigmoid.apply if sigmoid_prime_of_z else torch.sigmoid

    def bn(z, gamma, beta):
        mu, var = z.mean(dim=0), z.var(dim=0, unbiased=unbiased)
        if stats_constant:
            mu, var = mu.detach(), var.detach()
        return gamma * (z - mu) / torch.sqrt(var + 1e-5) + beta

    def loss(p, x, y, batchnorm, reduction="mean"):
        h = x
        for i in (1, 2):
            z = h @ p[f"W{i}"] + p[f"b{i}"]
            if batchnorm and not bn_after_sigmoid:
                z = bn(z, p[f"gamma{i}"], p[f"beta{i}"])
            h = sigmoid(z)
            if batchnorm and bn_after_sigmoid:
                h = bn(h, p[f"gamma{i}"], p[f"beta{i}"])
        return F.cross_entropy(h @ p["W3"] + p["b3"], y, reduction=reduction)
    return loss


def _gradients_of(network, p, x, y, batchnorm, loss_sum=False, grad_sum=False):
    import torch
    value = network(p, x, y, batchnorm, "sum" if (loss_sum or grad_sum) else "mean")
    grads = torch.autograd.grad(value, list(p.values()), allow_unused=True)
    grads = {k: torch.zeros_like(p[k]) if g is None else g for k, g in zip(p, grads)}
    shown = value if not grad_sum else value / x.shape[0]
    return shown, grads


def _gradient_variant(loss_sum=False, grad_sum=False, **network):
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        p = {k: R.tensor(inputs["params"][k]).requires_grad_(True) for k in _PARAMS}
        y = torch.as_tensor(np.asarray(inputs["y"], dtype=np.int64), device=R.DEVICE)
        value, grads = _gradients_of(_torch_network(**network), p, R.tensor(inputs["x"]), y,
                                     inputs["batchnorm"], loss_sum, grad_sum)
        return (float(value.detach()), *(R.numpy(grads[name[1:]]) for name in SIGMOID_GRADIENTS[1:]))
    return compute


def _training_variant(loss_after_step=False, frozen_bn=False, loss_sum=False, grad_sum=False, **network):
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        net = _torch_network(**network)
        p = {k: R.tensor(inputs["params"][k]) for k in _PARAMS}
        losses = []
        for xb, yb in zip(inputs["x_batches"], inputs["y_batches"]):
            x = R.tensor(xb)
            y = torch.as_tensor(np.asarray(yb, dtype=np.int64), device=R.DEVICE)
            p = {k: v.detach().requires_grad_(True) for k, v in p.items()}
            value, grads = _gradients_of(net, p, x, y, inputs["batchnorm"], loss_sum, grad_sum)
            with torch.no_grad():
                p = {k: v if frozen_bn and k[:4] in ("gamm", "beta") else v - inputs["lr"] * grads[k]
                     for k, v in p.items()}
                if loss_after_step:
                    value = net(p, x, y, inputs["batchnorm"])
            losses.append(float(value.detach()))
        return (np.array(losses),)
    return compute


_STATS_CONSTANT = ("the batch mean and variance depend on every example of the batch, and the "
                   "backward pass through BN treated them as constants: the gradient misses the "
                   "paths through the mean and the variance")
_NETWORK_MISTAKES = (
    ("batch statistics treated as constants in backward", _STATS_CONSTANT, {"stats_constant": True},
     "dz = (g - g.mean(axis=0) - z_hat * (g * z_hat).mean(axis=0)) / std  # g = gamma * dy"),
    ("loss summed over the batch",
     "the loss and every gradient are N times the expected ones: the cross-entropy was added up "
     "over the batch instead of averaged", {"loss_sum": True},
     "loss = -log_p[np.arange(N), y].mean(); dscores /= N"),
    ("gradient not divided by the batch size",
     "the loss is right but every gradient is N times too large: the gradient of the scores "
     "lost the 1/N of the mean", {"grad_sum": True}, "dscores /= N"),
    ("BN after the sigmoid",
     "BN normalizes the output of each sigmoid here; chapter 1's network (and the BN paper's) "
     "normalizes the sigmoid's input, the affine map before it", {"bn_after_sigmoid": True},
     "a = sigmoid(gamma * z_hat + beta)"),
    ("unbiased variance in BN",
     "the BN variance was divided by one less than the batch size (Bessel's correction), while "
     "BN rescales the batch it has", {"unbiased": True}, "var = ((z - mu) ** 2).mean(axis=0)"),
    ("sigmoid derivative taken at its input",
     "the sigmoid's local derivative was evaluated at the pre-activation, in a formula that is "
     "written in terms of the sigmoid's output: the gradient flowing back through every sigmoid "
     "is wrong",
     {"sigmoid_prime_of_z": True}, "dz = da * a * (1 - a)  # a = sigmoid(z)"),
)

_GRADIENT_MISTAKES = tuple(
    Mistake(name, hint, _gradient_variant(**kw), correction=fix)
    for name, hint, kw, fix in _NETWORK_MISTAKES)

_TRAINING_MISTAKES = tuple(
    Mistake(name, hint, _training_variant(**kw), correction=fix)
    for name, hint, kw, fix in _NETWORK_MISTAKES) + (
    Mistake("loss recorded after the step",
            "losses[t] is the loss of batch t with the parameters AFTER its update; the curve "
            "starts one step late",
            _training_variant(loss_after_step=True),
            correction="loss, grads = gradients(params, x_t, y_t); losses.append(loss); then update"),
    Mistake("gamma and beta not trained",
            "gamma1, beta1, gamma2 and beta2 kept their initial values: they are parameters, and "
            "SGD moves them like the weights",
            _training_variant(frozen_bn=True),
            correction="params[k] -= lr * grads[k] for every k, gamma and beta included"),
)

_GRADIENT_HINT = ("the values are compared in the order backpropagation finds them (loss, then W3 "
                  "down to b1): the first one that differs is where to look")

CHECKS += [
    Check(
        function="sigmoid_mlp_gradients",
        returns=SIGMOID_GRADIENTS,
        compared=SIGMOID_GRADIENTS,
        reference=_gradient_reference,
        protocol="loss_and_gradients",
        rtol=1e-6,
        atol=1e-9,
        cases=(
            Case("N=8, hidden 6 and 5, with BN", _gradient_inputs(8, (6, 5), True), hint=_GRADIENT_HINT),
            Case("N=8, hidden 6 and 5, without BN", _gradient_inputs(8, (6, 5), False),
                 hint=_GRADIENT_HINT),
            Case("N=3, hidden 4 and 7, with BN, weights of std 2", _gradient_inputs(3, (4, 7), True, scale=2.0),
                 hint=_GRADIENT_HINT),
            Case("random sizes, with BN", _gradient_inputs(0, (0, 0), True, random_sizes=True), hidden=True),
            Case("random sizes, without BN", _gradient_inputs(0, (0, 0), False, random_sizes=True),
                 hidden=True),
            Case("N=2, with BN", _gradient_inputs(2, (5, 5), True), hidden=True),
            Case("a unit constant over the batch, with BN", _gradient_inputs(10, (6, 4), True, dead_unit=True),
                 hidden=True, hint="a unit with the same pre-activation for every example has batch "
                                   "variance 0: its gradients must stay finite"),
            Case("weights of std 3, without BN", _gradient_inputs(16, (8, 8), False, scale=3.0), hidden=True),
        ),
        mistakes=_GRADIENT_MISTAKES,
    ),
    Check(
        function="train_sigmoid_mlp",
        uses=("sigmoid_mlp_gradients",),
        returns=("losses",),
        compared=("losses",),
        steps=("losses",),
        reference=_training_reference,
        rtol=1e-6,
        atol=1e-9,
        cases=(
            Case("with BN, weights of std 1, 6 steps of 16", _training_inputs(16, 6, (12, 9), True, 1.0, 0.5)),
            Case("without BN, weights of std 0.1, 6 steps of 16",
                 _training_inputs(16, 6, (12, 9), False, 0.1, 0.5)),
            Case("random sizes, with BN", _training_inputs(0, 0, (0, 0), True, 0.3, 0.3, random_sizes=True),
                 hidden=True),
            Case("random sizes, without BN", _training_inputs(0, 0, (0, 0), False, 0.3, 0.3, random_sizes=True),
                 hidden=True),
            Case("with BN, weights of std 0.01, lr 2", _training_inputs(12, 5, (8, 8), True, 0.01, 2.0),
                 hidden=True),
            Case("without BN, weights of std 2", _training_inputs(12, 5, (8, 8), False, 2.0, 0.5), hidden=True),
            Case("batches of 2, with BN", _training_inputs(2, 4, (6, 5), True, 1.0, 0.1), hidden=True),
        ),
        mistakes=_TRAINING_MISTAKES,
    ),
]
