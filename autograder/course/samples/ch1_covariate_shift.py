"""Planted bugs for ch1_covariate_shift; each must lose exactly its function's points."""
from functools import partial

from autograder.course.samples import Bug, edited_solution

_edited = partial(edited_solution, "ch1_covariate_shift")

BUGS = [
    Bug("standardized-not-whitened", "whiten", "per-feature standardization", '''\
def whiten(x_train, x_test, eps=1e-5):
    mean, var = x_train.mean(axis=0), x_train.var(axis=0)
    return (x_train - mean) / np.sqrt(var + eps), (x_test - mean) / np.sqrt(var + eps)'''),
    Bug("unbiased-covariance", "whiten", "unbiased covariance", '''\
def whiten(x_train, x_test, eps=1e-5):
    mean = x_train.mean(axis=0)
    lam, u = np.linalg.eigh(np.cov(x_train, rowvar=False))
    w = (u / np.sqrt(lam + eps)) @ u.T
    return (x_train - mean) @ w, (x_test - mean) @ w'''),
    Bug("test-own-statistics", "whiten", "test set whitened with its own statistics", '''\
def whiten(x_train, x_test, eps=1e-5):
    def fit(x):
        xc = x - x.mean(axis=0)
        lam, u = np.linalg.eigh(xc.T @ xc / len(x))
        return xc @ ((u / np.sqrt(lam + eps)) @ u.T)
    return fit(x_train), fit(x_test)'''),
    Bug("inverse-covariance", "whiten", "inverse covariance instead of its square root", '''\
def whiten(x_train, x_test, eps=1e-5):
    mean = x_train.mean(axis=0)
    xc = x_train - mean
    w = np.linalg.inv(xc.T @ xc / len(xc) + eps * np.eye(xc.shape[1]))
    return xc @ w, (x_test - mean) @ w'''),
    Bug("no-bias-column", "condition_number", "bias column missing", '''\
def condition_number(x):
    lam = np.linalg.eigvalsh(x.T @ x / len(x))
    return lam[-1] / lam[0]'''),
    Bug("singular-values", "condition_number", "singular values instead of eigenvalues", '''\
def condition_number(x):
    s = np.linalg.svd(np.hstack([x, np.ones((len(x), 1))]), compute_uv=False)
    return s[0] / s[-1]'''),
    Bug("centered-covariance", "condition_number", "covariance instead of the Hessian", '''\
def condition_number(x):
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1]))
    return lam[-1] / lam[0]'''),
    Bug("eps-outside-sqrt", "whiten", "eps outside the square root", _edited(
        "whiten", ("w = (u / np.sqrt(lam + eps)) @ u.T", "w = (u / (np.sqrt(np.maximum(lam, 0)) + eps)) @ u.T"))),
    Bug("not-centered", "whiten", "data not centered", _edited(
        "whiten", ("    mean = x_train.mean(axis=0)\n", "    mean = np.zeros(x_train.shape[1])\n"))),
    Bug("kappa-inverted", "condition_number", "ratio inverted", _edited(
        "condition_number", ("kappa = lam[-1] / lam[0]", "kappa = lam[0] / lam[-1]"))),
    Bug("whiten-modifies-x_train", "whiten", "modified its input `x_train` in place", _edited(
        "whiten", ("    xc = x_train - mean", "    x_train -= mean\n    xc = x_train"))),
]

_GRADS, _TRAIN = "sigmoid_mlp_gradients", "train_sigmoid_mlp"

BUGS += [
    Bug("bn-statistics-constant", _GRADS, "batch statistics treated as constants in backward", _edited(
        _GRADS, ("dz = (g - g.mean(axis=0) - z_hat * (g * z_hat).mean(axis=0)) / std", "dz = g / std"))),
    Bug("loss-summed", _GRADS, "loss summed over the batch", _edited(
        _GRADS, ("loss = -log_p[np.arange(n), y].mean()", "loss = -log_p[np.arange(n), y].sum()"),
        ("    dscores /= n\n", ""))),
    Bug("gradient-not-averaged", _GRADS, "gradient not divided by the batch size", _edited(
        _GRADS, ("    dscores /= n\n", ""))),
    Bug("loss-after-step", _TRAIN, "loss recorded after the step", _edited(
        _TRAIN, ("            params[k] = params[k] - lr * grads[k]\n",
                 "            params[k] = params[k] - lr * grads[k]\n"
                 "        curve[t] = sigmoid_mlp_gradients(params, x, y, batchnorm)[0]\n"))),
    Bug("gamma-beta-frozen", _TRAIN, "gamma and beta not trained", _edited(
        _TRAIN, ("        for k in params:\n",
                 "        for k in [k for k in params if not k.startswith(('gamma', 'beta'))]:\n"))),
    Bug("trains-the-callers-params", _TRAIN, "modified its input `params['W1']` in place", _edited(
        _TRAIN, ("    params = {k: v.copy() for k, v in params.items()}      # the caller's arrays stay as they are\n", ""),
        ("            params[k] = params[k] - lr * grads[k]", "            params[k] -= lr * grads[k]"))),
]
