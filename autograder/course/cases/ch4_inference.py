"""Chapter 4: a batch-norm layer with state, and a small network trained with it (the capstone).

* ``BatchNorm`` is a class mirroring ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``. The
  ``layer_script`` protocol builds it, sets its weight and bias (and sometimes its buffers, as in
  the middle of training) or keeps the constructor's own (as real use does: a constructor whose
  weight and running_var are one array is then seen), then runs a script of train and eval steps; the layer's outputs and
  buffers after every step are compared with the torch layer's trajectory. Keras' conventions
  are folded in as a classmethod, ``BatchNorm.from_keras(num_features, momentum, epsilon)``.
* ``train_bn_mlp`` trains affine -> BN -> ReLU, twice, then an affine classifier, on batches of
  scikit-learn's bundled 8x8 digits with SGD, and scores a held-out batch in eval mode. The
  ``mlp_training`` protocol compares the loss, every parameter and every buffer after every step
  with the same network in torch, float64.

NumPy only at import time: the grading sandbox imports this module without torch.
"""
import functools

import numpy as np

from autograder.course.checks import Case, Check, Mistake

# ---- BatchNorm: the layer and its script ------------------------------------------------

LAYER_RETURNS = ("initial state", "outputs", "running_mean", "running_var",
                 "num_batches_tracked", "training")


def _script_inputs(shape, modes, momentum=0.1, eps=1e-5, keras=None, loc=0.0, scale=1.0,
                   mid_training=False, constant_channel=False, eval_n=None, random_shape=False,
                   as_built=False):
    """A layer's inputs and a script of steps, ``modes`` a string of "t" (train) and "e" (eval).

    The batches' per-channel centre and spread drift from step to step, so the running
    statistics never equal one batch's. ``mid_training`` starts from other buffers and a
    non-zero num_batches_tracked; ``eval_n`` is the batch size of eval steps (N = 1 is legal
    there); ``constant_channel`` makes channel 0 constant in every batch; ``as_built`` leaves
    weight and bias as the constructor made them (None).
    """
    def make(rng):
        shp = list(shape)
        steps_modes = modes
        if random_shape:
            shp[0], shp[1] = int(rng.integers(3, 33)), int(rng.integers(1, 17))
            if len(shp) == 4:
                shp[2], shp[3] = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            steps_modes = "t" + "".join(rng.choice(["t", "t", "e"], int(rng.integers(4, 12))))
        c = shp[1]
        pad = [1] * (len(shp) - 2)
        centre = loc + rng.uniform(-2, 2, c)
        spread = scale * rng.uniform(0.5, 2.0, c)
        steps = []
        for k, mode in enumerate(steps_modes):
            step_shape = list(shp)
            if mode == "e" and eval_n is not None:
                step_shape[0] = eval_n
            drift = 1.0 + 0.3 * np.sin(k + np.arange(c))
            x = ((centre * drift).reshape([1, c] + pad)
                 + (spread * drift).reshape([1, c] + pad) * rng.standard_normal(step_shape))
            if constant_channel:
                x[:, 0] = 3.0
            steps.append({"mode": "train" if mode == "t" else "eval", "x": x})
        start = {"running_mean": None, "running_var": None, "num_batches_tracked": None}
        if mid_training:
            start = {"running_mean": rng.uniform(-2, 2, c), "running_var": rng.uniform(0.2, 3.0, c),
                     "num_batches_tracked": int(rng.integers(1, 20))}
        weight, bias = rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c)
        if as_built:
            weight = bias = None
        return {"num_features": c, "eps": eps, "momentum": momentum, "keras": keras,
                "weight": weight, "bias": bias, **start, "steps": steps}
    return make


def _torch_conventions(inputs):
    """(momentum, eps) in PyTorch's convention; Keras' momentum weighs the OLD average."""
    keras = inputs["keras"]
    if keras is None:
        return inputs["momentum"], inputs["eps"]
    return 1.0 - keras["momentum"], keras["epsilon"]


# Compared (and reported) in this order: a wrong buffer is the root cause of a wrong eval output.
LAYER_COMPARED = ("initial state", "running_mean", "running_var", "num_batches_tracked",
                  "training", "outputs")


def _reordered(returns, compared):
    """Wrap a function returning values named ``returns`` so it returns them in ``compared``'s
    order (the order the verdict compares in: root cause first)."""
    def wrap(compute):
        @functools.wraps(compute)
        def ordered(inputs):
            values = dict(zip(returns, compute(inputs)))
            return tuple(values[n] for n in compared)
        return ordered
    return wrap


_in_compared_order = _reordered(LAYER_RETURNS, LAYER_COMPARED)


@_in_compared_order
def _layer_reference(inputs):
    from autograder.course import reference as R
    keras = inputs["keras"]
    if keras is not None:  # what Keras does: biased variance in the moving average
        return R.keras_batchnorm_layer_script(
            inputs["num_features"], [(s["mode"], s["x"]) for s in inputs["steps"]],
            inputs["weight"], inputs["bias"], momentum=keras["momentum"], epsilon=keras["epsilon"],
            running_mean=inputs["running_mean"], running_var=inputs["running_var"],
            num_batches_tracked=inputs["num_batches_tracked"])
    momentum, eps = _torch_conventions(inputs)
    return R.batchnorm_layer_script(
        inputs["num_features"], [(s["mode"], s["x"]) for s in inputs["steps"]], inputs["weight"],
        inputs["bias"], eps=eps, momentum=momentum, running_mean=inputs["running_mean"],
        running_var=inputs["running_var"], num_batches_tracked=inputs["num_batches_tracked"])


def _layer_variant(biased_running=False, flipped=False, none_as=None, count=True,
                   eval_batch_stats=False, update_in_eval=False, running_in_training=False,
                   keras_raw_momentum=False, keras_default_eps=False, keras_torch_converted=False,
                   zero_as_none=False, weight_is_running_var=False, bias_is_running_mean=False,
                   buffers_updated_first=False):
    """A wrong layer run through the same script, for naming a student's mistake. A layer from
    ``from_keras`` keeps the biased running variance (Keras' rule) unless the mistake is
    ``keras_torch_converted``, the torch layer with momentum 1 - m. ``weight_is_running_var`` /
    ``bias_is_running_mean``: a constructor that made them one array, updated in place; the
    alias lasts while the script assigns neither of the two. ``buffers_updated_first``: the
    training step updates the buffers before it normalizes (the same outputs unless aliased)."""
    @_in_compared_order
    def compute(inputs):
        import torch

        from autograder.course import reference as R
        momentum, eps = _torch_conventions(inputs)
        biased = biased_running
        if inputs["keras"] is not None:
            momentum = inputs["keras"]["momentum"] if keras_raw_momentum else momentum
            eps = 1e-5 if keras_default_eps else eps
            biased = not keras_torch_converted
        c = inputs["num_features"]
        rm = R.tensor(np.zeros(c) if inputs["running_mean"] is None else inputs["running_mean"])
        rv = R.tensor(np.ones(c) if inputs["running_var"] is None else inputs["running_var"])
        reported = tracked = inputs["num_batches_tracked"] or 0
        w = R.tensor(np.ones(c) if inputs["weight"] is None else inputs["weight"])
        b = R.tensor(np.zeros(c) if inputs["bias"] is None else inputs["bias"])
        w_aliased = (weight_is_running_var and inputs["weight"] is None
                     and inputs["running_var"] is None)
        b_aliased = (bias_is_running_mean and inputs["bias"] is None
                     and inputs["running_mean"] is None)
        initial = np.concatenate([np.ones(c), np.zeros(c), np.zeros(c), np.ones(c), [0.0, 1.0]])
        rows = {k: [] for k in LAYER_RETURNS[1:]}
        for step in inputs["steps"]:
            x = R.tensor(step["x"])
            train = step["mode"] == "train"
            dims = [0] + list(range(2, x.ndim))
            per_channel = [1, c] + [1] * (x.ndim - 2)
            mu, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
            if train and not running_in_training or not train and eval_batch_stats:
                m_use, v_use = mu, var
            else:
                m_use, v_use = rm, rv

            def normalized(m_use, v_use, w, b, x=x, per_channel=per_channel):
                return (w.reshape(per_channel) * (x - m_use.reshape(per_channel))
                        / torch.sqrt(v_use.reshape(per_channel) + eps) + b.reshape(per_channel))
            out = normalized(m_use, v_use, w, b)
            if train or update_in_eval:
                tracked += 1
                reported += 1 if count else 0
                factor = momentum
                if momentum is None or (zero_as_none and momentum == 0):
                    factor = 1.0 / tracked if none_as is None else none_as
                n = x.numel() // c
                var_run = var if biased else var * n / max(n - 1, 1)
                if flipped:
                    rm, rv = factor * rm + (1 - factor) * mu, factor * rv + (1 - factor) * var_run
                else:
                    rm, rv = (1 - factor) * rm + factor * mu, (1 - factor) * rv + factor * var_run
                w = rv if w_aliased else w
                b = rm if b_aliased else b
                if not train:  # updated first, then normalized with the updated statistics
                    out = normalized(rm, rv, w, b)
                elif buffers_updated_first:  # the batch's statistics, the updated weight and bias
                    out = normalized(m_use, v_use, w, b)
            rows["outputs"].append(R.numpy(out).ravel())
            rows["running_mean"].append(R.numpy(rm))
            rows["running_var"].append(R.numpy(rv))
            rows["num_batches_tracked"].append(float(reported))
            rows["training"].append(float(train))
        return (initial, np.concatenate(rows["outputs"]), np.stack(rows["running_mean"]),
                np.stack(rows["running_var"]), np.array(rows["num_batches_tracked"]),
                np.array(rows["training"]))
    return compute


_LAYER_MISTAKES = (
    Mistake("biased running variance",
            "running_var was fed the very variance the batch was normalized with; torch's buffer "
            "averages another estimate of it, and the gap grows as the batch shrinks",
            _layer_variant(biased_running=True),
            correction="batch_var = var * n / (n - 1)  # n values per channel"),
    Mistake("momentum weighting flipped",
            "the running average gave momentum's weight to the old average and the rest to the "
            "batch: the convention of the other framework",
            _layer_variant(flipped=True),
            correction="running_mean = (1 - m) * running_mean + m * mean"),
    Mistake("momentum None treated as 0.1",
            "momentum None got a fixed weight, so old batches fade geometrically, where None asks "
            "for every batch since the count began to weigh the same",
            _layer_variant(none_as=0.1),
            correction="m = 1.0 / self.num_batches_tracked  # after the increment"),
    Mistake("momentum 0 treated as None",
            "momentum 0.0 is a number, and a legal one, yet the layer averaged as for None: "
            "0.0 is false in an `or` or an `if momentum`",
            _layer_variant(zero_as_none=True),
            correction="m = 1.0 / count if self.momentum is None else self.momentum"),
    Mistake("num_batches_tracked not counted",
            "num_batches_tracked stayed where it started while training steps went by, so it no "
            "longer says how many batches the running statistics have seen",
            _layer_variant(count=False),
            correction="self.num_batches_tracked += 1  # at every training-mode forward"),
    Mistake("batch statistics used at eval",
            "in eval mode the output of one example changed with the rest of its batch: the "
            "statistics came from the batch itself",
            _layer_variant(eval_batch_stats=True),
            correction="mean, var = self.running_mean, self.running_var  # eval mode"),
    Mistake("running statistics updated at eval",
            "the buffers moved during an eval-mode step: evaluating the model changed it",
            _layer_variant(update_in_eval=True),
            correction="if self.training: update the buffers (eval mode leaves them alone)"),
    Mistake("running statistics used in training",
            "a training step normalized with the running statistics: its output then leans on "
            "past batches and the batch's own mean is not removed",
            _layer_variant(running_in_training=True),
            correction="mean, var = x.mean(axis=axes), x.var(axis=axes)  # training mode"),
    Mistake("Keras momentum not converted",
            "Keras' momentum went in as PyTorch's: with 0.99 each new batch then takes almost all "
            "of the weight, and the buffers jump to every batch's statistics",
            _layer_variant(keras_raw_momentum=True),
            correction="cls(num_features, eps=epsilon, momentum=1.0 - momentum)"),
    Mistake("Keras epsilon ignored",
            "the layer built by from_keras normalized with torch's default constant under the "
            "square root: Keras' own was lost on the way",
            _layer_variant(keras_default_eps=True),
            correction="cls(num_features, eps=epsilon, ...)"),
    Mistake("Keras layer converted to torch's running variance",
            "the from_keras layer's moving variance follows torch's rule for the batch variance it "
            "averages; Keras feeds its moving_variance a different one (Chapter 4's table)",
            _layer_variant(keras_torch_converted=True),
            correction="from_keras: average the biased batch variance var into running_var"),
    Mistake("weight is running_var",
            "the layer's weight and running_var are one array: a training step that updates the "
            "running variance in place rescales every later output by it",
            _layer_variant(weight_is_running_var=True),
            correction="self.weight = np.ones(num_features)\n"
                       "self.running_var = np.ones(num_features)  # two arrays"),
    Mistake("weight is running_var",
            "the layer's weight and running_var are one array: a training step that updates "
            "running_var in place rescales its own output and every later one by it",
            _layer_variant(weight_is_running_var=True, buffers_updated_first=True),
            correction="self.weight = np.ones(num_features)\n"
                       "self.running_var = np.ones(num_features)  # two arrays"),
    Mistake("bias is running_mean",
            "the layer's bias and running_mean are one array: a training step that updates the "
            "running mean in place shifts every later output by it",
            _layer_variant(bias_is_running_mean=True),
            correction="self.bias = np.zeros(num_features)\n"
                       "self.running_mean = np.zeros(num_features)  # two arrays"),
    Mistake("bias is running_mean",
            "the layer's bias and running_mean are one array: a training step that updates "
            "running_mean in place shifts its own output and every later one by it",
            _layer_variant(bias_is_running_mean=True, buffers_updated_first=True),
            correction="self.bias = np.zeros(num_features)\n"
                       "self.running_mean = np.zeros(num_features)  # two arrays"),
)

_NONE_HINT = ("momentum None: the cumulative average runs over the batches this layer has "
              "counted, which for a layer restarted mid-training includes those before the "
              "restart")
_ONE_PASS = ("with mean 1e6 and std 1e-3, a variance computed as the mean of the squares minus "
             "the squared mean subtracts two huge numbers that agree in every digit that matters")
_KERAS = {"momentum": 0.99, "epsilon": 1e-3}
_AS_BUILT = ("the layer runs with the weight, bias and buffers its constructor made, nothing "
             "assigned to them: compare what forward reads at each step with what it should be")

_LAYER = Check(
    function="BatchNorm",
    returns=LAYER_RETURNS,
    compared=LAYER_COMPARED,
    steps=("running_mean", "running_var", "num_batches_tracked", "training"),
    reference=_layer_reference,
    protocol="layer_script",
    cases=(
        Case("(N, C) = (8, 4): train x3, eval, momentum 0.1", _script_inputs((8, 4), "ttte")),
        Case("momentum None: train x4, eval", _script_inputs((6, 3), "tttte", momentum=None),
             hint=_NONE_HINT),
        Case("(N, C, H, W) = (2, 3, 4, 5): train, train, eval, train",
             _script_inputs((2, 3, 4, 5), "ttet", loc=1.0)),
        Case("from_keras(momentum=0.99, epsilon=1e-3): train x5, eval",
             _script_inputs((10, 3), "ttttte", keras=_KERAS)),
        Case("momentum 0.0: train x3, eval", _script_inputs((5, 2), "ttte", momentum=0.0),
             hint="momentum 0.0: the running statistics keep their initial values"),
        Case("a layer as its constructor made it: train x3, eval",
             _script_inputs((6, 3), "ttte", loc=2.0, as_built=True), hint=_AS_BUILT),
        Case("random (N, C) and script, momentum 0.1", _script_inputs((0, 0), "", random_shape=True),
             hidden=True),
        Case("random (N, C, H, W) and script, momentum None",
             _script_inputs((0, 0, 0, 0), "", momentum=None, random_shape=True), hidden=True,
             hint=_NONE_HINT),
        Case("N=2, momentum None from the middle of training, eval on N=1",
             _script_inputs((2, 5), "ttetttee", momentum=None, mid_training=True, eval_n=1),
             hidden=True, hint=_NONE_HINT),
        Case("N=1 image of 3x3 in training, momentum 0.3",
             _script_inputs((1, 4, 3, 3), "ttte", momentum=0.3, eval_n=2), hidden=True),
        Case("eval before any training", _script_inputs((5, 3), "ettte"), hidden=True),
        Case("one constant channel, script tttet", _script_inputs((7, 4), "tttet", constant_channel=True),
             hidden=True, hint="a constant channel has variance 0: its output must stay finite"),
        Case("Keras layer from the middle of training, 12 steps",
             _script_inputs((4, 6, 2, 2), "tttttettttte", keras={"momentum": 0.9, "epsilon": 1e-2},
                            mid_training=True), hidden=True),
        Case("mean 1e6, std 1e-3", _script_inputs((16, 3), "tttet", loc=1e6, scale=1e-3),
             hidden=True, rtol=1e-5, atol=1e-6, hint=_ONE_PASS),
        Case("(N, C, H, W) as built, momentum None: train, eval, train x2, eval",
             _script_inputs((3, 4, 2, 2), "tettte", momentum=None, loc=-1.0, as_built=True),
             hidden=True, hint=_AS_BUILT),
        Case("from_keras as built: train x4, eval",
             _script_inputs((7, 5), "tttte", keras=_KERAS, loc=1.5, as_built=True), hidden=True,
             hint=_AS_BUILT),
        Case("momentum 0.0 from the middle of training, (N, C, H, W)",
             _script_inputs((3, 4, 2, 3), "ttettt", momentum=0.0, mid_training=True), hidden=True,
             hint="momentum 0.0: the running statistics keep the values they had"),
    ),
    mistakes=_LAYER_MISTAKES,
)


# ---- train_bn_mlp: the capstone ---------------------------------------------------------

from autograder.student.protocols import MLP_BUFFERS, MLP_PARAMS  # noqa: E402

MLP_RETURNS = ("loss",) + MLP_PARAMS + MLP_BUFFERS + ("scores",)
# Step by step, in the order a step computes them: the loss and the buffers come out of the
# forward pass, the parameters out of the backward pass, last layer first (as backpropagation
# reaches them); the first step that differs is reported, and in it the first value.
MLP_BACKWARD_ORDER = ("W3", "b3", "gamma2", "beta2", "W2", "b2", "gamma1", "beta1", "W1", "b1")
assert sorted(MLP_BACKWARD_ORDER) == sorted(MLP_PARAMS)
MLP_COMPARED = ("loss",) + MLP_BUFFERS + MLP_BACKWARD_ORDER + ("scores",)
MLP_STEPS = MLP_COMPARED[:-1]


_mlp_ordered = _reordered(MLP_RETURNS, MLP_COMPARED)


@functools.lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled 8x8 digits (no download), pixels scaled to [0, 1]."""
    from autograder.course import digits
    data, target = digits.load()
    return data / 16.0, target


def _mlp_inputs(n=16, steps=3, hidden=(16, 12), lr=0.1, momentum=0.1, eps=1e-5, n_eval=10,
                offset=0.0, dead_unit=False, random_sizes=False):
    """Initial parameters (He-scaled weights), ``steps`` batches of ``n`` digits, an eval batch.

    ``dead_unit`` zeroes the first column of W1: that unit's pre-activation is b1[0] for every
    example, a feature that is constant over the batch. ``offset`` is added to every pixel.
    """
    def make(rng):
        nn, tt, (h1, h2) = n, steps, hidden
        if random_sizes:
            nn, tt = int(rng.integers(3, 25)), int(rng.integers(2, 6))
            h1, h2 = int(rng.integers(4, 25)), int(rng.integers(4, 25))
        x, y = _digits()
        idx = rng.choice(len(x), nn * tt + n_eval, replace=False)
        dims = [x.shape[1], h1, h2, 10]
        params = {}
        for i in (1, 2, 3):
            params[f"W{i}"] = rng.standard_normal((dims[i - 1], dims[i])) * np.sqrt(2.0 / dims[i - 1])
            params[f"b{i}"] = 0.1 * rng.standard_normal(dims[i])
            if i < 3:
                params[f"gamma{i}"] = rng.uniform(0.5, 1.5, dims[i])
                params[f"beta{i}"] = rng.uniform(-0.5, 0.5, dims[i])
        if dead_unit:
            params["W1"][:, 0] = 0.0
            params["beta1"][0] = 0.3
        params = {k: params[k] for k in MLP_PARAMS}
        batches = [idx[k * nn:(k + 1) * nn] for k in range(tt)]
        return {"params": params,
                "x_batches": [x[b] + offset for b in batches],
                "y_batches": [[int(v) for v in y[b]] for b in batches],
                "x_eval": x[idx[nn * tt:]] + offset,
                "lr": lr, "momentum": momentum, "eps": eps}
    return make


@_mlp_ordered
def _mlp_reference(inputs):
    from autograder.course import reference as R
    losses, history, scores = R.bn_mlp_train(**inputs)
    return (losses, *(history[k] for k in MLP_PARAMS + MLP_BUFFERS), scores)


def _mlp_variant(loss_sum=False, grad_sum=False, stats_constant=False, biased_running=False,
                 frozen_bn=False, eval_batch_stats=False, no_running_update=False,
                 aliased_history=False):
    """The same network written out by hand in torch, wrong in one of the ways students are."""
    @_mlp_ordered
    def compute(inputs):
        import torch
        import torch.nn.functional as F

        from autograder.course import reference as R
        eps, momentum, lr = inputs["eps"], inputs["momentum"], inputs["lr"]
        p = {k: R.tensor(v) for k, v in inputs["params"].items()}
        buf = {}
        for i in (1, 2):
            buf[f"running_mean{i}"] = torch.zeros_like(p[f"gamma{i}"])
            buf[f"running_var{i}"] = torch.ones_like(p[f"gamma{i}"])

        def forward(x, train):
            h = x
            for i in (1, 2):
                z = h @ p[f"W{i}"] + p[f"b{i}"]
                if train or eval_batch_stats:
                    mu, var = z.mean(dim=0), z.var(dim=0, unbiased=False)
                    if train and not no_running_update:
                        n = z.shape[0]
                        run_var = var if biased_running else var * n / (n - 1)
                        rm, rv = buf[f"running_mean{i}"], buf[f"running_var{i}"]
                        buf[f"running_mean{i}"] = ((1 - momentum) * rm + momentum * mu).detach()
                        buf[f"running_var{i}"] = ((1 - momentum) * rv + momentum * run_var).detach()
                    if stats_constant:
                        mu, var = mu.detach(), var.detach()
                else:
                    mu, var = buf[f"running_mean{i}"], buf[f"running_var{i}"]
                h = torch.relu(p[f"gamma{i}"] * (z - mu) / torch.sqrt(var + eps) + p[f"beta{i}"])
            return h @ p["W3"] + p["b3"]

        losses, history = [], []
        for xb, yb in zip(inputs["x_batches"], inputs["y_batches"]):
            for v in p.values():
                v.requires_grad_(True)
            y = torch.as_tensor(np.asarray(yb), device=R.DEVICE)
            scores = forward(R.tensor(xb), True)
            mean_loss = F.cross_entropy(scores, y)
            sum_loss = F.cross_entropy(scores, y, reduction="sum")
            grads = torch.autograd.grad(sum_loss if (loss_sum or grad_sum) else mean_loss,
                                        list(p.values()))
            losses.append(float((sum_loss if loss_sum else mean_loss).detach()))
            with torch.no_grad():
                p = {k: (v if frozen_bn and k[:4] in ("gamm", "beta") else v - lr * g).detach()
                     for (k, v), g in zip(p.items(), grads)}
            history.append({**{k: R.numpy(v) for k, v in p.items()},
                            **{k: R.numpy(v) for k, v in buf.items()}})
        if aliased_history:  # parameters updated in place; the buffers were new arrays
            history = [{**h, **{k: history[-1][k] for k in MLP_PARAMS}} for h in history]
        with torch.no_grad():
            scores = R.numpy(forward(R.tensor(inputs["x_eval"]), False))
        return (np.array(losses), *(np.stack([h[k] for h in history])
                                    for k in MLP_PARAMS + MLP_BUFFERS), scores)
    return compute


_MLP_MISTAKES = (
    Mistake("loss summed over the batch",
            "the recorded loss and its gradient grow with the batch size: they add up the N "
            "examples' cross-entropies where the loss averages them",
            _mlp_variant(loss_sum=True),
            correction="loss = -log_probs[np.arange(n), y].mean(); dscores /= n"),
    Mistake("gradient not divided by the batch size",
            "the recorded loss is right but every gradient is N times too large: the backward "
            "pass started from the gradient of the summed loss",
            _mlp_variant(grad_sum=True),
            correction="dscores /= n"),
    Mistake("batch statistics treated as constants in backward",
            "the BN backward pass treated the batch mean and variance as constants: it lost the "
            "paths through which each example's input reaches every other example's output",
            _mlp_variant(stats_constant=True),
            correction="dz = (dz_hat - dz_hat.mean(axis=0) - z_hat * (dz_hat * z_hat).mean(axis=0)) / std"),
    Mistake("biased running variance",
            "running_var was fed the very variance the batch was normalized with; torch's layer "
            "averages another estimate of it",
            _mlp_variant(biased_running=True),
            correction="running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)"),
    Mistake("gamma and beta not trained",
            "gamma1, beta1, gamma2 and beta2 kept their initial values while the weights moved",
            _mlp_variant(frozen_bn=True),
            correction="p = {k: v - lr * grads[k] for k, v in p.items()}  # all ten"),
    Mistake("batch statistics used at eval",
            "x_eval's scores were normalized with x_eval's own statistics: each example's score "
            "then depends on the rest of x_eval",
            _mlp_variant(eval_batch_stats=True),
            correction="z_hat = (z - running_mean) / np.sqrt(running_var + eps)  # eval"),
    Mistake("running statistics not updated",
            "running_mean and running_var stayed at zeros and ones through training",
            _mlp_variant(no_running_update=True),
            correction="running_mean = (1 - momentum) * running_mean + momentum * mu"),
    Mistake("history holds references, not copies",
            "a snapshot in history that refers to an array later updated in place changes with "
            "it, so earlier steps show later values",
            _mlp_variant(aliased_history=True),
            correction="history.append({k: v.copy() for k, v in p.items()})"),
)

_MLP_HINT = ("read the first step that differs: a wrong loss there points at that step's forward "
             "pass, a wrong running buffer at the running-statistics update, a wrong parameter "
             "at the backward pass or the SGD step")

_MLP = Check(
    function="train_bn_mlp",
    returns=MLP_RETURNS,
    compared=MLP_COMPARED,
    steps=MLP_STEPS,
    reference=_mlp_reference,
    protocol="mlp_training",
    rtol=1e-6,
    atol=1e-8,
    cases=(
        Case("digits, N=16, hidden 16 and 12, 3 steps", _mlp_inputs(), hint=_MLP_HINT),
        Case("N=8, 2 steps, lr 0.5, momentum 0.5", _mlp_inputs(n=8, steps=2, lr=0.5, momentum=0.5),
             hint=_MLP_HINT),
        Case("random sizes and length", _mlp_inputs(random_sizes=True), hidden=True, hint=_MLP_HINT),
        Case("N=2, 4 steps", _mlp_inputs(n=2, steps=4, hidden=(6, 5)), hidden=True, hint=_MLP_HINT),
        Case("a dead unit: one pre-activation constant in the batch", _mlp_inputs(n=12, dead_unit=True),
             hidden=True, hint="a unit with zero variance over the batch: its output must stay finite"),
        Case("pixels offset by 100, eps 1e-3, momentum 0.01",
             _mlp_inputs(n=10, steps=4, offset=100.0, eps=1e-3, momentum=0.01), hidden=True,
             hint=_MLP_HINT),
        Case("6 steps, lr 0.05, a single eval example", _mlp_inputs(steps=6, lr=0.05, n_eval=1),
             hidden=True, hint=_MLP_HINT),
        Case("momentum 0.0: the buffers stay at zeros and ones", _mlp_inputs(n=9, momentum=0.0),
             hidden=True, hint="momentum 0.0 is a number: the running statistics never move"),
    ),
    mistakes=_MLP_MISTAKES,
)

CHECKS = [_LAYER, _MLP]
