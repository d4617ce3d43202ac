"""The late policy (nbgrader's ``AssignLatePenalties`` with the course's plugin) and each
student's standing: submitted or missing, lateness, penalty, written answers awaiting a person."""
from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Enum, Float


class CoursePenalty(LateSubmissionPlugin):
    """The course's late policy: after a grace period, ``percent_per_day`` of the score is taken
    for each started day late, at most ``max_percent``.  Default: 15 minutes' grace, 10 % a day,
    at most 50 %, so a late submission always keeps half its points."""

    penalty_method = Enum(("percent_per_day", "none", "zero"), "percent_per_day",
                          help="'percent_per_day' (the course's policy), or nbgrader's 'none' / "
                               "'zero'").tag(config=True)
    grace_minutes = Float(15.0, help="Minutes after the due date that count as on time").tag(config=True)
    percent_per_day = Float(10.0, help="Percent of the score taken per started day late").tag(config=True)
    max_percent = Float(50.0, help="The most a late submission loses, in percent of its score").tag(config=True)

    def percent(self, seconds_late: float) -> float:
        if self.penalty_method == "none" or seconds_late <= self.grace_minutes * 60:
            return 0.0
        if self.penalty_method == "zero":
            return 100.0
        return min(self.max_percent, self.percent_per_day * math.ceil(seconds_late / 86400))

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return float(score or 0) * self.percent(total_seconds_late) / 100


def describe_late(seconds: float) -> str:
    """'3 h 20 min late' / '2 d 4 h late'."""
    minutes = int(seconds // 60)
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    return (f"{d} d {h} h" if d else f"{h} h {m} min" if h else f"{m} min") + " late"




def standing(api, assignment: str) -> dict:
    """Per student in the gradebook: submitted, missing or "grader error" (the grader failed on
    the submission: no score), lateness, penalty, written answers awaiting a person, score after
    the penalty."""
    from nbgrader.api import Gradebook, MissingEntry
    plugin = CoursePenalty(config=api.config)
    out = {}
    with Gradebook(api.coursedir.db_url) as gb:
        a = gb.find_assignment(assignment)
        max_score = float(a.max_score)
        for student in gb.students:
            try:
                sub = gb.find_submission(assignment, student.id)
            except MissingEntry:
                out[student.id] = {"status": "missing", "max_score": max_score, "score": None}
                continue
            raw = float(sub.score)
            late = float(sub.total_seconds_late or 0)
            penalty = plugin.late_submission_penalty(student.id, raw, late) if late > 0 else 0.0
            awaiting = sum(1 for nb in sub.notebooks for g in nb.grades
                           if g.cell_type == "markdown" and g.needs_manual_grade)
            out[student.id] = {
                "status": "submitted", "raw_score": raw, "penalty": penalty,
                "score": max(0.0, raw - penalty), "max_score": max_score,
                "seconds_late": late, "late": _late_text(plugin, late),
                "timestamp": sub.timestamp, "awaiting": awaiting,
                "name": " ".join(x for x in (student.first_name, student.last_name) if x),
                "email": student.email or "",
            }
    from autograder.grader.grades import GRADER_ERROR, grader_errors
    for (a, sid), why in grader_errors(api.coursedir.root).items():  # never a score: not graded
        if a == assignment and sid in out and out[sid]["status"] == "submitted":
            out[sid].update(status=GRADER_ERROR, score=None, raw_score=None, reason=why)
    return out


def _late_text(plugin: CoursePenalty, seconds: float) -> str:
    """'' when on time; '1 d 6 h late (-20 %)'; '5 min late (grace period)'."""
    if seconds <= 0:
        return ""
    percent = plugin.percent(seconds)
    return describe_late(seconds) + (f" (-{percent:g} %)" if percent else " (grace period)")


def refresh_penalties(api, assignment: str) -> None:
    """Recompute each late notebook's penalty from its current score (written answers graded
    after autograding change the score nbgrader's penalty was computed from)."""
    from nbgrader.api import Gradebook
    plugin = CoursePenalty(config=api.config)
    with Gradebook(api.coursedir.db_url) as gb:
        for sub in gb.assignment_submissions(assignment):
            late = float(sub.total_seconds_late or 0)
            for nb in sub.notebooks:
                nb.late_submission_penalty = (plugin.late_submission_penalty(sub.student.id, nb.score, late)
                                              if late > 0 else None)
        gb.db.commit()
