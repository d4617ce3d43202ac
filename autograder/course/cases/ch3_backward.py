"""Chapter 3: the backward pass, staged for (N, D), and two transfers of the compact form.

The staged part is graded on the gradients reaching the graph's inner nodes (x_hat, var, mu) as
well as on dx, dgamma and dbeta, so only a pass that walks the graph earns its points: the
compact formula has no dvar or dmu to return. The chapter works two of the graph's nodes; the
student derives the local derivatives of the others. The chapter derives the compact (N, D)
form itself, so it is not graded as such (issue 23); two transfers of its method are, each on
(dbeta, dgamma, dx):

* ``masked_batchnorm_backward``: BN over the observed entries of each feature (x holds NaN at a
  missing entry, the output there is 0), so every feature has its own count and a missing entry
  neither sends nor receives gradient. No page derives it; the notebook's written question asks
  for its derivation on paper.
* ``spatial_batchnorm_backward``: from a cache kept in the (N, C, H, W) layout, so the student
  chooses the axes that share a channel's statistics and parameters, and the count N*H*W.

Parameter gradients are compared before dx everywhere: a mistake in dgamma or dbeta that is
reused in dx is then reported as the root cause, and each known mistake computes every compared
value the way that mistake does.

The forward functions below build each case's cache, in the layout the notebook documents (the
student writes their own in the notebook's ungraded Part 0). They are NumPy only: the grading
sandbox imports this module without torch.
"""
import numpy as np

from autograder.course.checks import Case, Check, Mistake

# ---- the provided forward pass (shared by the notebook, the cases and the book) -----------

# The cache's fields, in order: the nodes of the forward computational graph, then gamma, eps.
CACHE_FIELDS = ("x", "mu", "xc", "var", "std", "inv_std", "x_hat", "gamma", "eps")


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      eps: float = 1e-5) -> tuple[np.ndarray, tuple]:
    """Training-mode batch normalization of x (N, D); returns ``out`` and the graph's nodes.

    cache = (x, mu, xc, var, std, inv_std, x_hat, gamma, eps):
    - x: input, (N, D)            - mu: batch mean, (D,)
    - xc: x - mu, (N, D)          - var: biased batch variance mean(xc**2), (D,)
    - std: sqrt(var + eps), (D,)  - inv_std: 1 / std, (D,)
    - x_hat: xc * inv_std, (N, D) - gamma: scale, (D,)
    - eps: the float added to var
    """
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc ** 2).mean(axis=0)
    std = np.sqrt(var + eps)
    inv_std = 1.0 / std
    x_hat = xc * inv_std
    out = gamma * x_hat + beta
    return out, (x, mu, xc, var, std, inv_std, x_hat, gamma, eps)


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                              eps: float = 1e-5) -> tuple[np.ndarray, tuple]:
    """Per-channel batch normalization of x (N, C, H, W), its cache in that layout.

    cache = (x, mu, xc, var, std, inv_std, x_hat, gamma, eps) with the nodes of
    :func:`batchnorm_forward` per channel: x, xc, x_hat of shape (N, C, H, W); mu, var, std,
    inv_std, gamma of shape (C,).
    """
    c = x.shape[1]
    per_channel = (1, c, 1, 1)
    mu = x.mean(axis=(0, 2, 3))
    xc = x - mu.reshape(per_channel)
    var = (xc ** 2).mean(axis=(0, 2, 3))
    std = np.sqrt(var + eps)
    inv_std = 1.0 / std
    x_hat = xc * inv_std.reshape(per_channel)
    out = gamma.reshape(per_channel) * x_hat + beta.reshape(per_channel)
    return out, (x, mu, xc, var, std, inv_std, x_hat, gamma, eps)


MASKED_CACHE_FIELDS = ("x", "mask", "mu", "xc", "var", "std", "x_hat", "gamma", "eps")


def masked_batchnorm_forward(x: np.ndarray, mask: np.ndarray, gamma: np.ndarray,
                             beta: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, tuple]:
    """Batch normalization of x (N, D) over the observed entries of each feature.

    mask (N, D) is True where an entry is observed; x may hold NaN elsewhere. Each feature's
    mean and biased variance run over its own observed entries; out is gamma * x_hat + beta
    there and 0 at a missing entry. cache = (x, mask, mu, xc, var, std, x_hat, gamma, eps), with
    xc and x_hat 0 at missing entries.
    """
    mask = np.asarray(mask, dtype=bool)
    count = mask.sum(axis=0)
    mu = np.where(mask, x, 0.0).sum(axis=0) / count
    xc = np.where(mask, x - mu, 0.0)
    var = (xc ** 2).sum(axis=0) / count
    std = np.sqrt(var + eps)
    x_hat = xc / std
    out = np.where(mask, gamma * x_hat + beta, 0.0)
    return out, (x, mask, mu, xc, var, std, x_hat, gamma, eps)


# ---- inputs ------------------------------------------------------------------------------

def _inputs(shape, eps=1e-5, loc=0.0, scale=1.0, dout_scale=1.0, constant_feature=False,
            negative_gamma=False):
    spatial = len(shape) == 4
    forward = spatial_batchnorm_forward if spatial else batchnorm_forward

    def make(rng):
        x = loc + scale * rng.standard_normal(shape)
        if constant_feature:
            x[:, 0] = 3.0
        c = shape[1]
        gamma = rng.uniform(0.5, 2.0, c)
        if negative_gamma:
            gamma *= rng.choice([-1.0, 1.0], c)
        beta = rng.uniform(-1, 1, c)
        dout = dout_scale * rng.standard_normal(shape)
        return {"dout": dout, "cache": forward(x, gamma, beta, eps)[1]}
    return make


def _unpack(inputs):
    """(x, dout, gamma, eps), x in dout's layout ((N, D) or (N, C, H, W))."""
    return inputs["cache"][0], inputs["dout"], inputs["cache"][7], inputs["cache"][8]


def _reference(inputs):
    """(dbeta, dgamma, dx): parameter gradients first, the order they are compared in."""
    from autograder.course import reference as R
    x, dout, gamma, eps = _unpack(inputs)
    dx, dgamma, dbeta = R.batchnorm_backward(dout, x, gamma, np.zeros_like(gamma), eps)
    return dbeta, dgamma, dx


# The staged function returns (dx, dgamma, dbeta, dx_hat, dvar, dmu); they are compared in the
# order the backward pass computes them, so the first node that is wrong is the one reported.
STAGED_RETURNS = ("dx", "dgamma", "dbeta", "dx_hat", "dvar", "dmu")
STAGED_COMPARED = ("dbeta", "dgamma", "dx_hat", "dvar", "dmu", "dx")


def _staged_reference(inputs):
    from autograder.course import reference as R
    x, dout, gamma, eps = _unpack(inputs)
    dx, dg, db, dxh, dvar, dmu = R.batchnorm_backward_staged(dout, x, gamma, eps)
    return db, dg, dxh, dvar, dmu, dx


def _staged_variant(gamma_in_dxhat=True, ds_sign=-1.0, sqrt_chain="divide", second_branch=True,
                    mean_branch=True, divisor="N", param_reduce="sum", square_factor=2.0,
                    dmu_sign=-1.0, spread="N"):
    """A wrong staged pass, node by node as the notebook writes it (values in STAGED_COMPARED order).

    ``ds_sign`` +1 drops the minus of d(1/s)/ds; ``sqrt_chain`` "multiply" uses ds * 2s for
    dvar; ``second_branch`` / ``mean_branch`` False forget the variance's or the mean's path
    back to x; ``divisor`` "N-1" spreads dvar with 2/(N-1), "1" forgets the mean's 1/N;
    ``square_factor`` 1 forgets the 2 of d(xc**2)/dxc; ``dmu_sign`` +1 drops the minus of the
    centring; ``spread`` "1" hands dmu to every row without dividing by N.
    """
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x, dout, gamma, eps = _unpack(inputs)
        x, dy, g = R.tensor(x), R.tensor(dout), R.tensor(gamma)
        n = x.shape[0]
        mu = x.mean(dim=0)
        xc = x - mu
        std = torch.sqrt((xc ** 2).mean(dim=0) + eps)
        x_hat = xc / std
        if param_reduce == "sum":
            db, dg = dy.sum(dim=0), (dy * x_hat).sum(dim=0)
        else:
            db, dg = dy.mean(dim=0), (dy * x_hat).mean(dim=0)
        dxh = g * dy if gamma_in_dxhat else dy
        dr = (dxh * xc).sum(dim=0)
        dxc = dxh / std
        ds = ds_sign * dr / std ** 2
        dvar = ds / (2 * std) if sqrt_chain == "divide" else ds * 2 * std
        if second_branch:
            count = {"N": n, "N-1": n - 1, "1": 1}[divisor]
            dxc = dxc + square_factor * xc * dvar / count
        dmu = dmu_sign * dxc.sum(dim=0)
        dx = dxc + dmu / (n if spread == "N" else 1) if mean_branch else dxc
        return tuple(R.numpy(t) for t in (db, dg, dxh, dvar, dmu, dx))
    return compute


_STAGED_MISTAKES = (
    Mistake("mean term of dx missing",
            "x is read twice, by the mean and by the centring: dx has lost the share that comes "
            "back through the mean node",
            _staged_variant(mean_branch=False),
            correction="dx = dxc + dmu / N"),
    Mistake("variance term of dx missing",
            "xc is read twice, by x_hat and by the variance: its gradient has lost the "
            "contribution that comes back through the variance node, and so has everything "
            "upstream of it",
            _staged_variant(second_branch=False),
            correction="dxc = dxc + 2.0 * xc * dvar / N"),
    Mistake("sign of ds flipped",
            "ds has the wrong sign: the reciprocal node decreases as s grows, and the gradient "
            "passing through it was not turned around",
            _staged_variant(ds_sign=1.0),
            correction="dstd = -dinv_std / std ** 2"),
    Mistake("square-root derivative inverted",
            "dvar came out of the square-root node multiplied by the quantity that node's local "
            "derivative divides by: the derivative was inverted",
            _staged_variant(sqrt_chain="multiply"),
            correction="dvar = dstd / (2.0 * std)"),
    Mistake("unbiased variance",
            "the variance node's local derivative used the unbiased estimator's count, one less "
            "than the number of rows the forward pass averages over",
            _staged_variant(divisor="N-1"),
            correction="dxc = dxc + 2.0 * xc * dvar / N"),
    Mistake("1/N of the variance node missing",
            "the variance node handed each squared entry the whole gradient reaching it, as if "
            "the variance were a sum of squares rather than their mean",
            _staged_variant(divisor="1"),
            correction="dxc = dxc + 2.0 * xc * dvar / N"),
    Mistake("factor 2 of the square missing",
            "the derivative of the square inside the variance lost its constant factor: what "
            "reaches xc through the variance is half what it should be",
            _staged_variant(square_factor=1.0),
            correction="dxc = dxc + 2.0 * xc * dvar / N"),
    Mistake("sign of dmu flipped",
            "dmu has the wrong sign: the centring node subtracts mu, and the gradient it sends "
            "back to mu was not turned around",
            _staged_variant(dmu_sign=1.0),
            correction="dmu = -dxc.sum(axis=0)"),
    Mistake("dmu not spread over the N rows",
            "every row received the whole gradient reaching mu, as if mu were the sum of the "
            "rows rather than their mean",
            _staged_variant(spread="1"),
            correction="dx = dxc + dmu / N"),
    Mistake("gamma missing from dx_hat",
            "the gradient reaching x_hat skipped the output node's scale, so everything "
            "upstream of x_hat is off by one factor per feature",
            _staged_variant(gamma_in_dxhat=False),
            correction="dx_hat = gamma * dout"),
    Mistake("dgamma/dbeta averaged over the batch",
            "dgamma and dbeta are N times too small: the rows' contributions were averaged, "
            "where a parameter shared by the rows collects every one of them",
            _staged_variant(param_reduce="mean"),
            correction="dbeta = dout.sum(axis=0); dgamma = (dout * x_hat).sum(axis=0)"),
)


# ---- spatial_batchnorm_backward: the (N, C, H, W) cache ------------------------------------

def _flat(a):
    """(N, C, H, W) -> (N*H*W, C), one column per channel; (N, D) unchanged."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1]) if a.ndim == 4 else a


def _unflat(a, shape):
    if len(shape) == 2:
        return a
    n, c, h, w = shape
    return a.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _variant(mean_term=1.0, var_divisor="M", gamma_in_dx=True, param_reduce="sum", count="M"):
    """A wrong per-channel backward: dx = g/s * (dy - mean(dy) - x_hat * sum(dy*x_hat)/count).

    ``var_divisor`` "M" is right, "M-1" the unbiased slip, None drops the variance term.
    ``param_reduce``: "sum" (right), "mean", or "axis0 only" (a sum over the batch axis alone,
    one value per channel and position). ``count`` "N" divides by the batch size instead of
    the M = N*H*W values of a channel, "all" by every value of the batch, N*C*H*W.
    Returns (dbeta, dgamma, dx), the order they are compared in.
    """
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x4, dout4, gamma, eps = _unpack(inputs)
        shape = dout4.shape
        x, dy, g = R.tensor(_flat(x4)), R.tensor(_flat(dout4)), R.tensor(gamma)
        m = {"M": x.shape[0], "N": shape[0], "all": x.numel()}[count]
        s = torch.sqrt(x.var(dim=0, unbiased=False) + eps)
        x_hat = (x - x.mean(dim=0)) / s
        dot = (dy * x_hat).sum(dim=0)
        dxh = dy - mean_term * dy.sum(dim=0) / m
        if var_divisor is not None:
            dxh = dxh - x_hat * dot / (m if var_divisor == "M" else m - 1)
        if param_reduce == "sum":
            dg, db = dot, dy.sum(dim=0)
        elif param_reduce == "mean":
            dg, db = dot / x.shape[0], dy.mean(dim=0)
        else:
            dy4, xh4 = R.tensor(dout4), R.tensor(_unflat(R.numpy(x_hat), shape))
            dg, db = (dy4 * xh4).sum(dim=0), dy4.sum(dim=0)
        dx = (g if gamma_in_dx else 1.0) / s * dxh
        return R.numpy(db), R.numpy(dg), _unflat(R.numpy(dx), shape)
    return compute


_SPATIAL_MISTAKES = (
    Mistake("mean term of dx missing",
            "a channel's mean depends on every value of the channel: dx has lost the term that "
            "comes back through the mean",
            _variant(mean_term=0.0),
            correction="subtract the channel mean of dout inside dx"),
    Mistake("variance term of dx missing",
            "a channel's variance depends on every value of the channel too: dx has lost the "
            "term that comes back through the variance, the one along x_hat",
            _variant(var_divisor=None),
            correction="subtract x_hat * sum(dout * x_hat) / M inside dx"),
    Mistake("unbiased variance",
            "the variance term used the unbiased estimator's count, one less than the number "
            "of values the forward pass averages over",
            _variant(var_divisor="M-1"),
            correction="x_hat * dgamma / M with M = N * H * W"),
    Mistake("gamma missing from dx",
            "dx skipped the output's scale: it is off by one factor per channel",
            _variant(gamma_in_dx=False),
            correction="dx = gamma[None, :, None, None] * inv_std[None, :, None, None] * (...)"),
    Mistake("dgamma/dbeta averaged over the batch",
            "dgamma and dbeta are M times too small: a channel's values were averaged, where a "
            "parameter shared by them collects every one of their contributions",
            _variant(param_reduce="mean"),
            correction="dbeta = dout.sum(axis=(0, 2, 3))"),
    Mistake("count N instead of N*H*W",
            "the means in dx divided by the batch size N, but a channel's statistics average "
            "more values than there are samples",
            _variant(count="N"),
            correction="M = N * H * W"),
    Mistake("count N*C*H*W instead of N*H*W",
            "the means in dx divided by the number of values in the whole batch, every channel "
            "counted, but each channel has statistics of its own",
            _variant(count="all"),
            correction="M = N * H * W"),
    Mistake("dgamma/dbeta not summed over H and W",
            "dgamma and dbeta kept one value per channel and position: the positions of a "
            "channel share its gamma and beta, yet their contributions were not collected",
            _variant(param_reduce="axis0 only"),
            correction="dgamma = (dout * x_hat).sum(axis=(0, 2, 3))"),
)

_GRADCHECK = "compare each of dx, dgamma, dbeta with a centered-difference numerical gradient"
# A feature with zero variance has std = sqrt(eps): a 1e-5 mistake is magnified ~300 times.
_CONSTANT = ("a constant feature has zero variance and x_hat 0, but its std is sqrt(eps), not 0: "
             "a std recomputed without eps divides by zero")


def _fc_cases():
    # Visible cases are rectangular (N != D, one with D > N), so an axis mix-up shows as a shape.
    return (
        Case("N=6, D=9", _inputs((6, 9)), hint=_GRADCHECK),
        Case("N=10, D=4", _inputs((10, 4)), hint=_GRADCHECK),
        Case("eps=0.1, negative gamma", _inputs((5, 3), eps=0.1, scale=0.3, negative_gamma=True),
             hint=_GRADCHECK),
        Case("random shape 64x37", _inputs((64, 37), loc=2.0, scale=3.0), hidden=True, hint=_GRADCHECK),
        Case("N=2, D=3", _inputs((2, 3)), hidden=True, hint=_GRADCHECK),
        Case("N=200, D=1, large dout", _inputs((200, 1), dout_scale=1e3), hidden=True,
             hint=_GRADCHECK),
        Case("one constant column of 5", _inputs((12, 5), constant_feature=True), hidden=True,
             hint=_CONSTANT),
    )


# ---- masked_batchnorm_backward: each feature over its own observed entries -----------------

MASKED_RETURNS = ("dx", "dgamma", "dbeta")
MASKED_COMPARED = ("dbeta", "dgamma", "dx")


def _masked_inputs(shape, missing=0.3, counts=None, eps=1e-5, loc=0.0, scale=1.0,
                   dout_scale=1.0, negative_gamma=False, constant_feature=False):
    """x (N, D) with NaN at its missing entries, a mask with at least one observed entry per
    feature (``counts``: exactly that many in feature d), and dout non-zero everywhere,
    missing entries included (the output there is the constant 0: that dout must go nowhere)."""
    def make(rng):
        n, d = shape
        if counts is None:
            mask = rng.random((n, d)) >= missing
            mask[rng.integers(0, n, d), np.arange(d)] = True
        else:
            mask = np.zeros((n, d), dtype=bool)
            for j, k in enumerate(counts):
                mask[rng.choice(n, k, replace=False), j] = True
        x = loc + scale * rng.standard_normal((n, d))
        if constant_feature:
            x[:, 0] = 3.0
        x[~mask] = np.nan
        gamma = rng.uniform(0.5, 2.0, d)
        if negative_gamma:
            gamma *= rng.choice([-1.0, 1.0], d)
        beta = rng.uniform(-1, 1, d)
        dout = dout_scale * rng.standard_normal((n, d))
        return {"dout": dout, "cache": masked_batchnorm_forward(x, mask, gamma, beta, eps)[1]}
    return make


def _masked_unpack(inputs):
    x, mask, *_, gamma, eps = inputs["cache"]
    return x, np.asarray(mask, dtype=bool), inputs["dout"], gamma, eps


def _masked_reference(inputs):
    from autograder.course import reference as R
    x, mask, dout, gamma, eps = _masked_unpack(inputs)
    dx, dgamma, dbeta = R.masked_batchnorm_backward(dout, x, mask, gamma, eps)
    return dbeta, dgamma, dx


def _masked_variant(count="own", dout_masked=True, dx_masked=True, mean_term=True,
                    var_term="count", param_reduce="sum", gamma_in_dx=True):
    """A wrong masked backward, written as the compact form with per-feature counts:
    dx = mask * g/s * (dy - S1/count - x_hat * S2/count), S1 = sum(dy), S2 = sum(dy * x_hat)
    over the observed entries. ``count`` "N" uses the batch size for every feature, "all" the
    number of observed entries of the whole batch; ``dout_masked`` False lets dout at missing
    entries into the sums (and dx); ``dx_masked`` False leaves dx non-zero at missing entries;
    ``var_term`` "count-1" is the unbiased slip, None drops the term; ``param_reduce`` "mean"
    divides dgamma and dbeta by the count."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x, mask, dout, gamma, eps = _masked_unpack(inputs)
        m = R.tensor(mask.astype(float))
        xm = R.tensor(np.where(mask, x, 0.0))
        own = m.sum(dim=0)
        k = {"own": own, "N": torch.full_like(own, float(mask.shape[0])),
             "all": torch.full_like(own, float(mask.sum()))}[count]
        mu = xm.sum(dim=0) / own
        xc = (xm - mu) * m
        s = torch.sqrt((xc ** 2).sum(dim=0) / own + eps)
        x_hat = xc / s
        dy = R.tensor(dout) * (m if dout_masked else 1.0)
        s1, s2 = dy.sum(dim=0), (dy * x_hat).sum(dim=0)
        dxh = dy - (s1 / k if mean_term else 0.0)
        if var_term is not None:
            dxh = dxh - x_hat * s2 / (k if var_term == "count" else k - 1)
        dx = (R.tensor(gamma) if gamma_in_dx else 1.0) / s * dxh * (m if dx_masked else 1.0)
        if param_reduce == "mean":
            s1, s2 = s1 / own, s2 / own
        return R.numpy(s1), R.numpy(s2), R.numpy(dx)
    return compute


_MASKED_MISTAKES = (
    Mistake("fully observed form applied as it is",
            "the form for a batch with no missing entry was applied unchanged: its sums ran over "
            "all N rows, missing entries' dout included, and its means divided by N",
            _masked_variant(count="N", dout_masked=False, dx_masked=False),
            correction="count = mask.sum(axis=0); dy = np.where(mask, dout, 0.0); "
                       "dx = np.where(mask, dx, 0.0)"),
    Mistake("fully observed form applied as it is",
            "the form for a batch with no missing entry was applied with dx zeroed at missing "
            "entries only: its sums still ran over all N rows, missing entries' dout included, "
            "and its means divided by N",
            _masked_variant(count="N", dout_masked=False),
            correction="count = mask.sum(axis=0); dy = np.where(mask, dout, 0.0)"),
    Mistake("count N for every feature",
            "the means in dx divided by the batch size, but a feature's mean and variance "
            "average only the entries observed in that feature",
            _masked_variant(count="N"),
            correction="count = mask.sum(axis=0)  # one per feature"),
    Mistake("one count for the whole batch",
            "the means in dx divided by the number of observed entries of the whole batch, "
            "every feature counted together, but each feature has statistics of its own",
            _masked_variant(count="all"),
            correction="count = mask.sum(axis=0)  # one per feature"),
    Mistake("dout at missing entries used",
            "dbeta (and dx through it) took in dout at missing entries, where the output is the "
            "constant 0 and sends no gradient back",
            _masked_variant(dout_masked=False),
            correction="dy = np.where(mask, dout, 0.0)"),
    Mistake("dout at missing entries used",
            "dbeta and dx took in dout at missing entries, where the output is the constant 0 "
            "and sends no gradient back",
            _masked_variant(dout_masked=False, dx_masked=False),
            correction="dy = np.where(mask, dout, 0.0)"),
    Mistake("dx non-zero at missing entries",
            "dx is non-zero at missing entries: the output never reads x there, so nothing "
            "there can change the loss",
            _masked_variant(dx_masked=False),
            correction="dx = np.where(mask, dx, 0.0)"),
    Mistake("mean term of dx missing",
            "a feature's mean depends on each of its observed entries: dx has lost the term "
            "that comes back through the mean",
            _masked_variant(mean_term=False),
            correction="subtract dbeta / count inside dx"),
    Mistake("variance term of dx missing",
            "a feature's variance depends on each of its observed entries too: dx has lost the "
            "term that comes back through the variance, the one along x_hat",
            _masked_variant(var_term=None),
            correction="subtract x_hat * dgamma / count inside dx"),
    Mistake("unbiased variance",
            "the variance term used the unbiased estimator's count, one less than the number of "
            "entries the forward pass averages over",
            _masked_variant(var_term="count-1"),
            correction="x_hat * dgamma / count"),
    Mistake("gamma missing from dx",
            "dx skipped the output's scale: it is off by one factor per feature",
            _masked_variant(gamma_in_dx=False),
            correction="dx = gamma / std * (...)"),
    Mistake("dgamma/dbeta averaged over the batch",
            "dgamma and dbeta are divided by the feature's count: the entries' contributions were "
            "averaged, where a shared parameter collects every one of them",
            _masked_variant(param_reduce="mean"),
            correction="dbeta = np.where(mask, dout, 0.0).sum(axis=0)"),
)

_NAN = ("x holds NaN at missing entries and dout is not 0 there: anything computed from x there "
        "is NaN (NaN times a mask of 0 is still NaN), and the output there is the constant 0")
_MASK_HINT = ("the output at a missing entry is the constant 0; compare dx, dgamma and dbeta with "
              "a centered-difference numerical gradient over the observed entries")


CHECKS = [
    Check(
        function="batchnorm_backward",
        returns=STAGED_RETURNS,
        compared=STAGED_COMPARED,
        reference=_staged_reference,
        cases=_fc_cases(),
        mistakes=_STAGED_MISTAKES,
    ),
    Check(
        function="masked_batchnorm_backward",
        returns=MASKED_RETURNS,
        compared=MASKED_COMPARED,
        reference=_masked_reference,
        cases=(
            Case("N=8, D=5, about a third missing", _masked_inputs((8, 5)), hint=_NAN),
            Case("N=7, D=3, counts 7, 4 and 2", _masked_inputs((7, 3), counts=(7, 4, 2)),
                 hint=_MASK_HINT),
            Case("eps=0.1, negative gamma", _masked_inputs((6, 4), eps=0.1, scale=0.3,
                                                           negative_gamma=True), hint=_MASK_HINT),
            Case("random shape 50x20, half missing", _masked_inputs((50, 20), missing=0.5, loc=2.0,
                                                                    scale=3.0),
                 hidden=True, hint=_MASK_HINT),
            Case("nothing missing", _masked_inputs((9, 4), missing=0.0), hidden=True,
                 hint=_MASK_HINT),
            Case("one observed entry in a feature", _masked_inputs((6, 3), counts=(1, 6, 3)), hidden=True,
                 hint="a feature observed once has variance 0 and x_hat 0 there: its gradients "
                      "must stay finite"),
            Case("N=2, D=6, counts 2 and 1", _masked_inputs((2, 6), counts=(2, 1, 2, 1, 2, 2)),
                 hidden=True, hint=_MASK_HINT),
            Case("large dout", _masked_inputs((30, 2), dout_scale=1e3), hidden=True,
                 hint=_MASK_HINT),
            Case("a feature constant where observed", _masked_inputs((10, 4), constant_feature=True),
                 hidden=True, hint=_CONSTANT),
        ),
        mistakes=_MASKED_MISTAKES,
    ),
    Check(
        function="spatial_batchnorm_backward",
        transfers=("eq-ch3-dx, derived for (N, D), to an (N, C, H, W) cache kept in its own layout: "
                   "the reduction axes, the count N*H*W and the broadcasting of (C,) arrays are the student's"),
        returns=("dx", "dgamma", "dbeta"),
        compared=("dbeta", "dgamma", "dx"),
        reference=_reference,
        cases=(
            Case("N=2, C=3, H=4, W=5", _inputs((2, 3, 4, 5)), hint=_GRADCHECK),
            Case("eps=0.1, negative gamma", _inputs((4, 2, 3, 5), eps=0.1, scale=0.3,
                                                     negative_gamma=True), hint=_GRADCHECK),
            Case("random shape 8x6x5x7", _inputs((8, 6, 5, 7), loc=-1.0, scale=2.0), hidden=True,
                 hint=_GRADCHECK),
            Case("N=2, C=1, H=1, W=3", _inputs((2, 1, 1, 3)), hidden=True, hint=_GRADCHECK),
            Case("H=W=1", _inputs((9, 4, 1, 1)), hidden=True, hint=_GRADCHECK),
            Case("W = C = 3", _inputs((3, 3, 2, 3)), hidden=True,
                 hint="a (C,) array broadcast against an (N, C, H, W) one lines up with the last "
                      "axis, W, not with the channels; when W equals C nothing fails, the values "
                      "are simply mixed up"),
            Case("one constant channel of 4", _inputs((3, 4, 2, 2), constant_feature=True), hidden=True,
                 hint=_CONSTANT),
        ),
        mistakes=_SPATIAL_MISTAKES,
    ),
]
