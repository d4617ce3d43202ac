"""A made-up class for trying a whole term: ``python -m autograder sample-class A --term OUT``.

Writes ``OUT/roster.csv`` (id, name, email) and ``OUT/<A>_<lms>.zip``, a bulk download as the
platform makes it: ``students`` students on the roster, two of whom hand nothing in; the others'
notebooks (honest ones and the assignment's planted bugs, written answers filled in), of which
three are late (Canvas marks them ``-late``), two renamed by a browser or the platform
(``<a> (1).ipynb``, ``<a>-1.ipynb``), one student submitted twice (the newer one counts), plus
stray files (a PDF, ``.DS_Store``, ``__MACOSX/``, a notebook of another assignment).  Names,
ids and times are fixed: the class is the same every time.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import nbformat

from autograder.course import samples

FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
         "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Vera",
         "Wen", "Xavier", "Yara", "Zoe", "Arjun", "Bea", "Cyrus", "Dana", "Emil", "Fatou"]
LAST = ["Lovelace", "Okafor", "Martin", "Patel", "Yilmaz", "Haddad", "Hopper", "Tanaka", "Silva",
        "Berg", "Demir", "Novak", "Garcia", "Mensah", "Aziz", "Rao", "Byrne", "Costa", "Laine",
        "Khan", "Iyer", "Petrova", "Zhang", "Dubois", "Nasser", "Kim", "Mehta", "Schmidt", "Farahani",
        "Cohen", "Lund", "Diallo"]
DUE = dt.datetime(2026, 10, 5, 23, 59)          # UTC
LATE = {5: dt.timedelta(minutes=5), 6: dt.timedelta(hours=30), 7: dt.timedelta(days=3, hours=2)}
WRITTEN = ("Because the normalized values of a batch have mean 0 and mean square 1, Cauchy-Schwarz "
           "bounds each of them by the square root of N - 1.")


def _student(k: int) -> dict:
    first, last = FIRST[k % len(FIRST)], LAST[k % len(LAST)]
    name = f"{first} {last}"
    if k == 9:  # a display name a spreadsheet would run as a formula, were it not neutralized
        name = "=SUM(1+1) Berg"
    return {"id": str(41000 + 7 * k), "name": name, "email": f"{first.lower()}.{last.lower()}@uni.example",
            "submission": str(900000 + 13 * k)}


def _notebooks(assignment: str, release: Path, solution: Path, n: int) -> list:
    rel = nbformat.read(release / assignment / f"{assignment}.ipynb", as_version=4)
    sol = nbformat.read(solution / assignment / f"{assignment}.ipynb", as_version=4)
    bugs = samples.bugs(assignment)
    out = []
    for k in range(n):
        if k % 4 == 3 and bugs:
            nb = samples.with_bug(rel, sol, bugs[(k // 4) % len(bugs)])
        elif k == 10:
            nb = rel  # handed in the release untouched
        else:
            nb = samples.honest(rel, sol)
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        for cell in nb.cells:  # written answers: a student's own words, not the model answer
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("solution"):
                cell.source = WRITTEN if k != 10 else "YOUR ANSWER HERE"
        out.append(nb)
    return out


def _name(student: dict, lms: str, filename: str, late: bool) -> str:
    if lms == "canvas":  # as Canvas's zipper names it: see autograder.term.settings.PATTERNS
        first, _, last = student["name"].rpartition(" ")
        sortable = re.sub(r"_(\d+)_", r"-\1-", f"{last}, {first}" if first else last)
        user = sortable + (" LATE_" if late else "_") + student["id"]
        user = re.sub(r"[^-A-Za-z0-9_]", "-", user.replace(" ", "-")).lower()
        return f"{user}_{student['submission']}_{filename}"
    if lms == "moodle":
        return f"{student['name']}_{student['id']}_assignsubmission_file_{filename}"
    return f"{student['id']}/{filename}"


def write(assignment: str, release: Path, solution: Path, out: Path, lms: str = "canvas",
          students: int = 30) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    people = [_student(k) for k in range(students)]
    roster = out / "roster.csv"
    import csv
    with open(roster, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "email"])
        for p in people:
            w.writerow([p["id"], p["name"], p["email"]])
    submitters = people[:-2]  # the last two hand nothing in
    notebooks = _notebooks(assignment, release, solution, len(submitters))
    archive = out / f"{assignment}_{lms}.zip"

    def put(z, name, data, when):
        info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)

    with zipfile.ZipFile(archive, "w") as z:
        for k, (p, nb) in enumerate(zip(submitters, notebooks)):
            late = k in LATE
            when = DUE + LATE[k] if late else DUE - dt.timedelta(hours=30 - k)
            filename = {3: f"{assignment} (1).ipynb", 4: f"{assignment}-1.ipynb"}.get(k, f"{assignment}.ipynb")
            if k == 8:  # submitted twice: a first attempt with a planted bug, then the fixed one
                first = samples.with_bug(nbformat.read(release / assignment / f"{assignment}.ipynb", as_version=4),
                                         nbformat.read(solution / assignment / f"{assignment}.ipynb", as_version=4),
                                         samples.bugs(assignment)[0]) if samples.bugs(assignment) else nb
                put(z, _name(p, lms, f"{assignment}.ipynb", False), nbformat.writes(first), when - dt.timedelta(hours=5))
                filename = f"{assignment}-1.ipynb" if lms == "canvas" else f"{assignment} (2).ipynb"
            put(z, _name(p, lms, filename, late), nbformat.writes(nb), when)
        strays = submitters[11 % len(submitters)], submitters[12 % len(submitters)]
        put(z, _name(strays[0], lms, "derivation.pdf", False), b"%PDF-1.4 not really\n", DUE - dt.timedelta(days=1))
        put(z, _name(strays[1], lms, "ch9_unknown.ipynb", False), nbformat.writes(notebooks[0]), DUE - dt.timedelta(days=1))
        put(z, ".DS_Store", b"\0\0\0\1Bud1", DUE - dt.timedelta(days=1))
        put(z, f"__MACOSX/._{_name(submitters[0], lms, assignment + '.ipynb', False)}", b"\0\5\26\7",
            DUE - dt.timedelta(days=1))
    return archive, roster
