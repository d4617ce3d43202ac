"""Planted bugs for ch6_folding; each must lose exactly its function's points."""
from autograder.samples import Bug

BUGS = [
    Bug("scale-input-channels", "fold_conv_bn", "scaled along the input channels", '''\
def fold_conv_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale[None, :, None, None], (b - running_mean) * scale + beta'''),
    Bug("conv-bias-missing-mean", "fold_conv_bn", "mean term missing from the bias", '''\
def fold_conv_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale[:, None, None, None], b * scale + beta'''),
    Bug("conv-std-without-eps", "fold_conv_bn", "std without eps", '''\
def fold_conv_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale[:, None, None, None], (b - running_mean) * scale + beta'''),
    Bug("linear-scale-columns", "fold_linear_bn", "scaled along the input features", '''\
def fold_linear_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale, (b - running_mean) * scale + beta'''),
    Bug("linear-bias-missing-mean", "fold_linear_bn", "mean term missing from the bias", '''\
def fold_linear_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    b = 0.0 if b is None else b
    return scale[:, None] * w, b * scale + beta'''),
    Bug("linear-std-without-eps", "fold_linear_bn", "std without eps", '''\
def fold_linear_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var)
    if b is None:
        b = np.zeros_like(running_mean)
    return scale[:, None] * w, (b - running_mean) * scale + beta'''),
]
