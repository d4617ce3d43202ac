"""A failing comparison reports the root cause first (issue 15, item 6): buffers before the outputs
they feed, and, for a training run, the first step that differs, by number."""
import numpy as np

from autograder.course import cases, checks, samples

from conftest import solution_namespace


def _with_bug(assignment, name):
    ns = solution_namespace(assignment)
    bug = next(b for b in samples.bugs(assignment) if b.name == name)
    exec(bug.source, ns)
    return ns[bug.function]


def test_layer_reports_the_buffer_before_the_output_it_feeds():
    check = cases.find("BatchNorm")
    first = [check.cases[0]]            # train x3 then eval: the eval output is wrong too
    verdict = checks.verdict_for_function(check, _with_bug("ch4_inference", "biased-running-var"), first)
    assert not verdict.passed
    assert "at step 1, `running_var` differs" in verdict.message, verdict.message
    assert "`outputs`" not in verdict.message


def test_capstone_reports_the_first_step_that_differs():
    train = solution_namespace("ch4_inference")["train_bn_mlp"]

    def late_slip(params, x_batches, y_batches, x_eval, lr=0.1, momentum=0.1, eps=1e-5):
        losses, history, scores = train(params, x_batches, y_batches, x_eval, lr, momentum, eps)
        history[1]["W2"] = history[1]["W2"] + 1e-3           # step 2's update goes wrong...
        for later in history[2:]:
            later["W2"] = later["W2"] + 1e-3
        losses = losses.copy()
        losses[2:] += 1e-3                                      # ...and everything after it
        return losses, history, scores
    check = cases.find("train_bn_mlp")
    verdict = checks.verdict_for_function(check, late_slip, [check.cases[0]])
    assert not verdict.passed
    assert "at step 2, `W2` differs" in verdict.message, verdict.message


def test_capstone_wrong_backward_is_reported_at_step_1_not_as_the_loss():
    check = cases.find("train_bn_mlp")
    fn = _with_bug("ch4_inference", "bn-backward-without-batch-terms")
    verdict = checks.verdict_for_function(check, fn, [check.cases[0]])
    # backpropagation reaches W3, b3, gamma2 and beta2 before the BN backward pass: W2 is first wrong
    assert "at step 1, `W2` differs" in verdict.message, verdict.message
    assert "batch statistics treated as constants in backward" in verdict.message


def test_inputs_changed_in_place_are_named_for_every_protocol():
    """The class protocol (arrays passed to forward) and nested inputs (the capstone's params)."""
    for name, case_index, expected in (("forward-modifies-x", 0, "modified its input `x` in place"),
                                       ("capstone-modifies-params", 0,
                                        "modified its input `params['W1']` in place")):
        fn = _with_bug("ch4_inference", name)
        bug = next(b for b in samples.bugs("ch4_inference") if b.name == name)
        check = cases.find(bug.function)
        verdict = checks.verdict_for_function(check, fn, [check.cases[case_index]])
        assert not verdict.passed and expected in verdict.message, verdict.message
        assert [m.name for m in verdict.mistakes] == [expected]
    # an honest function that only reads its inputs is not flagged, NaN inputs included
    check = cases.find("whiten")
    inputs = checks.case_inputs(check, check.cases[0])
    inputs["x_test"][0, 0] = np.nan
    from autograder.student.verdict import run_case
    result = run_case(solution_namespace("ch1_covariate_shift")["whiten"], inputs, check.spec)
    assert result.status == "ok"


def test_layer_is_checked_as_its_constructor_made_it():
    """Issue 25 item 7: a constructor that makes weight and running_var one array passes every
    case that assigns fresh weight and bias, and differs from torch's layer in real use: the
    visible case that keeps the constructor's state fails it and names the alias."""
    check = cases.find("BatchNorm")
    aliased = _with_bug("ch4_inference", "weight-is-running-var")
    layer = aliased(3)
    assert layer.weight is layer.running_var
    assigned = [c for c in check.cases if not c.hidden and "constructor" not in c.name]
    assert checks.verdict_for_function(check, aliased, assigned).passed
    as_built = [c for c in check.cases if not c.hidden and "constructor" in c.name]
    assert as_built and checks.case_inputs(check, as_built[0])["weight"] is None
    verdict = checks.verdict_for_function(check, aliased, as_built)
    assert not verdict.passed and "weight is running_var" in verdict.message, verdict.message
    honest = solution_namespace("ch4_inference")["BatchNorm"]
    assert checks.verdict_for_function(check, honest, as_built).passed
