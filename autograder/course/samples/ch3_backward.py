"""Planted bugs for ch3_backward; each must lose exactly its function's points."""
from functools import partial

from autograder.course.samples import Bug, edited_solution

_edited = partial(edited_solution, "ch3_backward")

BUGS = [
    Bug("per-sample-dgamma", "batchnorm_backward", "`dbeta` has shape", '''\
def batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dbeta = dout
    dgamma = dout * x_hat
    dx_hat = gamma * dout
    dxc = dx_hat * inv_std
    dvar = -0.5 * (dx_hat * xc).sum(axis=0) / std ** 3
    dxc = dxc + 2.0 * xc * dvar / N
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta, dx_hat, dvar, dmu'''),
    Bug("compact-formula-pasted", "batchnorm_backward", "returned 3 values, expected 6", '''\
def batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta'''),
    Bug("variance-term-missing", "batchnorm_backward", "variance term of dx missing", '''\
def batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = gamma * dout
    dinv_std = (dx_hat * xc).sum(axis=0)
    dxc = dx_hat * inv_std
    dvar = -dinv_std / std ** 2 / (2.0 * std)
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta, dx_hat, dvar, dmu'''),
    Bug("unbiased-variance", "batchnorm_backward", "unbiased variance", '''\
def batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = gamma * dout
    dinv_std = (dx_hat * xc).sum(axis=0)
    dxc = dx_hat * inv_std
    dvar = -dinv_std / std ** 2 / (2.0 * std)
    dxc = dxc + 2.0 * xc * dvar / (N - 1)
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta, dx_hat, dvar, dmu'''),
    Bug("ds-sign-flipped", "batchnorm_backward", "sign of ds flipped", '''\
def batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = gamma * dout
    dinv_std = (dx_hat * xc).sum(axis=0)
    dxc = dx_hat * inv_std
    dstd = dinv_std / std ** 2
    dvar = dstd / (2.0 * std)
    dxc = dxc + 2.0 * xc * dvar / N
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta, dx_hat, dvar, dmu'''),
    Bug("mean-term-missing", "batchnorm_backward_alt", "mean term of dx missing", '''\
def batchnorm_backward_alt(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma * inv_std / N * (N * dout - x_hat * dgamma)
    return dx, dgamma, dbeta'''),
    Bug("averaged-dgamma", "batchnorm_backward_alt", "dgamma/dbeta averaged over the batch", '''\
def batchnorm_backward_alt(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    dbeta = dout.mean(axis=0)
    dgamma = (dout * x_hat).mean(axis=0)
    dx = gamma * inv_std * (dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta'''),
    Bug("recomputed-unbiased-std", "batchnorm_backward_alt", "unbiased std recomputed", '''\
def batchnorm_backward_alt(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    std = np.sqrt(x.var(axis=0, ddof=1) + eps)
    x_hat = (x - x.mean(axis=0)) / std
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma / std / N * (N * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta'''),
    Bug("reshape-no-transpose", "spatial_batchnorm_backward", "reshape without transpose", '''\
def spatial_batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N, C, H, W = dout.shape
    dy = dout.reshape(-1, C)
    M = dy.shape[0]
    dbeta = dy.sum(axis=0)
    dgamma = (dy * x_hat).sum(axis=0)
    dx = (gamma * inv_std / M) * (M * dy - dbeta - x_hat * dgamma)
    return dx.reshape(N, C, H, W), dgamma, dbeta'''),
    Bug("spatial-variance-term-missing", "spatial_batchnorm_backward", "variance term of dx missing",
        '''\
def spatial_batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N, C, H, W = dout.shape
    dy = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dbeta = dy.sum(axis=0)
    dgamma = (dy * x_hat).sum(axis=0)
    dx = gamma * inv_std * (dy - dy.mean(axis=0))
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta'''),
    Bug("staged-mean-term-missing", "batchnorm_backward", "mean term of dx missing", _edited(
        "batchnorm_backward", ("    dx = dxc + dmu / N\n", "    dx = dxc\n"))),
    Bug("sqrt-derivative-inverted", "batchnorm_backward", "square-root derivative inverted", _edited(
        "batchnorm_backward", ("dvar = dstd / (2.0 * std)", "dvar = dstd * 2.0 * std"))),
    Bug("gamma-missing-from-dx-hat", "batchnorm_backward", "gamma missing from dx_hat", _edited(
        "batchnorm_backward", ("dx_hat = gamma * dout", "dx_hat = dout"))),
    Bug("staged-averaged-dgamma", "batchnorm_backward", "dgamma/dbeta averaged over the batch", _edited(
        "batchnorm_backward", ("dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
        ("dgamma = (dout * x_hat).sum(axis=0)", "dgamma = (dout * x_hat).mean(axis=0)"))),
]

# Wrong turns in the local derivatives the student now derives (chapter 3 works only the output
# node and the product node x_hat = xc * r), and in the per-channel transfer.
BUGS += [
    Bug("variance-mean-share-missing", "batchnorm_backward", "1/N of the variance node missing", _edited(
        "batchnorm_backward", ("dxc = dxc + 2.0 * xc * dvar / N", "dxc = dxc + 2.0 * xc * dvar"))),
    Bug("square-factor-missing", "batchnorm_backward", "factor 2 of the square missing", _edited(
        "batchnorm_backward", ("dxc = dxc + 2.0 * xc * dvar / N", "dxc = dxc + xc * dvar / N"))),
    Bug("dmu-sign-flipped", "batchnorm_backward", "sign of dmu flipped", _edited(
        "batchnorm_backward", ("dmu = -dxc.sum(axis=0)", "dmu = dxc.sum(axis=0)"))),
    Bug("dmu-not-spread", "batchnorm_backward", "dmu not spread over the N rows", _edited(
        "batchnorm_backward", ("dx = dxc + dmu / N", "dx = dxc + dmu"))),
    Bug("averaged-dgamma-reused", "batchnorm_backward_alt", "dgamma/dbeta averaged over the batch", _edited(
        "batchnorm_backward_alt", ("dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
        ("dgamma = (dout * x_hat).sum(axis=0)", "dgamma = (dout * x_hat).mean(axis=0)"))),
    Bug("spatial-count-n", "spatial_batchnorm_backward", "count N instead of N*H*W", _edited(
        "spatial_batchnorm_backward", ("M = dy.shape[0]", "M = N"))),
    Bug("spatial-params-per-position", "spatial_batchnorm_backward",
        "dgamma/dbeta not summed over H and W", '''\
def spatial_batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N, C, H, W = dout.shape
    dy = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    M = dy.shape[0]
    dx = (gamma * inv_std / M) * (M * dy - dy.sum(axis=0) - x_hat * (dy * x_hat).sum(axis=0))
    x_hat4 = x_hat.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat4).sum(axis=0)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta'''),
]
