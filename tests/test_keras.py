"""`BatchNorm.from_keras` is graded against what Keras does, and the chapter, the notebook and the
grader say the same thing (issue 15, item 4)."""
import inspect
import re

import nbformat
import numpy as np
import pytest

from autograder.course import cases, checks
from autograder.course import reference as R

from conftest import REPO, solution_namespace


def plain_keras(steps, weight, bias, momentum, epsilon, moving_mean, moving_var):
    """Keras' BatchNormalization written from its formulas: per-channel batch moments (biased
    variance) in training, moving = momentum * moving + (1 - momentum) * batch statistic."""
    outputs, means, variances = [], [], []
    mm, mv = np.array(moving_mean, float), np.array(moving_var, float)
    for mode, x in steps:
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if mode == "train":
            mean = x.mean(axis=axes)
            var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
            mm = momentum * mm + (1 - momentum) * mean
            mv = momentum * mv + (1 - momentum) * var
        else:
            mean, var = mm, mv
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon)
        outputs.append((weight.reshape(shape) * y + bias.reshape(shape)).ravel())
        means.append(mm.copy())
        variances.append(mv.copy())
    return np.concatenate(outputs), np.stack(means), np.stack(variances)


@pytest.mark.parametrize("shape,momentum,epsilon", [((9, 4), 0.99, 1e-3), ((3, 2, 4, 5), 0.9, 1e-2)])
def test_keras_reference_is_the_plain_formula(shape, momentum, epsilon):
    rng = np.random.default_rng(7)
    c = shape[1]
    steps = [(m, 2.0 + 3.0 * rng.standard_normal(shape)) for m in "tttett"]
    steps = [("train" if m == "t" else "eval", x) for m, x in steps]
    w, b = rng.uniform(0.5, 2, c), rng.uniform(-1, 1, c)
    rm, rv = rng.uniform(-1, 1, c), rng.uniform(0.5, 2, c)
    got = R.keras_batchnorm_layer_script(c, steps, w, b, momentum, epsilon, rm, rv, 3)
    out, means, variances = plain_keras(steps, w, b, momentum, epsilon, rm, rv)
    np.testing.assert_allclose(got[1], out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[3], variances, rtol=1e-12, atol=1e-12)
    assert list(got[4]) == [4, 5, 6, 6, 7, 8]                 # training steps, counted on from 3
    # and it is NOT torch's layer with momentum 1 - m: that one averages the unbiased variance
    torch_layer = R.batchnorm_layer_script(c, steps, w, b, eps=epsilon, momentum=1 - momentum,
                                           running_mean=rm, running_var=rv, num_batches_tracked=3)
    np.testing.assert_allclose(torch_layer[2], means, rtol=1e-10)
    assert not np.allclose(torch_layer[3], variances, rtol=1e-6)


def test_grader_notebook_and_chapter_agree_on_keras():
    """The grader's Keras case uses the Keras reference; the solution's from_keras passes it, the
    torch-converted layer fails it by name; the notebook and chapter 4 both say the moving
    variance is the BIASED one, and the defaults agree everywhere."""
    check = cases.find("BatchNorm")
    keras_cases = [c for c in check.cases if checks.case_inputs(check, c)["keras"] is not None]
    assert keras_cases and any(not c.hidden for c in keras_cases)
    for case in keras_cases:
        inputs = checks.case_inputs(check, case)
        steps = [(s["mode"], s["x"]) for s in inputs["steps"]]
        c = inputs["num_features"]
        start_m = np.zeros(c) if inputs["running_mean"] is None else inputs["running_mean"]
        start_v = np.ones(c) if inputs["running_var"] is None else inputs["running_var"]
        weight = np.ones(c) if inputs["weight"] is None else inputs["weight"]   # as built
        bias = np.zeros(c) if inputs["bias"] is None else inputs["bias"]
        out, means, variances = plain_keras(steps, weight, bias,
                                            inputs["keras"]["momentum"], inputs["keras"]["epsilon"],
                                            start_m, start_v)
        expected = dict(zip(check.compared, checks.expected_outputs(check, case)))
        np.testing.assert_allclose(expected["outputs"], out, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(expected["running_var"], variances, rtol=1e-10, atol=1e-12)

    ns = solution_namespace("ch4_inference")
    layer_cls = ns["BatchNorm"]
    assert checks.verdict_for_function(check, layer_cls, keras_cases).passed

    class TorchConverted(layer_cls):
        @classmethod
        def from_keras(cls, num_features, momentum=0.99, epsilon=1e-3):
            return cls(num_features, eps=epsilon, momentum=1.0 - momentum)
    verdict = checks.verdict_for_function(check, TorchConverted, keras_cases)
    assert not verdict.passed
    assert "Keras layer converted to torch's running variance" in verdict.message

    defaults = inspect.signature(layer_cls.from_keras).parameters
    assert (defaults["momentum"].default, defaults["epsilon"].default) == (R.KERAS_MOMENTUM,
                                                                          R.KERAS_EPSILON)
    nb = nbformat.read(REPO / "solutions" / "ch4_inference" / "ch4_inference.ipynb", as_version=4)
    part1 = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "part1")
    keras_text = part1[part1.index("**Keras.**"):]
    assert "**biased**" in keras_text and "moving_variance" in keras_text
    assert "momentum=0.99, epsilon=1e-3" in keras_text
    chapter = (REPO / "book" / "ch4_inference.md").read_text()
    row = next(ln for ln in chapter.splitlines() if ln.startswith("| batch variance fed to the running"))
    assert re.search(r"\|\s*biased, \$\\sigma_B\^2\$\s*\|\s*$", row), row     # the Keras column
    assert re.search(r"default `momentum` \| 0\.1 \| 0\.99 \|", chapter)
    assert "| default `eps` / `epsilon` | $10^{-5}$ | $10^{-3}$ |" in chapter
    exercise = chapter[chapter.index("## Exercise"):]
    assert "**biased** batch variance" in exercise and "from_keras" in exercise
