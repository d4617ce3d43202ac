"""The checks API: solutions pass every case, each planted bug is named, messages are useful."""
import numpy as np
import pytest

from autograder.course import cases, checks, samples
from autograder.course.cases import ASSIGNMENT_IDS, ASSIGNMENTS
from autograder.student import check

from conftest import solution_namespace

ALL_CHECKS = [(a, c) for a in ASSIGNMENT_IDS for c in ASSIGNMENTS[a]]
def _compiles(source: str) -> bool:
    try:
        compile(source, "<bug>", "exec")
        return True
    except SyntaxError:  # diagnosed by grading (tests/test_grading.py), not in-process
        return False


ALL_BUGS = [(a, b) for a in ASSIGNMENT_IDS for b in samples.bugs(a) if _compiles(b.source)]


@pytest.mark.parametrize("assignment,check", ALL_CHECKS, ids=lambda v: getattr(v, "function", v))
def test_solution_passes_every_case(assignment, check):
    fn = solution_namespace(assignment)[check.function]
    verdict = checks.verdict_for_function(check, fn, check.cases)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("assignment,check", ALL_CHECKS, ids=lambda v: getattr(v, "function", v))
def test_solution_passes_hidden_cases_for_any_submission(assignment, check):
    """Hidden inputs are drawn anew for every submission (keyed by the course secret and the
    notebook): a case must be well posed for every draw, not only for the one the suite sees.
    A hundred submission keys per function; an ill-conditioned draw that two correct methods
    disagree on shows up here."""
    fn = solution_namespace(assignment)[check.function]
    hidden = [c for c in check.cases if c.hidden]
    for k in range(100):
        token = checks.SUBMISSION_KEY.set(f"suite-submission-{k}")
        try:
            verdict = checks.verdict_for_function(check, fn, hidden)
        finally:
            checks.SUBMISSION_KEY.reset(token)
        assert verdict.passed, f"submission key {k}: {verdict.message}"


@pytest.mark.parametrize("assignment,check", ALL_CHECKS, ids=lambda v: getattr(v, "function", v))
def test_cases_are_visible_and_hidden(assignment, check):
    assert sum(not c.hidden for c in check.cases) >= 2
    assert sum(c.hidden for c in check.cases) >= 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the planted bugs compute NaNs
@pytest.mark.parametrize("assignment,bug", ALL_BUGS, ids=lambda v: getattr(v, "name", v))
def test_planted_bug_is_named(assignment, bug):
    ns = solution_namespace(assignment)
    exec(bug.source, ns)
    check = cases.find(bug.function)
    verdict = checks.verdict_for_function(check, ns[bug.function], check.cases)
    assert not verdict.passed
    assert bug.mistake in verdict.message


def test_self_check_raises_assertion_naming_the_mistake(capsys):
    def unbiased(x, gamma, beta, ghost_size, eps=1e-5):
        g = x.reshape(-1, ghost_size, x.shape[1])
        out = gamma * (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, ddof=1, keepdims=True) + eps) + beta
        return out.reshape(x.shape), None
    with pytest.raises(AssertionError, match="unbiased variance"):
        check("ghost_batchnorm_forward", unbiased)


def test_self_check_reports_stub_and_wrong_shapes(capsys):
    def stub(x, gamma, beta, ghost_size, eps=1e-5):
        raise NotImplementedError()
    check("ghost_batchnorm_forward", stub)  # reported, not raised: Run All goes on to the next check
    assert "ghost_batchnorm_forward is not implemented yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"returned ndarray, expected a tuple of 2 values"):
        check("ghost_batchnorm_forward", lambda x, g, b, k, eps=1e-5: x)
    with pytest.raises(AssertionError, match=r"has shape \(12,\); expected \(12, 3\)"):
        check("ghost_batchnorm_forward", lambda x, g, b, k, eps=1e-5: (x[:, 0], None))
    with pytest.raises(AssertionError, match="is list; expected a NumPy float array"):
        check("ghost_batchnorm_forward", lambda x, g, b, k, eps=1e-5: (x.tolist(), None))


def test_self_check_passes_and_says_so(capsys):
    ns = solution_namespace("ch2_forward")
    check("ghost_batchnorm_forward", ns["ghost_batchnorm_forward"])
    assert "checks passed" in capsys.readouterr().out


def test_student_function_cannot_change_the_cases():
    """A function that scribbles on its inputs changes neither later cases nor the reference,
    and loses its points by name: inputs are compared after every call."""
    ns = solution_namespace("ch2_forward")
    def vandal(x, gamma, beta, ghost_size, eps=1e-5):
        out = ns["ghost_batchnorm_forward"](x, gamma, beta, ghost_size, eps)
        x[...] = 0
        gamma[...] = 0
        return out
    check = cases.find("ghost_batchnorm_forward")
    verdict = checks.verdict_for_function(check, vandal, check.cases)
    assert not verdict.passed
    assert "modified its input `x` in place" in verdict.message
    assert [m.name for m in verdict.mistakes] == ["modified its input `x` in place"]
    # the next function call still sees the case as generated
    assert checks.verdict_for_function(check, ns["ghost_batchnorm_forward"], check.cases).passed


def test_unknown_function_is_a_clear_error():
    with pytest.raises(KeyError, match="no checks are defined"):
        check("batchnorm_sideways", lambda x: x)


def test_folded_conv_reproduces_conv_then_bn():
    """ch6 is graded on the folded weights; check the solution's weights by the layer's outputs too."""
    from autograder.course.cases.ch6_folding import conv_output_gap
    fold = solution_namespace("ch6_folding")["fold_conv_bn"]
    check = cases.find("fold_conv_bn")
    for case in check.cases:
        inputs = checks.case_inputs(check, case)
        gap, size = conv_output_gap(*fold(**inputs), inputs)
        assert gap <= 1e-10 * max(1.0, size), case.name


def test_bn_before_conv_fold_is_exact_with_its_pad_value_and_not_with_zeros():
    """fold_bn_conv is graded on its three arrays; judge the solution's by the outputs too, for
    several paddings and strides, and show the padding caveat the exercise is about."""
    from autograder.course.cases.ch6_folding import bn_conv_output_gap
    fold = solution_namespace("ch6_folding")["fold_bn_conv"]
    check = cases.find("fold_bn_conv")
    for case in check.cases:
        inputs = checks.case_inputs(check, case)
        w_f, b_f, pad = fold(**inputs)
        for padding, stride in ((0, 1), (1, 2), (2, 1)):
            gap, size = bn_conv_output_gap(w_f, b_f, pad, inputs, padding=padding, stride=stride)
            assert gap <= 1e-9 * max(1.0, size), (case.name, padding, stride)
        zero_gap, size = bn_conv_output_gap(w_f, b_f, np.zeros_like(pad), inputs, padding=1)
        assert zero_gap > 1e-3 * size, case.name


def test_layer_list_protocol_says_what_came_back():
    check = cases.find("fold_layers")
    as_tuple = checks.verdict_for_function(check, lambda layers: "folded", check.cases[:1])
    assert "returned str, expected a list of layers" in as_tuple.message
    no_kind = checks.verdict_for_function(check, lambda layers: [{"w": 1}], check.cases[:1])
    assert "layer 0 of the returned list is dict, not a dict with a 'kind'" in no_kind.message
    unchanged = checks.verdict_for_function(check, lambda layers: layers, check.cases[:1])
    assert not unchanged.passed and "`folded_params` has shape" in unchanged.message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_masked_forward_survives_inf_padding_only_by_selection():
    """The visible inf-padding case tells a mask product (NaN everywhere) from a selection."""
    ns = solution_namespace("ch2_forward")
    check = cases.find("masked_batchnorm_forward")
    assert checks.verdict_for_function(check, ns["masked_batchnorm_forward"]).passed

    bug = next(b for b in samples.bugs("ch2_forward") if b.name == "masked-multiplied-by-mask")
    exec(bug.source, ns)
    zeros_case = [c for c in check.cases if "zeros" in c.name]
    assert checks.verdict_for_function(check, ns["masked_batchnorm_forward"], zeros_case).passed
    verdict = checks.verdict_for_function(check, ns["masked_batchnorm_forward"])
    assert not verdict.passed and "padding holds +-inf" in verdict.message
    assert "padding multiplied away" in verdict.message
