"""Points follow effort, and every assignment has the same total (issue 23, item 6): an LMS that
weights assignments equally must not silently reweight them."""
import re

import pytest

from autograder.course.cases import ASSIGNMENT_IDS

from conftest import REPO, graded_points

TOTAL = 20


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_every_assignment_totals_the_same(assignment):
    points = graded_points(assignment)
    assert sum(points.values()) == TOTAL, f"{assignment}: {points}"


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_the_chapter_announces_the_total(assignment):
    exercise = (REPO / "book" / f"{assignment}.md").read_text().split("## Exercise")[-1]
    assert re.search(rf"\b{TOTAL} points\b", exercise), f"{assignment}: the Exercise section states {TOTAL} points"


def test_the_intro_and_readme_state_the_scheme():
    for path in (REPO / "book" / "intro.md", REPO / "README.md"):
        text = path.read_text()
        assert re.search(rf"\b{TOTAL} points\b", text), f"{path.name} states the scheme"
