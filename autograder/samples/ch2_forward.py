"""Planted bugs for ch2_forward; each must lose exactly its function's points."""
from autograder.samples import Bug

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
