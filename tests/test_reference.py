"""The torch reference agrees with independent NumPy float64 computations."""
import numpy as np
import pytest

from autograder import reference as R


def numpy_batchnorm(x, gamma, beta, eps):
    axes = tuple(a for a in range(x.ndim) if a != 1)
    shape = [1, -1] + [1] * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return gamma.reshape(shape) * (x - mu) / np.sqrt(var + eps) + beta.reshape(shape)


@pytest.mark.parametrize("shape", [(7, 3), (2, 5), (4, 3, 5, 6), (2, 1, 1, 3)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_forward_matches_numpy(shape, eps):
    rng = np.random.default_rng(sum(shape))
    x = 3 + 2 * rng.standard_normal(shape)
    g, b = rng.uniform(0.5, 2, shape[1]), rng.uniform(-1, 1, shape[1])
    np.testing.assert_allclose(R.batchnorm_forward(x, g, b, eps), numpy_batchnorm(x, g, b, eps),
                               rtol=1e-12, atol=1e-12)


def test_reference_is_float64_and_tf32_off():
    import torch
    assert R.DTYPE == torch.float64
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert R.batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2)).dtype == np.float64


def test_device_can_be_forced(monkeypatch):
    monkeypatch.setenv("BN_REFERENCE_DEVICE", "tpu")
    with pytest.raises(RuntimeError, match="must be 'cpu' or 'cuda'"):
        R._pick_device()
    monkeypatch.setenv("BN_REFERENCE_DEVICE", "cpu")
    assert R._pick_device().type == "cpu"


def test_statistics_are_per_channel_over_nhw():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5, 6))
    mean, var = R.batch_statistics(x)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), atol=1e-14)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), atol=1e-14)
