"""Sample submissions: the bundled class that ``make grade`` grades and the test suite checks.

For every assignment the class has an honest student (the solution), a blank one (the release
copy, untouched), and one student per planted bug.  A bug replaces one function's solution cell
with wrong code; grading must take away exactly that function's points and name ``mistake`` in
the feedback.  Bugs live in ``samples/<assignment>.py`` as ``BUGS``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from nbformat import NotebookNode


@dataclass(frozen=True)
class Bug:
    name: str        # also the sample student's id suffix
    function: str    # the solution cell (grade_id == function name) it replaces
    mistake: str     # the mistake name the judge must report (Mistake.name or a phrase of the message)
    source: str      # the replacement cell source


def bugs(assignment: str) -> list[Bug]:
    try:
        return list(import_module(f"autograder.course.samples.{assignment}").BUGS)
    except ModuleNotFoundError:
        return []


def _solution_cells(solution_nb) -> dict[str, str]:
    """grade_id -> source with the ### BEGIN/END SOLUTION markers removed."""
    out = {}
    for cell in solution_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [ln for ln in cell.source.splitlines()
                     if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            out[meta["grade_id"]] = "\n".join(lines)
    return out


def edited_solution(assignment: str, function: str, *edits: tuple[str, str]) -> str:
    """The solution cell of ``function`` with each ``(old, new)`` edit applied: a planted bug
    that differs from the solution by a line or two, written as that difference."""
    path = Path(__file__).resolve().parents[3] / "solutions" / assignment / f"{assignment}.ipynb"
    source = _solution_cells(nbformat.read(path, as_version=4))[function]
    for old, new in edits:
        if old not in source:
            raise ValueError(f"planted bug for {function}: the solution no longer contains {old!r}")
        source = source.replace(old, new)
    return source


def honest(release_nb: NotebookNode, solution_nb: NotebookNode) -> NotebookNode:
    """The release notebook with every solution cell filled in, as a student would hand it in."""
    nb = copy.deepcopy(release_nb)
    filled = _solution_cells(solution_nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in filled:
            cell.source = filled[gid]
    return nb


def with_bug(release_nb: NotebookNode, solution_nb: NotebookNode, bug: Bug) -> NotebookNode:
    nb = honest(release_nb, solution_nb)
    cell = next((c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == bug.function), None)
    if cell is None:
        raise KeyError(f"bug {bug.name!r}: no solution cell with grade_id {bug.function!r}")
    cell.source = bug.source
    return nb


def write_class(assignment: str, release: Path, solution: Path, submitted: Path) -> list[str]:
    """Write the sample class for one assignment under ``submitted``; return the student ids."""
    name = f"{assignment}.ipynb"
    release_nb = nbformat.read(release / assignment / name, as_version=4)
    solution_nb = nbformat.read(solution / assignment / name, as_version=4)
    students = {"sample-honest": honest(release_nb, solution_nb),
                "sample-blank": copy.deepcopy(release_nb)}
    for bug in bugs(assignment):
        students[f"sample-bug-{bug.name}"] = with_bug(release_nb, solution_nb, bug)
    for student, nb in students.items():
        dest = submitted / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest / name)
    return list(students)


def write_many(root: Path, assignments: list[str], n_students: int) -> list[Path]:
    """n_students per assignment, cycling through the sample class (honest, blank, each bug)."""
    paths = []
    for a in assignments:
        release = nbformat.read(Path(__file__).resolve().parents[3] / "exercises" / a / f"{a}.ipynb", as_version=4)
        solution = nbformat.read(Path(__file__).resolve().parents[3] / "solutions" / a / f"{a}.ipynb", as_version=4)
        variants = [honest(release, solution), release] + \
                   [with_bug(release, solution, b) for b in bugs(a)]
        for k in range(n_students):
            dest = root / "submitted" / f"student-{k:03d}" / a / f"{a}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(variants[k % len(variants)], dest)
            paths.append(dest)
    return paths
