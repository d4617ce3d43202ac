"""Planted bugs for ch6_folding; each must lose exactly its function's points."""
from autograder.course.samples import Bug, edited_solution

BUGS = [
    Bug("scale-input-channels", "fold_conv_bn", "scaled along the input channels", '''\
def fold_conv_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale[None, :, None, None], (b - running_mean) * scale + beta'''),
    Bug("conv-bias-missing-mean", "fold_conv_bn", "mean term missing from the bias", '''\
def fold_conv_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale[:, None, None, None], b * scale + beta'''),
    Bug("conv-std-without-eps", "fold_conv_bn", "std without eps", '''\
def fold_conv_bn(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var)
    if b is None:
        b = np.zeros_like(running_mean)
    return w * scale[:, None, None, None], (b - running_mean) * scale + beta'''),
]


def _layers(*edits):
    return edited_solution("ch6_folding", "fold_layers", *edits)


def _conv_t(*edits):
    return edited_solution("ch6_folding", "fold_conv_transpose_bn", *edits)


def _bn_conv(*edits):
    return edited_solution("ch6_folding", "fold_bn_conv", *edits)


_FOLD_CHECK = 'prev is not None and prev["kind"] in ("conv", "linear")'

_S_W = "s_w = np.repeat(scale.reshape(groups, c_og), c_in // groups, axis=0)"

BUGS += [
    Bug("convt-conv2d-layout", "fold_conv_transpose_bn", "scaled along the first axis, as for Conv2d",
        _conv_t(("w_folded = w * s_w[:, :, None, None]", "w_folded = w * scale[:, None, None, None]"))),
    Bug("convt-interleaved", "fold_conv_transpose_bn", "grouped output channels interleaved",
        _conv_t((_S_W, "s_w = np.repeat(scale.reshape(c_og, groups).T, c_in // groups, axis=0)"))),
    Bug("convt-dealt", "fold_conv_transpose_bn", "input channels dealt to the groups in turn",
        _conv_t((_S_W, "s_w = np.tile(scale.reshape(groups, c_og), (c_in // groups, 1))"))),
    Bug("convt-bias-missing-mean", "fold_conv_transpose_bn", "mean term missing from the bias",
        _conv_t(("b_folded = (b0 - running_mean) * scale + beta", "b_folded = b0 * scale + beta"))),
    Bug("convt-eps-outside", "fold_conv_transpose_bn", "eps outside the square root",
        _conv_t(("scale = gamma / np.sqrt(running_var + eps)", "scale = gamma / (np.sqrt(running_var) + eps)"))),
    Bug("layers-across-relu", "fold_layers", "BN folded across a ReLU", '''\
def fold_layers(layers):
    folded = []
    for layer in layers:
        k = len(folded) - 1
        while k >= 0 and folded[k]["kind"] == "relu":    # "BN commutes with ReLU": it does not
            k -= 1
        if layer["kind"] == "bn" and k >= 0 and folded[k]["kind"] in ("conv", "linear"):
            prev = folded[k]
            scale = layer["gamma"] / np.sqrt(layer["running_var"] + layer["eps"])
            b = np.zeros(len(scale)) if prev["b"] is None else prev["b"]
            w = prev["w"] * scale.reshape((-1,) + (1,) * (prev["w"].ndim - 1))
            folded[k] = {**prev, "w": w, "b": (b - layer["running_mean"]) * scale + layer["beta"]}
        else:
            folded.append(dict(layer))
    return folded'''),
    Bug("layers-linear-unfolded", "fold_layers", "BN after a linear layer left unfolded",
        _layers((_FOLD_CHECK, 'prev is not None and prev["kind"] == "conv"'))),
    Bug("layers-conv-unfolded", "fold_layers", "BN after a convolution left unfolded",
        _layers((_FOLD_CHECK, 'prev is not None and prev["kind"] == "linear"'))),
    Bug("layers-settings-dropped", "fold_layers", "conv settings dropped",
        _layers(("folded[-1] = {**prev, ", 'folded[-1] = {"kind": prev["kind"], '))),
    Bug("layers-bias-dropped", "fold_layers", "folded bias dropped",
        _layers(('"b": (b - layer["running_mean"]) * scale + layer["beta"]}',
                 '"b": None if prev["b"] is None else (b - layer["running_mean"]) * scale + layer["beta"]}'))),
    Bug("layers-first-bn-dropped", "fold_layers", "BN without a layer before it dropped",
        _layers(("        else:", '        elif layer["kind"] != "bn" or prev is not None:'))),
    Bug("bn-conv-output-channels", "fold_bn_conv", "scaled along the output channels",
        _bn_conv(("w_folded = w * s_w[:, :, None, None]", "w_folded = w * s[:, None, None, None]"))),
    Bug("bn-conv-groups-interleaved", "fold_bn_conv", "grouped channels interleaved",
        _bn_conv(("reshape(groups, c_group)", "reshape(c_group, groups).T"))),
    Bug("bn-conv-shift-without-beta", "fold_bn_conv", "beta missing from the shift",
        _bn_conv(("t = beta - running_mean * s", "t = -running_mean * s"))),
    Bug("bn-conv-shift-unweighted", "fold_bn_conv", "shift not weighted by the kernel",
        _bn_conv(("b_folded = b0 + (w * t_w[:, :, None, None]).sum(axis=(1, 2, 3))",
                  "b_folded = b0 + t_w.sum(axis=1)"))),
    Bug("bn-conv-centre-tap", "fold_bn_conv", "shift weighted by one tap only",
        _bn_conv(("b_folded = b0 + (w * t_w[:, :, None, None]).sum(axis=(1, 2, 3))",
                  "b_folded = b0 + (w[:, :, w.shape[2] // 2, w.shape[3] // 2] * t_w).sum(axis=1)"))),
    Bug("bn-conv-pad-mean", "fold_bn_conv", "pad value ignores beta",
        _bn_conv(("pad_value = running_mean - beta / s", "pad_value = running_mean.copy()"))),
    Bug("bn-conv-pad-zero", "fold_bn_conv", "zero pad value",
        _bn_conv(("pad_value = running_mean - beta / s", "pad_value = np.zeros_like(running_mean)"))),
    Bug("bn-conv-pad-sign", "fold_bn_conv", "pad value sign flipped",
        _bn_conv(("pad_value = running_mean - beta / s", "pad_value = running_mean + beta / s"))),
    Bug("bn-conv-std-without-eps", "fold_bn_conv", "std without eps",
        _bn_conv(("s = gamma / np.sqrt(running_var + eps)", "s = gamma / np.sqrt(running_var)"))),
    Bug("bn-conv-eps-outside", "fold_bn_conv", "eps outside the square root",
        _bn_conv(("s = gamma / np.sqrt(running_var + eps)", "s = gamma / (np.sqrt(running_var) + eps)"))),
]
