"""Chapter 3: the backward pass, staged and compact, (N, D) and per-channel (N, C, H, W).

The staged part is graded on the gradients reaching the graph's inner nodes (x_hat, var, mu) as
well as on dx, dgamma and dbeta, so only a pass that walks the graph earns its points: the
compact formula has no dvar or dmu to return. The compact part is graded on (dx, dgamma, dbeta).

The exercise notebook imports the two forward functions below, so the student's backward gets
exactly the cache they make and the notebook documents. They are NumPy only: the grading
sandbox imports this module without torch.
"""
import numpy as np

from autograder.checks import Case, Check, Mistake


# ---- the provided forward pass (shared by the notebook, the cases and the book) -----------

# The cache's fields, in order: the nodes of the forward computational graph, then gamma, eps.
CACHE_FIELDS = ("x", "mu", "xc", "var", "std", "inv_std", "x_hat", "gamma", "eps")


def batchnorm_forward(x, gamma, beta, eps=1e-5):
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


def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
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
    from autograder import reference as R
    x, dout, gamma, eps = _unpack(inputs)
    return R.batchnorm_backward(dout, x, gamma, np.zeros_like(gamma), eps)


# The staged function returns (dx, dgamma, dbeta, dx_hat, dvar, dmu); they are compared in the
# order the backward pass computes them, so the first node that is wrong is the one reported.
STAGED_RETURNS = ("dx", "dgamma", "dbeta", "dx_hat", "dvar", "dmu")
STAGED_COMPARED = ("dbeta", "dgamma", "dx_hat", "dvar", "dmu", "dx")


def _staged_reference(inputs):
    from autograder import reference as R
    x, dout, gamma, eps = _unpack(inputs)
    dx, dg, db, dxh, dvar, dmu = R.batchnorm_backward_staged(dout, x, gamma, eps)
    return db, dg, dxh, dvar, dmu, dx


def _staged_variant(gamma_in_dxhat=True, ds_sign=-1.0, sqrt_chain="divide", second_branch=True,
                    mean_branch=True, divisor="N", param_reduce="sum"):
    """A wrong staged pass, node by node as the notebook writes it (values in STAGED_COMPARED order).

    ``ds_sign`` +1 drops the minus of d(1/s)/ds; ``sqrt_chain`` "multiply" uses ds * 2s for
    dvar; ``second_branch`` / ``mean_branch`` False forget the variance's or the mean's path
    back to x; ``divisor`` "N-1" spreads dvar with 2/(N-1).
    """
    def compute(inputs):
        import torch
        from autograder import reference as R
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
            dxc = dxc + 2 * xc * dvar / (n if divisor == "N" else n - 1)
        dmu = -dxc.sum(dim=0)
        dx = dxc + dmu / n if mean_branch else dxc
        return tuple(R.numpy(t) for t in (db, dg, dxh, dvar, dmu, dx))
    return compute


_STAGED_MISTAKES = (
    Mistake("mean term of dx missing",
            "x feeds the mean as well as xc: add the share that flows back through the mean (dmu, spread over the N rows)",
            _staged_variant(mean_branch=False)),
    Mistake("variance term of dx missing",
            "xc is read twice, by x_hat and by the variance: add its second contribution, "
            "dxc += 2 * xc * dvar / N, before computing dmu and dx",
            _staged_variant(second_branch=False)),
    Mistake("sign of ds flipped",
            "r = 1 / s, so dr/ds = -1 / s**2: ds = -dr / s**2",
            _staged_variant(ds_sign=1.0)),
    Mistake("square-root derivative inverted",
            "s = sqrt(var + eps), so ds/dvar = 1 / (2 s): dvar = ds / (2 * std), not ds * 2 * std",
            _staged_variant(sqrt_chain="multiply")),
    Mistake("unbiased variance",
            "the forward divides by N, so the variance node spreads dvar back as 2 * xc / N, "
            "not 2 * xc / (N - 1)",
            _staged_variant(divisor="N-1")),
    Mistake("gamma missing from dx_hat",
            "y = gamma * x_hat + beta: the gradient reaching x_hat is scaled by gamma before anything flows back to x",
            _staged_variant(gamma_in_dxhat=False)),
    Mistake("dgamma/dbeta averaged over the batch",
            "gamma and beta are shared by all N rows: their gradients are SUMS over the batch, "
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
             param_reduce="sum", dout_layout="transpose", dx_layout="transpose"):
    """A wrong backward: dx = g/s * (dy - mean_term*mean(dy) - x_hat*sum(dy*x_hat)/var_divisor).

    ``var_divisor`` "N" is right, "N-1" the unbiased slip, None drops the variance term.
    ``recompute_unbiased`` recomputes s and x_hat from x with the unbiased variance (with
    ``var_divisor="N-1"`` that is the exact gradient of an unbiased forward).
    ``param_reduce``: "sum" (right), "mean" or "axis1".
    ``dout_layout`` / ``dx_layout`` "reshape" model ``reshape(-1, C)`` without a transpose.
    """
    def compute(inputs):
        import torch
        from autograder import reference as R
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
        dxh = dy - mean_term * dy.mean(dim=0)
        if var_divisor is not None:
            dxh = dxh - x_hat * dot / (m if var_divisor == "N" else m - 1)
        dx = (g if gamma_in_dx else 1.0) / s * dxh
        if param_reduce == "sum":
            dg, db = dot, dy.sum(dim=0)
        elif param_reduce == "mean":
            dg, db = (dy * x_hat).mean(dim=0), dy.mean(dim=0)
        else:
            dg, db = (dy * x_hat).sum(dim=1), dy.sum(dim=1)
        if dx_layout == "reshape":
            dx_out = R.numpy(dx).reshape(shape)
        else:
            dx_out = _unflat(R.numpy(dx), shape)
        return dx_out, R.numpy(dg), R.numpy(db)
    return compute


_DX_MISTAKES = (
    Mistake("mean term of dx missing",
            "mu depends on every x_i: its path adds -sum(dout)*gamma/(N*std) to each row of dx",
            _variant(mean_term=0.0)),
    Mistake("variance term of dx missing",
            "var depends on every x_i too: dx needs the term -x_hat*sum(dout*x_hat)*gamma/(N*std)",
            _variant(var_divisor=None)),
    Mistake("unbiased variance",
            "the forward divides by N, so the backward of the variance node does too: "
            "dvar spreads back as 2*xc/N, not 2*xc/(N-1)",
            _variant(var_divisor="N-1")),
    Mistake("unbiased std recomputed",
            "use the cached std and x_hat (biased variance, divide by N); do not recompute "
            "them with ddof=1",
            _variant(recompute_unbiased=True)),
    Mistake("unbiased variance throughout",
            "that is the gradient of a forward pass that divides by N-1; this layer's forward "
            "divides by N: use the cached std and x_hat and 1/N",
            _variant(recompute_unbiased=True, var_divisor="N-1")),
    Mistake("gamma missing from dx",
            "y = gamma*x_hat + beta, so dx_hat = gamma*dout before anything flows back to x",
            _variant(gamma_in_dx=False)),
    Mistake("dgamma/dbeta averaged over the batch",
            "gamma and beta are shared by all N rows: their gradients are SUMS over the batch, "
            "not means",
            _variant(param_reduce="mean")),
)

_FC_MISTAKES = _DX_MISTAKES + (
    Mistake("dgamma/dbeta summed over the wrong axis",
            "gamma has one entry per feature: sum over the batch, axis=0, not axis=1",
            _variant(param_reduce="axis1")),
)

_SPATIAL_MISTAKES = _DX_MISTAKES + (
    Mistake("reshape without transpose",
            "dout.reshape(-1, C) mixes channels; match the cache's layout: "
            "dout.transpose(0, 2, 3, 1).reshape(-1, C), and undo it for dx",
            _variant(dout_layout="reshape", dx_layout="reshape")),
    Mistake("dout reshaped without transpose",
            "the cache rows are dout.transpose(0, 2, 3, 1).reshape(-1, C), not dout.reshape(-1, C)",
            _variant(dout_layout="reshape")),
    Mistake("dx reshaped without transpose",
            "dx comes back as (N*H*W, C) rows in (n, h, w) order: reshape to (N, H, W, C), "
            "then transpose(0, 3, 1, 2)",
            _variant(dx_layout="reshape")),
)

_GRADCHECK = "compare each of dx, dgamma, dbeta with a centered-difference numerical gradient"
# A feature with zero variance has std = sqrt(eps): a 1e-5 mistake is magnified ~300 times.
_CONSTANT = ("a constant feature has var = 0 and x_hat = 0 but std = sqrt(eps): use the cached "
             "std (which includes eps), never sqrt(var)")


def _fc_cases():
    # N == D first: a sum over the wrong axis then has the right shape and can be named.
    return (
        Case("N=6, D=6", _inputs((6, 6)), hint=_GRADCHECK),
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
        compared=("dx", "dgamma", "dbeta"),
        reference=_reference,
        cases=_fc_cases(),
        mistakes=_FC_MISTAKES,
    ),
    Check(
        function="spatial_batchnorm_backward",
        returns=("dx", "dgamma", "dbeta"),
        compared=("dx", "dgamma", "dbeta"),
        reference=_reference,
        cases=(
            Case("N=2, C=3, H=4, W=5", _inputs((2, 3, 4, 5)), hint=_GRADCHECK),
            Case("eps=0.1, negative gamma", _inputs((4, 2, 3, 3), eps=0.1, scale=0.3,
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
