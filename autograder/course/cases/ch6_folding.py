"""Chapter 6: folding an eval-mode batch norm into the convolution or linear layer before it.

The graded values are the folded weights and bias themselves.  The checks API compares what a
function returns with the reference, so a case cannot compare *layer outputs* instead; equal
weights give equal outputs, and the reference checks that its own folded layer reproduces
conv -> BN(eval) on a random input before any student is compared with it
(:func:`conv_output_gap`, also usable from the test suite).
"""
import numpy as np

from autograder.course.checks import Case, Check, Mistake

# ---- provided NumPy helper, imported by the exercise notebook -----------------------------



# ---- inputs --------------------------------------------------------------------------------

def _fold_inputs(w_shape, bias=True, eps=1e-5, var_range=(0.5, 2.0), mean_scale=1.0,
                 negative_gamma=False, dead_channel=False):
    """Arguments of fold_conv_bn / fold_linear_bn, in signature order; ``b`` may be None."""
    def make(rng):
        c = w_shape[0]
        gamma = rng.uniform(0.5, 2.0, c)
        if negative_gamma:
            gamma *= rng.choice([-1.0, 1.0], c)
            gamma[0] = -abs(gamma[0])
        running_var = rng.uniform(*var_range, c)
        if dead_channel:
            running_var[0] = 0.0      # a channel that was always zero during training
        return {
            "w": rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:])),
            "b": rng.standard_normal(c) if bias else None,
            "gamma": gamma,
            "beta": rng.uniform(-1.0, 1.0, c),
            "running_mean": mean_scale * rng.standard_normal(c),
            "running_var": running_var,
            "eps": eps,
        }
    return make


# ---- references ------------------------------------------------------------------------------

def conv_output_gap(w_folded: np.ndarray, b_folded: np.ndarray, inputs: dict, seed: int = 0) -> tuple[float, float]:
    """Compare the folded conv with conv -> BN(eval) on a random x (torch, float64).

    ``inputs`` is a case's argument dict; ``x`` holds 2 images of 6x6 pixels, padded to keep
    their size. Returns ``(gap, size)``: max |conv(x; w_folded, b_folded) - BN(conv(x; w, b))|
    and max |BN(conv(x; w, b))|. Used to verify the reference below, and by tests that check a
    folding by its outputs rather than by its weights.
    """
    from autograder.course import reference as R
    x = np.random.default_rng(seed).standard_normal((2, inputs["w"].shape[1], 6, 6))
    padding = inputs["w"].shape[-1] // 2
    expected = R.conv_bn_eval(x, inputs["w"], inputs["b"], inputs["gamma"], inputs["beta"],
                              inputs["running_mean"], inputs["running_var"], inputs["eps"],
                              padding=padding)
    got = R.conv2d(x, w_folded, b_folded, padding=padding)
    return float(np.max(np.abs(got - expected))), float(np.max(np.abs(expected)))


def _conv_reference(inputs):
    from autograder.course import reference as R
    w_folded, b_folded = R.fold_conv_bn(**inputs)
    gap, size = conv_output_gap(w_folded, b_folded, inputs)
    if gap > 1e-10 * max(1.0, size):  # the folded conv must BE conv -> BN(eval)
        raise RuntimeError(f"reference fold_conv_bn does not reproduce conv -> BN (gap {gap:.3g})")
    return w_folded, b_folded


def _linear_reference(inputs):
    from autograder.course import reference as R
    return R.fold_linear_bn(**inputs)


# ---- known mistakes --------------------------------------------------------------------------

def _variant(scale_axis="out", mean_term=True, eps_where="inside", seed_rule=False):
    """Wrong foldings, for conv (4-D w) and linear (2-D w) alike."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        w = R.tensor(inputs["w"])
        c = w.shape[0]
        b = torch.zeros(c, dtype=w.dtype, device=w.device) if inputs["b"] is None else R.tensor(inputs["b"])
        gamma, beta = R.tensor(inputs["gamma"]), R.tensor(inputs["beta"])
        mu, var, eps = R.tensor(inputs["running_mean"]), R.tensor(inputs["running_var"]), inputs["eps"]
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        if seed_rule:
            return R.numpy(w), R.numpy(b - mu + beta * std)
        s = gamma / std
        shape = [-1] + [1] * (w.ndim - 1) if scale_axis == "out" else [1, -1] + [1] * (w.ndim - 2)
        w_folded = w * s.reshape(shape)      # "in" only broadcasts when C_in == C_out
        b_folded = (b - mu) * s + beta if mean_term else b * s + beta
        return R.numpy(w_folded), R.numpy(b_folded)
    return compute


def _mistakes(unit, in_axis_hint):
    return (
        Mistake(f"scaled along the input {unit}s",
                f"BN scales each OUTPUT {unit}: multiply {in_axis_hint}",
                _variant(scale_axis="in")),
        Mistake("mean term missing from the bias",
                "BN subtracts the running mean before it scales; in the folded layer that "
                "subtraction has to live in the bias",
                _variant(mean_term=False)),
        Mistake("std without eps",
                "BN adds eps to the running variance in eval mode too, under the square root",
                _variant(eps_where="missing")),
        Mistake("eps outside the square root",
                "eps is added to the running variance under the square root, not to the std",
                _variant(eps_where="outside")),
        Mistake("weights left unscaled",
                "that is the seed article's special case; every layer folds by the same rule: "
                f"the weights of each output {unit} are scaled by that {unit}'s BN factor",
                _variant(seed_rule=True)),
    )


_DEAD = ("a channel whose running variance is 0 is legal (it was always constant in training); "
         "eps keeps its scale finite")

CHECKS = [
    Check(
        function="fold_conv_bn",
        returns=("w_folded", "b_folded"),
        compared=("w_folded", "b_folded"),
        reference=_conv_reference,
        cases=(
            # C_in = 1 first: scaling the wrong axis then still broadcasts (to the wrong shape),
            # so the check names that mistake instead of a broadcasting error.
            Case("C_out=5, C_in=1, 3x2, with bias", _fold_inputs((5, 1, 3, 2))),
            Case("no conv bias (b=None)", _fold_inputs((6, 4, 3, 2), bias=False),
                 hint="without a conv bias the folded conv still gets one: beta and the running "
                      "mean do not vanish with b"),
            Case("eps=0.1, small running_var", _fold_inputs((3, 2, 1, 4), eps=0.1, var_range=(0.01, 0.2))),
            Case("random shape 16x8x3x3", _fold_inputs((16, 8, 3, 3)), hidden=True,
                 hint="C_in differs from C_out here: the BN factor belongs to the output channels"),
            Case("C_out=C_in=4, 3x3, with bias", _fold_inputs((4, 4, 3, 3)), hidden=True),
            Case("no conv bias, C_out=C_in=3", _fold_inputs((3, 3, 3, 3), bias=False), hidden=True),
            Case("1x1 conv 5x7, no bias", _fold_inputs((5, 7, 1, 1), bias=False), hidden=True),
            Case("depthwise weight 6x1x3x3", _fold_inputs((6, 1, 3, 3)), hidden=True),
            Case("a dead channel (running_var=0)", _fold_inputs((4, 4, 3, 3), dead_channel=True),
                 hidden=True, hint=_DEAD),
            Case("negative gamma, large running_mean, 5x5",
                 _fold_inputs((8, 8, 5, 5), negative_gamma=True, mean_scale=50.0), hidden=True),
            Case("C_out=C_in=1, 1x1, no bias", _fold_inputs((1, 1, 1, 1), bias=False), hidden=True),
        ),
        mistakes=_mistakes("channel", "all the weights of output channel c (one filter) by "
                                      "channel c's factor, whatever C_in is"),
    ),
    Check(
        function="fold_linear_bn",
        returns=("w_folded", "b_folded"),
        compared=("w_folded", "b_folded"),
        reference=_linear_reference,
        cases=(
            # D_in = 1 first: the column-scaling mistake then broadcasts and can be named.
            Case("D_out=4, D_in=1, with bias", _fold_inputs((4, 1))),
            Case("no bias (b=None), D_out=3, D_in=5", _fold_inputs((3, 5), bias=False),
                 hint="without a bias the folded layer still gets one: beta and the running mean "
                      "do not vanish with b"),
            Case("eps=0.1, small running_var", _fold_inputs((5, 2), eps=0.1, var_range=(0.01, 0.2))),
            Case("random shape 10x7", _fold_inputs((10, 7)), hidden=True,
                 hint="D_in differs from D_out here: the BN factor belongs to the rows of w"),
            Case("D_out=D_in=5, with bias", _fold_inputs((5, 5)), hidden=True),
            Case("no bias, D_out=D_in=4", _fold_inputs((4, 4), bias=False), hidden=True),
            Case("D_out=1, D_in=3, no bias", _fold_inputs((1, 3), bias=False), hidden=True),
            Case("a dead feature (running_var=0)", _fold_inputs((6, 6), dead_channel=True),
                 hidden=True, hint=_DEAD),
            Case("negative gamma, large running_mean", _fold_inputs((6, 9), negative_gamma=True,
                                                                    mean_scale=50.0), hidden=True),
        ),
        mistakes=_mistakes("feature", "each row of w (the weights that produce one output "
                                      "feature) by that feature's factor; broadcasting a vector "
                                      "against a matrix lines it up with the last axis, the columns"),
    ),
]


# ---- a whole list of layers ------------------------------------------------------------------

def _bn_layer(rng, c, eps=1e-5, negative_gamma=False, dead=False):
    gamma = rng.uniform(0.5, 2.0, c)
    if negative_gamma:
        gamma *= rng.choice([-1.0, 1.0], c)
    running_var = rng.uniform(0.5, 2.0, c)
    if dead:
        running_var[0] = 0.0
    return {"kind": "bn", "gamma": gamma, "beta": rng.uniform(-1.0, 1.0, c),
            "running_mean": rng.standard_normal(c), "running_var": running_var, "eps": eps}


def _layers_inputs(x_shape, spec, **bn_options):
    """A layer list built from ``spec`` and an input x for it. spec items: ("conv", C_out, (kH,
    kW), {stride, padding, dilation, groups, bias}), ("linear", D_out, bias), ("bn",), ("relu",),
    ("flatten",). Shapes are followed with the NumPy runner, so every list is well formed."""
    from autograder.student.given import run_layers

    def make(rng):
        x = rng.standard_normal(x_shape)
        layers = []
        for item in spec:
            shape = run_layers(layers, x).shape
            kind = item[0]
            if kind == "conv":
                _, c_out, (kh, kw), opts = item
                groups = opts.get("groups", 1)
                fan_in = shape[1] // groups * kh * kw
                layers.append({"kind": "conv",
                               "w": rng.standard_normal((c_out, shape[1] // groups, kh, kw)) / np.sqrt(fan_in),
                               "b": rng.standard_normal(c_out) if opts.get("bias", True) else None,
                               "stride": opts.get("stride", 1), "padding": opts.get("padding", 0),
                               "dilation": opts.get("dilation", 1), "groups": groups})
            elif kind == "linear":
                _, d_out, bias = item
                layers.append({"kind": "linear",
                               "w": rng.standard_normal((d_out, shape[1])) / np.sqrt(shape[1]),
                               "b": rng.standard_normal(d_out) if bias else None})
            elif kind == "bn":
                layers.append(_bn_layer(rng, shape[1], **bn_options))
            else:
                layers.append({"kind": kind})
        return {"layers": layers, "x": x}
    return make


def _layers_reference(inputs):
    from autograder.course import reference as R
    folded = R.fold_layers(inputs["layers"])
    out, expected = R.run_layers(folded, inputs["x"]), R.run_layers(inputs["layers"], inputs["x"])
    if not np.allclose(out, expected, rtol=1e-10, atol=1e-10):  # the folded list must BE the list
        raise RuntimeError("reference fold_layers changes the network's output")
    return _layer_values(folded, inputs["x"])


def _layer_values(layers, x):
    """What the layer_list protocol returns for ``layers``, computed with torch."""
    from autograder.course import reference as R
    params = []
    for layer in layers:
        if layer["kind"] in ("conv", "linear"):
            w = np.asarray(layer["w"], dtype=np.float64)
            params += [w.reshape(-1), np.zeros(len(w)) if layer.get("b") is None else layer["b"]]
        elif layer["kind"] == "bn":
            params += [np.asarray(layer[n], dtype=np.float64).reshape(-1)
                       for n in ("gamma", "beta", "running_mean", "running_var")]
    return np.concatenate(params), R.run_layers(layers, x)


def _layers_variant(across=(), skip=(), keep_settings=True, bias_when_none=True, fold_first=False):
    """Wrong foldings of a list. ``across``: kinds a BN is (wrongly) folded through into the conv
    or linear layer before them; ``skip``: kinds of layer a BN after them is left unfolded;
    ``keep_settings``: False drops stride/padding/dilation/groups from folded convs;
    ``bias_when_none``: False leaves the folded bias None when the layer had none (its shift is
    lost); ``fold_first``: also drops a BN that has no layer to fold into."""
    def compute(inputs):
        from autograder.course import reference as R
        out = []
        for layer in inputs["layers"]:
            target = None
            if layer["kind"] == "bn":
                for k in range(len(out) - 1, -1, -1):
                    if out[k]["kind"] in ("conv", "linear"):
                        target = k
                        break
                    if out[k]["kind"] not in across:
                        break
                if target is not None and out[target]["kind"] in skip:
                    target = None
            if target is None:
                if not (fold_first and layer["kind"] == "bn"
                        and not any(o["kind"] in ("conv", "linear") for o in out)):
                    out.append(dict(layer))
                continue
            prev = out[target]
            fold = R.fold_conv_bn if prev["kind"] == "conv" else R.fold_linear_bn
            w, b = fold(prev["w"], prev.get("b"), layer["gamma"], layer["beta"],
                        layer["running_mean"], layer["running_var"], layer["eps"])
            if not bias_when_none and prev.get("b") is None:
                b = None
            new = {**prev, "w": w, "b": b}
            if prev["kind"] == "conv" and not keep_settings:
                new = {"kind": "conv", "w": w, "b": b}
            out[target] = new
        return _layer_values(out, inputs["x"])
    return compute


_LAYER_MISTAKES = (
    Mistake("BN folded across a ReLU",
            "a BN that follows a ReLU cannot move into the layer before the ReLU: the ReLU is not "
            "affine, so that BN stays in the list",
            _layers_variant(across=("relu",))),
    Mistake("BN after a linear layer left unfolded",
            "a BN right after a linear layer folds into it as well as one after a convolution",
            _layers_variant(skip=("linear",))),
    Mistake("BN after a convolution left unfolded",
            "every BN that directly follows a convolution is folded into it",
            _layers_variant(skip=("conv",))),
    Mistake("conv settings dropped",
            "a folded convolution keeps the original's stride, padding, dilation and groups "
            "(the seed article's routine lost dilation this way)",
            _layers_variant(keep_settings=False)),
    Mistake("folded bias dropped",
            "a layer without a bias gets one when a BN is folded into it: BN's shift has to go "
            "somewhere",
            _layers_variant(bias_when_none=False)),
    Mistake("BN without a layer before it dropped",
            "a BN with no conv or linear layer before it cannot be folded backwards; it stays",
            _layers_variant(fold_first=True)),
)

_CONV = "conv"
CHECKS.append(Check(
    function="fold_layers",
    returns=("folded_params", "output"),
    compared=("folded_params", "output"),
    reference=_layers_reference,
    protocol="layer_list",
    cases=(
        # First: a list that still runs when a folded conv loses its settings, so that mistake
        # is named from the output's shape rather than by a failure further down the list.
        Case("conv(stride 2) BN ReLU BN grouped conv (a BN after a ReLU)",
             _layers_inputs((3, 4, 9, 7), [
                 (_CONV, 6, (3, 2), {"stride": 2, "padding": 1}), ("bn",), ("relu",), ("bn",),
                 (_CONV, 4, (1, 2), {"groups": 2, "bias": False})])),
        Case("conv(stride 2, no bias) BN ReLU conv(dilation 2) BN flatten linear BN",
             _layers_inputs((2, 3, 11, 9), [
                 (_CONV, 4, (2, 5), {"stride": 2, "padding": 1, "bias": False}), ("bn",), ("relu",),
                 (_CONV, 5, (2, 3), {"padding": 2, "dilation": 2}), ("bn",), ("flatten",),
                 ("linear", 6, True), ("bn",)])),
        Case("BN linear BN ReLU linear(no bias) BN linear",
             _layers_inputs((5, 7), [("bn",), ("linear", 4, True), ("bn",), ("relu",),
                                     ("linear", 3, False), ("bn",), ("linear", 2, True)])),
        Case("BN first, then conv BN ReLU", _layers_inputs((2, 3, 6, 5), [
            ("bn",), (_CONV, 4, (3, 3), {"padding": 1}), ("bn",), ("relu",)]), hidden=True),
        Case("two BNs in a row after a linear layer",
             _layers_inputs((6, 5), [("linear", 4, False), ("bn",), ("bn",), ("relu",)]), hidden=True,
             hint="after the first BN is folded, the second one directly follows the folded layer"),
        Case("depthwise conv, stride 2, dilation 3",
             _layers_inputs((2, 5, 13, 12), [(_CONV, 5, (3, 3), {"groups": 5, "stride": 2,
                                                                  "dilation": 3, "padding": 3}),
                                            ("bn",), ("relu",), (_CONV, 7, (1, 1), {}), ("bn",)]),
             hidden=True),
        Case("conv flatten BN (a BN over flattened features)",
             _layers_inputs((3, 2, 4, 5), [(_CONV, 3, (3, 3), {}), ("flatten",), ("bn",),
                                            ("linear", 4, True)]), hidden=True),
        Case("a layer with no BN after it, negative gamma, a dead channel",
             _layers_inputs((2, 4, 9, 8), [(_CONV, 6, (3, 3), {"padding": 1}), ("relu",),
                                            (_CONV, 5, (3, 3), {"groups": 1, "stride": 2}), ("bn",),
                                            ("flatten",), ("linear", 3, False)],
                            negative_gamma=True, dead=True), hidden=True),
        Case("deep list, random shapes", _layers_inputs((4, 3, 16, 14), [
            (_CONV, 8, (3, 3), {"padding": 1, "bias": False}), ("bn",), ("relu",),
            (_CONV, 8, (3, 3), {"groups": 4, "padding": 1, "stride": 2}), ("bn",), ("relu",),
            (_CONV, 6, (5, 3), {"dilation": 2, "padding": 2, "bias": False}), ("bn",), ("relu",),
            ("flatten",), ("linear", 10, False), ("bn",), ("relu",), ("linear", 3, True)]),
             hidden=True),
    ),
    mistakes=_LAYER_MISTAKES,
))


# ---- a BN before a convolution ---------------------------------------------------------------

def _bn_conv_inputs(w_shape, groups=1, bias=True, eps=1e-5, negative_gamma=False, dead=False,
                    mean_scale=1.0, small_gamma=False):
    """Arguments of fold_bn_conv, in signature order: BN over C_in = w.shape[1] * groups."""
    def make(rng):
        c_in = w_shape[1] * groups
        bn = _bn_layer(rng, c_in, eps=eps, negative_gamma=negative_gamma, dead=dead)
        if small_gamma:
            bn["gamma"][0] = 1e-3
        return {"gamma": bn["gamma"], "beta": bn["beta"],
                "running_mean": mean_scale * bn["running_mean"], "running_var": bn["running_var"],
                "w": rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:])),
                "b": rng.standard_normal(w_shape[0]) if bias else None,
                "groups": groups, "eps": eps}
    return make


def bn_conv_output_gap(w_folded: np.ndarray, b_folded: np.ndarray, pad_value: np.ndarray, inputs: dict,
                       padding: int = 1, stride: int = 1, dilation: int = 2,
                       seed: int = 0) -> tuple[float, float]:
    """max |conv(x padded with pad_value; w_folded, b_folded) - conv(BN(x) zero-padded; w, b)|
    and max |conv(BN(x))| on a random x (torch): the BN-before-conv fold judged by its outputs."""
    from autograder.course import reference as R
    c_in = inputs["w"].shape[1] * inputs["groups"]
    x = np.random.default_rng(seed).standard_normal((2, c_in, 12, 11))
    bn = {"kind": "bn", **{k: inputs[k] for k in ("gamma", "beta", "running_mean", "running_var", "eps")}}
    conv = {"kind": "conv", "w": inputs["w"], "b": inputs["b"], "stride": stride, "padding": padding,
            "dilation": dilation, "groups": inputs["groups"]}
    expected = R.run_layers([bn, conv], x)
    got = R.run_layers([{**conv, "w": w_folded, "b": b_folded, "pad_value": pad_value}], x)
    return float(np.max(np.abs(got - expected))), float(np.max(np.abs(expected)))


def _bn_conv_reference(inputs):
    from autograder.course import reference as R
    w_f, b_f, pad = R.fold_bn_conv(**inputs)
    for padding, stride in ((0, 1), (2, 2)):
        gap, size = bn_conv_output_gap(w_f, b_f, pad, inputs, padding=padding, stride=stride)
        if gap > 1e-9 * max(1.0, size):
            raise RuntimeError(f"reference fold_bn_conv does not reproduce BN -> conv (gap {gap:.3g})")
    return w_f, b_f, pad


def _bn_conv_variant(scale_axis="in", interleaved=False, shift="full", pad="exact",
                     eps_where="inside"):
    """Wrong BN-before-conv folds. ``scale_axis="out"``: the conv -> BN habit; ``interleaved``:
    input channel j of group g taken as channel j * groups + g; ``shift``: "full" (right), "no
    beta" (t = -mean * s), "no weights" (b + sum of t over the group's channels), "centre tap"
    (t weighted by the kernel's centre only); ``pad``: "exact", "mean" (the running mean),
    "zero", "sign" (mean + beta / s)."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        w = R.tensor(inputs["w"])
        groups, eps = inputs["groups"], inputs["eps"]
        gamma, beta = R.tensor(inputs["gamma"]), R.tensor(inputs["beta"])
        mu, var = R.tensor(inputs["running_mean"]), R.tensor(inputs["running_var"])
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        s = gamma / std
        t = -mu * s if shift == "no beta" else beta - mu * s
        c_out, c_group, kh, kw = w.shape
        if interleaved:
            per_in = lambda v: v.reshape(c_group, groups).T
        else:
            per_in = lambda v: v.reshape(groups, c_group)
        s_o = per_in(s).repeat_interleave(c_out // groups, dim=0)
        t_o = per_in(t).repeat_interleave(c_out // groups, dim=0)
        if scale_axis == "out":
            w_f = w * s.reshape(-1, 1, 1, 1)
        else:
            w_f = w * s_o[:, :, None, None]
        if shift == "no weights":
            const = t_o.sum(dim=1)
        elif shift == "centre tap":
            const = (w[:, :, kh // 2, kw // 2] * t_o).sum(dim=1)
        else:
            const = (w * t_o[:, :, None, None]).sum(dim=(1, 2, 3))
        b = torch.zeros(c_out, dtype=w.dtype, device=w.device) if inputs["b"] is None else R.tensor(inputs["b"])
        pad_value = {"exact": mu - beta / s, "mean": mu, "zero": torch.zeros_like(mu),
                     "sign": mu + beta / s}[pad]
        return R.numpy(w_f), R.numpy(b + const), R.numpy(pad_value)
    return compute


_BN_CONV_MISTAKES = (
    Mistake("scaled along the output channels",
            "here BN acts on the conv's INPUT: its factor for input channel c multiplies every "
            "weight that reads channel c, not the filter of an output channel",
            _bn_conv_variant(scale_axis="out")),
    Mistake("grouped channels interleaved",
            "with groups, the g-th group of output channels reads the g-th block of consecutive "
            "input channels, not every groups-th channel",
            _bn_conv_variant(interleaved=True)),
    Mistake("beta missing from the shift",
            "BN's constant term holds beta as well as the scaled running mean",
            _bn_conv_variant(shift="no beta")),
    Mistake("shift not weighted by the kernel",
            "BN's shift enters the conv as a constant image: each output channel adds that "
            "constant times every weight of its filter, summed over channels and the window",
            _bn_conv_variant(shift="no weights")),
    Mistake("shift weighted by one tap only",
            "a constant input meets every tap of the kernel window, not only the centre one",
            _bn_conv_variant(shift="centre tap")),
    Mistake("pad value ignores beta",
            "BN maps the running mean to beta, not to 0; the pad value is the input BN maps to 0",
            _bn_conv_variant(pad="mean")),
    Mistake("zero pad value",
            "the original conv pads BN's output with zeros; padding the raw input with zeros "
            "feeds BN's image of 0, which is not 0, into the border",
            _bn_conv_variant(pad="zero")),
    Mistake("pad value sign flipped",
            "the pad value is the input that BN maps to 0: recheck the sign of beta's term",
            _bn_conv_variant(pad="sign")),
    Mistake("std without eps", "BN adds eps to the running variance in eval mode too",
            _bn_conv_variant(eps_where="missing")),
    Mistake("eps outside the square root",
            "eps is added to the running variance under the square root, not to the std",
            _bn_conv_variant(eps_where="outside")),
)

CHECKS.append(Check(
    function="fold_bn_conv",
    returns=("w_folded", "b_folded", "pad_value"),
    compared=("w_folded", "b_folded", "pad_value"),
    reference=_bn_conv_reference,
    cases=(
        # C_out = 1 first: the conv -> BN habit (scaling output channels) then broadcasts to the
        # wrong shape and can be named rather than raising a broadcasting error.
        Case("C_out=1, C_in=4, 3x5, with bias", _bn_conv_inputs((1, 4, 3, 5))),
        Case("C_out=6, C_in=4, 3x2, no bias", _bn_conv_inputs((6, 4, 3, 2), bias=False),
             hint="without a conv bias the folded conv still gets one: BN's shift passes "
                  "through the weights"),
        Case("groups=2: C_in=4, C_out=6, 1x3", _bn_conv_inputs((6, 2, 1, 3), groups=2)),
        Case("depthwise 5x1x3x3, groups=5", _bn_conv_inputs((5, 1, 3, 3), groups=5), hidden=True),
        Case("groups=3, C_in=6, C_out=9, no bias", _bn_conv_inputs((9, 2, 3, 3), groups=3, bias=False),
             hidden=True),
        Case("1x1 conv 7x5", _bn_conv_inputs((7, 5, 1, 1)), hidden=True),
        Case("negative gamma, large running_mean",
             _bn_conv_inputs((4, 6, 3, 3), negative_gamma=True, mean_scale=50.0), hidden=True),
        Case("a dead channel (running_var=0), eps=0.1",
             _bn_conv_inputs((3, 5, 3, 3), dead=True, eps=0.1), hidden=True, hint=_DEAD),
        Case("a tiny gamma (1e-3)", _bn_conv_inputs((4, 3, 3, 3), small_gamma=True), hidden=True,
             rtol=1e-7, atol=1e-7,
             hint="gamma 1e-3 on channel 0 makes its pad value large; that is right, not a bug"),
    ),
    mistakes=_BN_CONV_MISTAKES,
))
