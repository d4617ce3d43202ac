"""Chapter 5: normalizations that do not use the batch axis, Batch Renormalization, and their
backward passes.

Forward passes, CS231n-style, graded on ``out`` (and r, d) only:

* ``rmsnorm_forward(x, gamma, eps)`` -> ``(out, cache)``, x of shape (N, D) (no shift);
* ``groupnorm_forward(x, gamma, beta, G, eps)`` -> ``(out, cache)``, x of shape (N, C, H, W);
* ``batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps)``
  -> ``(out, r, d, cache)``, x of shape (N, D); the running statistics are read, not updated.

Backward passes ``dx, dgamma, dbeta = <op>_backward(dout, cache)`` (RMSNorm's: ``dx, dgamma``),
graded against autograd,
``dbeta`` and ``dgamma`` compared before ``dx`` (the root cause first). The
cache each receives is fixed by the course: the forward's inputs, as a tuple in signature order
(``(x, gamma, eps)``, ``(x, gamma, beta, G, eps)``, ``(x, gamma, beta, running_mean,
running_var, r_max, d_max, eps)``), so a backward is graded on its own, whatever the student's
forward does; it recomputes the statistics it needs.

The experiment ``batch_size_sweep`` trains Linear -> BN or GN -> ReLU -> Linear from the same
weights at several batch sizes with the student's own layers; its curve (test loss and accuracy
per batch size) is compared point by point with torch's (``reference.norm_batch_size_sweep``).
"""
import numpy as np

from autograder.course.checks import Case, Check, Mistake

_ONE_PASS = ("with mean 1e6 and std 1e-3, the one-pass variance E[x^2] - E[x]^2 cancels "
             "catastrophically: subtract the mean first, then average the squares")
_EPS_OUTSIDE = ("eps was added to the standard deviation; the layer adds it to the variance "
                "before the root")


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


# ---- RMSNorm, (N, D) ------------------------------------------------------------------------

def _rms_inputs(shape, eps=1e-5, loc=0.0, scale=1.0, row_scales=False, zero_row=False):
    def make(rng):
        x = loc + scale * rng.standard_normal(shape)
        if row_scales:      # rows on very different scales: only per-row statistics undo that
            x *= 10.0 ** np.linspace(-2, 2, shape[0])[:, None]
        if zero_row:
            x[0] = 0.0
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, shape[1]), "eps": eps}
    return make


def _rms_reference(inputs):
    from autograder.course import reference as R
    return (R.rmsnorm_forward(**inputs),)


def _rms_variant(dims=(1,), centred=False, eps_where="inside"):
    def compute(inputs):
        torch, R = _torch()
        x = R.tensor(inputs["x"])
        xc = x - x.mean(dim=list(dims), keepdim=True) if centred else x
        ms = (xc ** 2).mean(dim=list(dims), keepdim=True)
        rms = torch.sqrt(ms) + inputs["eps"] if eps_where == "outside" else torch.sqrt(ms + inputs["eps"])
        return (R.numpy(R.tensor(inputs["gamma"]) * xc / rms),)
    return compute


_RMS_MISTAKES = (
    Mistake("centred like layer norm",
            "the row mean was taken out first: that is layer norm's statistic; RMSNorm's scale "
            "is the root of the mean square of the raw values",
            _rms_variant(centred=True),
            correction="rms = np.sqrt((x ** 2).mean(axis=1, keepdims=True) + eps)"),
    Mistake("root mean square over the batch axis",
            "each sample's scale came from a column, so it mixes the samples of the batch; "
            "RMSNorm, like layer norm, never looks at the other rows",
            _rms_variant(dims=(0,)),
            correction="rms = np.sqrt((x ** 2).mean(axis=1, keepdims=True) + eps)"),
    Mistake("eps outside the square root",
            "eps was added to the root mean square; torch's RMSNorm adds it to the mean square "
            "before the root",
            _rms_variant(eps_where="outside"),
            correction="rms = np.sqrt((x ** 2).mean(axis=1, keepdims=True) + eps)"),
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
            "the channels of a group were taken every G-th one, which a view that puts the "
            "group size before the group count produces; a group is a block of neighbouring "
            "channels",
            _gn_variant("interleaved"),
            correction='xg = x.reshape(N, G, C // G, H, W)'),
    Mistake("G read as the group size",
            "G is the number of groups, each of C/G channels, not the number of channels in a "
            "group",
            _gn_variant("size G"),
            correction='xg = x.reshape(N, G, C // G, H, W)'),
    Mistake("statistics shared across the batch",
            "group norm gives every sample its own statistics: nothing is averaged across the "
            "batch",
            _gn_variant(batch_too=True),
            correction='mu = xg.mean(axis=(2, 3, 4), keepdims=True)'),
    Mistake("one group per channel",
            "a group holds C/G channels together with all their H x W positions, not one channel",
            _gn_variant("per channel"),
            correction='mu = xg.mean(axis=(2, 3, 4), keepdims=True)'),
    Mistake("unbiased variance",
            "the variance divided by one less than the number of values in the group (the "
            "unbiased estimate)",
            _gn_variant(unbiased=True),
            correction='var = (xc ** 2).mean(axis=(2, 3, 4), keepdims=True)'),
    Mistake("eps outside the square root", _EPS_OUTSIDE, _gn_variant(eps_where="outside"),
            correction='x_hat = xc / np.sqrt(var + eps)'),
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
            "neither r nor d was held within its limits: the correction follows the batch "
            "however far its statistics stray",
            _renorm_variant(clip_r="none", clip_d=False),
            correction='r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max); d = np.clip((mu - running_mean) / sigma, -d_max, d_max)'),
    Mistake("r not clipped", "r reached the output unbounded: a batch whose spread is far from the running one "
            "rescales the normalized value without limit",
            _renorm_variant(clip_r="none"),
            correction='r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max)'),
    Mistake("d not clipped", "d reached the output unbounded: a batch mean far from the running one shifts the "
            "output without limit",
            _renorm_variant(clip_d=False),
            correction='d = np.clip((mu - running_mean) / sigma, -d_max, d_max)'),
    Mistake("r clipped from above only",
            "small ratios went through: a batch much narrower than the running statistics "
            "still shrinks the output without limit",
            _renorm_variant(clip_r="above"),
            correction='r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max)'),
    Mistake("r inverted",
            "r came out as the running spread over the batch spread: it is below 1 exactly "
            "where the batch is wider than the running statistics",
            _renorm_variant(invert_r=True),
            correction='r = sigma_b / sigma, then clipped'),
    Mistake("d with the wrong sign",
            "d measures how far the batch mean lies above the running mean, in running standard "
            "deviations: its sign is reversed",
            _renorm_variant(flip_d=True),
            correction='d = (mu - running_mean) / sigma, then clipped'),
    Mistake("r and d not applied",
            "the batch-normalized value is then multiplied by r and shifted by d; without them "
            "the layer is plain batch norm",
            _renorm_variant(apply_rd=False),
            correction='x_hat = xc / sigma_b * r + d'),
    Mistake("eps missing from the running sigma",
            "the running standard deviation lacks eps while the batch one has it: the two "
            "spreads in r are measured differently",
            _renorm_variant(sigma_eps=False),
            correction='sigma = np.sqrt(running_var + eps)'),
    Mistake("unbiased variance",
            "sigma_B came from the unbiased variance, which divides by one less than N and "
            "inflates the spread of a small batch",
            _renorm_variant(unbiased=True),
            correction='sigma_b = np.sqrt((xc ** 2).mean(axis=0) + eps)'),
)


# ---- backward passes -----------------------------------------------------------------------

def _with_dout(make_forward_inputs, order, dout_scale=1.0):
    """A backward case: ``dout`` and the cache (the forward's inputs, in ``order``)."""
    def make(rng):
        inputs = make_forward_inputs(rng)
        dout = dout_scale * rng.standard_normal(np.shape(inputs["x"]))
        return {"dout": dout, "cache": tuple(inputs[k] for k in order)}
    return make


_RMS_ORDER = ("x", "gamma", "eps")
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


def _rms_backward_reference(inputs):
    from autograder.course import reference as R
    c = _cache(inputs, _RMS_ORDER)
    dx, dgamma = R.rmsnorm_backward(inputs["dout"], c["x"], c["gamma"], c["eps"])
    return dgamma, dx


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


def _rms_backward_variant(mean_term=False, scale_term=True, gamma_in_dx=True, gamma_outside=False,
                          param_reduce="sum", dims=(1,)):
    """dgamma, dx of RMSNorm written by hand in torch, wrong in the ways students are."""
    def compute(inputs):
        torch, R = _torch()
        c = _cache(inputs, _RMS_ORDER)
        x, dy, g = R.tensor(c["x"]), R.tensor(inputs["dout"]), R.tensor(c["gamma"])
        d = list(dims)
        rms = torch.sqrt((x ** 2).mean(dim=d, keepdim=True) + c["eps"])
        x_hat = x / rms
        dxh = dy if gamma_outside or not gamma_in_dx else dy * g
        dx = dxh
        if mean_term:
            dx = dx - dxh.mean(dim=d, keepdim=True)
        if scale_term:
            dx = dx - x_hat * (dxh * x_hat).mean(dim=d, keepdim=True)
        if gamma_outside:
            dx = dx * g
        dx = dx / rms
        axis = 1 if param_reduce == "axis1" else 0
        dg = (dy * x_hat).sum(dim=axis)
        if param_reduce == "mean":
            dg = dg / x.shape[0]
        return R.numpy(dg), R.numpy(dx)
    return compute


_RMS_BACKWARD_MISTAKES = (
    Mistake("mean term of layer norm's gradient",
            "dx carries a term that comes back through a row mean, but RMSNorm subtracts no "
            "mean: that term belongs to layer norm's gradient",
            _rms_backward_variant(mean_term=True),
            correction="dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True)) / rms"),
    Mistake("scale treated as a constant",
            "every value of a row feeds that row's root mean square: dx has lost the term that "
            "comes back through it, the one along x_hat",
            _rms_backward_variant(scale_term=False),
            correction="dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True)) / rms"),
    Mistake("gamma missing from dx",
            "the output is gamma times x_hat: the gradient that reaches x_hat has lost that factor",
            _rms_backward_variant(gamma_in_dx=False),
            correction="dx_hat = gamma * dout"),
    Mistake("gamma taken out of the row mean",
            "gamma varies along the row, inside the set the mean runs over: factoring it out of "
            "the mean, as batch norm's compact form may, changes the result",
            _rms_backward_variant(gamma_outside=True),
            correction="dx_hat = gamma * dout, then the row mean of dx_hat * x_hat"),
    Mistake("root mean square over the batch axis",
            "the statistic and its gradient term ran down the columns, across the samples; "
            "each row has its own scale",
            _rms_backward_variant(dims=(0,)),
            correction="rms = np.sqrt((x ** 2).mean(axis=1, keepdims=True) + eps)"),
    Mistake("dgamma summed over the wrong axis",
            "gamma has one entry per feature, shared by the N rows; this sum ran along a row",
            _rms_backward_variant(param_reduce="axis1"),
            correction="dgamma = (dout * x_hat).sum(axis=0)"),
    Mistake("dgamma averaged over the batch",
            "gamma is shared by all N rows and the loss adds their contributions; an average "
            "divides that sum by N",
            _rms_backward_variant(param_reduce="mean"),
            correction="dgamma = (dout * x_hat).sum(axis=0)"),
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
            "the means in dx ran over every G-th channel; a value's statistics came from its "
            "own block of neighbouring channels",
            _gn_backward_variant("interleaved"),
            correction='dx_hat viewed as (N, G, C // G, H, W), means over axes (2, 3, 4)'),
    Mistake("one group per channel",
            "the statistics, and so the mean and variance terms of dx, cover a whole group of "
            "C // G channels with all their positions, not one channel",
            _gn_backward_variant("per channel"),
            correction='means over axes (2, 3, 4) of the (N, G, C // G, H, W) view'),
    Mistake("mean term of dx missing",
            "every value of a group feeds the group's mean: dx has lost the term that comes back "
            "through it",
            _gn_backward_variant(mean_term=False),
            correction='dx = (dx_hat - dx_hat.mean(...) - x_hat * (dx_hat * x_hat).mean(...)) / std'),
    Mistake("variance term of dx missing",
            "every value of a group feeds the group's variance: dx has lost the term that comes "
            "back through it, the one along x_hat",
            _gn_backward_variant(var_term=False),
            correction='dx = (dx_hat - dx_hat.mean(...) - x_hat * (dx_hat * x_hat).mean(...)) / std'),
    Mistake("gamma taken out of the group means",
            "a group holds several channels, each with its own gamma_c: factoring gamma out "
            "of the group means, as batch norm's compact form may, changes them",
            _gn_backward_variant(gamma_outside=True),
            correction='dx_hat = gamma.reshape(1, C, 1, 1) * dout, then the group means of dx_hat'),
    Mistake("dgamma/dbeta not summed over H and W",
            "gamma_c is shared by every position of channel c in every sample; this gradient "
            "kept one value per position",
            _gn_backward_variant(param_reduce="batch only"),
            correction='dgamma = (dout * x_hat).sum(axis=(0, 2, 3))'),
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
            _renorm_backward_variant(through_rd=True),
            correction="dx_b = gamma * r * dout, r and d constants; then BN's set formula over the batch"),
    Mistake("r missing from dx",
            "r is a constant factor between the batch-normalized value and the output; the "
            "gradient reaching the batch-normalized value lost it",
            _renorm_backward_variant(r_in_dx=False),
            correction='dx_b = gamma * r * dout'),
    Mistake("dgamma without r and d",
            "dgamma paired dout with the batch-normalized value, but gamma multiplies the "
            "renormalized one",
            _renorm_backward_variant(rd_in_dgamma=False),
            correction='dgamma = (dout * (x_b * r + d)).sum(axis=0)'),
    Mistake("r and d not clipped",
            "the backward pass used r and d unclipped, unlike the forward pass it "
            "differentiates",
            _renorm_backward_variant(clip=False),
            correction='r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max); d = np.clip((mu - running_mean) / sigma, -d_max, d_max)'),
    Mistake("batch statistics treated as constants",
            "only r and d are constants; mu_B and sigma_B depend on every x, so dx keeps the terms "
            "that come back through the batch mean and variance",
            _renorm_backward_variant(stats_constant=True),
            correction='dx = (dx_b - dx_b.mean(axis=0) - x_b * (dx_b * x_b).mean(axis=0)) / sigma_b'),
)

_GRADCHECK = "compare each of dx, dgamma, dbeta with a centered-difference numerical gradient"


_GRADCHECK_RMS = "compare dx and dgamma with a centered-difference numerical gradient"

CHECKS = [
    Check(
        function="rmsnorm_forward",
        returns=("out", "cache"),
        compared=("out",),
        reference=_rms_reference,
        cases=(
            Case("N=4, D=6", _rms_inputs((4, 6), loc=1.0)),
            Case("a batch of one (N=1)", _rms_inputs((1, 5), loc=-0.5)),
            Case("eps=0.1", _rms_inputs((5, 3), eps=0.1, scale=0.3)),
            Case("random shape 32x50", _rms_inputs((32, 50), loc=1.0, scale=3.0), hidden=True),
            Case("rows on scales 1e-2 ... 1e2", _rms_inputs((7, 9), row_scales=True), hidden=True),
            Case("D=2", _rms_inputs((6, 2), loc=2.0), hidden=True),
            Case("an all-zero row", _rms_inputs((5, 8), zero_row=True), hidden=True,
                 hint="an all-zero row has mean square 0: eps keeps its output finite (zero)"),
        ),
        mistakes=_RMS_MISTAKES,
    ),
    Check(
        function="rmsnorm_backward",
        returns=("dx", "dgamma"),
        compared=("dgamma", "dx"),
        reference=_rms_backward_reference,
        cases=(
            Case("N=4, D=6", _with_dout(_rms_inputs((4, 6), loc=1.0), _RMS_ORDER), hint=_GRADCHECK_RMS),
            Case("a batch of one (N=1)", _with_dout(_rms_inputs((1, 5), loc=-0.5), _RMS_ORDER),
                 hint=_GRADCHECK_RMS),
            Case("eps=0.1", _with_dout(_rms_inputs((5, 3), eps=0.1, scale=0.3), _RMS_ORDER),
                 hint=_GRADCHECK_RMS),
            Case("random shape 32x50", _with_dout(_rms_inputs((32, 50), loc=1.0, scale=3.0), _RMS_ORDER),
                 hidden=True, hint=_GRADCHECK_RMS),
            Case("N=2, rows on scales 1e-2 ... 1e2", _with_dout(_rms_inputs((2, 9), row_scales=True),
                                                               _RMS_ORDER), hidden=True, hint=_GRADCHECK_RMS),
            Case("D=2, large dout", _with_dout(_rms_inputs((6, 2), loc=2.0), _RMS_ORDER, dout_scale=1e3),
                 hidden=True, hint=_GRADCHECK_RMS),
            Case("an all-zero row", _with_dout(_rms_inputs((5, 8), zero_row=True), _RMS_ORDER),
                 hidden=True, hint="an all-zero row: its x_hat is 0 and its scale sqrt(eps), so dx "
                                   "there is large but finite, never NaN"),
        ),
        mistakes=_RMS_BACKWARD_MISTAKES,
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
            Case("two samples per batch", _renorm_inputs((2, 7), 1.5, 0.5), hidden=True),
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
            Case("two samples per batch", _with_dout(_renorm_inputs((2, 7), 1.5, 0.5), _RENORM_ORDER), hidden=True,
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


# ---- the experiment: BN against GN over batch sizes, with the student's own layers -------------

def _sweep_inputs(norm, batch_sizes, n_train=250, n_test=120, hidden=16, G=4, lr=0.5, epochs=1,
                  momentum=0.1, eps=1e-5, start=0):
    """Digits rows ``start ...`` (pixels in [0, 1]) for training and the next ``n_test`` for
    testing, and He-initialized weights: Linear(64, hidden) -> norm -> ReLU -> Linear(hidden, 10)."""
    def make(rng):
        from autograder.course.cases.ch4_inference import _digits
        x, y = _digits()
        order = rng.permutation(len(x))[start:start + n_train + n_test]
        d, k = x.shape[1], 10
        params = {"W1": rng.standard_normal((d, hidden)) * np.sqrt(2.0 / d), "b1": np.zeros(hidden),
                  "gamma": rng.uniform(0.8, 1.2, hidden), "beta": rng.uniform(-0.1, 0.1, hidden),
                  "W2": rng.standard_normal((hidden, k)) * np.sqrt(2.0 / hidden), "b2": np.zeros(k)}
        tr, te = order[:n_train], order[n_train:]
        return {"norm": norm, "batch_sizes": [int(b) for b in batch_sizes], "params": params,
                "x_train": x[tr], "y_train": [int(v) for v in y[tr]], "x_test": x[te],
                "y_test": [int(v) for v in y[te]], "lr": lr, "G": int(G), "epochs": int(epochs),
                "momentum": momentum, "eps": eps}
    return make


def _sweep_reference(inputs):
    from autograder.course import reference as R
    return R.norm_batch_size_sweep(**inputs)


def _sweep_variant(mistake):
    def compute(inputs):
        from autograder.course import reference as R
        return R.norm_batch_size_sweep(**inputs, mistake=mistake)
    return compute


_SWEEP_MISTAKES = (
    Mistake("eval with batch statistics",
            "the test pass normalized the test set with its own statistics, so what training "
            "accumulated never reached the test scores",
            _sweep_variant("eval with batch statistics"),
            correction="test: gamma * (h - running_mean) / np.sqrt(running_var + eps) + beta"),
    Mistake("biased running variance",
            "the running variance averaged the biased batch variance; for batches of two that is "
            "half the estimate torch's layer stores, and the test pass divides by it",
            _sweep_variant("biased running variance"),
            correction="running_var = (1 - momentum) * running_var + momentum * h.var(axis=0, ddof=1)"),
    Mistake("no running update",
            "the running statistics never moved from zeros and ones: the test pass normalizes "
            "with the initial buffers",
            _sweep_variant("no running update"),
            correction="running_mean = (1 - momentum) * running_mean + momentum * h.mean(axis=0)"),
    Mistake("weights carried over",
            "the runs are not independent: a batch size started from the weights the previous "
            "one ended with",
            _sweep_variant("weights carried over"),
            correction="p = {k: v.copy() for k, v in params.items()} at the start of every batch size"),
    Mistake("last partial batch used",
            "when B does not divide the number of training rows, one more step was taken on a "
            "short final batch",
            _sweep_variant("last partial batch used"),
            correction="for k in range(len(x_train) // B)"),
    Mistake("loss summed",
            "the loss was summed over the batch, so every step is B times too large",
            _sweep_variant("loss summed"),
            correction="loss = mean over the batch of -log softmax(scores)[y]"),
)

_SWEEP_HINT = ("rebuild the visible case and compare the curve at its first batch size: a BN-only "
               "difference points at the running statistics or the test pass, one in both norms "
               "at the training loop")

CHECKS.append(Check(
    function="batch_size_sweep",
    uses=("groupnorm_forward", "groupnorm_backward", "batch_renorm_forward", "batch_renorm_backward"),
    returns=("test_loss", "test_accuracy"),
    compared=("test_loss", "test_accuracy"),
    reference=_sweep_reference,
    rtol=1e-6,
    atol=1e-8,
    cases=(
        Case("BN, 250 digits, B = 2, 8, 32", _sweep_inputs("bn", (2, 8, 32)), hint=_SWEEP_HINT),
        Case("GN, 4 groups, B = 2, 8, 32", _sweep_inputs("gn", (2, 8, 32)), hint=_SWEEP_HINT),
        # The hidden cases vary one thing each on fewer rows than the visible ones (a training
        # step per batch is what grading this function costs, twice: the student's run and the
        # reference's): what tells the known mistakes apart is the setting, not the row count.
        Case("BN, 2 epochs, momentum 0.3, B = 3, 16", _sweep_inputs("bn", (3, 16), n_train=104, n_test=60,
                                                                  epochs=2, momentum=0.3, start=400),
             hidden=True, hint=_SWEEP_HINT),
        Case("GN, 2 groups of 12, eps 1e-3", _sweep_inputs("gn", (4, 24), n_train=125, n_test=60, hidden=24,
                                                            G=2, eps=1e-3, start=700), hidden=True,
             hint=_SWEEP_HINT),
        Case("GN, G = hidden (one feature per group)", _sweep_inputs("gn", (2, 10), hidden=8, G=8,
                                                                      n_train=60, n_test=60), hidden=True,
             hint="with one feature per group, each group's variance is zero: eps keeps it finite"),
        Case("BN, B = 6, 7 (neither dividing 100), lr 0.2", _sweep_inputs("bn", (6, 7), n_train=100, n_test=60,
                                                                         lr=0.2, start=900),
             hidden=True, hint=_SWEEP_HINT),
    ),
    mistakes=_SWEEP_MISTAKES,
))
