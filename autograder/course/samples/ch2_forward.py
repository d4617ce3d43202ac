"""Planted bugs for ch2_forward; each must lose exactly its function's points."""
from autograder.course.samples import Bug, edited_solution

_GHOST, _LAST = "ghost_batchnorm_forward", "channels_last_batchnorm_forward"


def _ghost(*edits):
    return edited_solution("ch2_forward", _GHOST, *edits)


def _last(*edits):
    return edited_solution("ch2_forward", _LAST, *edits)


BUGS = [
    Bug("ghost-unbiased-variance", _GHOST, "unbiased variance", _ghost(
        ("var = (xc ** 2).mean(axis=1, keepdims=True)",
         "var = (xc ** 2).sum(axis=1, keepdims=True) / (ghost_size - 1)"))),
    Bug("ghost-eps-outside-sqrt", _GHOST, "eps outside the square root", _ghost(
        ("std = np.sqrt(var + eps)", "std = np.sqrt(var) + eps"))),
    Bug("ghost-one-pass-variance", _GHOST, "subtracts two numbers near mean^2", _ghost(
        ("var = (xc ** 2).mean(axis=1, keepdims=True)",
         "var = (groups ** 2).mean(axis=1, keepdims=True) - mu ** 2"))),
    Bug("ghost-whole-batch", _GHOST, "statistics over the whole batch", '''\
def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None'''),
    Bug("ghost-interleaved", _GHOST, "ghost batches interleaved", '''\
def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):
    n, d = x.shape
    groups = x.reshape(ghost_size, n // ghost_size, d)
    mu = groups.mean(axis=0)
    var = groups.var(axis=0)
    return (gamma * (groups - mu) / np.sqrt(var + eps) + beta).reshape(n, d), None'''),
    Bug("channels-first-axes", _LAST, "channel axis taken as axis 1", _last(
        ("axes = tuple(range(x.ndim - 1))", "axes = tuple(a for a in range(x.ndim) if a != 1)"),
        ("mu = x.mean(axis=axes)", "mu = x.mean(axis=axes, keepdims=True)"),
        ("var = (xc ** 2).mean(axis=axes)", "var = (xc ** 2).mean(axis=axes, keepdims=True)"))),
    Bug("last-reduced-over-n", _LAST, "reduced over N only", _last(
        ("axes = tuple(range(x.ndim - 1))", "axes = 0"))),
    Bug("syntax-error", _LAST, "SyntaxError", '''\
def channels_last_batchnorm_forward(x, gamma, beta, eps=1e-5)
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
