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
    Bug("masked-count-n", "masked_batchnorm_backward", "count N for every feature", _edited(
        "masked_batchnorm_backward", ("count = mask.sum(axis=0)", "count = dout.shape[0]"))),
    Bug("masked-dout-at-missing", "masked_batchnorm_backward", "dout at missing entries used", _edited(
        "masked_batchnorm_backward", ("dy = np.where(mask, dout, 0.0)", "dy = dout"))),
    Bug("masked-dx-not-zero-at-missing", "masked_batchnorm_backward", "dx non-zero at missing entries",
        _edited("masked_batchnorm_backward",
                ("dx = np.where(mask, gamma / std * (dy - dbeta / count - x_hat * dgamma / count), 0.0)",
                 "dx = gamma / std * (dy - dbeta / count - x_hat * dgamma / count)"))),
    Bug("masked-averaged-dgamma", "masked_batchnorm_backward", "dgamma/dbeta averaged over the batch",
        _edited("masked_batchnorm_backward",
                ("    return dx, dgamma, dbeta", "    return dx, dgamma / count, dbeta / count"))),
    Bug("masked-compact-form-unmasked", "masked_batchnorm_backward", "count N for every feature", '''\
def masked_batchnorm_backward(dout, cache):
    x, mask, mu, xc, var, std, x_hat, gamma, eps = cache
    N = dout.shape[0]
    dy = dout * mask
    dbeta = dy.sum(axis=0)
    dgamma = (dy * x_hat).sum(axis=0)
    dx = mask * (gamma / std / N) * (N * dy - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta'''),
    Bug("spatial-count-n", "spatial_batchnorm_backward", "count N instead of N*H*W", _edited(
        "spatial_batchnorm_backward", ("M = N * H * W", "M = N"))),
    Bug("spatial-count-all", "spatial_batchnorm_backward", "count N*C*H*W instead of N*H*W", _edited(
        "spatial_batchnorm_backward", ("M = N * H * W", "M = dout.size"))),
    Bug("spatial-variance-term-missing", "spatial_batchnorm_backward", "variance term of dx missing",
        _edited("spatial_batchnorm_backward",
                (" - x_hat * dgamma.reshape(per_channel))", ")"))),
    Bug("spatial-params-per-position", "spatial_batchnorm_backward",
        "dgamma/dbeta not summed over H and W", '''\
def spatial_batchnorm_backward(dout, cache):
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    N, C, H, W = dout.shape
    M = N * H * W
    per_channel = (1, C, 1, 1)
    dx = ((gamma * inv_std).reshape(per_channel) / M
          * (M * dout - dout.sum(axis=(0, 2, 3)).reshape(per_channel)
             - x_hat * (dout * x_hat).sum(axis=(0, 2, 3)).reshape(per_channel)))
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    return dx, dgamma, dbeta'''),
]
