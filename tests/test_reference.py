"""The torch reference agrees with independent NumPy float64 computations."""
import numpy as np
import pytest

from autograder.course import reference as R


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


def test_reference_is_deterministic_without_importing_the_compiler_or_sklearn():
    """A fresh process: the reference turns deterministic algorithms on (warn only) as
    ``torch.use_deterministic_algorithms`` would, without that wrapper's torch._inductor import
    (a core-second per grading process), and loads the digits without importing scikit-learn."""
    import subprocess
    import sys
    code = ("import sys, torch\n"
            "from autograder.course import reference, digits\n"
            "x, y = digits.load()\n"
            "print(torch.are_deterministic_algorithms_enabled(),"
            " torch.is_deterministic_algorithms_warn_only_enabled(),"
            " sorted(m for m in ('torch._inductor', 'torch._dynamo', 'sklearn') if m in sys.modules),"
            " x.shape, int(y.max()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "[]", "(1797,", "64)", "9"], out


def test_sgd_step_is_torch_optim_sgd_bit_for_bit():
    """The written-out step against ``torch.optim.SGD`` itself, over several steps of a network
    with a BatchNorm layer (a parameter without a gradient included)."""
    import torch
    torch.manual_seed(0)

    def net():
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.Tanh(),
                                   torch.nn.Linear(7, 3)).double()
    ours, theirs = net(), net()
    spare = [torch.nn.Parameter(torch.ones(2, dtype=torch.float64))]  # never in the loss
    opt = torch.optim.SGD(list(theirs.parameters()) + spare, lr=0.37)
    spare_ours = [torch.nn.Parameter(torch.ones(2, dtype=torch.float64))]
    for step in range(4):
        x = torch.randn(6, 5, dtype=torch.float64)
        ours(x).square().sum().backward()
        R.sgd_step(list(ours.parameters()) + spare_ours, 0.37)
        opt.zero_grad()
        theirs(x).square().sum().backward()
        opt.step()
        for a, b in zip(ours.parameters(), theirs.parameters()):
            assert a.grad is None
            assert torch.equal(a, b), step
    assert torch.equal(spare_ours[0], spare[0])


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3, 3), (200, 1)])
def test_vjp_is_autograd_grad_with_grad_outputs_bit_for_bit(shape):
    import torch
    rng = np.random.default_rng(sum(shape))
    x = torch.tensor(rng.normal(size=shape), requires_grad=True)
    g = torch.tensor(rng.normal(size=shape[1]), requires_grad=True)
    dout = rng.normal(size=shape) * 1e3

    def out():
        y = torch.nn.functional.batch_norm(x, None, None, g, None, training=True, eps=1e-5)
        return torch.tanh(y) * 3.0 + y.exp()
    ours = R.vjp(out(), (x, g), dout)
    theirs = torch.autograd.grad(out(), (x, g), grad_outputs=torch.tensor(dout))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    with pytest.raises(ValueError, match="dout has shape"):
        R.vjp(out(), (x, g), dout[:1])


def test_no_reference_imports_the_compiler():
    """``torch.optim``'s first optimizer imports torch._dynamo (1.4 s of a grading process): the
    training references (chapters 1 and 4) step with ``sgd_step`` instead; ``autograd.grad``
    with ``grad_outputs`` imports sympy (0.6 s): the backward references use ``vjp``. Every
    check's reference runs here, on its first case."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from autograder.course import checks\n"
            "from autograder.course.cases import CHECKS\n"
            "for c in CHECKS.values():\n"
            "    checks.expected_outputs(c, c.cases[0])\n"
            "print(len(CHECKS), {'train_sigmoid_mlp', 'train_bn_mlp'} <= set(CHECKS),"
            " sorted(m for m in ('torch._dynamo', 'torch._inductor', 'sympy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    n, both, imported = out.split(maxsplit=2)
    assert int(n) > 20 and both == "True" and imported.strip() == "[]", out


def test_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    from autograder.course import digits
    data, target = digits.load()
    want_x, want_y = load_digits(return_X_y=True)
    np.testing.assert_array_equal(data, want_x)
    np.testing.assert_array_equal(target, want_y)
    assert data.dtype == np.float64 and target.dtype == np.int64
    data[0, 0] = -1  # a copy: the next caller gets the data unchanged
    assert digits.load()[0][0, 0] == want_x[0, 0]


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


# ---- issue 15: the given NumPy convolution and layer runner agree with torch ----------------

@pytest.mark.parametrize("c_in,c_out,groups,kernel,stride,padding,dilation", [
    (4, 6, 2, (3, 2), 2, 1, 2), (3, 5, 1, (1, 3), 1, 0, 1), (6, 6, 6, (3, 3), 1, 2, 3),
    (4, 2, 2, (2, 2), 3, 1, 1)])
def test_given_conv2d_matches_torch(c_in, c_out, groups, kernel, stride, padding, dilation):
    from autograder.student.given import conv2d_numpy
    rng = np.random.default_rng(c_in * 10 + c_out)
    x = rng.standard_normal((2, c_in, 9, 7))
    w = rng.standard_normal((c_out, c_in // groups, *kernel))
    b, pad = rng.standard_normal(c_out), rng.standard_normal(c_in)
    for pad_value in (None, pad):
        got = conv2d_numpy(x, w, b, padding=padding, stride=stride, dilation=dilation,
                           groups=groups, pad_value=pad_value)
        want = R.conv2d_general(x, w, b, stride, padding, dilation, groups, pad_value)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # a pad value of zeros is ordinary zero padding
    np.testing.assert_allclose(R.conv2d_general(x, w, b, stride, padding, dilation, groups, np.zeros(c_in)),
                               R.conv2d_general(x, w, b, stride, padding, dilation, groups), atol=1e-14)


def test_given_layer_runner_matches_torch():
    from autograder.course import cases, checks
    from autograder.student.given import run_layers
    check = cases.find("fold_layers")
    for case in check.cases:
        inputs = checks.case_inputs(check, case)
        np.testing.assert_allclose(run_layers(inputs["layers"], inputs["x"]),
                                   R.run_layers(inputs["layers"], inputs["x"]),
                                   rtol=1e-12, atol=1e-12, err_msg=case.name)


def test_masked_reference_is_batch_norm_of_the_valid_rows_whatever_the_padding_holds():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, (4, 6, 3))
    mask = rng.random((4, 6)) < 0.6
    g, b = rng.uniform(0.5, 2, 3), rng.uniform(-1, 1, 3)
    out = R.masked_batchnorm_forward(x, mask, g, b)
    np.testing.assert_allclose(out[mask], numpy_batchnorm(x[mask], g, b, 1e-5), rtol=1e-12, atol=1e-12)
    assert np.all(out[~mask] == 0.0)
    x[~mask] = np.inf
    np.testing.assert_array_equal(R.masked_batchnorm_forward(x, mask, g, b), out)
    assert np.all(R.masked_batchnorm_forward(x, np.zeros((4, 6), bool), g, b) == 0.0)
