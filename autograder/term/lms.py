"""Grades and feedback back to the learning platform, built from nbgrader's gradebook.

``python -m autograder export [A ...] --lms canvas|moodle`` writes, under ``autograder/export/``:

* ``grades.csv`` (nbgrader's columns, plus status / late / written answers awaiting a person);
* ``canvas_grades.csv``: Canvas's gradebook import layout (Student, ID, SIS User ID, SIS Login ID,
  Section, one column per assignment, a "Points Possible" row); a missing student's cell is
  empty, which Canvas leaves unchanged;
* ``moodle_grades.csv``: a Moodle "Import grades from CSV" file (identify users by email address
  or ID number; one grade and one feedback column per assignment);
* ``feedback/<assignment>/<student id>.zip``: each student's feedback page, named by the id the
  platform uses, with the MathJax it needs beside it (``_mathjax/``: the math renders offline),
  and ``feedback/<assignment>_<lms>_upload.zip`` holding every student's feedback
  named the way the platform's bulk upload matches it (Moodle: ``<Full Name>_<id>_assignsubmission_file_``
  folders; Canvas: ``<name>_<id>_<submission>_`` prefixes as in its download).

Before writing, late penalties are recomputed from the current scores (written answers graded in
formgrader since), and feedback is regenerated (nbgrader ``generate_feedback``).  Every text cell
is quoted and one starting with = + - @ is prefixed with ' (no formula runs in a spreadsheet).
Where students use JupyterHub with nbgrader's exchange, ``nbgrader release_feedback`` returns the
same feedback instead.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from autograder.grader.feedback import MATHJAX_SRC, offline_mathjax
from autograder.grader.grades import GRADER_ERROR, write_csv
from autograder.term.collect import collected_names
from autograder.term.grading import write_grades_csv
from autograder.term.late import refresh_penalties, standing


def _safe(part: str) -> str:
    """A file-name part from platform data (it may be student-controlled)."""
    keep = "".join(ch if ch.isalnum() or ch in " -._" else "_" for ch in str(part)).strip(" .")
    return keep[:80] or "_"


def export(api, config, assignments: list[str], lms: str, out: Path, feedback: bool = True) -> dict:
    from nbgrader.api import Gradebook
    out.mkdir(parents=True, exist_ok=True)
    for a in assignments:
        refresh_penalties(api, a)
    paths = {"grades": write_grades_csv(api, out / "grades.csv")}
    write_grades_csv(api, Path(api.coursedir.root) / "grades.csv")
    state = {a: standing(api, a) for a in assignments}
    with Gradebook(api.coursedir.db_url) as gb:
        people = {s.id: s for s in gb.students}
        max_scores = {a: float(gb.find_assignment(a).max_score) for a in assignments}
    ids = sorted(people)

    def full_name(s):
        return " ".join(x for x in (s.first_name, s.last_name) if x) or s.id

    def cell(a, sid):
        st = state[a].get(sid, {})
        return None if st.get("status") != "submitted" else round(st["score"], 4)

    # Canvas: https://community.canvaslms.com/ "How do I import grades in the Gradebook?"
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments]
    rows = [["Points Possible", "", "", "", "", *[max_scores[a] for a in assignments]]]
    for sid in ids:
        s = people[sid]
        name = ", ".join(x for x in (s.last_name, s.first_name) if x) or sid
        rows.append([name, sid, "", s.email or "", "", *[cell(a, sid) for a in assignments]])
    paths["canvas"] = write_csv(out / "canvas_grades.csv", header, rows)

    # Moodle: Grades > Import > CSV file; map "Email address" to the user's email.
    header = ["Email address", "ID number", "Full name"]
    for a in assignments:
        header += [a, f"{a} feedback"]
    rows = []
    for sid in ids:
        s = people[sid]
        row = [s.email or "", sid, full_name(s)]
        for a in assignments:
            st = state[a].get(sid, {})
            if st.get("status") == GRADER_ERROR:
                row += [None, "not graded yet: the grader failed on this submission"]
            elif st.get("status") != "submitted":
                row += [None, "missing: no submission"]
            else:
                late = f"{st['late']}, -{st['penalty']:g} points" if st["penalty"] else st["late"]
                row += [cell(a, sid), late]
        rows.append(row)
    paths["moodle"] = write_csv(out / "moodle_grades.csv", header, rows)

    if feedback:
        from autograder.grader.feedback import close_renderer, write_feedback
        try:
            for a in assignments:
                submitted = [sid for sid, st in state[a].items() if st["status"] == "submitted"]
                if not submitted:
                    continue
                write_feedback(config, a, submitted, whole_class=True)
                paths[f"feedback-{a}"] = _pack_feedback(api, a, submitted, lms, out / "feedback", people)
        finally:
            close_renderer()
    return paths


def _pack_feedback(api, assignment: str, students: list[str], lms: str, out: Path, people) -> Path:
    root = Path(api.coursedir.root) / api.coursedir.feedback_directory
    names = collected_names(api, assignment)
    per_student = out / assignment
    per_student.mkdir(parents=True, exist_ok=True)
    bulk = out / f"{assignment}_{lms}_upload.zip"
    with zipfile.ZipFile(bulk, "w", zipfile.ZIP_DEFLATED) as upload:
        for sid in sorted(students):
            pages = sorted((root / sid / assignment).glob("*.html"))
            if not pages:
                continue
            with zipfile.ZipFile(per_student / f"{_safe(sid)}.zip", "w", zipfile.ZIP_DEFLATED) as z:
                for page in pages:  # beside its own MathJax: the math renders offline, from the zip
                    z.writestr(f"{assignment}_feedback_{page.name}",
                               page.read_text().replace(f'src="{MATHJAX_SRC}', 'src="_mathjax/'))
                for path, name in offline_mathjax():
                    z.write(path, name)
            known = names.get(sid, {})
            person = people.get(sid)
            display = known.get("name") or (" ".join(x for x in (person.first_name, person.last_name) if x)
                                            if person else "") or sid
            for page in pages:
                if lms == "moodle":
                    entry = f"{_safe(display)}_{_safe(sid)}_assignsubmission_file_/{assignment}_feedback_{page.name}"
                elif lms == "canvas":
                    entry = (f"{_safe(display).replace('_', '')}_{_safe(sid)}_{_safe(known.get('submission_id') or 0)}_"
                             f"{assignment}_feedback_{page.name}")
                else:
                    entry = f"{_safe(sid)}/{assignment}_feedback_{page.name}"
                upload.write(page, entry)
    return bulk
