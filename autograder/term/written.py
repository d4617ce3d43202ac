"""The written (manually graded) questions (``autograder.course.questions``): appended as the LAST
cells of every solution notebook.

Each question is two cells in nbgrader's own format: a locked markdown prompt, and a markdown
"manually graded answer" cell (``grade`` + ``solution``, with points) whose source holds a model
answer and a rubric between ``### BEGIN SOLUTION`` / ``### END SOLUTION``: nbgrader's
``ClearSolutions`` replaces that region with "YOUR ANSWER HERE" at release, so students never see
it; graders read it in ``solutions/<a>/<a>.ipynb`` (formgrader's "Manage assignments" opens it).

``python -m autograder.term.written`` (re)applies them: idempotent, it removes any earlier copy of these
cells and appends them at the end, touching no other cell.  Then ``python -m autograder release``
and ``kits`` regenerate the release.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from autograder.course.questions import QUESTIONS, Question

REPO = Path(__file__).resolve().parents[2]


def cells_for(assignment: str) -> list:
    out = []
    q: Question
    for k, q in enumerate(QUESTIONS[assignment]):
        header = "## Written question\n\n" if k == 0 else ""
        out.append(nbformat.v4.new_markdown_cell(
            f"{header}**Question ({q.points:g} points, graded by a person).** {q.prompt}\n\n"
            "Answer in the cell below, in a few sentences of your own.",
            metadata={"nbgrader": {"grade": False, "grade_id": f"{q.grade_id}_prompt", "locked": True,
                                   "schema_version": 3, "solution": False}}))
        out.append(nbformat.v4.new_markdown_cell(
            f"### BEGIN SOLUTION\n**Model answer.** {q.answer}\n\n**Rubric ({q.points:g} points).** {q.rubric}\n"
            "### END SOLUTION",
            metadata={"nbgrader": {"grade": True, "grade_id": q.grade_id, "locked": False,
                                   "points": q.points, "schema_version": 3, "solution": True}}))
    for cell in out:  # ids from the grade_id, so re-applying leaves the notebook byte-identical
        cell["id"] = cell.metadata["nbgrader"]["grade_id"].replace("_", "-")
    return out


def written_ids(assignment: str) -> set[str]:
    return {q.grade_id for q in QUESTIONS[assignment]} | {f"{q.grade_id}_prompt" for q in QUESTIONS[assignment]}


def apply(assignment: str) -> Path:
    path = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    ours = written_ids(assignment)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ours]
    nb.cells += cells_for(assignment)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for a in sys.argv[1:] or list(QUESTIONS):
        print("appended written questions to", apply(a))
