"""Planted bugs for ch5_alternatives; each must lose exactly its function's points."""
from autograder.samples import Bug

BUGS = [
    Bug("layernorm-batch-axis", "layernorm_forward", "normalized over the batch axis", '''\
def layernorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta'''),
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
    return gamma.reshape(1, C, 1, 1) * out + beta.reshape(1, C, 1, 1)'''),
    Bug("groupnorm-reshape-swapped", "groupnorm_forward", "interleaved channel groups", '''\
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    N, C, H, W = x.shape
    xg = x.reshape(N, C // G, G, H, W)      # read as (N, channels per group, groups, H, W)
    mu = xg.mean(axis=(1, 3, 4), keepdims=True)
    var = xg.var(axis=(1, 3, 4), keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    return gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1)'''),
    Bug("groupnorm-group-size", "groupnorm_forward", "G read as the group size", '''\
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    N, C, H, W = x.shape
    xg = x.reshape(N, C // G, G, H, W)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    var = xg.var(axis=(2, 3, 4), keepdims=True)
    x_hat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    return gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1)'''),
    Bug("renorm-no-clipping", "batch_renorm_forward", "r and d not clipped", '''\
def batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5):
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r = sigma_b / sigma
    d = (mu - running_mean) / sigma
    return gamma * ((x - mu) / sigma_b * r + d) + beta, r, d'''),
    Bug("renorm-d-unclipped", "batch_renorm_forward", "d not clipped", '''\
def batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5):
    mu = x.mean(axis=0)
    sigma_b = np.sqrt(x.var(axis=0) + eps)
    sigma = np.sqrt(running_var + eps)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    d = (mu - running_mean) / sigma
    return gamma * ((x - mu) / sigma_b * r + d) + beta, r, d'''),
]
