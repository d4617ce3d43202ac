"""Planted bugs for ch5_alternatives; each must lose exactly its function's points."""
from functools import partial

from autograder.course.samples import Bug, edited_solution

_edited = partial(edited_solution, "ch5_alternatives")

_SWEEP_LOOP = ("    for B in batch_sizes:\n        p = {k: np.array(v, dtype=float) for k, v in params.items()}",
               "    p = {k: np.array(v, dtype=float) for k, v in params.items()}\n    for B in batch_sizes:")

BUGS = [
    Bug("rmsnorm-centred", "rmsnorm_forward", "centred like layer norm", '''\
def rmsnorm_forward(x, gamma, eps=1e-5):
    xc = x - x.mean(axis=1, keepdims=True)
    return gamma * xc / np.sqrt((xc ** 2).mean(axis=1, keepdims=True) + eps), (x, gamma, eps)'''),
    Bug("rmsnorm-batch-axis", "rmsnorm_forward", "root mean square over the batch axis", _edited(
        "rmsnorm_forward", ("(x ** 2).mean(axis=1, keepdims=True)", "(x ** 2).mean(axis=0, keepdims=True)"))),
    Bug("rmsnorm-backward-layernorm-mean-term", "rmsnorm_backward", "mean term of layer norm's gradient",
        _edited("rmsnorm_backward", ("dx = (dx_hat - x_hat", "dx = (dx_hat - dx_hat.mean(axis=1, keepdims=True) - x_hat"))),
    Bug("rmsnorm-backward-scale-constant", "rmsnorm_backward", "scale treated as a constant", _edited(
        "rmsnorm_backward", ("dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True)) / rms",
                             "dx = dx_hat / rms"))),
    Bug("rmsnorm-backward-gamma-outside", "rmsnorm_backward", "gamma taken out of the row mean", _edited(
        "rmsnorm_backward", ("dx_hat = gamma * dout", "dx_hat = dout"),
        ("keepdims=True)) / rms", "keepdims=True)) * gamma / rms"))),
    Bug("rmsnorm-backward-dgamma-averaged", "rmsnorm_backward", "dgamma averaged over the batch", _edited(
        "rmsnorm_backward", ("dgamma = (dout * x_hat).sum(axis=0)", "dgamma = (dout * x_hat).mean(axis=0)"))),
    Bug("sweep-biased-running-var", "batch_size_sweep", "biased running variance", _edited(
        "batch_size_sweep", ("h.var(axis=0, ddof=1)", "h.var(axis=0)"))),
    Bug("sweep-weights-carried-over", "batch_size_sweep", "weights carried over", _edited(
        "batch_size_sweep", _SWEEP_LOOP)),
    Bug("sweep-eval-batch-stats", "batch_size_sweep", "eval with batch statistics", _edited(
        "batch_size_sweep", ("z = p[\"gamma\"] * (h - running_mean) / np.sqrt(running_var + eps) + p[\"beta\"]",
                             "z = p[\"gamma\"] * (h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + eps) + p[\"beta\"]"))),
    Bug("sweep-partial-batch", "batch_size_sweep", "last partial batch used", _edited(
        "batch_size_sweep", ("for k in range(len(x_train) // B)", "for k in range(-(-len(x_train) // B))"))),
    Bug("sweep-loss-summed", "batch_size_sweep", "loss summed", _edited(
        "batch_size_sweep", ("loss, dscores = softmax_loss(a @ p[\"W2\"] + p[\"b2\"], yb)",
                             "loss, dscores = softmax_loss(a @ p[\"W2\"] + p[\"b2\"], yb)\n                dscores = dscores * B"))),
    Bug("groupnorm-channel-mod-g", "groupnorm_forward", "interleaved channel groups", '''\
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    N, C, H, W = x.shape
    out = np.empty_like(x)
    for g in range(G):
        members = np.arange(C) % G == g
        xg = x[:, members]
        mu = xg.mean(axis=(1, 2, 3), keepdims=True)
        var = xg.var(axis=(1, 2, 3), keepdims=True)
        out[:, members] = (xg - mu) / np.sqrt(var + eps)
    return gamma.reshape(1, C, 1, 1) * out + beta.reshape(1, C, 1, 1), (x, gamma, beta, G, eps)'''),
    Bug("groupnorm-reshape-swapped", "groupnorm_forward", "interleaved channel groups", '''\
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    N, C, H, W = x.shape
    xg = x.reshape(N, C // G, G, H, W)      # read as (N, channels per group, groups, H, W)
    mu = xg.mean(axis=(1, 3, 4), keepdims=True)
    var = xg.var(axis=(1, 3, 4), keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    return gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1), (x, gamma, beta, G, eps)'''),
    Bug("groupnorm-group-size", "groupnorm_forward", "G read as the group size", '''\
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    N, C, H, W = x.shape
    xg = x.reshape(N, C // G, G, H, W)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    var = xg.var(axis=(2, 3, 4), keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    return gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1), (x, gamma, beta, G, eps)'''),
    Bug("renorm-no-clipping", "batch_renorm_forward", "r and d not clipped", '''\
def batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5):
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r = sigma_b / sigma
    d = (mu - running_mean) / sigma
    return gamma * ((x - mu) / sigma_b * r + d) + beta, r, d, None'''),
    Bug("renorm-d-unclipped", "batch_renorm_forward", "d not clipped", '''\
def batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5):
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    d = (mu - running_mean) / sigma
    return gamma * ((x - mu) / sigma_b * r + d) + beta, r, d, None'''),
    Bug("groupnorm-backward-interleaved", "groupnorm_backward", "interleaved channel groups", '''\
def groupnorm_backward(dout, cache):
    x, gamma, beta, G, eps = cache
    N, C, H, W = x.shape
    xg = x.reshape(N, C // G, G, H, W)
    std = np.sqrt(xg.var(axis=(1, 3, 4), keepdims=True) + eps)
    x_hat = (xg - xg.mean(axis=(1, 3, 4), keepdims=True)) / std
    dx_hat = (gamma.reshape(1, C, 1, 1) * dout).reshape(N, C // G, G, H, W)
    dx = (dx_hat - dx_hat.mean(axis=(1, 3, 4), keepdims=True)
          - x_hat * (dx_hat * x_hat).mean(axis=(1, 3, 4), keepdims=True)) / std
    x_hat = x_hat.reshape(N, C, H, W)
    return dx.reshape(N, C, H, W), (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))'''),
    Bug("groupnorm-params-not-summed-spatially", "groupnorm_backward",
        "dgamma/dbeta not summed over H and W", '''\
def groupnorm_backward(dout, cache):
    x, gamma, beta, G, eps = cache
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    std = np.sqrt(xg.var(axis=(2, 3, 4), keepdims=True) + eps)
    x_hat = (xg - xg.mean(axis=(2, 3, 4), keepdims=True)) / std
    dx_hat = (gamma.reshape(1, C, 1, 1) * dout).reshape(N, G, C // G, H, W)
    dx = (dx_hat - dx_hat.mean(axis=(2, 3, 4), keepdims=True)
          - x_hat * (dx_hat * x_hat).mean(axis=(2, 3, 4), keepdims=True)) / std
    x_hat = x_hat.reshape(N, C, H, W)
    return dx.reshape(N, C, H, W), (dout * x_hat).sum(axis=0), dout.sum(axis=0)'''),
    Bug("groupnorm-mean-term-missing", "groupnorm_backward", "mean term of dx missing", '''\
def groupnorm_backward(dout, cache):
    x, gamma, beta, G, eps = cache
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    std = np.sqrt(xg.var(axis=(2, 3, 4), keepdims=True) + eps)
    x_hat = (xg - xg.mean(axis=(2, 3, 4), keepdims=True)) / std
    dx_hat = (gamma.reshape(1, C, 1, 1) * dout).reshape(N, G, C // G, H, W)
    dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=(2, 3, 4), keepdims=True)) / std
    x_hat = x_hat.reshape(N, C, H, W)
    return dx.reshape(N, C, H, W), (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))'''),
    Bug("renorm-gradient-through-r-d", "batch_renorm_backward", "gradient through r and d", '''\
def batch_renorm_backward(dout, cache):
    x, gamma, beta, running_mean, running_var, r_max, d_max, eps = cache
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r_raw, d_raw = sigma_b / sigma, (mu - running_mean) / sigma
    r, d = np.clip(r_raw, 1 / r_max, r_max), np.clip(d_raw, -d_max, d_max)
    x_b = (x - mu) / sigma_b
    dx_b = gamma * r * dout
    dx = (dx_b - dx_b.mean(axis=0) - x_b * (dx_b * x_b).mean(axis=0)) / sigma_b
    # ...and on through r = sigma_b / sigma and d = (mu - running_mean) / sigma where unclipped
    N = x.shape[0]
    dr = (gamma * dout * x_b).sum(axis=0) * (r == r_raw)
    dd = (gamma * dout).sum(axis=0) * (d == d_raw)
    dx = dx + dr / sigma * x_b / N + dd / sigma / N
    return dx, (dout * (x_b * r + d)).sum(axis=0), dout.sum(axis=0)'''),
    Bug("renorm-r-missing-from-dx", "batch_renorm_backward", "r missing from dx", '''\
def batch_renorm_backward(dout, cache):
    x, gamma, beta, running_mean, running_var, r_max, d_max, eps = cache
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    d = np.clip((mu - running_mean) / sigma, -d_max, d_max)
    x_b = (x - mu) / sigma_b
    dx_b = gamma * dout
    dx = (dx_b - dx_b.mean(axis=0) - x_b * (dx_b * x_b).mean(axis=0)) / sigma_b
    return dx, (dout * (x_b * r + d)).sum(axis=0), dout.sum(axis=0)'''),
    Bug("renorm-dgamma-plain", "batch_renorm_backward", "dgamma without r and d", '''\
def batch_renorm_backward(dout, cache):
    x, gamma, beta, running_mean, running_var, r_max, d_max, eps = cache
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    x_b = (x - mu) / sigma_b
    dx_b = gamma * r * dout
    dx = (dx_b - dx_b.mean(axis=0) - x_b * (dx_b * x_b).mean(axis=0)) / sigma_b
    return dx, (dout * x_b).sum(axis=0), dout.sum(axis=0)'''),
    Bug("groupnorm-backward-per-channel", "groupnorm_backward", "one group per channel", _edited(
        "groupnorm_backward", ("xg = x.reshape(N, G, C // G, H, W)", "xg = x.reshape(N, C, 1, H, W)"),
        ("reshape(N, G, C // G, H, W)\n    dx = ", "reshape(N, C, 1, H, W)\n    dx = "))),
    Bug("groupnorm-variance-term-missing", "groupnorm_backward", "variance term of dx missing", _edited(
        "groupnorm_backward", ("dx = (dx_hat - dx_hat.mean(axis=(2, 3, 4), keepdims=True)\n"
                               "          - x_hat * (dx_hat * x_hat).mean(axis=(2, 3, 4), keepdims=True)) / std",
                               "dx = (dx_hat - dx_hat.mean(axis=(2, 3, 4), keepdims=True)) / std"))),
    Bug("renorm-backward-unclipped", "batch_renorm_backward", "r and d not clipped", _edited(
        "batch_renorm_backward", ("r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max)", "r = sigma_b / sigma"),
        ("d = np.clip((mu - running_mean) / sigma, -d_max, d_max)", "d = (mu - running_mean) / sigma"))),
    Bug("renorm-backward-stats-constant", "batch_renorm_backward", "batch statistics treated as constants",
        _edited("batch_renorm_backward", ("dx = (dx_b - dx_b.mean(axis=0) - x_b * (dx_b * x_b).mean(axis=0)) / sigma_b",
                                          "dx = dx_b / sigma_b"))),
]

# Batch norm's compact form taken over as is: gamma pulled out of the means over the set, which
# is right only when one gamma covers the whole set (chapter 5, "The backward pass, for any sets").
BUGS += [
    Bug("groupnorm-gamma-outside-means", "groupnorm_backward", "gamma taken out of the group means", _edited(
        "groupnorm_backward",
        ("dx_hat = (gamma.reshape(1, C, 1, 1) * dout).reshape(N, G, C // G, H, W)",
         "dx_hat = dout.reshape(N, G, C // G, H, W)"),
        ("dx = dx.reshape(N, C, H, W)", "dx = dx.reshape(N, C, H, W) * gamma.reshape(1, C, 1, 1)"))),
]
