"""Chapter 2: the training-mode forward pass, (N, D), per-channel (N, C, H, W), and a padded
batch of variable-length sequences (N, T, D) with a mask of its valid positions."""
import numpy as np

from autograder.course.checks import Case, Check, Mistake


def _bn_inputs(shape, eps=1e-5, loc=0.0, scale=1.0, constant_feature=False):
    def make(rng):
        x = loc + scale * rng.standard_normal(shape)
        if constant_feature:
            x[:, 0] = 3.0
        c = shape[1]
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, c), "beta": rng.uniform(-1, 1, c), "eps": eps}
    return make


def _reference(inputs):
    from autograder.course import reference as R
    return (R.batchnorm_forward(**inputs),)


def _variant(axes=None, unbiased=False, eps_where="inside", reshape_no_transpose=False):
    """Wrong versions of the forward pass, for naming a student's mistake."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
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


def _one_pass(mean, std):
    """The hint of a large-mean case, quoting that case's own numbers."""
    return (f"in this case the features have mean {mean} and std {std}: a variance computed as "
            f"E[x^2] - E[x]^2 cancels catastrophically here; subtract the mean before squaring")

_COMMON_MISTAKES = (
    Mistake("unbiased variance", "normalize with the biased batch variance: divide by N, not N-1",
            _variant(unbiased=True)),
    Mistake("eps outside the square root",
            "eps is added to the variance under the square root, not to the standard deviation",
            _variant(eps_where="outside")),
    Mistake("eps missing", "add eps to the variance before the square root",
            _variant(eps_where="missing")),
)

_SPATIAL_MISTAKES = _COMMON_MISTAKES + (
    Mistake("reduced over N only",
            "a channel's statistics are taken over the examples and all H x W positions together, "
            "not over the examples alone",
            _variant(axes=[0])),
    Mistake("reduced per sample",
            "that is layer norm; batch norm reduces over N, H and W for each channel",
            _variant(axes=[1, 2, 3])),
    Mistake("reshape without transpose",
            "flattening (N, C, H, W) straight into rows of C values puts values of several "
            "channels into one column: in memory the channel axis is not the last one",
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
                 rtol=1e-5, atol=1e-6, hint=_one_pass("1e4", "1e-2")),
            Case("random shape 64x37", _bn_inputs((64, 37)), hidden=True),
            Case("random shape 3x100", _bn_inputs((3, 100), loc=-2.0, scale=5.0), hidden=True),
            Case("N=2, D=1", _bn_inputs((2, 1)), hidden=True),
            Case("one constant column of 6", _bn_inputs((10, 6), constant_feature=True), hidden=True),
            Case("mean 1e6, std 1e-3", _bn_inputs((50, 8), loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_one_pass("1e6", "1e-3")),
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
            Case("eps=0.1", _bn_inputs((4, 2, 3, 5), eps=0.1, scale=0.3)),
            Case("random shape 8x6x5x7", _bn_inputs((8, 6, 5, 7)), hidden=True),
            Case("N=2, C=1, H=1, W=3", _bn_inputs((2, 1, 1, 3)), hidden=True),
            Case("one constant channel of 4", _bn_inputs((3, 4, 2, 2), constant_feature=True), hidden=True),
            Case("mean 1e6, std 1e-3", _bn_inputs((4, 3, 6, 6), loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_one_pass("1e6", "1e-3")),
        ),
        mistakes=_SPATIAL_MISTAKES,
    ),
]


# ---- a padded batch of variable-length sequences ---------------------------------------------

def _masked_inputs(n, t, d, lengths=None, pad=0.0, eps=1e-5, loc=0.0, scale=1.0, start=None,
                   constant_feature=None, mask=None):
    """x (N, T, D) with mask (N, T): sequence i holds lengths[i] valid steps (from ``start[i]``,
    default 0); ``pad`` is what the padded positions hold (a number, "inf", or "garbage")."""
    def make(rng):
        x = loc + scale * rng.standard_normal((n, t, d))
        if mask is not None:
            valid = np.array(mask, dtype=bool)
        else:
            lens = rng.integers(0, t + 1, n) if lengths is None else np.array(lengths)
            first = np.zeros(n, int) if start is None else np.array(start)
            steps = np.arange(t)[None, :]
            valid = (steps >= first[:, None]) & (steps < (first + lens)[:, None])
        if constant_feature is not None:
            x[:, :, constant_feature] = 2.5
        if pad == "inf":
            x[~valid] = np.where(rng.random((int((~valid).sum()), d)) < 0.5, np.inf, -np.inf)
        elif pad == "garbage":
            x[~valid] = rng.uniform(50.0, 100.0, (int((~valid).sum()), d))
        else:
            x[~valid] = pad
        return {"x": x, "mask": valid, "gamma": rng.uniform(0.5, 2.0, d),
                "beta": rng.uniform(-1, 1, d), "eps": eps}
    return make


def _masked_reference(inputs):
    from autograder.course import reference as R
    return (R.masked_batchnorm_forward(**inputs),)


def _masked_variant(over="valid", count="valid", padded="zero", unbiased=False, eps_where="inside",
                    multiply=False):
    """Wrong turns on a padded batch. ``over``: which positions the statistics use ("valid",
    "all", or "sequence": each sequence its own); ``count``: what the sums are divided by
    ("valid" or "all": N*T); ``padded``: what padded outputs hold ("zero", "normalized": the
    formula applied to them too, "beta", "x": copied from the input); ``multiply``: the padding
    is removed by multiplying with the mask (inf * 0 is NaN)."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x, eps = R.tensor(inputs["x"]), inputs["eps"]
        g, b = R.tensor(inputs["gamma"]), R.tensor(inputs["beta"])
        m = torch.as_tensor(np.asarray(inputs["mask"], dtype=bool), device=x.device)
        mf = m.to(x.dtype)[..., None]                                 # (N, T, 1)
        if multiply:
            xz = x * mf
        else:
            xz = torch.where(m[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        dims = (1,) if over == "sequence" else (0, 1)
        if over == "all":
            mu = x.mean(dim=dims, keepdim=True)
            var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
        else:
            n_all = torch.full_like(mf.sum(dim=dims, keepdim=True), float(np.prod([x.shape[k] for k in dims])))
            den = mf.sum(dim=dims, keepdim=True) if count == "valid" else n_all
            mu = xz.sum(dim=dims, keepdim=True) / den.clamp(min=1)
            sq = ((xz - mu) ** 2 * mf).sum(dim=dims, keepdim=True)
            var = sq / (den - 1 if unbiased else den).clamp(min=1)
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        y = g * (x - mu) / std + b
        if multiply:
            y = g * (xz - mu) / std + b
        fill = {"zero": torch.zeros_like(y), "normalized": y, "x": x,
                "beta": b.expand_as(y)}[padded]
        if multiply:
            return (R.numpy(y * mf),)
        return (R.numpy(torch.where(m[..., None], y, fill)),)
    return compute


def _all_padding_hint():
    return ("no position of this batch is valid, so every output is padding and must be 0; "
            "a count of zero valid values must not turn into 0/0")


_MASKED_MISTAKES = (
    Mistake("statistics include padded positions",
            "the mean and variance of a feature are taken over the valid positions only; "
            "padded positions hold whatever the previous layer left there",
            _masked_variant(over="all")),
    Mistake("divided by N*T",
            "the sums run over the valid positions, so the mean and variance divide by how many "
            "positions are valid, not by N*T",
            _masked_variant(count="all")),
    Mistake("statistics per sequence",
            "that normalizes each sequence on its own (a layer-norm-like choice); batch norm pools "
            "the valid positions of every sequence in the batch, per feature",
            _masked_variant(over="sequence")),
    Mistake("padded positions normalized too",
            "padded outputs are 0 by this exercise's convention, not the formula applied to "
            "whatever the padding holds",
            _masked_variant(padded="normalized")),
    Mistake("padded outputs set to beta",
            "padded outputs are 0, not beta: a padded position carries no value",
            _masked_variant(padded="beta")),
    Mistake("padded outputs copied from x",
            "padded outputs are 0, not the padding itself", _masked_variant(padded="x")),
    Mistake("padding multiplied away",
            "padded entries may be inf: inf times a mask of 0 is NaN, and the NaN reaches every "
            "statistic; select the valid positions instead of multiplying",
            _masked_variant(multiply=True)),
    Mistake("unbiased variance", "normalize with the biased variance: divide by the number of "
            "valid positions, not one less", _masked_variant(unbiased=True)),
    Mistake("eps outside the square root",
            "eps is added to the variance under the square root, not to the standard deviation",
            _masked_variant(eps_where="outside")),
    Mistake("eps missing", "add eps to the variance before the square root",
            _masked_variant(eps_where="missing")),
)

CHECKS.append(Check(
    function="masked_batchnorm_forward",
    returns=("out", "cache"),
    compared=("out",),
    reference=_masked_reference,
    cases=(
        Case("3 sequences, 6 steps, 4 features, padding holds zeros",
             _masked_inputs(3, 6, 4, lengths=[6, 4, 1])),
        Case("an empty sequence, a constant feature, stale values in the padding",
             _masked_inputs(4, 3, 5, lengths=[3, 0, 2, 1], pad="garbage", constant_feature=1)),
        Case("4 sequences, 5 steps, 2 features, padding holds +-inf",
             _masked_inputs(4, 5, 2, lengths=[5, 2, 3, 1], pad="inf")),
        Case("random lengths, 16x20x8", _masked_inputs(16, 20, 8, pad="garbage"), hidden=True),
        Case("padding at the start (left-padded)",
             _masked_inputs(3, 7, 2, lengths=[4, 7, 2], start=[3, 0, 5], pad="inf"), hidden=True),
        Case("no padding at all (mask all True)", _masked_inputs(5, 4, 3, lengths=[4] * 5), hidden=True),
        Case("one valid position", _masked_inputs(3, 4, 2, lengths=[0, 1, 0], pad="garbage"),
             hidden=True, hint="one valid value per feature: its variance is 0 and it normalizes "
                               "to 0, so its output is beta"),
        Case("the whole batch is padding", _masked_inputs(2, 3, 4, lengths=[0, 0], pad="inf"),
             hidden=True, hint=_all_padding_hint()),
        Case("sequences of length at most one (T=1)", _masked_inputs(6, 1, 3, lengths=[1, 0, 1, 1, 0, 1], pad="garbage"), hidden=True),
        Case("holes inside sequences, padding holds +-inf",
             _masked_inputs(3, 5, 4, pad="inf", mask=[[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 1, 1, 1]]),
             hidden=True),
        Case("mean 1e6, std 1e-3", _masked_inputs(6, 9, 3, loc=1e6, scale=1e-3), hidden=True,
             rtol=1e-5, atol=1e-6, hint=_one_pass("1e6", "1e-3")),
    ),
    mistakes=_MASKED_MISTAKES,
))
