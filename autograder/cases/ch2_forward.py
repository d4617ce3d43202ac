"""Chapter 2: the training-mode forward pass, (N, D) and per-channel (N, C, H, W)."""

from autograder.checks import Case, Check, Mistake


def _bn_inputs(shape, eps=1e-5, loc=0.0, scale=1.0, constant_feature=False):
    def make(rng):
        x = loc + scale * rng.standard_normal(shape)
        if constant_feature:
            x[:, 0] = 3.0
        c = shape[1]
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, c), "beta": rng.uniform(-1, 1, c), "eps": eps}
    return make


def _reference(inputs):
    from autograder import reference as R
    return (R.batchnorm_forward(**inputs),)


def _variant(axes=None, unbiased=False, eps_where="inside", reshape_no_transpose=False):
    """Wrong versions of the forward pass, for naming a student's mistake."""
    def compute(inputs):
        import torch
        from autograder import reference as R
        x, g, b, eps = R.tensor(inputs["x"]), R.tensor(inputs["gamma"]), R.tensor(inputs["beta"]), inputs["eps"]
        shape = [1, -1] + [1] * (x.ndim - 2)
        g, b = g.reshape(shape), b.reshape(shape)
        if reshape_no_transpose:
            flat = x.reshape(-1, x.shape[1])
            mu, var = flat.mean(0), flat.var(0, unbiased=unbiased)
            xh = (flat - mu) / torch.sqrt(var + eps)
            return (R.numpy((xh * g.reshape(-1) + b.reshape(-1)).reshape(x.shape)),)
        dims = axes if axes is not None else [d for d in range(x.ndim) if d != 1]
        mu = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
        if eps_where == "inside":
            xh = (x - mu) / torch.sqrt(var + eps)
        elif eps_where == "outside":
            xh = (x - mu) / (torch.sqrt(var) + eps)
        else:
            xh = (x - mu) / torch.sqrt(var)
        return (R.numpy(xh * g + b),)
    return compute


_ONE_PASS = ("with mean 1e6 and std 1e-3, E[x^2] - E[x]^2 cancels catastrophically: "
             "compute the variance as the mean of (x - mu)**2")

_COMMON_MISTAKES = (
    Mistake("unbiased variance", "normalize with the biased batch variance: divide by N, not N-1",
            _variant(unbiased=True)),
    Mistake("eps outside the square root", "use sqrt(var + eps), not sqrt(var) + eps",
            _variant(eps_where="outside")),
    Mistake("eps missing", "add eps to the variance before the square root",
            _variant(eps_where="missing")),
)

_SPATIAL_MISTAKES = _COMMON_MISTAKES + (
    Mistake("reduced over N only",
            "per-channel statistics reduce over N, H and W together: axis=(0, 2, 3)",
            _variant(axes=[0])),
    Mistake("reduced per sample",
            "that is layer norm; batch norm reduces over N, H and W for each channel",
            _variant(axes=[1, 2, 3])),
    Mistake("reshape without transpose",
            "x.reshape(-1, C) mixes channels; move C last first: x.transpose(0, 2, 3, 1).reshape(-1, C)",
            _variant(reshape_no_transpose=True)),
)

CHECKS = [
    Check(
        function="batchnorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_reference,
        cases=(
            Case("N=8, D=5", _bn_inputs((8, 5))),
            Case("N=2", _bn_inputs((2, 4))),
            Case("eps=0.1", _bn_inputs((6, 3), eps=0.1, scale=0.3)),
            # Visible, so the self-check already tells a one-pass variance apart.
            Case("mean 1e4, std 1e-2", _bn_inputs((16, 3), loc=1e4, scale=1e-2),
                 rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
            Case("random shape 64x37", _bn_inputs((64, 37)), hidden=True),
            Case("random shape 3x100", _bn_inputs((3, 100), loc=-2.0, scale=5.0), hidden=True),
            Case("N=2, D=1", _bn_inputs((2, 1)), hidden=True),
            Case("one constant column of 6", _bn_inputs((10, 6), constant_feature=True), hidden=True),
            Case("mean 1e6, std 1e-3", _bn_inputs((50, 8), loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_COMMON_MISTAKES,
    ),
    Check(
        function="spatial_batchnorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_reference,
        cases=(
            Case("N=2, C=3, H=4, W=5", _bn_inputs((2, 3, 4, 5))),
            Case("eps=0.1", _bn_inputs((4, 2, 3, 3), eps=0.1, scale=0.3)),
            Case("random shape 8x6x5x7", _bn_inputs((8, 6, 5, 7)), hidden=True),
            Case("N=2, C=1, H=1, W=3", _bn_inputs((2, 1, 1, 3)), hidden=True),
            Case("one constant channel of 4", _bn_inputs((3, 4, 2, 2), constant_feature=True), hidden=True),
            Case("mean 1e6, std 1e-3", _bn_inputs((4, 3, 6, 6), loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_SPATIAL_MISTAKES,
    ),
]
