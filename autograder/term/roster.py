"""The roster (a CSV of id, name, email into nbgrader's student table) and due dates (``Term.due``
or ``python -m autograder due`` into nbgrader's assignment table)."""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from autograder.grader.safety import SAFE_ID_RULE, safe_id, safe_text
from autograder.term.settings import Term, _utc


def read_roster(path: Path) -> list[dict]:
    """Rows of a roster CSV with the columns id, name, email (a header line; extra columns are
    ignored). One clear error line for a bad file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SystemExit(f"error: cannot read roster {path}: {exc}") from None
    if not rows or "id" not in rows[0]:
        raise SystemExit(f"error: roster {path} needs a header line with the columns id,name,email")
    out, seen = [], set()
    for n, row in enumerate(rows, start=2):
        sid = (row.get("id") or "").strip()
        if not safe_id(sid):
            raise SystemExit(f"error: roster {path} line {n}: student id "
                             f"{safe_text(sid, newlines=False)[:80]!r} refused ({SAFE_ID_RULE})")
        if sid in seen:
            raise SystemExit(f"error: roster {path} line {n}: student id {sid!r} twice")
        seen.add(sid)
        out.append({"id": sid, "name": (row.get("name") or "").strip(), "email": (row.get("email") or "").strip()})
    return out


def load_roster(api, path: Path) -> int:
    """Put the roster into nbgrader's student table (update or create); returns the count."""
    from nbgrader.api import Gradebook
    rows = read_roster(path)
    with Gradebook(api.coursedir.db_url) as gb:
        for row in rows:
            first, _, last = row["name"].rpartition(" ")
            gb.update_or_create_student(row["id"], first_name=first or None, last_name=last or None,
                                        email=row["email"] or None)
    return len(rows)


def due_date(api, assignment: str, term: Term | None = None):
    """The due date (naive UTC): ``Term.due`` when set there, else the gradebook's."""
    term = term or Term(config=api.config)
    if assignment in term.due:
        return _utc(term.due[assignment])
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(api.coursedir.db_url) as gb:
        try:
            return gb.find_assignment(assignment).duedate
        except MissingEntry:
            return None


def set_due(api, assignment: str, when: str | None) -> dt.datetime | None:
    """Store a due date in nbgrader's assignment table (``nbgrader db assignment add --duedate``)."""
    from nbgrader.api import Gradebook
    value = None
    if when:
        try:
            value = _utc(when)
        except (ValueError, OverflowError):
            raise SystemExit(f"error: {when!r} is not a date (e.g. '2026-10-05 23:59 UTC')") from None
    with Gradebook(api.coursedir.db_url) as gb:
        gb.update_or_create_assignment(assignment, duedate=value)
    return value


def apply_due(api, assignment: str) -> None:
    """Before grading: a due date from ``Term.due`` goes into the gradebook (nbgrader computes
    lateness from it)."""
    term = Term(config=api.config)
    if assignment in term.due:
        set_due(api, assignment, term.due[assignment])


