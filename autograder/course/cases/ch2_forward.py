"""Chapter 2: the training-mode forward pass, transferred to three layouts the chapter does not
compute: ghost batches (N, D) cut into consecutive groups with their own statistics, channels-last
arrays (N, ..., C) of any rank, and a padded batch of variable-length sequences (N, T, D) with a
mask of its valid positions."""
import numpy as np

from autograder.course.checks import Case, Check, Mistake


def _one_pass(mean, std):
    """The hint of a large-mean case, quoting that case's own numbers."""
    return (f"in this case the features have mean {mean} and std {std}: a variance computed as "
            f"E[x^2] - E[x]^2 subtracts two numbers near mean^2 that agree in every digit a "
            f"float64 holds, so the difference is rounding noise")



# ---- ghost batch normalization ----------------------------------------------------------------

def _ghost_inputs(n, d, ghost_size, eps=1e-5, loc=0.0, scale=1.0, constant_feature=False,
                  random_shape=False, group_offsets=0.0):
    def make(rng):
        nn, dd, g = n, d, ghost_size
        if random_shape:
            g = int(rng.integers(2, 9))
            nn, dd = g * int(rng.integers(2, 9)), int(rng.integers(2, 40))
        x = loc + scale * rng.standard_normal((nn, dd))
        # ghost batches drawn from different places: per-group statistics really differ
        x += group_offsets * np.repeat(rng.standard_normal((nn // g, dd)), g, axis=0)
        if constant_feature:
            x[:, 0] = 3.0
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, dd), "beta": rng.uniform(-1, 1, dd),
                "ghost_size": g, "eps": eps}
    return make


def _ghost_reference(inputs):
    from autograder.course import reference as R
    return (R.ghost_batchnorm_forward(**inputs),)


def _ghost_variant(groups="consecutive", unbiased=False, eps_where="inside"):
    """Wrong ghost batch norms: ``groups`` "whole" (one batch), "strided" (row i with rows
    i + N/G, i + 2N/G, ...)."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x, g, b, eps = R.tensor(inputs["x"]), R.tensor(inputs["gamma"]), R.tensor(inputs["beta"]), inputs["eps"]
        n, d = x.shape
        size = int(inputs["ghost_size"])
        if groups == "whole":
            xg = x[None]
        elif groups == "strided":
            xg = x.reshape(size, n // size, d).transpose(0, 1)
        else:
            xg = x.reshape(n // size, size, d)
        mu = xg.mean(dim=1, keepdim=True)
        var = xg.var(dim=1, keepdim=True, unbiased=unbiased)
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        y = g * (xg - mu) / std + b
        if groups == "strided":
            y = y.transpose(0, 1)
        return (R.numpy(y.reshape(n, d)),)
    return compute


_STAT_MISTAKES = (
    ("unbiased variance",
     "the variance was divided by one less than the number of values it averages (Bessel's "
     "correction): that estimates a population's spread, while batch norm rescales the values "
     "it has in hand",
     "var = ((x - mu) ** 2).mean(...)  # divide by the count"),
    ("eps outside the square root",
     "eps was added to the standard deviation: that agrees with the specification only where "
     "the variance is large next to eps, and this case's variance is not",
     "x_hat = (x - mu) / np.sqrt(var + eps)"),
    ("eps missing",
     "a feature constant over its batch has variance 0, and 0 / sqrt(0) is NaN: nothing kept "
     "the division finite",
     "x_hat = (x - mu) / np.sqrt(var + eps)"),
)


def _stat_mistakes(variant):
    """The three mistakes every forward pass can make, computed by ``variant``."""
    kwargs = ({"unbiased": True}, {"eps_where": "outside"}, {"eps_where": "missing"})
    return tuple(Mistake(name, hint, variant(**kw), correction=fix)
                 for (name, hint, fix), kw in zip(_STAT_MISTAKES, kwargs))


_GHOST_MISTAKES = (
    Mistake("statistics over the whole batch",
            "every row was normalized with the mean and variance of all N rows: the ghost "
            "batches never got statistics of their own",
            _ghost_variant(groups="whole"),
            correction="groups = x.reshape(N // ghost_size, ghost_size, D); mu = groups.mean(axis=1)"),
    Mistake("ghost batches interleaved",
            "your ghost batches are not runs of consecutive rows: row i shared its statistics "
            "with the rows N/G, 2N/G, ... places further on (G the ghost size), rows that were "
            "never a batch together",
            _ghost_variant(groups="strided"),
            correction="x.reshape(N // ghost_size, ghost_size, D), statistics over axis 1"),
) + _stat_mistakes(_ghost_variant)


# ---- channels last -------------------------------------------------------------------------------

def _last_inputs(shape, eps=1e-5, loc=0.0, scale=1.0, constant_channel=False, random_rank=False):
    def make(rng):
        sh = tuple(shape)
        if random_rank:
            rank = int(rng.integers(2, 6))
            sh = tuple(int(v) for v in rng.integers(2, 6, rank))
        # channels with their own offsets and scales, so that mixing them shows
        c = sh[-1]
        z = rng.standard_normal(sh) * rng.uniform(0.5, 3.0, c) + rng.uniform(-2.0, 2.0, c)
        x = loc + scale * z
        if constant_channel:
            x[..., 0] = 3.0
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, c), "beta": rng.uniform(-1, 1, c), "eps": eps}
    return make


def _last_reference(inputs):
    from autograder.course import reference as R
    return (R.channels_last_batchnorm_forward(**inputs),)


def _last_variant(over="all but the last", unbiased=False, eps_where="inside"):
    """Wrong channels-last forward passes: ``over`` names the axes reduced ("all but the last",
    "all but axis 1", "N only", "all but N")."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x, g, b, eps = R.tensor(inputs["x"]), R.tensor(inputs["gamma"]), R.tensor(inputs["beta"]), inputs["eps"]
        dims = {"all but the last": list(range(x.ndim - 1)),
                "all but axis 1": [d for d in range(x.ndim) if d != 1],
                "N only": [0], "all but N": list(range(1, x.ndim))}[over]
        mu = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        return (R.numpy(g * (x - mu) / std + b),)
    return compute


_LAST_MISTAKES = (
    Mistake("channel axis taken as axis 1",
            "these statistics are one per index of axis 1, as for an (N, C, H, W) array; here "
            "axis 1 is a position axis, so values of every channel were pooled and each row of "
            "positions got its own statistics",
            _last_variant(over="all but axis 1"),
            correction="axes = tuple(range(x.ndim - 1))  # every axis but the last"),
    Mistake("reduced over N only",
            "each position got statistics of its own, over the examples alone: a convolution's "
            "channel is the same filter at every position, and its statistics pool them all",
            _last_variant(over="N only"),
            correction="reduce over every axis but the last"),
    Mistake("reduced per sample",
            "each example was normalized over its own positions and channels: that is layer "
            "norm, which never looks at the other examples of the batch",
            _last_variant(over="all but N"),
            correction="reduce over every axis but the last"),
) + _stat_mistakes(_last_variant)


CHECKS = [
    Check(
        function="ghost_batchnorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_ghost_reference,
        cases=(
            Case("N=12, D=3, ghost_size=4", _ghost_inputs(12, 3, 4, group_offsets=2.0)),
            Case("N=8, D=5, ghost_size=2, eps=0.1", _ghost_inputs(8, 5, 2, eps=0.1, scale=0.3,
                                                                  group_offsets=1.0)),
            Case("ghost_size = N: plain batch norm", _ghost_inputs(6, 4, 6)),
            # Visible, so the self-check already tells a one-pass variance apart.
            Case("mean 1e4, std 1e-2", _ghost_inputs(16, 3, 8, loc=1e4, scale=1e-2),
                 rtol=1e-5, atol=1e-6, hint=_one_pass("1e4", "1e-2")),
            Case("random N, D and ghost_size", _ghost_inputs(0, 0, 0, random_shape=True,
                                                              group_offsets=1.5), hidden=True),
            Case("ghost_size=1: every batch one row", _ghost_inputs(5, 3, 1), hidden=True,
                 hint="a ghost batch of one row has variance 0: its normalized value is 0, and "
                      "the output must stay finite"),
            Case("ghost_size=3, N=3, D=1", _ghost_inputs(3, 1, 3), hidden=True),
            Case("one constant column", _ghost_inputs(12, 6, 4, constant_feature=True), hidden=True),
            Case("many small ghost batches, 64x7", _ghost_inputs(64, 7, 2, group_offsets=3.0),
                 hidden=True),
            Case("mean 1e6, std 1e-3", _ghost_inputs(40, 8, 10, loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_one_pass("1e6", "1e-3")),
        ),
        mistakes=_GHOST_MISTAKES,
    ),
    Check(
        function="channels_last_batchnorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_last_reference,
        cases=(
            Case("(N, H, W, C) = (2, 4, 5, 3)", _last_inputs((2, 4, 5, 3))),
            Case("(N, L, C) = (4, 6, 2), eps=0.1", _last_inputs((4, 6, 2), eps=0.1, scale=0.3)),
            Case("(N, C) = (8, 5)", _last_inputs((8, 5))),
            Case("random rank and shape", _last_inputs((), random_rank=True), hidden=True),
            Case("(N, D, H, W, C) = (2, 3, 4, 2, 5)", _last_inputs((2, 3, 4, 2, 5)), hidden=True),
            Case("(N, H, W, C) = (3, 1, 1, 4)", _last_inputs((3, 1, 1, 4)), hidden=True),
            Case("C=1", _last_inputs((4, 3, 3, 1)), hidden=True),
            Case("one constant channel", _last_inputs((3, 2, 2, 4), constant_channel=True), hidden=True),
            Case("mean 1e6, std 1e-3", _last_inputs((4, 6, 6, 3), loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_one_pass("1e6", "1e-3")),
        ),
        mistakes=_LAST_MISTAKES,
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
    return ("no position of this batch is valid: every output is padding, and a mean over zero "
            "valid values is 0/0")


_MASKED_MISTAKES = (
    Mistake("statistics include padded positions",
            "the mean and variance also averaged the padded positions, which hold whatever the "
            "previous layer left there (zeros, stale values, inf), none of it data",
            _masked_variant(over="all"),
            correction="valid = x[mask]; mu = valid.mean(axis=0)"),
    Mistake("divided by N*T",
            "the sums skip the padding but were divided by N*T, the count of every position, "
            "padding included: the mean shrinks toward 0 by the share of padding",
            _masked_variant(count="all"),
            correction="mu = x[mask].sum(axis=0) / mask.sum()"),
    Mistake("statistics per sequence",
            "each sequence got its own mean and variance (a layer-norm-like choice): the "
            "sequences of the batch never share statistics",
            _masked_variant(over="sequence"),
            correction="statistics per feature over the valid positions of all sequences together"),
    Mistake("padded positions normalized too",
            "the padded positions went through the normalization too, so they hold "
            "gamma * (pad - mu) / std + beta: a value computed from padding",
            _masked_variant(padded="normalized"),
            correction="out = np.zeros_like(x); out[mask] = gamma * x_hat + beta"),
    Mistake("padded outputs set to beta",
            "the padded positions hold beta, the output a valid value equal to the mean would "
            "get: downstream sums over time then count every padded step as such a value",
            _masked_variant(padded="beta"),
            correction="out = np.zeros_like(x); out[mask] = ..."),
    Mistake("padded outputs copied from x",
            "the padded positions hold the padding itself, passed through untouched (inf and "
            "stale values included)",
            _masked_variant(padded="x"),
            correction="out = np.zeros_like(x); out[mask] = ..."),
    Mistake("padding multiplied away",
            "padded entries may be inf: inf times a mask of 0 is NaN, and the NaN reaches every "
            "statistic",
            _masked_variant(multiply=True),
            correction="valid = x[mask]  # boolean indexing, never x * mask"),
    Mistake("unbiased variance", _STAT_MISTAKES[0][1], _masked_variant(unbiased=True),
            correction="var = ((valid - mu) ** 2).mean(axis=0)"),
    Mistake("eps outside the square root", _STAT_MISTAKES[1][1],
            _masked_variant(eps_where="outside"), correction="x_hat = xc / np.sqrt(var + eps)"),
    Mistake("eps missing", _STAT_MISTAKES[2][1], _masked_variant(eps_where="missing"),
            correction="x_hat = xc / np.sqrt(var + eps)"),
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
             hidden=True, hint="one valid value per feature: its variance over the batch is 0, "
                               "and its output must stay finite"),
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
