"""The instructor's grade report: one self-contained HTML page next to grades.csv.

It shows, per assignment, a histogram of scores, the most common named mistakes, and every
submission that failed to run, with its one-line reason.  The rows of every grading run are kept
in ``grading_log.json`` (keyed by assignment and student), so grading one student again updates
that row and keeps the rest.
"""
from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.grader.grades import GRADER_ERROR
from autograder.grader.safety import safe_text

if TYPE_CHECKING:
    from autograder.grader.grades import Row


def _h(text) -> str:
    """Student-controlled text for the page: control and bidi characters escaped, then HTML."""
    return html.escape(safe_text(text))


def update_log(root: Path, rows: list[Row]) -> list[dict]:
    path = root / "grading_log.json"
    try:
        known = {(r["assignment"], r["student"]): r for r in json.loads(path.read_text())}
    except (OSError, ValueError):
        known = {}
    for row in rows:
        known[(row.assignment, row.student)] = asdict(row)
    merged = sorted(known.values(), key=lambda r: (r["assignment"], r["student"]))
    path.write_text(json.dumps(merged, indent=1))
    return merged


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def write(root: Path, rows: list[dict]) -> Path:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assignments = sorted({r["assignment"] for r in rows})
    parts = [f"<h1>Grade report</h1><p>{sum(r.get('status') != 'missing' for r in rows)} graded submissions, {len(assignments)} "
             f"assignments. Scores are in <code>grades.csv</code> and the nbgrader gradebook; "
             f"feedback is under <code>feedback/</code>.</p>"]
    for a in assignments:
        everyone = [r for r in rows if r["assignment"] == a]
        missing = [r for r in everyone if r.get("status") == "missing"]
        mine = [r for r in everyone if r.get("status") != "missing"]
        scores = [r["score"] for r in mine if r.get("status") != GRADER_ERROR]
        top = max((r["max_score"] for r in mine), default=0) or 1
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
        left.hist(scores, bins=[i - 0.5 for i in range(int(top) + 2)], color="#0072B2", edgecolor="white")
        left.set(title=f"{a}: scores", xlabel=f"score (points out of {top:g})", ylabel="students")
        left.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # whole students
        counts = Counter(m for r in mine for m in set(r["mistakes"]))
        common = counts.most_common(8)
        if common:
            names, ns = zip(*reversed(common))
            right.barh(names, ns, color="#E69F00")
            right.set(title="most common named mistakes", xlabel="submissions", ylabel="")
            right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        else:
            right.text(0.5, 0.5, "no named mistakes", ha="center", va="center")
            right.set(title="most common named mistakes", xticks=[], yticks=[])
        image = _png(fig)
        plt.close(fig)
        failed = [r for r in mine if r["status"] not in ("graded", GRADER_ERROR)]
        broken = [r for r in mine if r["status"] == GRADER_ERROR]
        mean = sum(scores) / len(scores) if scores else 0
        late = sum(1 for r in mine if r.get("late"))
        waiting = sum(r.get("awaiting", 0) for r in mine)
        parts.append(f"<h2>{html.escape(a)}</h2><p>{len(mine)} submissions, mean {mean:.2f} / {top:g}, "
                     f"{sum(s == top for s in scores)} full marks, {len(failed)} failed to run, "
                     f"{len(broken)} not graded (grader errors); "
                     f"{len(missing)} missing, {late} late, {waiting} written answers await a person.</p>"
                     f'<img alt="score histogram and common mistakes for {html.escape(a)}" src="{image}">')
        if broken:
            parts.append("<h3>Grader errors: not graded (the grader's failure, not the students'; "
                         "grade these again)</h3><table><tr><th>student</th><th>reason</th></tr>"
                         + "".join(f"<tr><td>{_h(r['student'])}</td><td>{_h(r['reason'])}</td></tr>"
                                   for r in broken) + "</table>")
        if failed:
            parts.append("<h3>Submissions that failed to run</h3><table><tr><th>student</th><th>reason</th></tr>"
                         + "".join(f"<tr><td>{_h(r['student'])}</td><td>{_h(r['reason'])}</td></tr>"
                                   for r in failed) + "</table>")
        parts.append("<h3>Every submission</h3><table><tr><th>student</th><th>score</th><th>notes</th></tr>"
                     + "".join(f"<tr><td>{_h(r['student'])}</td><td>{_score(r)}</td>"
                               f"<td>{_h(_notes(r))}</td></tr>" for r in mine) + "</table>")
        if missing:
            parts.append("<h3>Missing (on the roster, no submission)</h3><p>"
                         + ", ".join(_h(r["student"]) for r in missing) + "</p>")
    page = ("<!doctype html><meta charset='utf-8'><title>Grade report</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
            "text-align:left;vertical-align:top}img{max-width:100%}</style>" + "".join(parts))
    dest = root / "grade_report.html"
    dest.write_text(page)
    return dest


def _score(r: dict) -> str:
    if r.get("status") == GRADER_ERROR:
        return f"not graded/{r['max_score']:g}"
    return f"{r['score']:g}/{r['max_score']:g}"


def _notes(r: dict) -> str:
    from autograder.grader.grades import cut, note
    if r["status"] == GRADER_ERROR:
        return note(r, "GRADER ERROR, not graded: " + r["reason"])
    if r["status"] != "graded":
        return note(r, "failed: " + r["reason"])
    lost = [f"{gid}: {msg}" for gid, (ok, msg) in r["functions"].items() if not ok]
    return note(r, cut(" | ".join(lost), 600) if lost else "all checks pass")
