"""Planted bugs for ch4_inference; each must lose exactly its function's points.

The bugs are the solution with one or two lines changed, so they are written as edits of the
solution cell (read from ``solutions/``) rather than as copies of a long class and a long loop.
"""
from functools import partial

from autograder.course.samples import Bug, edited_solution

_edited = partial(edited_solution, "ch4_inference")


BUGS = [
    Bug("biased-running-var", "BatchNorm", "biased running variance", _edited(
        "BatchNorm", ("batch_var = var * n / (n - 1) if self.unbiased_running_var else var",
                      "batch_var = var"))),
    Bug("momentum-none-as-default", "BatchNorm", "momentum None treated as 0.1", _edited(
        "BatchNorm", ("m = 1.0 / self.num_batches_tracked if self.momentum is None",
                      "m = 0.1 if self.momentum is None"))),
    Bug("batch-stats-at-eval", "BatchNorm", "batch statistics used at eval", _edited(
        "BatchNorm", ("mean, var = self.running_mean, self.running_var",
                      "mean, var = x.mean(axis=axes), x.var(axis=axes)"))),
    Bug("keras-momentum-unconverted", "BatchNorm", "Keras momentum not converted", _edited(
        "BatchNorm", ("momentum=1.0 - momentum", "momentum=momentum"))),
    Bug("not-counting-batches", "BatchNorm", "num_batches_tracked not counted", _edited(
        "BatchNorm", ("            self.num_batches_tracked += 1\n"
                      "            m = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum\n",
                      "            m = 1.0 / (self.num_batches_tracked + 1) if self.momentum is None else self.momentum\n"))),
    Bug("loss-summed", "train_bn_mlp", "loss summed over the batch", _edited(
        "train_bn_mlp", ("losses.append(-log_probs[np.arange(n), y].mean())",
                         "losses.append(-log_probs[np.arange(n), y].sum())"),
        ("        dscores /= n\n", ""))),
    Bug("bn-backward-without-batch-terms", "train_bn_mlp",
        "batch statistics treated as constants in backward", _edited(
            "train_bn_mlp", ("dz = (dz_hat - dz_hat.mean(axis=0) - z_hat * (dz_hat * z_hat).mean(axis=0)) / std",
                             "dz = dz_hat / std"))),
    Bug("mlp-eval-batch-stats", "train_bn_mlp", "batch statistics used at eval", _edited(
        "train_bn_mlp", ('z_hat = (z - buffers[f"running_mean{i}"]) / np.sqrt(buffers[f"running_var{i}"] + eps)',
                         "z_hat = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)"))),
    Bug("history-references", "train_bn_mlp", "history holds references, not copies", _edited(
        "train_bn_mlp", ("        p = {k: v - lr * grads[k] for k, v in p.items()}\n",
                         "        for k in p:\n            p[k] -= lr * grads[k]\n"),
        ("**{k: v.copy() for k, v in p.items()}", "**p"))),
    Bug("flipped-momentum", "BatchNorm", "momentum weighting flipped", _edited(
        "BatchNorm", ("self.running_mean = (1 - m) * self.running_mean + m * mean",
                      "self.running_mean = m * self.running_mean + (1 - m) * mean"),
        ("self.running_var = (1 - m) * self.running_var + m * batch_var",
         "self.running_var = m * self.running_var + (1 - m) * batch_var"))),
    Bug("updates-at-eval", "BatchNorm", "running statistics updated at eval", _edited(
        "BatchNorm", ("        if self.training:\n", "        if True:\n"),
        ("        else:\n            mean, var = self.running_mean, self.running_var\n",
         "        if not self.training:\n            mean, var = self.running_mean, self.running_var\n"))),
    Bug("running-stats-in-training", "BatchNorm", "running statistics used in training", _edited(
        "BatchNorm", ("            self.num_batches_tracked += 1\n",
                      "            old = self.running_mean, self.running_var\n"
                      "            self.num_batches_tracked += 1\n"),
        ("            self.running_var = (1 - m) * self.running_var + m * batch_var\n",
         "            self.running_var = (1 - m) * self.running_var + m * batch_var\n"
         "            mean, var = old\n"))),
    Bug("keras-epsilon-ignored", "BatchNorm", "Keras epsilon ignored", _edited(
        "BatchNorm", ("layer = cls(num_features, eps=epsilon, momentum=1.0 - momentum)",
                      "layer = cls(num_features, momentum=1.0 - momentum)"))),
    Bug("gradient-not-averaged", "train_bn_mlp", "gradient not divided by the batch size", _edited(
        "train_bn_mlp", ("        dscores /= n\n", ""))),
    Bug("mlp-biased-running-var", "train_bn_mlp", "biased running variance", _edited(
        "train_bn_mlp", ("+ momentum * var * n / (n - 1))", "+ momentum * var)"))),
    Bug("bn-params-frozen", "train_bn_mlp", "gamma and beta not trained", _edited(
        "train_bn_mlp", ("p = {k: v - lr * grads[k] for k, v in p.items()}",
                         "p = {k: v if k.startswith((\"gamma\", \"beta\")) else v - lr * grads[k]\n"
                         "             for k, v in p.items()}"))),
    Bug("running-stats-not-updated", "train_bn_mlp", "running statistics not updated", _edited(
        "train_bn_mlp", ('            buffers[f"running_mean{i}"] = (1 - momentum) * buffers[f"running_mean{i}"] + momentum * mu\n', ""),
        ('            buffers[f"running_var{i}"] = ((1 - momentum) * buffers[f"running_var{i}"]\n'
         '                                          + momentum * var * n / (n - 1))\n', ""))),
    Bug("keras-torch-converted", "BatchNorm", "Keras layer converted to torch's running variance",
        _edited("BatchNorm", ("        layer.unbiased_running_var = False  # Keras' moving_variance: "
                              "the biased batch variance\n", ""))),
    Bug("momentum-zero-as-none", "BatchNorm", "momentum 0 treated as None", _edited(
        "BatchNorm", ("m = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum",
                      "m = self.momentum or 1.0 / self.num_batches_tracked"))),
    Bug("weight-is-running-var", "BatchNorm", "weight is running_var", _edited(
        "BatchNorm", ("        self.weight = np.ones(num_features)\n",
                      "        self.weight = self.running_var = np.ones(num_features)\n"),
        ("        self.running_var = np.ones(num_features)\n", ""),
        ("            self.running_var = (1 - m) * self.running_var + m * batch_var\n",
         "            self.running_var *= 1 - m\n"
         "            self.running_var += m * batch_var\n"))),
    Bug("forward-modifies-x", "BatchNorm", "modified its input `x` in place", _edited(
        "BatchNorm", ("        x_hat = (x - mean.reshape(per_channel)) / np.sqrt(var.reshape(per_channel) + self.eps)",
                      "        x -= mean.reshape(per_channel)\n"
                      "        x_hat = x / np.sqrt(var.reshape(per_channel) + self.eps)"))),
    Bug("capstone-modifies-params", "train_bn_mlp", "modified its input `params['W1']` in place", _edited(
        "train_bn_mlp", ("    p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}", "    p = params"),
        ("        p = {k: v - lr * grads[k] for k, v in p.items()}\n",
         "        for k in p:\n            p[k] -= lr * grads[k]\n"))),
]
