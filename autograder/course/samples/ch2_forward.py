"""Planted bugs for ch2_forward; each must lose exactly its function's points."""
from autograder.course.samples import Bug, edited_solution

BUGS = [
    Bug("unbiased-variance", "batchnorm_forward", "unbiased variance", '''\
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0, ddof=1)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, gamma, var)'''),
    Bug("eps-outside-sqrt", "batchnorm_forward", "eps outside the square root", '''\
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    x_hat = (x - mu) / (x.std(axis=0) + eps)
    return gamma * x_hat + beta, (x_hat, gamma)'''),
    Bug("one-pass-variance", "batchnorm_forward", "cancels catastrophically", '''\
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = (x ** 2).mean(axis=0) - mu ** 2
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, gamma, var)'''),
    Bug("wrong-nchw-axes", "spatial_batchnorm_forward", "reduced over N only", '''\
def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None], None'''),
    Bug("reshape-no-transpose", "spatial_batchnorm_forward", "reshape without transpose", '''\
def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
    out, cache = batchnorm_forward(x.reshape(-1, x.shape[1]), gamma, beta, eps)
    return out.reshape(x.shape), cache'''),
    Bug("syntax-error", "spatial_batchnorm_forward", "SyntaxError", '''\
def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5)
    return x, None'''),
]

_MASKED = "masked_batchnorm_forward"


def _masked(*edits):
    return edited_solution("ch2_forward", _MASKED, *edits)


BUGS += [
    Bug("masked-stats-include-padding", _MASKED, "statistics include padded positions", _masked(
        ("mu = valid.mean(axis=0)", "mu = x.reshape(-1, x.shape[-1]).mean(axis=0)"),
        ("var = (xc ** 2).mean(axis=0)", "var = x.reshape(-1, x.shape[-1]).var(axis=0)"))),
    Bug("masked-divided-by-nt", _MASKED, "divided by N*T", _masked(
        ("mu = valid.mean(axis=0)", "mu = valid.sum(axis=0) / mask.size"),
        ("var = (xc ** 2).mean(axis=0)", "var = (xc ** 2).sum(axis=0) / mask.size"))),
    Bug("masked-per-sequence", _MASKED, "statistics per sequence", '''\
def masked_batchnorm_forward(x, mask, gamma, beta, eps=1e-5):
    m = mask[:, :, None]
    n = np.maximum(m.sum(axis=1, keepdims=True), 1)
    mu = np.where(m, x, 0.0).sum(axis=1, keepdims=True) / n
    var = (np.where(m, x - mu, 0.0) ** 2).sum(axis=1, keepdims=True) / n
    out = np.where(m, gamma * (x - mu) / np.sqrt(var + eps) + beta, 0.0)
    return out, None'''),
    Bug("masked-padding-normalized", _MASKED, "padded positions normalized too", _masked(
        ("out[mask] = gamma * x_hat + beta", "out = gamma * (x - mu) / np.sqrt(var + eps) + beta"))),
    Bug("masked-padding-beta", _MASKED, "padded outputs set to beta", _masked(
        ("out = np.zeros_like(x)", "out = np.zeros_like(x) + beta"))),
    Bug("masked-padding-copied", _MASKED, "padded outputs copied from x", _masked(
        ("out = np.zeros_like(x)", "out = x.copy()"))),
    Bug("masked-multiplied-by-mask", _MASKED, "padding multiplied away", '''\
def masked_batchnorm_forward(x, mask, gamma, beta, eps=1e-5):
    m = mask[:, :, None].astype(float)
    xm = x * m
    count = max(m.sum(), 1)
    mu = xm.sum(axis=(0, 1)) / count
    var = (((xm - mu) * m) ** 2).sum(axis=(0, 1)) / count
    out = (gamma * (xm - mu) / np.sqrt(var + eps) + beta) * m
    return out, None'''),
    Bug("masked-unbiased", _MASKED, "unbiased variance", _masked(
        ("var = (xc ** 2).mean(axis=0)", "var = (xc ** 2).sum(axis=0) / max(len(valid) - 1, 1)"))),
    Bug("masked-eps-outside", _MASKED, "eps outside the square root", _masked(
        ("x_hat = xc / np.sqrt(var + eps)", "x_hat = xc / (np.sqrt(var) + eps)"))),
    Bug("masked-eps-missing", _MASKED, "eps missing", _masked(
        ("x_hat = xc / np.sqrt(var + eps)", "x_hat = xc / np.sqrt(var)"))),
]
