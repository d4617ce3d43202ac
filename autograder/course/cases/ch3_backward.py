"""Chapter 3: the backward pass, staged and compact, (N, D) and per-channel (N, C, H, W).

The staged part is graded on the gradients reaching the graph's inner nodes (x_hat, var, mu) as
well as on dx, dgamma and dbeta, so only a pass that walks the graph earns its points: the
compact formula has no dvar or dmu to return. The chapter works two of the graph's nodes; the
student derives the local derivatives of the others. The compact part is graded on (dbeta,
dgamma, dx); the per-channel part is the transfer the chapter does not solve (which sums, which
count M = N*H*W, which layout).

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
    """Per-channel batch normalization of x (N, C, H, W).

    The channel axis is moved last and the array flattened to (N*H*W, C) before calling
    :func:`batchnorm_forward`, so the cache is that 2-D cache: its (N, D) arrays have shape
    (N*H*W, C), row ``(n*H + h)*W + w`` holding position (n, :, h, w).
    """
    n, c, h, w = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, c), gamma, beta, eps)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), cache


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
    """(x, dout, gamma, eps) in the layout the student saw: x rebuilt as (N, C, H, W) if 4-D."""
    dout = inputs["dout"]
    x, gamma, eps = inputs["cache"][0], inputs["cache"][7], inputs["cache"][8]
    if dout.ndim == 4:
        n, c, h, w = dout.shape
        x = x.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return x, dout, gamma, eps


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
            _staged_variant(mean_branch=False)),
    Mistake("variance term of dx missing",
            "xc is read twice, by x_hat and by the variance: its gradient has lost the "
            "contribution that comes back through the variance node (add it before the centring "
            "node passes dxc on)",
            _staged_variant(second_branch=False)),
    Mistake("sign of ds flipped",
            "the reciprocal node, one over s, decreases as s grows: its local derivative is negative",
            _staged_variant(ds_sign=1.0)),
    Mistake("square-root derivative inverted",
            "the square-root node's local derivative is one over twice its output, not twice its "
            "output",
            _staged_variant(sqrt_chain="multiply")),
    Mistake("unbiased variance",
            "the forward's variance is a mean over the N rows, so its local derivative carries "
            "1/N, not 1/(N-1)",
            _staged_variant(divisor="N-1")),
    Mistake("1/N of the variance node missing",
            "the variance is a MEAN of squares: each squared entry receives only a 1/N share of "
            "the gradient reaching the variance",
            _staged_variant(divisor="1")),
    Mistake("factor 2 of the square missing",
            "the variance averages squares of xc: the local derivative of a square is twice its "
            "input",
            _staged_variant(square_factor=1.0)),
    Mistake("sign of dmu flipped",
            "the centring node subtracts mu, so the gradient it sends to mu is minus the sum of "
            "what reaches xc",
            _staged_variant(dmu_sign=1.0)),
    Mistake("dmu not spread over the N rows",
            "mu is a mean of the N rows of x: each row receives a 1/N share of the gradient "
            "reaching mu, not all of it",
            _staged_variant(spread="1")),
    Mistake("gamma missing from dx_hat",
            "the output node multiplies x_hat by gamma, so the gradient reaching x_hat is scaled "
            "by gamma before anything flows back to x",
            _staged_variant(gamma_in_dxhat=False)),
    Mistake("dgamma/dbeta averaged over the batch",
            "gamma and beta are shared by all N rows: their gradients are sums over the batch, "
            "not means",
            _staged_variant(param_reduce="mean")),
)


# ---- known mistakes, written once for (M, C) arrays with statistics over axis 0 ------------

def _flat(a):
    """(N, C, H, W) -> (N*H*W, C), the layout of the spatial cache; (N, D) unchanged."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1]) if a.ndim == 4 else a


def _unflat(a, shape):
    if len(shape) == 2:
        return a
    n, c, h, w = shape
    return a.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _variant(mean_term=1.0, var_divisor="N", gamma_in_dx=True, recompute_unbiased=False,
             param_reduce="sum", dout_layout="transpose", dx_layout="transpose", count="M",
             reuse_params=False):
    """A wrong backward: dx = g/s * (dy - mean_term*mean(dy) - x_hat*sum(dy*x_hat)/var_divisor).

    ``var_divisor`` "N" is right, "N-1" the unbiased slip, None drops the variance term.
    ``recompute_unbiased`` recomputes s and x_hat from x with the unbiased variance (with
    ``var_divisor="N-1"`` that is the exact gradient of an unbiased forward).
    ``param_reduce``: "sum" (right), "mean", "axis1" or "axis0 only" (4-D: a sum over the
    batch axis alone, one value per channel and position).
    ``reuse_params``: dx is built from the (wrong) dbeta and dgamma, divided by the count.
    ``count`` "N" divides by the 4-D batch's N instead of the M = N*H*W values of a channel.
    ``dout_layout`` / ``dx_layout`` "reshape" model ``reshape(-1, C)`` without a transpose.
    Returns (dbeta, dgamma, dx), the order they are compared in.
    """
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        x4, dout4, gamma, eps = _unpack(inputs)
        shape = dout4.shape
        x = R.tensor(_flat(x4))
        dy = R.tensor(dout4.reshape(-1, shape[1]) if dout_layout == "reshape" else _flat(dout4))
        g = R.tensor(gamma)
        m = x.shape[0]
        var = x.var(dim=0, unbiased=recompute_unbiased)
        s = torch.sqrt(var + eps)
        x_hat = (x - x.mean(dim=0)) / s
        dot = (dy * x_hat).sum(dim=0)
        n = m if count == "M" else shape[0]
        dxh = dy - mean_term * dy.sum(dim=0) / n
        if var_divisor is not None:
            dxh = dxh - x_hat * dot / (n if var_divisor == "N" else n - 1)
        if param_reduce == "sum":
            dg, db = dot, dy.sum(dim=0)
        elif param_reduce == "mean":
            dg, db = (dy * x_hat).mean(dim=0), dy.mean(dim=0)
        elif param_reduce == "axis1":
            dg, db = (dy * x_hat).sum(dim=1), dy.sum(dim=1)
        else:
            dy4, xh4 = R.tensor(dout4), R.tensor(_unflat(R.numpy(x_hat), shape))
            dg, db = (dy4 * xh4).sum(dim=0), dy4.sum(dim=0)
        if reuse_params:
            dxh = dy - db / n - x_hat * dg / n
        dx = (g if gamma_in_dx else 1.0) / s * dxh
        if dx_layout == "reshape":
            dx_out = R.numpy(dx).reshape(shape)
        else:
            dx_out = _unflat(R.numpy(dx), shape)
        return R.numpy(db), R.numpy(dg), dx_out
    return compute


_AVERAGED = ("gamma and beta are shared by every value they scale and shift: their gradients are "
             "sums over the batch, not means (and dx built from them inherits the slip)")

_DX_MISTAKES = (
    Mistake("mean term of dx missing",
            "mu depends on every row of x: dx has lost the term that comes back through the mean",
            _variant(mean_term=0.0)),
    Mistake("variance term of dx missing",
            "the variance depends on every row of x too: dx has lost the term that comes back "
            "through the variance, the one along x_hat",
            _variant(var_divisor=None)),
    Mistake("unbiased variance",
            "the forward's variance divides by the count of values, so its backward does too, "
            "never by one less",
            _variant(var_divisor="N-1")),
    Mistake("unbiased std recomputed",
            "the cache already holds std and x_hat of the biased variance: recomputing them with "
            "the unbiased variance normalizes differently from the forward pass",
            _variant(recompute_unbiased=True)),
    Mistake("unbiased variance throughout",
            "that is the gradient of a forward pass that divides by N-1; this layer's forward "
            "divides by N, and its cache holds the matching std and x_hat",
            _variant(recompute_unbiased=True, var_divisor="N-1")),
    Mistake("gamma missing from dx",
            "the output is gamma times x_hat plus beta: the gradient reaching x_hat, and so dx, "
            "is scaled by gamma",
            _variant(gamma_in_dx=False)),
    Mistake("dgamma/dbeta averaged over the batch", _AVERAGED, _variant(param_reduce="mean")),
    Mistake("dgamma/dbeta averaged over the batch", _AVERAGED,
            _variant(param_reduce="mean", reuse_params=True)),
)

_FC_MISTAKES = _DX_MISTAKES + (
    Mistake("dgamma/dbeta summed over the wrong axis",
            "gamma has one entry per feature, shared by the N rows: its gradient sums over the "
            "batch axis, not over the features",
            _variant(param_reduce="axis1")),
)

_SPATIAL_MISTAKES = _DX_MISTAKES + (
    Mistake("reshape without transpose",
            "a plain reshape of dout to (N*H*W, C) mixes channels: the cache's rows are the "
            "positions (n, h, w) with the channel axis moved last first; dx must be brought back "
            "the same way",
            _variant(dout_layout="reshape", dx_layout="reshape")),
    Mistake("dout reshaped without transpose",
            "dout is flattened in a different order from the cache's rows: move the channel axis "
            "last before flattening, as the forward pass did",
            _variant(dout_layout="reshape")),
    Mistake("dx reshaped without transpose",
            "dx comes back as (N*H*W, C) rows in (n, h, w) order: bring the channel axis back to "
            "position 1 when restoring (N, C, H, W)",
            _variant(dx_layout="reshape")),
    Mistake("count N instead of N*H*W",
            "a channel's mean and variance average all N*H*W values of the channel, so the means "
            "in dx divide by that count, not by the batch size N",
            _variant(count="N")),
    Mistake("dgamma/dbeta not summed over H and W",
            "gamma_c is shared by every position of channel c in every sample: its gradient sums "
            "over the batch and both spatial axes, shape (C,)",
            _variant(param_reduce="axis0 only")),
)

_GRADCHECK = "compare each of dx, dgamma, dbeta with a centered-difference numerical gradient"
# A feature with zero variance has std = sqrt(eps): a 1e-5 mistake is magnified ~300 times.
_CONSTANT = ("a constant feature has zero variance and x_hat 0, but its std is sqrt(eps), not 0: "
             "the cached std includes eps; a std recomputed without it divides by zero")


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
        function="batchnorm_backward_alt",
        returns=("dx", "dgamma", "dbeta"),
        compared=("dbeta", "dgamma", "dx"),
        reference=_reference,
        cases=_fc_cases(),
        mistakes=_FC_MISTAKES,
    ),
    Check(
        function="spatial_batchnorm_backward",
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
            Case("one constant channel of 4", _inputs((3, 4, 2, 2), constant_feature=True), hidden=True,
                 hint=_CONSTANT),
        ),
        mistakes=_SPATIAL_MISTAKES,
    ),
]
