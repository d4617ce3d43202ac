"""Chapter 4: running statistics (PyTorch's buffers), eval-mode normalization, momentum conventions.

``batchnorm_train_step`` is checked with the ``train_steps`` protocol: the student's function is
called once per batch and its new running statistics are fed to the next call, exactly as
``torch.nn.BatchNorm1d`` updates its buffers. ``momentum=None`` (PyTorch's cumulative average)
reaches the student as the number 1/k at step k, so their function always receives a number.
"""
import numpy as np

from autograder.checks import Case, Check, Mistake


# ---- batchnorm_train_step -----------------------------------------------------------------

def _steps_inputs(n, d, k, momentum=0.1, eps=1e-5, loc=0.0, scale=1.0, fresh=True,
                  random_shape=False):
    """k batches of shape (n, d) drawn around ``loc`` with spread ``scale``.

    ``fresh`` starts from PyTorch's initial buffers (mean 0, variance 1); otherwise the running
    statistics start somewhere else, as they would in the middle of training.
    """
    def make(rng):
        nn, dd, kk = n, d, k
        if random_shape:
            nn, dd, kk = int(rng.integers(2, 40)), int(rng.integers(1, 30)), int(rng.integers(2, 25))
        centre = loc + rng.uniform(-1, 1, dd)
        spread = scale * rng.uniform(0.5, 2.0, dd)
        batches = [centre + spread * rng.standard_normal((nn, dd)) for _ in range(kk)]
        if fresh:
            rm, rv = np.zeros(dd), np.ones(dd)
        else:
            rm, rv = rng.uniform(-2, 2, dd), rng.uniform(0.2, 3.0, dd)
        return {"batches": batches, "gamma": rng.uniform(0.5, 2.0, dd), "beta": rng.uniform(-1, 1, dd),
                "running_mean": rm, "running_var": rv, "momentum": momentum, "eps": eps}
    return make


def _steps_reference(inputs):
    from autograder import reference as R
    outs, rm, rv, _ = R.batchnorm_train_steps(
        inputs["batches"], inputs["gamma"], inputs["beta"], momentum=inputs["momentum"],
        eps=inputs["eps"], running_mean=inputs["running_mean"], running_var=inputs["running_var"])
    return outs[-1], rm, rv


def _steps_variant(biased_running=False, flipped=False, unbiased_normalize=False,
                   running_in_training=False):
    """A wrong training step, threaded through the same k steps as the ``train_steps`` protocol."""
    def compute(inputs):
        import torch
        from autograder import reference as R
        g, b, eps = R.tensor(inputs["gamma"]), R.tensor(inputs["beta"]), inputs["eps"]
        rm, rv = R.tensor(inputs["running_mean"]), R.tensor(inputs["running_var"])
        out = None
        for k, xb in enumerate(inputs["batches"], start=1):
            x = R.tensor(xb)
            m = 1.0 / k if inputs["momentum"] is None else inputs["momentum"]
            mu = x.mean(0)
            var_b, var_u = x.var(0, unbiased=False), x.var(0, unbiased=True)
            if running_in_training:
                out = g * (x - rm) / torch.sqrt(rv + eps) + b
            else:
                out = g * (x - mu) / torch.sqrt((var_u if unbiased_normalize else var_b) + eps) + b
            var_run = var_b if biased_running else var_u
            if flipped:
                rm, rv = m * rm + (1 - m) * mu, m * rv + (1 - m) * var_run
            else:
                rm, rv = (1 - m) * rm + m * mu, (1 - m) * rv + m * var_run
        return R.numpy(out), R.numpy(rm), R.numpy(rv)
    return compute


_NONE_HINT = ("momentum=None is PyTorch's cumulative average: the check passes your function "
              "1/k at step k, so just use the number you are given")

_TRAIN_STEP = Check(
    function="batchnorm_train_step",
    returns=("out", "running_mean", "running_var"),
    compared=("out", "running_mean", "running_var"),
    reference=_steps_reference,
    protocol="train_steps",
    cases=(
        Case("one step, momentum 0.1", _steps_inputs(8, 4, 1)),
        Case("5 steps, momentum 0.1", _steps_inputs(16, 3, 5, loc=2.0, scale=1.5)),
        Case("5 steps, momentum None (1/k)", _steps_inputs(10, 3, 5, momentum=None, loc=-1.0),
             hint=_NONE_HINT),
        Case("random shape and length, momentum 0.1",
             _steps_inputs(0, 0, 0, random_shape=True, fresh=False), hidden=True),
        Case("N=2, 4 steps", _steps_inputs(2, 5, 4, scale=2.0), hidden=True),
        Case("momentum None, 12 steps, mid-training start",
             _steps_inputs(6, 7, 12, momentum=None, loc=5.0, scale=3.0, fresh=False), hidden=True,
             hint=_NONE_HINT),
        Case("momentum 0.01 (Keras 0.99), eps 1e-3, 30 steps",
             _steps_inputs(20, 4, 30, momentum=0.01, eps=1e-3, fresh=False), hidden=True),
        Case("momentum 1.0, 3 steps", _steps_inputs(5, 3, 3, momentum=1.0), hidden=True),
        Case("one step, D=1, mid-training start", _steps_inputs(3, 1, 1, fresh=False), hidden=True),
    ),
    mistakes=(
        Mistake("biased running variance",
                "the forward pass normalizes with the biased variance (divide by N), but the "
                "running_var buffer is updated with the UNBIASED one: var * N / (N - 1)",
                _steps_variant(biased_running=True)),
        Mistake("momentum weighting flipped",
                "PyTorch's momentum weighs the NEW batch: running = (1 - momentum) * running "
                "+ momentum * batch_stat; Keras' convention is the other way round",
                _steps_variant(flipped=True)),
        Mistake("unbiased variance in the normalization",
                "normalize the batch with its biased variance (divide by N); only the running "
                "buffer stores the unbiased one",
                _steps_variant(unbiased_normalize=True, biased_running=False)),
        Mistake("running statistics used in training",
                "in training mode normalize with the batch's own mean and variance; the running "
                "statistics are only updated, not used",
                _steps_variant(running_in_training=True)),
    ),
)


# ---- batchnorm_eval -----------------------------------------------------------------------

def _eval_inputs(n, d, eps=1e-5, tiny_var=False, random_shape=False):
    """A batch whose own statistics are far from the running ones, so the two cannot be confused."""
    def make(rng):
        nn, dd = n, d
        if random_shape:
            nn, dd = int(rng.integers(1, 50)), int(rng.integers(1, 40))
        rm, rv = rng.uniform(-2, 2, dd), rng.uniform(0.3, 3.0, dd)
        if tiny_var:
            rv = rng.uniform(1e-6, 1e-4, dd)
        x = rm + 1.5 + 2.0 * np.sqrt(rv) * rng.standard_normal((nn, dd))
        return {"x": x, "gamma": rng.uniform(0.5, 2.0, dd), "beta": rng.uniform(-1, 1, dd),
                "running_mean": rm, "running_var": rv, "eps": eps}
    return make


def _eval_reference(inputs):
    from autograder import reference as R
    return (R.batchnorm_eval(**inputs),)


def _eval_variant(batch_stats=False, eps_where="inside", no_sqrt=False):
    def compute(inputs):
        import torch
        from autograder import reference as R
        x, g, b, eps = R.tensor(inputs["x"]), R.tensor(inputs["gamma"]), R.tensor(inputs["beta"]), inputs["eps"]
        if batch_stats:  # by hand: torch refuses batch statistics of a single example
            mu, var = x.mean(0), x.var(0, unbiased=False)
        else:
            mu, var = R.tensor(inputs["running_mean"]), R.tensor(inputs["running_var"])
        if no_sqrt:
            denom = var + eps
        elif eps_where == "outside":
            denom = torch.sqrt(var) + eps
        else:
            denom = torch.sqrt(var + eps)
        return (R.numpy(g * (x - mu) / denom + b),)
    return compute


_EVAL = Check(
    function="batchnorm_eval",
    returns=("out",),
    compared=("out",),
    reference=_eval_reference,
    cases=(
        Case("N=6, D=4", _eval_inputs(6, 4)),
        Case("a single example (N=1)", _eval_inputs(1, 5)),
        Case("random shape", _eval_inputs(0, 0, random_shape=True), hidden=True),
        Case("eps 1e-3 (Keras' default)", _eval_inputs(7, 3, eps=1e-3), hidden=True),
        Case("tiny running variance", _eval_inputs(5, 6, tiny_var=True), hidden=True,
             hint="add eps to the running variance before the square root"),
        Case("N=1, D=1", _eval_inputs(1, 1), hidden=True),
    ),
    mistakes=(
        Mistake("batch statistics used at eval",
                "in eval mode normalize with running_mean and running_var, not with the mean and "
                "variance of x: a test example's output must not depend on the rest of its batch",
                _eval_variant(batch_stats=True)),
        Mistake("eps outside the square root", "use sqrt(running_var + eps), not sqrt(running_var) + eps",
                _eval_variant(eps_where="outside")),
        Mistake("missing square root", "divide by the standard deviation sqrt(running_var + eps), "
                "not by the variance", _eval_variant(no_sqrt=True)),
    ),
)


# ---- keras_to_torch_momentum --------------------------------------------------------------

def _momentum_input(m=None, low=0.6, high=0.999):
    def make(rng):
        return {"m": float(rng.uniform(low, high)) if m is None else m}
    return make


def _momentum_reference(inputs):
    from autograder import reference as R
    return (R.keras_to_torch_momentum(inputs["m"]),)


_KERAS = Check(
    function="keras_to_torch_momentum",
    returns=("momentum",),
    compared=("momentum",),
    reference=_momentum_reference,
    cases=(
        # 0.5 is never used: there both conventions agree and a wrong answer would pass.
        Case("Keras' default 0.99", _momentum_input(0.99)),
        Case("0.9", _momentum_input(0.9)),
        Case("0.999", _momentum_input(0.999), hidden=True),
        Case("0.0 (keep only the new batch)", _momentum_input(0.0), hidden=True),
        Case("a random momentum", _momentum_input(), hidden=True),
        Case("a random small momentum", _momentum_input(low=0.01, high=0.4), hidden=True),
    ),
    mistakes=(
        Mistake("momentum returned unchanged",
                "Keras' momentum is the weight of the OLD moving average, PyTorch's the weight of "
                "the NEW batch statistic, so the PyTorch value is 1 - m",
                lambda inputs: (inputs["m"],)),
    ),
)

CHECKS = [_TRAIN_STEP, _EVAL, _KERAS]
