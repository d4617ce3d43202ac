"""How a check calls the student's code: identical in the self-check, the kit and the sandbox.

A protocol takes the student's callable (a function or a class) and one case's inputs (a dict of
plain values: NumPy arrays, numbers, strings, None, and lists/tuples/dicts of those) and returns
what the check compares, as a tuple of values.  It runs beside student code, so it is NumPy-only
and knows nothing of the reference.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class WrongKind(Exception):
    """The student's code returned the wrong *kind* of thing (tuple length, type)."""


def call(fn, inputs: dict):
    """``fn(*inputs.values())``: the inputs are the positional arguments, in order."""
    return fn(*inputs.values())


def train_steps(fn, inputs: dict):
    """ch4: ``fn(x, gamma, beta, running_mean, running_var, momentum, eps)`` once per batch.

    inputs: batches (list), gamma, beta, running_mean, running_var, momentum, eps. Each call's new
    running statistics feed the next. ``momentum=None`` is the cumulative average: step k
    (1-based) is passed momentum 1/k. Returns the last output and the final running statistics.
    """
    rm, rv = inputs["running_mean"], inputs["running_var"]
    out = None
    for k, x in enumerate(inputs["batches"], start=1):
        m = inputs["momentum"]
        m = 1.0 / k if m is None else m
        result = fn(x, inputs["gamma"], inputs["beta"], rm, rv, m, inputs["eps"])
        if not isinstance(result, tuple) or len(result) != 3:
            return result
        out, rm, rv = result
    return out, rm, rv


def _floats(value, what: str, shape=None) -> np.ndarray:
    """``value`` as a float64 array (a copy), or WrongKind naming ``what`` was wrong with it."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise WrongKind(f"{what} is {type(value).__name__}, not an array of numbers") from None
    if shape is not None and arr.shape != tuple(shape):
        raise WrongKind(f"{what} has shape {arr.shape}; expected {tuple(shape)}")
    return arr


LAYER_STATE = ("weight", "bias", "running_mean", "running_var")


def layer_script(cls, inputs: dict):
    """ch4: build the student's batch-norm layer class and run it through a script of steps.

    inputs: num_features, eps, momentum (a number or None), keras (None, or a dict with
    "momentum" and "epsilon": the layer is then built by ``cls.from_keras(num_features,
    momentum=..., epsilon=...)``), weight, bias, running_mean, running_var and
    num_batches_tracked (each None: keep what the constructor made, as a layer in real use does,
    so a constructor whose arrays share memory is checked as built), and steps, a list of
    {"mode": "train" or "eval", "x": array}. Each step calls ``layer.train()`` or ``layer.eval()``
    and then ``layer.forward(x)``.

    Returns, as floats: the new layer's weight, bias, running_mean, running_var,
    num_batches_tracked and training, concatenated (shape (4C + 2,)); every step's output,
    flattened and concatenated; running_mean and running_var after every step, (S, C); and
    num_batches_tracked and training after every step, (S,).
    """
    c = int(inputs["num_features"])
    keras = inputs.get("keras")
    if keras is not None:
        layer = cls.from_keras(c, momentum=keras["momentum"], epsilon=keras["epsilon"])
    else:
        layer = cls(c, eps=inputs["eps"], momentum=inputs["momentum"])
    initial = [_floats(getattr(layer, n), f"a new layer's `{n}`", (c,)) for n in LAYER_STATE]
    initial.append(_floats(layer.num_batches_tracked, "a new layer's `num_batches_tracked`", ()))
    initial.append(_floats(layer.training, "a new layer's `training`", ()))
    initial = np.concatenate([a.reshape(-1) for a in initial])
    for name in LAYER_STATE + ("num_batches_tracked",):
        if inputs.get(name) is not None:
            setattr(layer, name, np.array(inputs[name], dtype=np.float64)
                    if name != "num_batches_tracked" else int(inputs[name]))
    outputs, means, variances, counts, modes = [], [], [], [], []
    for k, step in enumerate(inputs["steps"], start=1):
        layer.train() if step["mode"] == "train" else layer.eval()
        shape = np.shape(step["x"])
        outputs.append(_floats(layer.forward(step["x"]), f"forward's output at step {k}", shape)
                       .reshape(-1))
        means.append(_floats(layer.running_mean, f"`running_mean` after step {k}", (c,)))
        variances.append(_floats(layer.running_var, f"`running_var` after step {k}", (c,)))
        counts.append(_floats(layer.num_batches_tracked, f"`num_batches_tracked` after step {k}", ()))
        modes.append(_floats(layer.training, f"`training` after step {k}", ()))
    return (initial, np.concatenate(outputs), np.stack(means), np.stack(variances),
            np.stack(counts), np.stack(modes))


MLP_PARAMS = ("W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3")
MLP_BUFFERS = ("running_mean1", "running_var1", "running_mean2", "running_var2")


def mlp_training(fn, inputs: dict):
    """ch4's capstone: ``fn(params, x_batches, y_batches, x_eval, lr, momentum, eps)``.

    ``fn`` returns (losses, history, scores): the T losses, a list of T dicts holding every
    parameter and running buffer after each step, and the eval-mode scores of x_eval.
    Returns, as floats: losses (T,), then each name of MLP_PARAMS and MLP_BUFFERS stacked over
    the steps (T, ...), then scores (M, K).
    """
    params = inputs["params"]
    t = len(inputs["x_batches"])
    result = fn(params, inputs["x_batches"], inputs["y_batches"], inputs["x_eval"], inputs["lr"],
                inputs["momentum"], inputs["eps"])
    if not isinstance(result, tuple) or len(result) != 3:
        raise WrongKind(f"returned {type(result).__name__}, expected a tuple "
                        f"(losses, history, scores)")
    losses, history, scores = result
    if not isinstance(history, (list, tuple)) or len(history) != t:
        raise WrongKind(f"`history` must be a list of {t} dicts, one per training step")
    shapes = {n: np.shape(params[n]) for n in MLP_PARAMS}
    shapes.update({f"running_{s}{i}": np.shape(params[f"gamma{i}"])
                   for s in ("mean", "var") for i in (1, 2)})
    stacked = []
    for name in MLP_PARAMS + MLP_BUFFERS:
        rows = []
        for k, snapshot in enumerate(history):
            if not isinstance(snapshot, dict) or name not in snapshot:
                raise WrongKind(f"history[{k}] is not a dict with a {name!r} entry")
            rows.append(_floats(snapshot[name], f"history[{k}][{name!r}]", shapes[name]))
        stacked.append(np.stack(rows))
    n_classes = np.shape(params["W3"])[1]
    return (_floats(losses, "`losses`", (t,)), *stacked,
            _floats(scores, "`scores`", (len(inputs["x_eval"]), n_classes)))


# ch1's sigmoid network: its gradients are compared in the order backpropagation finds them
SIGMOID_GRADIENT_ORDER = ("W3", "b3", "gamma2", "beta2", "W2", "b2", "gamma1", "beta1", "W1", "b1")


def loss_and_gradients(fn, inputs: dict):
    """ch1: ``fn(params, x, y, batchnorm)`` returns (loss, grads), grads a dict with an entry for
    every parameter. Returns, as floats: the loss, then each gradient in SIGMOID_GRADIENT_ORDER,
    each of its parameter's shape."""
    params = inputs["params"]
    result = fn(params, inputs["x"], inputs["y"], inputs["batchnorm"])
    if not isinstance(result, tuple) or len(result) != 2:
        raise WrongKind(f"returned {type(result).__name__}, expected a tuple (loss, grads)")
    loss, grads = result
    if not isinstance(grads, dict):
        raise WrongKind(f"`grads` is {type(grads).__name__}, expected a dict of arrays")
    out = [_floats(loss, "`loss`", ())]
    for name in SIGMOID_GRADIENT_ORDER:
        if name not in grads:
            raise WrongKind(f"`grads` has no {name!r} entry")
        out.append(_floats(grads[name], f"grads[{name!r}]", np.shape(params[name])))
    return tuple(out)


def layer_list(fn, inputs: dict):
    """ch6: ``fn(layers)`` returns a new list of layers (chapter 6's format, see
    ``given.run_layers``). inputs: layers, and x, an input the lists are run on.

    Returns, as floats: every weight and bias of the returned list's conv and linear layers and
    the parameters of any BN left in it, flattened and concatenated in order (a bias of None
    counts as zeros); and the returned list's output on x.
    """
    from autograder.student.given import run_layers
    layers = fn(inputs["layers"])
    if not isinstance(layers, (list, tuple)):
        raise WrongKind(f"returned {type(layers).__name__}, expected a list of layers")
    params = []
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict) or "kind" not in layer:
            raise WrongKind(f"layer {k} of the returned list is {type(layer).__name__}, "
                            f"not a dict with a 'kind'")
        if layer["kind"] in ("conv", "linear"):
            w = _floats(layer.get("w"), f"layer {k}'s `w`")
            b = layer.get("b")
            params += [w.reshape(-1), np.zeros(len(w)) if b is None else
                       _floats(b, f"layer {k}'s `b`", (len(w),))]
        elif layer["kind"] == "bn":
            params += [_floats(layer.get(n), f"layer {k}'s `{n}`").reshape(-1)
                       for n in ("gamma", "beta", "running_mean", "running_var")]
    flat = np.concatenate(params) if params else np.zeros(0)
    return flat, run_layers(layers, inputs["x"])


PROTOCOLS: dict[str, Callable] = {"call": call, "train_steps": train_steps,
                                  "layer_script": layer_script, "mlp_training": mlp_training,
                                  "layer_list": layer_list, "loss_and_gradients": loss_and_gradients}


def run_student(fn, inputs: dict, protocol: str, n_returns: int) -> tuple:
    """Call the student's code through ``protocol``; return exactly ``n_returns`` values.

    ``inputs`` must be the caller's private copy: student code may scribble on it.
    """
    result = PROTOCOLS[protocol](fn, inputs)
    if n_returns == 1:
        return (result,)
    if not isinstance(result, tuple):
        raise WrongKind(f"returned {type(result).__name__}, expected a tuple of {n_returns} values")
    if len(result) != n_returns:
        raise WrongKind(f"returned {len(result)} values, expected {n_returns}")
    return result
