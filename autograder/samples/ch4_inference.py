"""Planted bugs for ch4_inference; each must lose exactly its function's points."""
from autograder.samples import Bug

BUGS = [
    Bug("biased-running-var", "batchnorm_train_step", "biased running variance", '''\
def batchnorm_train_step(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mu) / np.sqrt(var + eps) + beta
    new_running_mean = (1 - momentum) * running_mean + momentum * mu
    new_running_var = (1 - momentum) * running_var + momentum * var
    return out, new_running_mean, new_running_var'''),
    Bug("flipped-momentum", "batchnorm_train_step", "momentum weighting flipped", '''\
def batchnorm_train_step(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    out = gamma * (x - mu) / np.sqrt(var + eps) + beta
    new_running_mean = momentum * running_mean + (1 - momentum) * mu
    new_running_var = momentum * running_var + (1 - momentum) * x.var(axis=0, ddof=1)
    return out, new_running_mean, new_running_var'''),
    Bug("batch-stats-at-eval", "batchnorm_eval", "batch statistics used at eval", '''\
def batchnorm_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta'''),
    Bug("keras-momentum-unchanged", "keras_to_torch_momentum", "momentum returned unchanged", '''\
def keras_to_torch_momentum(m):
    return m'''),
]
