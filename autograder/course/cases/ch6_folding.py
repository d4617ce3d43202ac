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


def _mistakes():
    return (
        Mistake("scaled along the input channels",
                "BN's factor for channel c multiplied the weights that READ input channel c; BN "
                "acts after the convolution, on the channel that filter c writes",
                _variant(scale_axis="in"),
                correction="w_folded = w * scale[:, None, None, None]"),
        Mistake("mean term missing from the bias",
                "the folded bias has lost the running mean: BN subtracts it from every output "
                "before scaling, and no other part of the folded layer does",
                _variant(mean_term=False),
                correction="b_folded = (b - running_mean) * scale + beta"),
        Mistake("std without eps",
                "the factor divides by the bare running standard deviation: a dead channel "
                "(running variance 0) then divides by zero, where BN in eval mode does not",
                _variant(eps_where="missing"),
                correction="scale = gamma / np.sqrt(running_var + eps)"),
        Mistake("eps outside the square root",
                "eps was added to the standard deviation; BN's eval mode adds it to the running "
                "variance before the root",
                _variant(eps_where="outside"),
                correction="scale = gamma / np.sqrt(running_var + eps)"),
        Mistake("weights left unscaled",
                "that is the seed article's special case: the weights came back untouched, so "
                "BN's per-channel scale survives only in the bias",
                _variant(seed_rule=True),
                correction="w_folded = w * scale[:, None, None, None]; b_folded = (b - running_mean) * scale + beta"),
    )


_DEAD = ("a channel whose running variance is 0 is legal (it was always constant in training); "
         "eps keeps its scale finite")

# ---- a transposed convolution, then BN ---------------------------------------------------------

def _conv_t_inputs(w_shape, groups=1, bias=True, eps=1e-5, negative_gamma=False, dead=False,
                   mean_scale=1.0):
    """Arguments of fold_conv_transpose_bn: w in ConvTranspose2d's layout (C_in, C_out // groups,
    kH, kW), BN over C_out = w.shape[1] * groups."""
    def make(rng):
        c_out = w_shape[1] * groups
        gamma = rng.uniform(0.5, 2.0, c_out)
        if negative_gamma:
            gamma *= rng.choice([-1.0, 1.0], c_out)
            gamma[0] = -abs(gamma[0])
        running_var = rng.uniform(0.5, 2.0, c_out)
        if dead:
            running_var[0] = 0.0
        return {"w": rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:])),
                "b": rng.standard_normal(c_out) if bias else None,
                "gamma": gamma, "beta": rng.uniform(-1.0, 1.0, c_out),
                "running_mean": mean_scale * rng.standard_normal(c_out), "running_var": running_var,
                "groups": groups, "eps": eps}
    return make


def _conv_t_reference(inputs):
    from autograder.course import reference as R
    return R.fold_conv_transpose_bn(**inputs)   # checks itself with conv_transpose2d


def _conv_t_variant(layout="right", mean_term=True, eps_where="inside"):
    """Wrong folds of ConvTranspose2d -> BN. ``layout``: "right"; "axis 0" (the Conv2d habit:
    the factor along w's first axis, which has C_in entries); "interleaved" (output channel j
    of group g taken as j * groups + g); "dealt" (input channels dealt to the groups in turn,
    input channel i in group i % groups)."""
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        w = R.tensor(inputs["w"])
        c_in, c_og = w.shape[:2]
        groups, eps = inputs["groups"], inputs["eps"]
        gamma, beta = R.tensor(inputs["gamma"]), R.tensor(inputs["beta"])
        mu, var = R.tensor(inputs["running_mean"]), R.tensor(inputs["running_var"])
        std = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
               "missing": torch.sqrt(var)}[eps_where]
        s = gamma / std
        if layout == "axis 0":
            w_f = w * s.reshape(-1, 1, 1, 1)
        else:
            blocks = s.reshape(c_og, groups).T if layout == "interleaved" else s.reshape(groups, c_og)
            if layout == "dealt":
                per_w = blocks.repeat(c_in // groups, 1)
            else:
                per_w = blocks.repeat_interleave(c_in // groups, dim=0)
            w_f = w * per_w[:, :, None, None]
        b = torch.zeros(c_og * groups, dtype=w.dtype, device=w.device) if inputs["b"] is None \
            else R.tensor(inputs["b"])
        b_f = (b - mu) * s + beta if mean_term else b * s + beta
        return R.numpy(w_f), R.numpy(b_f)
    return compute


_CONV_T_MISTAKES = (
    Mistake("scaled along the first axis, as for Conv2d",
            "a transposed convolution stores its weights (C_in, C_out // groups, kH, kW): the "
            "first axis indexes the channels it READS, so a factor along it scales inputs, "
            "while BN acts on the channels it writes",
            _conv_t_variant(layout="axis 0"),
            correction="s_w = np.repeat(scale.reshape(groups, c_og), c_in // groups, axis=0); "
                       "w_folded = w * s_w[:, :, None, None]"),
    Mistake("grouped output channels interleaved",
            "with groups, output channel g * (C_out / groups) + j is column j of group g's block "
            "of w: the output channels of a group are consecutive, not every groups-th one",
            _conv_t_variant(layout="interleaved"),
            correction="s_w = np.repeat(scale.reshape(groups, c_og), c_in // groups, axis=0)"),
    Mistake("input channels dealt to the groups in turn",
            "a group's input channels are a consecutive block of C_in / groups rows of w; "
            "repeating the per-group factors as a whole table puts row i in group i % groups",
            _conv_t_variant(layout="dealt"),
            correction="s_w = np.repeat(scale.reshape(groups, c_og), c_in // groups, axis=0)"),
    Mistake("mean term missing from the bias",
            "the folded bias has lost the running mean: BN subtracts it from every output "
            "before scaling, and no other part of the folded layer does",
            _conv_t_variant(mean_term=False),
            correction="b_folded = (b - running_mean) * scale + beta"),
    Mistake("std without eps",
            "the factor divides by the bare running standard deviation: a dead channel "
            "(running variance 0) then divides by zero, where BN in eval mode does not",
            _conv_t_variant(eps_where="missing"),
            correction="scale = gamma / np.sqrt(running_var + eps)"),
    Mistake("eps outside the square root",
            "eps was added to the standard deviation; BN's eval mode adds it to the running "
            "variance before the root",
            _conv_t_variant(eps_where="outside"),
            correction="scale = gamma / np.sqrt(running_var + eps)"),
)

_CONV_TRANSPOSE = Check(
    function="fold_conv_transpose_bn",
    returns=("w_folded", "b_folded"),
    compared=("w_folded", "b_folded"),
    reference=_conv_t_reference,
    cases=(
        # C_in = 1 first: the Conv2d habit (a factor along axis 0) then broadcasts, to the wrong
        # shape, and is named instead of raising a broadcasting error.
        Case("C_in=1, C_out=5, 3x2, with bias", _conv_t_inputs((1, 5, 3, 2))),
        Case("C_in=3, C_out=4, 2x5, no bias", _conv_t_inputs((3, 4, 2, 5), bias=False),
             hint="without a bias the folded layer still gets one: beta and the running mean "
                  "do not vanish with b"),
        Case("groups=2: C_in=4, C_out=6, 2x1", _conv_t_inputs((4, 3, 2, 1), groups=2)),
        Case("groups=3: C_in=6, C_out=3 (one output channel per group)",
             _conv_t_inputs((6, 1, 2, 3), groups=3)),
        Case("depthwise: C_in=C_out=groups=5", _conv_t_inputs((5, 1, 3, 3), groups=5), hidden=True),
        Case("groups=2: C_in=8, C_out=6, no bias", _conv_t_inputs((8, 3, 4, 4), groups=2, bias=False),
             hidden=True),
        Case("random 16x8x3x3", _conv_t_inputs((16, 8, 3, 3)), hidden=True),
        Case("a dead channel (running_var=0), eps 0.1", _conv_t_inputs((4, 6, 3, 3), dead=True, eps=0.1),
             hidden=True, hint=_DEAD),
        Case("negative gamma, large running_mean, groups=4",
             _conv_t_inputs((8, 2, 2, 2), groups=4, negative_gamma=True, mean_scale=50.0), hidden=True),
        Case("1x1 kernel, C_in=7, C_out=2", _conv_t_inputs((7, 2, 1, 1)), hidden=True),
    ),
    mistakes=_CONV_T_MISTAKES,
)

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
                 hint="C_in differs from C_out here: a factor lined up with the wrong axis of w "
                      "cannot broadcast"),
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
        mistakes=_mistakes(),
    ),
    _CONV_TRANSPOSE,
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
            _layers_variant(across=("relu",)),
            correction='fold only when the last layer of the new list is "conv" or "linear"'),
    Mistake("BN after a linear layer left unfolded",
            "a BN that directly follows a linear layer is still in the list: the rule that "
            "folds it after a convolution applies to a linear layer as well",
            _layers_variant(skip=("linear",)),
            correction='prev["kind"] in ("conv", "linear")'),
    Mistake("BN after a convolution left unfolded",
            "a BN that directly follows a convolution is still in the list, although nothing "
            "non-affine sits between them",
            _layers_variant(skip=("conv",)),
            correction='prev["kind"] in ("conv", "linear")'),
    Mistake("conv settings dropped",
            "a folded convolution keeps the original's stride, padding, dilation and groups "
            "(the seed article's routine lost dilation this way)",
            _layers_variant(keep_settings=False),
            correction='folded[-1] = {**prev, "w": w, "b": b_new}'),
    Mistake("folded bias dropped",
            "a layer that had no bias still has none after the fold, so BN's shift, which "
            "does not depend on the layer's bias, was lost",
            _layers_variant(bias_when_none=False),
            correction="b_new = (b0 - running_mean) * scale + beta, with b0 = 0 when b is None"),
    Mistake("BN without a layer before it dropped",
            "a BN with no conv or linear layer before it has nothing to fold into, yet it has "
            "gone from the list, and its map with it",
            _layers_variant(fold_first=True),
            correction="else: folded.append(dict(layer))"),
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
            "the factor was applied to whole filters, the Conv -> BN habit; here BN acts on the "
            "conv's INPUT, before any filter mixes its channels",
            _bn_conv_variant(scale_axis="out"),
            correction="w_folded = w * s_w[:, :, None, None], s_w[o, j] the factor of the input channel weight column j of filter o reads"),
    Mistake("grouped channels interleaved",
            "the factors went to every groups-th input channel: a grouped conv's group reads a "
            "block of consecutive input channels",
            _bn_conv_variant(interleaved=True),
            correction="s_w = np.repeat(s.reshape(groups, c_group), c_out // groups, axis=0)"),
    Mistake("beta missing from the shift",
            "the folded bias moves with the running mean but not with beta: part of BN's "
            "constant term never reached the bias",
            _bn_conv_variant(shift="no beta"),
            correction="t = beta - running_mean * s"),
    Mistake("shift not weighted by the kernel",
            "BN's constant term reached the bias without passing through the filter: a "
            "constant input image is still multiplied by the weights it meets",
            _bn_conv_variant(shift="no weights"),
            correction="b_folded = b0 + (w * t_w[:, :, None, None]).sum(axis=(1, 2, 3))"),
    Mistake("shift weighted by one tap only",
            "the constant term was weighted by the centre tap alone, as if the window were 1x1; "
            "a constant image is under the whole window",
            _bn_conv_variant(shift="centre tap"),
            correction="b_folded = b0 + (w * t_w[:, :, None, None]).sum(axis=(1, 2, 3))"),
    Mistake("pad value ignores beta",
            "padding x with the running mean feeds BN's image of it, beta, into the border, "
            "where the original conv saw zeros",
            _bn_conv_variant(pad="mean"),
            correction="pad_value = running_mean - beta / s"),
    Mistake("zero pad value",
            "the original conv pads BN's output with zeros; padding the raw input with zeros "
            "feeds BN's image of 0, which is not 0, into the border",
            _bn_conv_variant(pad="zero"),
            correction="pad_value = running_mean - beta / s"),
    Mistake("pad value sign flipped",
            "BN maps this pad value to twice beta, so the border is fed 2 beta where the "
            "original conv saw zeros: beta's term enters with the wrong sign",
            _bn_conv_variant(pad="sign"),
            correction="pad_value = running_mean - beta / s"),
    Mistake("std without eps",
            "the factor divides by the bare running standard deviation: a dead channel "
            "(running variance 0) then divides by zero, where BN in eval mode does not",
            _bn_conv_variant(eps_where="missing"),
            correction="s = gamma / np.sqrt(running_var + eps)"),
    Mistake("eps outside the square root",
            "eps was added to the standard deviation; BN's eval mode adds it to the running "
            "variance before the root",
            _bn_conv_variant(eps_where="outside"),
            correction="s = gamma / np.sqrt(running_var + eps)"),
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
