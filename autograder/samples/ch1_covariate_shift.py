"""Planted bugs for ch1_covariate_shift; each must lose exactly its function's points."""
from autograder.samples import Bug

BUGS = [
    Bug("test-own-statistics", "standardize", "test set standardized with its own statistics", '''\
def standardize(x_train, x_test, eps=1e-8):
    z_train = (x_train - x_train.mean(axis=0)) / (x_train.std(axis=0) + eps)
    z_test = (x_test - x_test.mean(axis=0)) / (x_test.std(axis=0) + eps)
    return z_train, z_test'''),
    Bug("unbiased-std", "standardize", "unbiased std", '''\
def standardize(x_train, x_test, eps=1e-8):
    mean, std = x_train.mean(axis=0), x_train.std(axis=0, ddof=1)
    return (x_train - mean) / (std + eps), (x_test - mean) / (std + eps)'''),
    Bug("eps-inside-sqrt", "standardize", "eps inside a square root", '''\
def standardize(x_train, x_test, eps=1e-8):
    mean, var = x_train.mean(axis=0), x_train.var(axis=0)
    return (x_train - mean) / np.sqrt(var + eps), (x_test - mean) / np.sqrt(var + eps)'''),
    Bug("percentiles-wrong-axis", "activation_percentiles", "percentiles over the wrong axis", '''\
def activation_percentiles(acts, q=(15, 50, 85)):
    return np.percentile(acts, q, axis=0).T'''),
    Bug("q-as-fractions", "activation_percentiles", "q treated as fractions", '''\
def activation_percentiles(acts, q=(15, 50, 85)):
    return np.percentile(acts, np.asarray(q) / 100, axis=1).T'''),
    Bug("percentile-no-interpolation", "activation_percentiles",
        "percentile rounded down to a data point", '''\
def activation_percentiles(acts, q=(15, 50, 85)):
    s = np.sort(acts, axis=1)
    idx = (np.asarray(q) / 100 * (acts.shape[1] - 1)).astype(int)
    return s[:, idx]'''),
]
