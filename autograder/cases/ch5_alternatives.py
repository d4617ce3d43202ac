"""Chapter 5: normalizations that do not use the batch axis, and Batch Renormalization.

Three student functions, each returning only what is graded (no cache: this chapter has no
backward exercise):

* ``layernorm_forward(x, gamma, beta, eps)`` -> ``out``, x of shape (N, D);
* ``groupnorm_forward(x, gamma, beta, G, eps)`` -> ``out``, x of shape (N, C, H, W);
* ``batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps)``
  -> ``(out, r, d)``, x of shape (N, D); the running statistics are read, not updated.
"""
import numpy as np

from autograder.checks import Case, Check, Mistake

_ONE_PASS = ("with mean 1e6 and std 1e-3, E[x^2] - E[x]^2 cancels catastrophically: "
             "compute the variance as the mean of (x - mu)**2")


def _torch():
    import torch
    from autograder import reference as R
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
    from autograder import reference as R
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
            "layer norm takes each sample's mean and variance over its D features (axis=1); "
            "axis=0 mixes the samples of the batch, which is batch norm",
            _ln_variant([0])),
    Mistake("statistics over the whole array",
            "each row, one sample, gets its own mean and variance: reduce over axis=1 with "
            "keepdims=True, not over every element",
            _ln_variant([0, 1])),
    Mistake("unbiased variance", "divide by D, not D-1: use the biased variance",
            _ln_variant([1], unbiased=True)),
    Mistake("eps outside the square root", "use sqrt(var + eps), not sqrt(var) + eps",
            _ln_variant([1], eps_where="outside")),
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
    from autograder import reference as R
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
            "group g holds the CONTIGUOUS channels g*C//G ... (g+1)*C//G - 1: reshape to "
            "(N, G, C // G, H, W) and reduce over axes (2, 3, 4); channel c % G, or "
            "reshape(N, C // G, G, ...) reduced over axis 1, interleaves the groups",
            _gn_variant("interleaved")),
    Mistake("G read as the group size",
            "G is the number of groups, each of C // G channels: reshape(N, G, C // G, H, W), "
            "not reshape(N, C // G, G, H, W)",
            _gn_variant("size G")),
    Mistake("statistics shared across the batch",
            "group norm gives every sample its own statistics: do not reduce over axis 0",
            _gn_variant(batch_too=True)),
    Mistake("one group per channel (instance norm)",
            "a group holds C // G channels together with all their H x W positions, not one channel",
            _gn_variant("per channel")),
    Mistake("unbiased variance", "divide by (C // G) * H * W, not one less: use the biased variance",
            _gn_variant(unbiased=True)),
    Mistake("eps outside the square root", "use sqrt(var + eps), not sqrt(var) + eps",
            _gn_variant(eps_where="outside")),
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
    from autograder import reference as R
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
            "clip r to [1/r_max, r_max] and d to [-d_max, d_max]: np.clip(r, 1 / r_max, r_max), "
            "np.clip(d, -d_max, d_max)",
            _renorm_variant(clip_r="none", clip_d=False)),
    Mistake("r not clipped", "clip r to [1/r_max, r_max] before using it",
            _renorm_variant(clip_r="none")),
    Mistake("d not clipped", "clip d to [-d_max, d_max] before using it",
            _renorm_variant(clip_d=False)),
    Mistake("r clipped from above only",
            "r's lower bound is 1/r_max, not 0: np.clip(r, 1 / r_max, r_max)",
            _renorm_variant(clip_r="above")),
    Mistake("r inverted", "r = sigma_B / sigma, the batch std over the running std; not sigma / sigma_B",
            _renorm_variant(invert_r=True)),
    Mistake("d with the wrong sign", "d = (mu_B - running_mean) / sigma, not running_mean - mu_B",
            _renorm_variant(flip_d=True)),
    Mistake("r and d not applied",
            "x_hat = (x - mu_B) / sigma_B * r + d; without r and d it is plain batch norm",
            _renorm_variant(apply_rd=False)),
    Mistake("eps missing from the running sigma",
            "sigma = sqrt(running_var + eps), with the same eps as the batch's sigma_B",
            _renorm_variant(sigma_eps=False)),
    Mistake("unbiased variance", "sigma_B uses the biased batch variance: divide by N",
            _renorm_variant(unbiased=True)),
)


CHECKS = [
    Check(
        function="layernorm_forward",
        returns=("out",),
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
        function="groupnorm_forward",
        returns=("out",),
        compared=("out",),
        reference=_gn_reference,
        cases=(
            Case("N=2, C=6, H=3, W=3, G=3", _gn_inputs((2, 6, 3, 3), G=3)),
            Case("G=C is instance norm", _gn_inputs((2, 4, 3, 2), G=4)),
            Case("G=1 is layer norm", _gn_inputs((3, 4, 2, 2), G=1)),
            Case("random shape 4x8x5x5, G=4", _gn_inputs((4, 8, 5, 5), G=4), hidden=True),
            Case("C=8, G=2", _gn_inputs((3, 8, 4, 3), G=2, eps=0.1), hidden=True),
            Case("a batch of one (N=1)", _gn_inputs((1, 6, 4, 4), G=2), hidden=True),
            Case("1x1 feature maps", _gn_inputs((5, 8, 1, 1), G=4), hidden=True),
            Case("a constant group", _gn_inputs((2, 6, 3, 3), G=3, constant_group=True), hidden=True),
            Case("G=C on 16 channels", _gn_inputs((2, 16, 2, 3), G=16), hidden=True),
            Case("mean 1e6, std 1e-3", _gn_inputs((2, 6, 4, 4), G=3, loc=1e6, scale=1e-3),
                 hidden=True, rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        ),
        mistakes=_GN_MISTAKES,
    ),
    Check(
        function="batch_renorm_forward",
        returns=("out", "r", "d"),
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
            Case("a constant feature", _renorm_inputs((9, 3), 3.0, 2.0, constant_feature=True),
                 hidden=True),
        ),
        mistakes=_RENORM_MISTAKES,
    ),
]
