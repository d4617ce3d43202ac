"""A row of grades, how the table and the report describe it, and the quoted CSV they are written
to. Every layer above the grader (the term, the CLI, the tools) uses these; one owner for each."""
from __future__ import annotations

import csv
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grader.safety import csv_cell


@dataclass
class Row:
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"             # graded | failed | refused (not a student id) | missing | grader error
    reason: str = ""                   # one line when something went wrong
    functions: dict = field(default_factory=dict)   # grade_id -> (passed, message)
    mistakes: list = field(default_factory=list)   # names of the known mistakes recognised
    seconds: float = 0.0
    late: str = ""                     # "1 d 6 h late (-20 %)" (autograder.term fills these three)
    penalty: float = 0.0               # points taken for lateness
    awaiting: int = 0                  # written answers no person has graded yet


GRADER_ERROR = "grader error"
ERRORS_FILE = "grader_errors.json"   # in the course root: submissions the grader could not grade


def mark_grader_errors(root: Path, rows: list) -> None:
    """Remember which submissions the grader itself failed on (and forget those it now graded),
    so every table written from the gradebook shows them as such, never as a 0."""
    path = Path(root) / ERRORS_FILE
    try:
        known = json.loads(path.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    for r in rows:
        mine = known.setdefault(r.assignment, {})
        if r.status == GRADER_ERROR:
            mine[r.student] = r.reason
        elif r.status != "missing":
            mine.pop(r.student, None)
    known = {a: m for a, m in known.items() if m}
    if known or path.exists():
        path.write_text(json.dumps(known, indent=1, sort_keys=True))


def grader_errors(root: Path) -> dict:
    """{(assignment, student): reason} for the submissions the grader could not grade."""
    try:
        known = json.loads((Path(root) / ERRORS_FILE).read_text())
        return {(a, s): str(why) for a, m in known.items() for s, why in m.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def note(row: Row | dict, text: str) -> str:
    """The table's and report's note for a row, with lateness and written answers."""
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    if get("status") == "missing":
        return "MISSING: no submission"
    extra = []
    if get("late"):
        pen = get("penalty") or 0
        extra.append(f"{get('late')}" + (f", -{pen:g} points" if pen else ""))
    if get("awaiting"):
        n = get("awaiting")
        extra.append(f"{n} written answer{'s' if n != 1 else ''} await{'s' if n == 1 else ''} a person")
    return " | ".join(extra + [text]) if extra else text


def cut(text: str, width: int) -> str:
    """Shorten at a word boundary, never mid-word."""
    return textwrap.shorten(text, width=width, placeholder=" …") if len(text) > width else text


def score_text(row: Row | dict) -> str:
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    if get("status") in ("missing", "refused"):
        return f"{get('status'):>9}"
    if get("status") == GRADER_ERROR:
        return f"{'no grade':>9}"
    return f"{get('score'):>4g}/{get('max_score'):<4g}"




def write_csv(dest: Path, header: list, rows: list) -> Path:
    """Every field quoted; text through ``safety.csv_cell`` (escaped, never read as a formula)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow([csv_cell(h) for h in header])
        for row in rows:
            w.writerow([("" if v is None else (int(v) if float(v).is_integer() else round(float(v), 4)))
                        if isinstance(v, (int, float)) and not isinstance(v, bool) else csv_cell(v)
                        for v in row])
    return dest
