"""The case tables themselves: plain inputs, real mistakes, and parts that only their method passes."""
import re

import numpy as np
import pytest

from autograder.course import cases, checks
from autograder.course.cases import ASSIGNMENT_IDS, ASSIGNMENTS

from conftest import solution_namespace

ALL_CHECKS = [(a, c) for a in ASSIGNMENT_IDS for c in ASSIGNMENTS[a]]
_ids = lambda v: getattr(v, "function", v)


def _plain(value) -> bool:
    """What may cross the trust line as JSON + packed arrays: float arrays (boolean ones for masks),
    scalars, containers of those."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fb"
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


@pytest.mark.parametrize("assignment,check", ALL_CHECKS, ids=_ids)
def test_case_inputs_are_plain_data(assignment, check):
    for case in check.cases:
        assert _plain(checks.case_inputs(check, case)), case.name


@pytest.mark.parametrize("assignment,check", ALL_CHECKS, ids=_ids)
def test_every_mistake_is_named_plainly_and_is_wrong_somewhere(assignment, check):
    """A mistake's name is a short phrase (the hint explains), and some case tells it apart."""
    assert len(check.mistakes) >= 3
    for known, _ in checks.known_outputs(check, check.cases[0]):
        assert "(" not in known.name and len(known.name) <= 60, known.name
    for mistake in check.mistakes:
        differs = False
        for case in check.cases:
            expected = checks.expected_outputs(check, case)
            try:
                wrong = [np.asarray(w, dtype=np.float64)
                         for w in mistake.compute(checks.case_inputs(check, case))]
            except RuntimeError:  # shapes where this mistake cannot even be made
                continue
            differs |= not all(w.shape == e.shape and np.allclose(w, e, rtol=1e-6, atol=1e-8)
                               for w, e in zip(wrong, expected))
        assert differs, f"{mistake.name!r} equals the reference on every case"


# ---- chapter 3: the staged part is earned only by the staged method --------------------------

def _compact(dout, cache):
    """Chapter 3's printed compact form (eq-ch3-dx), as a student would paste it."""
    x, mu, xc, var, std, inv_std, x_hat, gamma, eps = cache
    n = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * x_hat).sum(axis=0)
    return (gamma * inv_std / n) * (n * dout - dbeta - x_hat * dgamma), dgamma, dbeta


def test_compact_formula_earns_no_staged_points():
    staged = cases.find("batchnorm_backward")
    verdict = checks.verdict_for_function(staged, _compact)
    assert not verdict.passed and "returned 3 values, expected 6" in verdict.message

    def compact_padded(dout, cache):
        """The compact formula dressed up with the trivial node and zeros for the others."""
        dx, dgamma, dbeta = _compact(dout, cache)
        return dx, dgamma, dbeta, cache[7] * dout, np.zeros_like(dbeta), np.zeros_like(dbeta)
    verdict = checks.verdict_for_function(staged, compact_padded)
    assert not verdict.passed and "`dvar` differs" in verdict.message


def test_printed_compact_form_earns_no_transfer_points():
    """Issue 23: the chapter's (N, D) formula, applied as printed, fails both transfers: the
    masked one (a count per feature, entries that pass no gradient) and the (N, C, H, W) one."""
    masked = cases.find("masked_batchnorm_backward")

    def pasted_masked(dout, cache):
        x, mask, mu, xc, var, std, x_hat, gamma, eps = cache
        return _compact(dout, (x, mu, xc, var, std, 1.0 / std, x_hat, gamma, eps))
    verdict = checks.verdict_for_function(masked, pasted_masked)
    assert not verdict.passed and "fully observed form applied as it is" in verdict.message, verdict.message
    spatial = cases.find("spatial_batchnorm_backward")
    verdict = checks.verdict_for_function(spatial, _compact)
    assert not verdict.passed
    ns = solution_namespace("ch3_backward")
    assert checks.verdict_for_function(masked, ns["masked_batchnorm_backward"]).passed
    assert checks.verdict_for_function(spatial, ns["spatial_batchnorm_backward"]).passed


def test_masked_reference_is_plain_batch_norm_on_the_observed_entries():
    from autograder.course import reference as R
    rng = np.random.default_rng(1)
    x, gamma, dout = rng.normal(1, 2, (9, 3)), rng.uniform(0.5, 2, 3), rng.standard_normal((9, 3))
    mask = np.ones_like(x, dtype=bool)
    mask[[1, 4, 7], 1] = False
    mask[:7, 2] = False
    dx, dgamma, dbeta = R.masked_batchnorm_backward(dout, np.where(mask, x, np.nan), mask, gamma)
    for d in range(3):
        rows = mask[:, d]
        want = R.batchnorm_backward(dout[rows, d:d + 1], x[rows, d:d + 1], gamma[d:d + 1], np.zeros(1))
        np.testing.assert_allclose(dx[rows, d], want[0][:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose([dgamma[d], dbeta[d]], [want[1][0], want[2][0]], rtol=1e-10)
    assert np.all(dx[~mask] == 0.0)


def test_staged_reference_agrees_with_batch_norm_autograd():
    from autograder.course import reference as R
    rng = np.random.default_rng(0)
    x, gamma, dout = rng.normal(2, 3, (7, 5)), rng.uniform(0.5, 2, 5), rng.standard_normal((7, 5))
    staged = R.batchnorm_backward_staged(dout, x, gamma)
    for mine, theirs in zip(staged[:3], R.batchnorm_backward(dout, x, gamma, np.zeros(5))):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    dxh, dvar, dmu = staged[3:]
    np.testing.assert_allclose(dxh, gamma * dout)
    np.testing.assert_allclose(dmu, -(dxh / np.sqrt(x.var(0) + 1e-5)).sum(0), rtol=1e-10, atol=1e-12)


# ---- chapters 3 and 5: root cause first, rectangular cases, hints that do not answer ----------

CH3_CH5 = [(a, c) for a in ("ch3_backward", "ch5_alternatives") for c in ASSIGNMENTS[a]]
BACKWARD = [(a, c) for a, c in CH3_CH5 if "dx" in c.compared]


@pytest.mark.parametrize("assignment,check", BACKWARD, ids=_ids)
def test_parameter_gradients_are_compared_before_dx(assignment, check):
    """A slip in dgamma or dbeta that dx reuses is reported where it starts, not in dx."""
    params = [p for p in ("dbeta", "dgamma") if p in check.returns]
    assert params, check.function
    for p in params:
        assert check.compared.index(p) < check.compared.index("dx")


def test_averaged_dgamma_reused_in_dx_is_named_at_dbeta():
    ns = solution_namespace("ch3_backward")

    def averaged(dout, cache):
        x, mask, mu, xc, var, std, x_hat, gamma, eps = cache
        count = mask.sum(axis=0)
        dy = np.where(mask, dout, 0.0)
        db, dg = dy.sum(axis=0) / count, (dy * x_hat).sum(axis=0) / count
        return np.where(mask, gamma / std * (dy - db - x_hat * dg), 0.0), dg, db
    check = cases.find("masked_batchnorm_backward")
    verdict = checks.verdict_for_function(check, averaged, check.cases[:1])
    assert "`dbeta` differs" in verdict.message
    assert "dgamma/dbeta averaged over the batch" in verdict.message
    assert checks.verdict_for_function(check, ns["masked_batchnorm_backward"]).passed


def _array_shapes(value):
    if isinstance(value, np.ndarray):
        yield value.shape
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _array_shapes(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _array_shapes(v)


@pytest.mark.parametrize("assignment,check", CH3_CH5, ids=_ids)
def test_visible_inputs_are_rectangular(assignment, check):
    """No visible input with two equal axes (other than 1): a swapped axis must show."""
    for case in check.cases:
        if case.hidden:
            continue
        for shape in _array_shapes(checks.case_inputs(check, case)):
            sizes = [d for d in shape if d > 1]
            assert len(sizes) == len(set(sizes)), f"{case.name}: input of shape {shape}"


CODE = re.compile(r"np\.|\w\(.*\)\s*[-+*/]?=|\b\w+\s*[-+*/]?=\s*\w|\.reshape\(|\.transpose\(|"
                  r"axis\s*=|keepdims|\.sum\(|\.mean\(|\*\*")


@pytest.mark.parametrize("assignment,check", CH3_CH5, ids=_ids)
def test_hints_name_the_mistake_without_solution_code(assignment, check):
    hints = [m.hint for m in check.mistakes] + [c.hint for c in check.cases if c.hint]
    for hint in hints:
        assert hint and not CODE.search(hint), hint


def test_hint_scan_can_fail():
    for line in ("dxc += 2 * xc * dvar / N", "use np.clip(r, 1 / r_max, r_max)",
                 "dout.transpose(0, 2, 3, 1).reshape(-1, C)", "reduce over axis=1",
                 "ds = -dr / s**2"):
        assert CODE.search(line), line


def test_gamma_outside_the_means_is_right_only_for_batch_norm():
    """Chapter 5's point, on a graded layer: batch norm's compact form with gamma outside the
    set means is group norm's gradient only where gamma is constant on each group."""
    from autograder.course.cases import ch5_alternatives as T
    check = cases.find("groupnorm_backward")
    case = check.cases[0]
    inputs = checks.case_inputs(check, case)
    outside = T._gn_backward_variant(gamma_outside=True)
    assert not np.allclose(outside(inputs)[2], checks.expected_outputs(check, case)[2])
    x, gamma, beta, G, eps = inputs["cache"]
    per_group = np.repeat(np.linspace(0.6, 1.7, G), len(gamma) // G)
    flat = {**inputs, "cache": (x, per_group, beta, G, eps)}
    np.testing.assert_allclose(outside(flat)[2], check.reference(flat)[2], rtol=1e-10, atol=1e-12)


# ---- chapter 4: two torch implementations of the same thing agree -------------------------

@pytest.mark.parametrize("function", ["BatchNorm", "train_bn_mlp"])
def test_hand_written_torch_variant_matches_the_torch_modules(function):
    """The mistakes are computed by a hand-written torch model; with no mistake switched on it
    must reproduce torch.nn's own modules, or the names it gives would be unreliable."""
    from autograder.course.cases import ch4_inference as T
    check = cases.find(function)
    plain = (T._layer_variant if function == "BatchNorm" else T._mlp_variant)()
    for case in check.cases:
        rtol, atol = max(case.rtol or 0, 1e-9), max(case.atol or 0, 1e-9)  # the 1e6-offset case
        for got, exp in zip(plain(checks.case_inputs(check, case)), checks.expected_outputs(check, case)):
            np.testing.assert_allclose(got, exp, rtol=rtol, atol=atol, err_msg=case.name)


def test_layer_protocol_says_what_is_missing_or_misshapen():
    ns = solution_namespace("ch4_inference")
    check = cases.find("BatchNorm")

    class Flat(ns["BatchNorm"]):
        def forward(self, x):
            return super().forward(x).reshape(len(x), -1)

    class Uncounted(ns["BatchNorm"]):
        def __init__(self, num_features, eps=1e-5, momentum=0.1):
            super().__init__(num_features, eps, momentum)
            del self.num_batches_tracked

    flat = checks.verdict_for_function(check, Flat, check.cases[2:3])
    assert "forward's output at step 1 has shape (2, 60); expected (2, 3, 4, 5)" in flat.message
    uncounted = checks.verdict_for_function(check, Uncounted, check.cases[:1])
    assert "num_batches_tracked" in uncounted.message and not uncounted.passed


def test_capstone_needs_a_history_of_dicts():
    ns = solution_namespace("ch4_inference")
    check = cases.find("train_bn_mlp")

    def params_only(*args):
        losses, history, scores = ns["train_bn_mlp"](*args)
        return losses, [{k: v for k, v in h.items() if "running" not in k} for h in history], scores
    verdict = checks.verdict_for_function(check, params_only, check.cases[:1])
    assert "history[0] is not a dict with a 'running_mean1' entry" in verdict.message


# ---- chapter 5: batch renormalization's stop-gradient ---------------------------------------

def test_renorm_gradient_through_r_and_d_is_the_inference_gradient():
    """Unclipped, r and d with gradients make x_hat = (x - m) / sigma: the batch drops out."""
    from autograder.course import reference as R
    rng = np.random.default_rng(1)
    x, gamma, beta, dout = rng.standard_normal((6, 3)), rng.uniform(0.5, 2, 3), np.zeros(3), rng.standard_normal((6, 3))
    rm, rv = np.array([0.1, -0.2, 0.3]), np.array([0.8, 1.1, 1.3])
    through = R.batch_renorm_backward(dout, x, gamma, beta, rm, rv, 100.0, 100.0, through_rd=True)
    np.testing.assert_allclose(through[0], gamma * dout / np.sqrt(rv + 1e-5), rtol=1e-10)
    stopped = R.batch_renorm_backward(dout, x, gamma, beta, rm, rv, 1.0, 0.0)
    np.testing.assert_allclose(stopped[0], R.batchnorm_backward(dout, x, gamma, beta)[0], rtol=1e-10)


# ---- chapter 1: whitening ----------------------------------------------------------------------

def test_whitening_whitens_and_makes_the_hessian_round():
    from autograder.course import reference as R
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4)) + 7.0
    z, _ = R.whiten(x, x[:1], eps=1e-12)
    np.testing.assert_allclose(z.T @ z / len(z), np.eye(4), atol=1e-8)
    assert R.condition_number(z) == pytest.approx(1.0, abs=1e-8)
    assert R.condition_number(x) > 10


# ---- chapter 5: the sweep's hidden cases are small, and still tell every mistake apart ---------

@pytest.mark.parametrize("key", ["submission-a", "submission-b"])
def test_each_hidden_sweep_case_tells_apart_the_mistakes_its_setting_can_show(key):
    """The experiment's hidden cases train on fewer rows than the visible ones (grading pays for
    every training step twice: the student's run and the reference). Each must still tell apart,
    for any submission's key, every known mistake its setting can show: with BN all of them, with
    GN those of the training loop; the last partial batch wherever a batch size leaves one."""
    check = next(c for c in ASSIGNMENTS["ch5_alternatives"] if c.function == "batch_size_sweep")
    loop = {"loss summed", "weights carried over"}
    hidden = [c for c in check.cases if c.hidden]
    assert len(hidden) >= 4
    with checks.keyed(key):
        for case in hidden:
            inputs = checks.case_inputs(check, case)
            n = len(inputs["x_train"])
            assert n <= 125 and n < len(checks.case_inputs(check, check.cases[0])["x_train"]), case.name
            partial = any(n % b for b in inputs["batch_sizes"])
            shows = ({m.name for m in check.mistakes} if inputs["norm"] == "bn" else set(loop)) | (
                {"last partial batch used"} if partial else set())
            expected = checks.expected_outputs(check, case)
            told = {known.name for known, wrong in checks.known_outputs(check, case)
                    if not all(np.allclose(w, e, rtol=1e-6, atol=1e-8) for w, e in zip(wrong, expected))}
            assert shows <= told, (case.name, shows - told)
