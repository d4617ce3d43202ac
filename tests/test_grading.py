"""The real grading command on the bundled sample class (honest, blank, one per planted bug)."""
import csv

import pytest

from autograder import samples
from autograder.cases import ASSIGNMENT_IDS

ALL_BUGS = [(a, b) for a in ASSIGNMENT_IDS for b in samples.bugs(a)]


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_solution_scores_full_marks(graded_class, assignment):
    scores = graded_class.cell_scores(assignment, "sample-honest")
    assert scores == graded_class.max_scores(assignment)
    assert sum(scores.values()) > 0


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_blank_release_scores_zero(graded_class, assignment):
    assert set(graded_class.cell_scores(assignment, "sample-blank").values()) == {0.0}
    assert "not implemented" in graded_class.feedback(assignment, "sample-blank")


@pytest.mark.parametrize("assignment,bug", ALL_BUGS, ids=lambda v: getattr(v, "name", v))
def test_bug_loses_exactly_its_function(graded_class, assignment, bug):
    scores = graded_class.cell_scores(assignment, f"sample-bug-{bug.name}")
    full = graded_class.max_scores(assignment)
    expected = {cell: (0.0 if cell == f"check_{bug.function}" else pts) for cell, pts in full.items()}
    assert scores == expected
    assert bug.mistake in graded_class.feedback(assignment, f"sample-bug-{bug.name}")


def test_submissions_are_never_modified(graded_class):
    assert graded_class.before == graded_class.after


def test_grades_csv_has_nbgraders_columns(graded_class):
    with open(graded_class.root / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"assignment", "student_id", "score", "max_score"} <= set(rows[0])
    honest = [r for r in rows if r["student_id"] == "sample-honest"]
    assert len(honest) == len(ASSIGNMENT_IDS)
    assert all(float(r["score"]) == float(r["max_score"]) > 0 for r in honest)


def test_feedback_shows_no_hidden_test_source(graded_class):
    text = graded_class.feedback("ch2_forward", "sample-bug-one-pass-variance")
    assert "mean 1e6, std 1e-3" in text                    # the failing hidden case is named...
    assert "_bn_inputs" not in text and "Case(" not in text  # ...its source is not shown
    assert "BEGIN HIDDEN" not in text


def test_command_prints_a_table_with_named_mistakes(graded_class):
    out = graded_class.cli.stdout
    assert "sample-honest" in out and "all checks pass" in out
    assert "unbiased variance" in out
    syntax = next(ln for ln in out.splitlines() if ln.startswith("sample-bug-syntax-error "))
    assert "its cell raised SyntaxError" in syntax
