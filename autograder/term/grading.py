"""A term around the grader: due dates before, lateness and missing students after, and grades.csv
with the term's columns. The grader knows nothing of terms; this layer calls it with these hooks."""
from __future__ import annotations

from pathlib import Path

from autograder.grader import pipeline
from autograder.grader.grades import GRADER_ERROR, Row, write_csv
from autograder.term.late import standing
from autograder.term.roster import apply_due


def annotate(api, assignment: str, rows: list, students=None, state: dict | None = None) -> list:
    """Fill each grading row's lateness, penalty and written answers awaiting a person, and add a
    row marked *missing* for every student in nbgrader's table who handed nothing in. ``state``:
    the assignment's ``standing``, when the caller has read it."""
    state = standing(api, assignment) if state is None else state
    have = {r.student for r in rows}
    for r in rows:
        s = state.get(r.student, {})
        if s.get("status") == "submitted":
            r.late, r.awaiting = s["late"], s["awaiting"]
            r.penalty, r.score, r.max_score = s["penalty"], s["score"], s["max_score"]
    for sid, s in sorted(state.items()):
        if s["status"] == "missing" and sid not in have and (students is None or sid in students):
            rows.append(Row(sid, assignment, 0.0, s["max_score"], status="missing",
                            reason="no submission"))
    return rows


def write_grades_csv(api, dest: Path, known: dict | None = None) -> Path:
    """nbgrader's CSV columns (``nbgrader export``), plus status (submitted / missing), late and
    written answers awaiting a person; a missing student's scores are empty, not 0. ``known``:
    assignments' ``standing`` read since their last gradebook write (a student the gradebook met
    after it, in a later assignment, is missing there)."""
    from nbgrader.api import Gradebook
    keys = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
            "raw_score", "late_submission_penalty", "score", "max_score", "status", "late",
            "written_awaiting"]
    with Gradebook(api.coursedir.db_url) as gb:
        assignments = [a.name for a in gb.assignments]
        people = {s.id: s for s in gb.students}
        due = {a.name: a.duedate for a in gb.assignments}
    rows = []
    for a in assignments:
        state = (known or {}).get(a)
        state = _with_everyone(state, people) if state else standing(api, a)
        for sid, s in sorted(state.items()):
            p = people[sid]
            row = {"assignment": a, "duedate": due[a] or "", "student_id": sid,
                   "last_name": p.last_name or "", "first_name": p.first_name or "", "email": p.email or "",
                   "max_score": s["max_score"], "status": s["status"]}
            if s["status"] in ("submitted", GRADER_ERROR):
                row.update(timestamp=s["timestamp"] or "", raw_score=s["raw_score"],
                           late_submission_penalty=s["penalty"], score=s["score"], late=s["late"],
                           written_awaiting=s["awaiting"])
            rows.append(row)
    write_csv(dest, keys, [[r.get(k, "") for k in keys] for r in rows])
    return dest


def _with_everyone(state: dict, people: dict) -> dict:
    """``standing`` read earlier, with a student the gradebook has met since as missing."""
    max_score = next(iter(state.values()))["max_score"]
    return {**{sid: {"status": "missing", "max_score": max_score, "score": None} for sid in people}, **state}


class TermHooks(pipeline.Hooks):
    """The term around each assignment's grading (see ``pipeline.Hooks``). The standing read to
    annotate an assignment's rows is read after its last gradebook write of the run: grades.csv
    reuses it (a dozen queries per student and assignment, at the end of the run)."""

    def __init__(self):
        self.standings: dict[str, dict] = {}

    def before_assignment(self, api, assignment):
        self.standings.pop(assignment, None)
        apply_due(api, assignment)  # Term.due, before nbgrader computes lateness

    def annotate(self, api, assignment, rows, students):
        self.standings[assignment] = standing(api, assignment)
        return annotate(api, assignment, rows, students, self.standings[assignment])

    def write_grades_csv(self, api, dest, rows):
        return write_grades_csv(api, dest, self.standings)


def grade(assignments: list[str], cluster: str | None = None, **options) -> list[Row]:
    """``pipeline.grade`` with the term's hooks: what ``python -m autograder grade`` runs. With
    ``cluster`` (a Dask scheduler address or scheduler file) each submission is graded by a task on
    the cluster's workers (``autograder.grader.cluster``), under the same contract."""
    if cluster:
        from autograder.grader.cluster import grade_on_cluster
        options.pop("workers", None)  # the cluster's workers decide
        return grade_on_cluster(cluster, assignments, hooks=TermHooks(), **options)
    return pipeline.grade(assignments, hooks=TermHooks(), **options)
