"""Chapter 5: normalizations that do not use the batch axis, Batch Renormalization, and their
backward passes.

Forward passes, CS231n-style, graded on ``out`` (and r, d) only:

* ``layernorm_forward(x, gamma, beta, eps)`` -> ``(out, cache)``, x of shape (N, D);
* ``groupnorm_forward(x, gamma, beta, G, eps)`` -> ``(out, cache)``, x of shape (N, C, H, W);
* ``batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps)``
  -> ``(out, r, d, cache)``, x of shape (N, D); the running statistics are read, not updated.

Backward passes ``dx, dgamma, dbeta = <op>_backward(dout, cache)``, graded against autograd,
``dbeta`` and ``dgamma`` compared before ``dx`` (the root cause first). The
cache each receives is fixed by the course: the forward's inputs, as a tuple in signature order
(``(x, gamma, beta, eps)``, ``(x, gamma, beta, G, eps)``, ``(x, gamma, beta, running_mean,
running_var, r_max, d_max, eps)``), so a backward is graded on its own, whatever the student's
forward does; it recomputes the statistics it needs.
"""
import numpy as np

from autograder.course.checks import Case, Check, Mistake

_ONE_PASS = ("with mean 1e6 and std 1e-3, the one-pass variance E[x^2] - E[x]^2 cancels "
             "catastrophically: subtract the mean first, then average the squares")
_EPS_OUTSIDE = "eps is added to the variance inside the square root, not to the standard deviation"


def _torch():
    import torch

    from autograder.course import reference as R
    return torch, R


def _normalize(t, dims, eps, unbiased=False, eps_where="inside"):
    """(t - mean) / std over ``dims`` of a torch tensor, right or wrong in the ways students are."""
    torch, _ = _torch()
    mu = t.mean(dim=dims, keepdim=True)
    var = t.var(dim=dims, keepdim=True, unbiased=unbiased)
    if eps_where == "outside":
        return (t - mu) / (torch.sqrt(var) + eps)
    return (t - mu) / torch.sqrt(var + eps)


# ---- layer norm, (N, D) ------------------------------------------------------------------

def _ln_inputs(shape, eps=1e-5, loc=0.0, scale=1.0, row_scales=False, constant_row=False):
    def make(rng):
        x = loc + scale * rng.standard_normal(shape)
        if row_scales:      # rows on very different scales: only per-row statistics undo that
            x *= 10.0 ** np.linspace(-2, 2, shape[0])[:, None]
        if constant_row:
            x[0] = 2.5
        d = shape[1]
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, d), "beta": rng.uniform(-1, 1, d), "eps": eps}
    return make


def _ln_reference(inputs):
    from autograder.course import reference as R
    return (R.layernorm_forward(**inputs),)


def _ln_variant(dims, **kw):
    def compute(inputs):
        torch, R = _torch()
        x = R.tensor(inputs["x"])
        xh = _normalize(x, dims, inputs["eps"], **kw)
        return (R.numpy(xh * R.tensor(inputs["gamma"]) + R.tensor(inputs["beta"])),)
    return compute


_LN_MISTAKES = (
    Mistake("normalized over the batch axis",
            "layer norm takes each sample's mean and variance over its own D features, along a "
            "row; statistics down a column mix the samples of the batch, which is batch norm",
            _ln_variant([0])),
    Mistake("statistics over the whole array",
            "each row, one sample, gets its own mean and variance, not one pair for every "
            "element of the array",
            _ln_variant([0, 1])),
    Mistake("unbiased variance",
            "the variance divides by the number of values it averages, D, not one less",
            _ln_variant([1], unbiased=True)),
    Mistake("eps outside the square root", _EPS_OUTSIDE, _ln_variant([1], eps_where="outside")),
)


# ---- group norm, (N, C, H, W) -------------------------------------------------------------

def _gn_inputs(shape, G, eps=1e-5, loc=0.0, scale=1.0, channel_offsets=True, constant_group=False):
    def make(rng):
        n, c = shape[:2]
        x = loc + scale * rng.standard_normal(shape)
        if channel_offsets:  # channels differ in mean and scale, so a wrong grouping shows
            x = x * rng.uniform(0.5, 3.0, (1, c, 1, 1)) + scale * rng.uniform(-2, 2, (1, c, 1, 1))
        if constant_group:
            x[:, : c // G] = -1.5
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, c), "beta": rng.uniform(-1, 1, c),
                "G": int(G), "eps": eps}
    return make


def _gn_reference(inputs):
    """Group norm by torch; its two extremes are checked against layer norm and instance norm."""
    from autograder.course import reference as R
    x, gamma, beta, G, eps = (inputs[k] for k in ("x", "gamma", "beta", "G", "eps"))
    n, c, h, w = np.shape(x)
    if G == c:
        return (R.instancenorm_forward(x, gamma, beta, eps=eps),)
    if G == 1:
        # torch's layer_norm has one gamma per element of (C, H, W); GN shares it across H, W.
        per_element = lambda v: np.broadcast_to(np.asarray(v)[:, None, None], (c, h, w)).copy()
        return (R.layernorm_forward(x, per_element(gamma), per_element(beta), eps=eps),)
    return (R.groupnorm_forward(x, gamma, beta, G, eps=eps),)


def _gn_variant(grouping="contiguous", batch_too=False, **kw):
    """Group norm with the channels of a group chosen by ``grouping``."""
    def compute(inputs):
        torch, R = _torch()
        x, G = R.tensor(inputs["x"]), inputs["G"]
        n, c, h, w = x.shape
        if grouping == "contiguous":     # right: group g = channels g*C/G ... (g+1)*C/G - 1
            xg, dims = x.reshape(n, G, c // G, h, w), [2, 3, 4]
        elif grouping == "interleaved":  # group of channel k is k % G
            xg, dims = x.reshape(n, c // G, G, h, w), [1, 3, 4]
        elif grouping == "size G":       # C // G groups of G channels
            xg, dims = x.reshape(n, c // G, G, h, w), [2, 3, 4]
        else:                            # one channel per group: instance norm
            xg, dims = x, [2, 3]
        if batch_too:
            dims = [0] + dims
        xh = _normalize(xg, dims, inputs["eps"], **kw).reshape(n, c, h, w)
        g = R.tensor(inputs["gamma"]).reshape(1, c, 1, 1)
        b = R.tensor(inputs["beta"]).reshape(1, c, 1, 1)
        return (R.numpy(xh * g + b),)
    return compute


_GN_MISTAKES = (
    Mistake("interleaved channel groups",
            "group g holds CONTIGUOUS channels, the g-th block of C/G neighbours; grouping channel "
            "c with the channels c + G, c + 2G, ... interleaves the groups (a view that puts the "
            "group size before the group count does exactly that)",
            _gn_variant("interleaved")),
    Mistake("G read as the group size",
            "G is the number of groups, each of C/G channels, not the number of channels in a "
            "group",
            _gn_variant("size G")),
    Mistake("statistics shared across the batch",
            "group norm gives every sample its own statistics: nothing is averaged across the "
            "batch",
            _gn_variant(batch_too=True)),
    Mistake("one group per channel",
            "a group holds C/G channels together with all their H x W positions, not one channel",
            _gn_variant("per channel")),
    Mistake("unbiased variance",
            "the variance divides by the number of values in a group, (C/G)*H*W, not one less",
            _gn_variant(unbiased=True)),
    Mistake("eps outside the square root", _EPS_OUTSIDE, _gn_variant(eps_where="outside")),
)


# ---- batch renormalization, (N, D) --------------------------------------------------------

def _renorm_inputs(shape, r_max, d_max, eps=1e-5, ratios=None, shifts=None,
                   ratio_range=(0.25, 4.0), shift_range=(-3.0, 3.0), constant_feature=False):
    """Running statistics placed so that r = sigma_B / sigma and d = (mu_B - mu) / sigma take
    chosen values (``ratios``, ``shifts``) or random ones, inside and outside the clip ranges."""
    def make(rng):
        n, dim = shape
        x = rng.uniform(-2, 2, dim) + rng.uniform(0.5, 2.0, dim) * rng.standard_normal(shape)
        if constant_feature:
            x[:, 0] = 0.7
        sigma_b = np.sqrt(x.var(axis=0) + eps)
        lo, hi = np.log(ratio_range[0]), np.log(ratio_range[1])
        r_true = np.asarray(ratios, float) if ratios is not None else np.exp(rng.uniform(lo, hi, dim))
        d_true = np.asarray(shifts, float) if shifts is not None else rng.uniform(*shift_range, dim)
        sigma = sigma_b / r_true
        running_var = np.maximum(sigma ** 2 - eps, 1e-3)
        running_mean = x.mean(axis=0) - d_true * np.sqrt(running_var + eps)
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, dim), "beta": rng.uniform(-1, 1, dim),
                "running_mean": running_mean, "running_var": running_var,
                "r_max": float(r_max), "d_max": float(d_max), "eps": eps}
    return make


def _renorm_reference(inputs):
    from autograder.course import reference as R
    return R.batch_renorm_forward(**inputs)


def _renorm_variant(clip_r="both", clip_d=True, invert_r=False, flip_d=False, apply_rd=True,
                    sigma_eps=True, unbiased=False):
    def compute(inputs):
        torch, R = _torch()
        x = R.tensor(inputs["x"])
        r_max, d_max, eps = inputs["r_max"], inputs["d_max"], inputs["eps"]
        mu = x.mean(dim=0)
        sigma_b = torch.sqrt(x.var(dim=0, unbiased=unbiased) + eps)
        rv = R.tensor(inputs["running_var"])
        sigma = torch.sqrt(rv + eps) if sigma_eps else torch.sqrt(rv)
        r = sigma / sigma_b if invert_r else sigma_b / sigma
        if clip_r == "both":
            r = torch.clamp(r, 1.0 / r_max, r_max)
        elif clip_r == "above":
            r = torch.clamp(r, max=r_max)
        d = (mu - R.tensor(inputs["running_mean"])) / sigma
        if flip_d:
            d = -d
        if clip_d:
            d = torch.clamp(d, -d_max, d_max)
        x_hat = (x - mu) / sigma_b
        if apply_rd:
            x_hat = x_hat * r + d
        out = R.tensor(inputs["gamma"]) * x_hat + R.tensor(inputs["beta"])
        return R.numpy(out), R.numpy(r), R.numpy(d)
    return compute


_RENORM_MISTAKES = (
    Mistake("r and d not clipped",
            "r is clipped to [1/r_max, r_max] and d to [-d_max, d_max] before either is used",
            _renorm_variant(clip_r="none", clip_d=False)),
    Mistake("r not clipped", "clip r to [1/r_max, r_max] before using it",
            _renorm_variant(clip_r="none")),
    Mistake("d not clipped", "clip d to [-d_max, d_max] before using it",
            _renorm_variant(clip_d=False)),
    Mistake("r clipped from above only",
            "r's range is [1/r_max, r_max]: it has a lower bound as well as an upper one",
            _renorm_variant(clip_r="above")),
    Mistake("r inverted",
            "r is the batch standard deviation divided by the running one, not the other way round",
            _renorm_variant(invert_r=True)),
    Mistake("d with the wrong sign",
            "d measures how far the batch mean lies above the running mean, in running standard "
            "deviations: its sign is reversed",
            _renorm_variant(flip_d=True)),
    Mistake("r and d not applied",
            "the batch-normalized value is then multiplied by r and shifted by d; without them "
            "the layer is plain batch norm",
            _renorm_variant(apply_rd=False)),
    Mistake("eps missing from the running sigma",
            "the running standard deviation includes eps too, the same eps as the batch's",
            _renorm_variant(sigma_eps=False)),
    Mistake("unbiased variance",
            "sigma_B uses the biased batch variance, which divides by N, not N-1",
            _renorm_variant(unbiased=True)),
)


# ---- backward passes -----------------------------------------------------------------------

def _with_dout(make_forward_inputs, order, dout_scale=1.0):
    """A backward case: ``dout`` and the cache (the forward's inputs, in ``order``)."""
    def make(rng):
        inputs = make_forward_inputs(rng)
        dout = dout_scale * rng.standard_normal(np.shape(inputs["x"]))
        return {"dout": dout, "cache": tuple(inputs[k] for k in order)}
    return make


_LN_ORDER = ("x", "gamma", "beta", "eps")
_GN_ORDER = ("x", "gamma", "beta", "G", "eps")
_RENORM_ORDER = ("x", "gamma", "beta", "running_mean", "running_var", "r_max", "d_max", "eps")


def _cache(inputs, order):
    return dict(zip(order, inputs["cache"]))


def _params_first(compute):
    """(dx, dgamma, dbeta) -> (dbeta, dgamma, dx), the order the backward checks compare in."""
    def reordered(inputs):
        dx, dgamma, dbeta = compute(inputs)
        return dbeta, dgamma, dx
    return reordered


@_params_first
def _ln_backward_reference(inputs):
    from autograder.course import reference as R
    c = _cache(inputs, _LN_ORDER)
    return R.layernorm_backward(inputs["dout"], c["x"], c["gamma"], c["beta"], c["eps"])


@_params_first
def _gn_backward_reference(inputs):
    from autograder.course import reference as R
    c = _cache(inputs, _GN_ORDER)
    return R.groupnorm_backward(inputs["dout"], c["x"], c["gamma"], c["beta"], c["G"], c["eps"])


@_params_first
def _renorm_backward_reference(inputs):
    from autograder.course import reference as R
    return R.batch_renorm_backward(inputs["dout"], *inputs["cache"])


def _norm_backward(x, dy, gamma, dims, eps, mean_term=True, var_term=True, gamma_in_dx=True,
                   gamma_outside=False):
    """dx of (x - mean) / sqrt(var + eps) * gamma over ``dims`` (torch), with terms left out.

    ``gamma_outside`` takes gamma out of the means, as batch norm may (one gamma per set) and
    layer and group norm may not (gamma varies inside a set).
    """
    import torch
    mu = x.mean(dim=dims, keepdim=True)
    s = torch.sqrt(x.var(dim=dims, keepdim=True, unbiased=False) + eps)
    x_hat = (x - mu) / s
    dxh = dy * gamma if gamma_in_dx and not gamma_outside else dy
    dx = dxh
    if mean_term:
        dx = dx - dxh.mean(dim=dims, keepdim=True)
    if var_term:
        dx = dx - x_hat * (dxh * x_hat).mean(dim=dims, keepdim=True)
    if gamma_outside:
        dx = dx * gamma
    return dx / s, x_hat


def _ln_backward_variant(dims=(1,), param_reduce="sum", **kw):
    @_params_first
    def compute(inputs):
        torch, R = _torch()
        c = _cache(inputs, _LN_ORDER)
        x, dy, g = R.tensor(c["x"]), R.tensor(inputs["dout"]), R.tensor(c["gamma"])
        dx, x_hat = _norm_backward(x, dy, g, list(dims), c["eps"], **kw)
        axis = 0 if param_reduce != "axis1" else 1
        dg, db = (dy * x_hat).sum(dim=axis), dy.sum(dim=axis)
        if param_reduce == "mean":
            dg, db = dg / x.shape[0], db / x.shape[0]
        return R.numpy(dx), R.numpy(dg), R.numpy(db)
    return compute


_LN_BACKWARD_MISTAKES = (
    Mistake("normalized over the batch axis",
            "layer norm's sets are rows: the mean and variance terms of dx average over the row "
            "each value's statistics came from, not down the batch",
            _ln_backward_variant(dims=(0,))),
    Mistake("mean term of dx missing",
            "every value of a row feeds that row's mean: dx has lost the term that comes back "
            "through it",
            _ln_backward_variant(mean_term=False)),
    Mistake("variance term of dx missing",
            "every value of a row feeds that row's variance: dx has lost the term that comes back "
            "through it, the one along x_hat",
            _ln_backward_variant(var_term=False)),
    Mistake("gamma missing from dx",
            "the output is gamma times x_hat plus beta: the gradient reaching x_hat is scaled by "
            "gamma",
            _ln_backward_variant(gamma_in_dx=False)),
    Mistake("gamma taken out of the row means",
            "in layer norm gamma varies along the row, inside the set the means run over: it "
            "cannot be taken out of them as in batch norm; the means are of the gradient that "
            "reaches x_hat, gamma included",
            _ln_backward_variant(gamma_outside=True)),
    Mistake("dgamma/dbeta summed over the wrong axis",
            "gamma has one entry per feature, shared by the N rows: its gradient sums down the "
            "batch, not along a row",
            _ln_backward_variant(param_reduce="axis1")),
    Mistake("dgamma/dbeta averaged over the batch",
            "gamma and beta are shared by all N rows: their gradients are sums, not means",
            _ln_backward_variant(param_reduce="mean")),
)


def _gn_backward_variant(grouping="contiguous", param_reduce="sum", gamma_outside=False, **kw):
    @_params_first
    def compute(inputs):
        torch, R = _torch()
        c = _cache(inputs, _GN_ORDER)
        x, dy, G = R.tensor(c["x"]), R.tensor(inputs["dout"]), c["G"]
        n, ch, h, w = x.shape
        g = R.tensor(c["gamma"]).reshape(1, ch, 1, 1)
        if grouping == "contiguous":
            shape, dims = (n, G, ch // G, h, w), [2, 3, 4]
        elif grouping == "interleaved":
            shape, dims = (n, ch // G, G, h, w), [1, 3, 4]
        else:  # one channel per group: instance norm
            shape, dims = (n, ch, h, w), [2, 3]
        if gamma_outside:
            dx, x_hat = _norm_backward(x.reshape(shape), dy.reshape(shape), 1.0, dims, c["eps"], **kw)
            dx = dx * g.reshape(1, ch, 1, 1).expand(n, ch, h, w).reshape(shape)
        else:
            dxh = (dy * g).reshape(shape)
            dx, x_hat = _norm_backward(x.reshape(shape), dxh, 1.0, dims, c["eps"], **kw)
        x_hat = x_hat.reshape(n, ch, h, w)
        if param_reduce == "sum":
            dg, db = (dy * x_hat).sum(dim=(0, 2, 3)), dy.sum(dim=(0, 2, 3))
        else:  # over the batch only: one value per channel and position
            dg, db = (dy * x_hat).sum(dim=0), dy.sum(dim=0)
        return R.numpy(dx.reshape(n, ch, h, w)), R.numpy(dg), R.numpy(db)
    return compute


_GN_BACKWARD_MISTAKES = (
    Mistake("interleaved channel groups",
            "group g holds contiguous channels, the g-th block of C/G neighbours: the means in dx "
            "run over exactly the channels and positions of the value's own group",
            _gn_backward_variant("interleaved")),
    Mistake("one group per channel",
            "the statistics, and so the mean and variance terms of dx, cover a whole group of "
            "C // G channels with all their positions, not one channel",
            _gn_backward_variant("per channel")),
    Mistake("mean term of dx missing",
            "every value of a group feeds the group's mean: dx has lost the term that comes back "
            "through it",
            _gn_backward_variant(mean_term=False)),
    Mistake("variance term of dx missing",
            "every value of a group feeds the group's variance: dx has lost the term that comes "
            "back through it, the one along x_hat",
            _gn_backward_variant(var_term=False)),
    Mistake("gamma taken out of the group means",
            "a group holds several channels, each with its own gamma_c: gamma varies inside the "
            "set the means run over, so the means are of the gradient reaching x_hat, gamma "
            "included",
            _gn_backward_variant(gamma_outside=True)),
    Mistake("dgamma/dbeta not summed over H and W",
            "gamma_c is shared by every position of channel c in every sample: its gradient sums "
            "over the batch and both spatial axes, shape (C,)",
            _gn_backward_variant(param_reduce="batch only")),
)


def _renorm_backward_variant(through_rd=False, r_in_dx=True, rd_in_dgamma=True, clip=True,
                             stats_constant=False):
    @_params_first
    def compute(inputs):
        torch, R = _torch()
        c = _cache(inputs, _RENORM_ORDER)
        if through_rd:
            return R.batch_renorm_backward(inputs["dout"], *inputs["cache"], through_rd=True)
        x, dy, g = R.tensor(c["x"]), R.tensor(inputs["dout"]), R.tensor(c["gamma"])
        eps, r_max, d_max = c["eps"], c["r_max"], c["d_max"]
        mu = x.mean(dim=0)
        sigma_b = torch.sqrt(x.var(dim=0, unbiased=False) + eps)
        sigma = torch.sqrt(R.tensor(c["running_var"]) + eps)
        r, d = sigma_b / sigma, (mu - R.tensor(c["running_mean"])) / sigma
        if clip:
            r, d = torch.clamp(r, 1.0 / r_max, r_max), torch.clamp(d, -d_max, d_max)
        x_b = (x - mu) / sigma_b
        scale = g * (r if r_in_dx else 1.0)
        if stats_constant:
            dx = scale * dy / sigma_b
        else:
            dx, _ = _norm_backward(x, dy, scale, [0], eps)
        dg = (dy * (x_b * r + d if rd_in_dgamma else x_b)).sum(dim=0)
        return R.numpy(dx), R.numpy(dg), R.numpy(dy.sum(dim=0))
    return compute


_RENORM_BACKWARD_MISTAKES = (
    Mistake("gradient through r and d",
            "r and d are constants in backpropagation (a stop-gradient), as the paper prescribes: "
            "that is the point of batch renorm; a gradient through them as well is the "
            "inference-mode gradient, in which the batch statistics drop out",
            _renorm_backward_variant(through_rd=True)),
    Mistake("r missing from dx",
            "r is a constant factor between the batch-normalized value and the output: the "
            "gradient reaching the batch-normalized value is scaled by r as well as by gamma",
            _renorm_backward_variant(r_in_dx=False)),
    Mistake("dgamma without r and d",
            "gamma multiplies the renormalized value, r times the batch-normalized one plus d: "
            "its gradient pairs dout with that value",
            _renorm_backward_variant(rd_in_dgamma=False)),
    Mistake("r and d not clipped",
            "the backward pass needs r and d exactly as the forward pass used them, clipped to "
            "[1/r_max, r_max] and [-d_max, d_max]",
            _renorm_backward_variant(clip=False)),
    Mistake("batch statistics treated as constants",
            "only r and d are constants; mu_B and sigma_B depend on every x, so dx keeps the terms "
            "that come back through the batch mean and variance",
            _renorm_backward_variant(stats_constant=True)),
)

_GRADCHECK = "compare each of dx, dgamma, dbeta with a centered-difference numerical gradient"


CHECKS = [
    Check(
        function="layernorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_ln_reference,
        cases=(
            Case("N=4, D=6", _ln_inputs((4, 6))),
            Case("a batch of one (N=1)", _ln_inputs((1, 5))),
            Case("eps=0.1", _ln_inputs((5, 3), eps=0.1, scale=0.3)),
            Case("random shape 32x50", _ln_inputs((32, 50), loc=1.0, scale=3.0), hidden=True),
            Case("rows on scales 1e-2 ... 1e2", _ln_inputs((7, 9), row_scales=True), hidden=True),
            Case("D=2", _ln_inputs((6, 2)), hidden=True),
            Case("a constant row", _ln_inputs((5, 8), constant_row=True), hidden=True),
            Case("mean 1e6, std 1e-3", _ln_inputs((6, 40), loc=1e6, scale=1e-3), hidden=True,
                 rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_LN_MISTAKES,
    ),
    Check(
        function="layernorm_backward",
        returns=("dx", "dgamma", "dbeta"),
        compared=("dbeta", "dgamma", "dx"),
        reference=_ln_backward_reference,
        cases=(
            Case("N=4, D=6", _with_dout(_ln_inputs((4, 6)), _LN_ORDER), hint=_GRADCHECK),
            Case("a batch of one (N=1)", _with_dout(_ln_inputs((1, 5)), _LN_ORDER), hint=_GRADCHECK),
            Case("eps=0.1", _with_dout(_ln_inputs((5, 3), eps=0.1, scale=0.3), _LN_ORDER),
                 hint=_GRADCHECK),
            Case("random shape 32x50", _with_dout(_ln_inputs((32, 50), loc=1.0, scale=3.0), _LN_ORDER),
                 hidden=True, hint=_GRADCHECK),
            Case("N=2, rows on scales 1e-2 ... 1e2", _with_dout(_ln_inputs((2, 9), row_scales=True),
                                                               _LN_ORDER), hidden=True, hint=_GRADCHECK),
            Case("D=2, large dout", _with_dout(_ln_inputs((6, 2)), _LN_ORDER, dout_scale=1e3),
                 hidden=True, hint=_GRADCHECK),
            Case("a constant row", _with_dout(_ln_inputs((5, 8), constant_row=True), _LN_ORDER),
                 hidden=True, hint="a constant row has zero variance: its x_hat is 0 and its "
                                   "standard deviation sqrt(eps), so dx there is large but finite, "
                                   "never NaN"),
            Case("mean 1e6, std 1e-3", _with_dout(_ln_inputs((6, 40), loc=1e6, scale=1e-3), _LN_ORDER),
                 hidden=True, rtol=1e-5, atol=1e-4, hint=_ONE_PASS),
        ),
        mistakes=_LN_BACKWARD_MISTAKES,
    ),
    Check(
        function="groupnorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_gn_reference,
        cases=(
            Case("N=4, C=6, H=5, W=7, G=3", _gn_inputs((4, 6, 5, 7), G=3)),
            Case("G=C is instance norm", _gn_inputs((2, 4, 3, 5), G=4)),
            Case("G=1 is layer norm", _gn_inputs((3, 4, 2, 5), G=1)),
            Case("random shape 4x8x5x5, G=4", _gn_inputs((4, 8, 5, 5), G=4), hidden=True),
            Case("C=8, G=2", _gn_inputs((3, 8, 4, 3), G=2, eps=0.1), hidden=True),
            Case("a batch of one (N=1)", _gn_inputs((1, 6, 4, 4), G=2), hidden=True),
            Case("1x1 feature maps", _gn_inputs((5, 8, 1, 1), G=4), hidden=True),
            Case("one constant group of 3", _gn_inputs((2, 6, 3, 3), G=3, constant_group=True), hidden=True),
            Case("G=C on 16 channels", _gn_inputs((2, 16, 2, 3), G=16), hidden=True),
            Case("mean 1e6, std 1e-3", _gn_inputs((2, 6, 4, 4), G=3, loc=1e6, scale=1e-3),
                 hidden=True, rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_GN_MISTAKES,
    ),
    Check(
        function="groupnorm_backward",
        returns=("dx", "dgamma", "dbeta"),
        compared=("dbeta", "dgamma", "dx"),
        reference=_gn_backward_reference,
        cases=(
            Case("N=4, C=6, H=5, W=7, G=3", _with_dout(_gn_inputs((4, 6, 5, 7), G=3), _GN_ORDER),
                 hint=_GRADCHECK),
            Case("G=1, N=1", _with_dout(_gn_inputs((1, 4, 2, 3), G=1), _GN_ORDER), hint=_GRADCHECK),
            Case("random shape 4x8x5x5, G=4", _with_dout(_gn_inputs((4, 8, 5, 5), G=4), _GN_ORDER),
                 hidden=True, hint=_GRADCHECK),
            Case("G=C, eps=0.1", _with_dout(_gn_inputs((2, 4, 3, 2), G=4, eps=0.1), _GN_ORDER),
                 hidden=True, hint=_GRADCHECK),
            Case("N=2, 1x1 feature maps, G=2", _with_dout(_gn_inputs((2, 8, 1, 1), G=2), _GN_ORDER),
                 hidden=True, hint=_GRADCHECK),
            Case("one constant group of 3", _with_dout(_gn_inputs((2, 6, 3, 3), G=3, constant_group=True),
                                                _GN_ORDER), hidden=True, hint=_GRADCHECK),
            Case("mean 1e6, std 1e-3", _with_dout(_gn_inputs((2, 6, 4, 4), G=3, loc=1e6, scale=1e-3),
                                                  _GN_ORDER),
                 hidden=True, rtol=1e-5, atol=1e-4, hint=_ONE_PASS),
        ),
        mistakes=_GN_BACKWARD_MISTAKES,
    ),
    Check(
        function="batch_renorm_forward",
        returns=("out", "r", "d", "cache"),
        compared=("out", "r", "d"),
        reference=_renorm_reference,
        cases=(
            Case("r and d clipped (r_max=2, d_max=1)",
                 _renorm_inputs((8, 6), 2.0, 1.0, ratios=[3.0, 0.25, 1.5, 0.8, 1.0, 2.5],
                                shifts=[2.0, -3.0, 0.5, -0.2, 1.5, -0.5])),
            Case("r_max=1, d_max=0 is batch norm", _renorm_inputs((6, 4), 1.0, 0.0)),
            Case("wide limits give the inference output", _renorm_inputs((10, 5), 100.0, 100.0)),
            Case("random 64x20, r_max=3, d_max=5",
                 _renorm_inputs((64, 20), 3.0, 5.0, ratio_range=(0.1, 10.0), shift_range=(-8, 8)),
                 hidden=True),
            Case("N=2", _renorm_inputs((2, 7), 1.5, 0.5), hidden=True),
            Case("eps=0.1", _renorm_inputs((12, 4), 2.0, 1.0, eps=0.1), hidden=True),
            Case("one constant column of 3", _renorm_inputs((9, 3), 3.0, 2.0, constant_feature=True),
                 hidden=True),
        ),
        mistakes=_RENORM_MISTAKES,
    ),
    Check(
        function="batch_renorm_backward",
        returns=("dx", "dgamma", "dbeta"),
        compared=("dbeta", "dgamma", "dx"),
        reference=_renorm_backward_reference,
        cases=(
            Case("some r and d clipped (r_max=2, d_max=1)",
                 _with_dout(_renorm_inputs((8, 6), 2.0, 1.0, ratios=[3.0, 0.25, 1.5, 0.8, 1.0, 2.5],
                                           shifts=[2.0, -3.0, 0.5, -0.2, 1.5, -0.5]), _RENORM_ORDER),
                 hint=_GRADCHECK),
            Case("wide limits: nothing clipped", _with_dout(_renorm_inputs((10, 5), 100.0, 100.0),
                                                             _RENORM_ORDER), hint=_GRADCHECK),
            Case("random 64x20, r_max=3, d_max=5",
                 _with_dout(_renorm_inputs((64, 20), 3.0, 5.0, ratio_range=(0.1, 10.0),
                                           shift_range=(-8, 8)), _RENORM_ORDER),
                 hidden=True, hint=_GRADCHECK),
            Case("N=2", _with_dout(_renorm_inputs((2, 7), 1.5, 0.5), _RENORM_ORDER), hidden=True,
                 hint=_GRADCHECK),
            Case("eps=0.1, large dout", _with_dout(_renorm_inputs((12, 4), 2.0, 1.0, eps=0.1),
                                                   _RENORM_ORDER, dout_scale=1e3),
                 hidden=True, hint=_GRADCHECK),
            Case("one constant column of 3", _with_dout(_renorm_inputs((9, 3), 3.0, 2.0, constant_feature=True),
                                                  _RENORM_ORDER), hidden=True, hint=_GRADCHECK),
            Case("r_max=1, d_max=0 is batch norm", _with_dout(_renorm_inputs((6, 4), 1.0, 0.0),
                                                               _RENORM_ORDER), hidden=True,
                 hint=_GRADCHECK),
        ),
        mistakes=_RENORM_BACKWARD_MISTAKES,
    ),
]
