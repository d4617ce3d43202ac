"""A term with the course: collect from a learning platform, roster, due dates, late penalties.

Everything here configures or wraps nbgrader's own machinery:

* **collect**: nbgrader's ``zip_collect`` (``ZipCollectApp``) with a ``FileNameCollectorPlugin``
  whose regular expression comes from ``Term.lms`` (Canvas, Moodle, plain ``<student>/<file>``)
  or ``Term.pattern``.  The course's collector also accepts renamed copies of the notebook
  (``ch2_forward (1).ipynb``, ``ch2_forward-1.ipynb``) when exactly one of the assignment's
  notebooks matches, and takes each file's submission time from the platform's name or the
  archive's metadata (Canvas's ``LATE`` marker included) into ``timestamp.txt``.  nbgrader keeps
  the newest of several submissions by one student; a student collected before is replaced only
  by a newer submission (the replaced copy is kept under ``downloaded/<a>/replaced/``).
* **roster**: a CSV (id, name, email) into nbgrader's student table.
* **due dates**: ``Term.due`` (or ``python -m autograder due``) into nbgrader's assignment table;
  the late penalty is nbgrader's ``AssignLatePenalties`` with ``CoursePenalty`` as its plugin.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import math
import os
import re
import shutil
import tempfile
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin, LateSubmissionPlugin
from traitlets import Dict, Enum, Float, Unicode
from traitlets.config import Configurable

# Searched in each file's path inside the download ("folder/file"); must end at the file name.
PATTERNS = {
    # <studentname>_[LATE_]<userid>_<submissionid>_<filename>   (Canvas "Download Submissions")
    "canvas": r"(?:^|/)(?P<name>[^/_]+)_(?:(?P<late>LATE)_)?(?P<student_id>\d+)_(?P<submission_id>\d+)_"
              r"(?P<file_id>[^/]+)$",
    # <Full Name>_<participant id>_assignsubmission_file_[/]<filename>   (Moodle "Download all
    # submissions", flat or "in folders")
    "moodle": r"(?:^|/)(?P<name>[^/_]+)_(?P<student_id>\d+)_assignsubmission_file_/?(?P<file_id>[^/]+)$",
    # <student>/<filename>
    "plain": r"(?:^|/)(?P<student_id>[^/]+)/(?P<file_id>[^/]+)$",
}


class Term(Configurable):
    """The term's settings, in ``autograder/nbgrader_config.py`` (``c.Term...``)."""

    lms = Enum(list(PATTERNS), "canvas",
               help="Which learning platform the bulk downloads come from").tag(config=True)
    pattern = Unicode("", help="A regular expression for another platform's file names, searched "
                               "in each file's path inside the download; it must define the groups "
                               "student_id and file_id, and may define timestamp and late").tag(config=True)
    due = Dict({}, help="Due date per assignment, e.g. {'ch2_forward': '2026-10-05 23:59 UTC'}; "
                        "nbgrader parses it, a time without a zone is UTC").tag(config=True)
    archive_timezone = Unicode("UTC", help="Time zone of the times stored in platform zips").tag(config=True)

    def regex(self, lms: str | None = None, pattern: str | None = None) -> str:
        return pattern or self.pattern or PATTERNS[lms or self.lms]


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


# ---- collect ------------------------------------------------------------------------------------

@dataclass
class CollectReport:
    collected: list = field(default_factory=list)    # (student, file name in the download)
    replaced: list = field(default_factory=list)     # (student, why)
    kept: list = field(default_factory=list)         # (student, why): an existing submission stayed
    unmatched: list = field(default_factory=list)    # (file, reason)

    def summary(self, assignment: str) -> str:
        lines = [f"{assignment}: collected {len(self.collected)} submission(s), replaced "
                 f"{len(self.replaced)}, kept {len(self.kept)} earlier, unmatched {len(self.unmatched)} file(s)"]
        lines += [f"  replaced  {s}: {why}" for s, why in self.replaced]
        lines += [f"  kept      {s}: {why}" for s, why in self.kept]
        lines += [f"  unmatched {f}: {why}" for f, why in self.unmatched]
        return "\n".join(lines)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _utc(value) -> dt.datetime:
    from nbgrader.utils import parse_utc
    return parse_utc(value)


class CourseExtractor(ExtractorPlugin):
    """nbgrader's extractor, keeping each file's time from the archive (or the folder) as its
    modification time: the collector reads the submission time from it."""

    archive_timezone = Unicode("UTC").tag(config=True)

    def extract(self, archive_path, extracted_path):
        super().extract(archive_path, extracted_path)
        from dateutil import tz
        zone = tz.gettz(self.archive_timezone) or tz.UTC
        for root, _, files in os.walk(archive_path):
            rel = os.path.relpath(root, archive_path)
            for name in files:
                src = os.path.join(root, name)
                stem, ext = os.path.splitext(name)
                if ext not in self.zip_ext:
                    dest = os.path.normpath(os.path.join(extracted_path, rel, name))
                    if os.path.exists(dest):
                        st = os.stat(src)
                        os.utime(dest, (st.st_atime, st.st_mtime))
                    continue
                try:
                    with zipfile.ZipFile(src) as zf:
                        for info in zf.infolist():
                            dest = os.path.normpath(os.path.join(extracted_path, rel, stem, info.filename))
                            if info.is_dir() or not os.path.isfile(dest):
                                continue
                            when = dt.datetime(*info.date_time, tzinfo=zone).timestamp()
                            os.utime(dest, (when, when))
                except zipfile.BadZipFile:
                    pass


class CourseCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector with the course's platform patterns, renamed copies of the
    notebook, the submission time, and a reason for every file it skips."""

    lms = Unicode("canvas").tag(config=True)
    extracted = Unicode("").tag(config=True)       # the extracted folder: names are matched relative to it
    assignment = Unicode("").tag(config=True)
    notebooks = Dict({}).tag(config=True)          # normalized name -> release notebook file name
    due = Unicode("").tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen: dict[str, dict | str] = {}      # relative path -> info (matched) or reason

    def relative(self, path: str) -> str:
        """The file's path inside the download: below extracted/<download's own name>/."""
        rel = (os.path.relpath(path, self.extracted) if self.extracted else path).replace(os.sep, "/")
        return rel.split("/", 1)[1] if self.extracted and "/" in rel else rel

    def collect(self, submitted_file):
        rel = self.relative(submitted_file)
        info = self._why_not(rel, submitted_file)
        self.seen[rel] = info
        return info if isinstance(info, dict) else None

    def _why_not(self, rel: str, path: str):
        parts = rel.split("/")
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            return "hidden or system file"
        match = re.search(self.named_regexp, rel)
        if not match or not match.groupdict().get("student_id") or not match.groupdict().get("file_id"):
            return f"name does not fit the {self.lms} pattern"
        info = {k: v for k, v in match.groupdict().items() if v is not None}
        stem, ext = os.path.splitext(info["file_id"])
        if ext.lower() != ".ipynb":
            return f"not a notebook ({ext or 'no extension'})"
        file_id = self._notebook_for(stem)
        if file_id is None:
            names = ", ".join(sorted(self.notebooks.values()))
            return f"not a notebook of {self.assignment} (expected {names})"
        if file_id == "":
            return "ambiguous: the name fits more than one of the assignment's notebooks"
        when = _utc(info["timestamp"]) if info.get("timestamp") else \
            dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.timezone.utc).replace(tzinfo=None)
        if info.get("late") and self.due:
            due = _utc(self.due)
            if when <= due:  # the platform says late; its zip time says otherwise: trust the platform
                when = due + dt.timedelta(seconds=1)
        return {"student_id": info["student_id"], "file_id": file_id,
                "timestamp": when.isoformat(" "), "name": info.get("name", ""),
                "submission_id": info.get("submission_id", ""), "late": bool(info.get("late"))}

    def _notebook_for(self, stem: str):
        """The release notebook this (possibly renamed) file is a copy of; '' when ambiguous."""
        key = _norm(stem)
        if key in self.notebooks:
            return self.notebooks[key]
        hits = {v for k, v in self.notebooks.items() if k and k in key}
        if len(hits) == 1:
            return hits.pop()
        return "" if hits else None


def _zip_collect_app():
    from nbgrader.apps import ZipCollectApp

    class CourseZipCollect(ZipCollectApp):
        """nbgrader's ZipCollectApp; transferring never overwrites silently: a student collected
        before is replaced only by a newer submission, and every decision is reported."""

        report = None

        def _collect_files(self, src_files):
            data = super()._collect_files(src_files)
            seen = self.collector_plugin_inst.seen
            kept = {f for d in data.values() for f in d["src_files"]}
            for path in src_files:
                rel = self.collector_plugin_inst.relative(path)
                info = seen.get(rel)
                if isinstance(info, str):
                    self.report.unmatched.append((rel, info))
                elif isinstance(info, dict) and path not in kept:
                    self.report.unmatched.append(
                        (rel, f"older submission of {info['student_id']} (a newer one was collected)"))
            return data

        def _transfer_files(self, collected_data):
            todo = {}
            for student, data in collected_data.items():
                dest = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student,
                                                       self.coursedir.assignment_id))
                names = [self.collector_plugin_inst.relative(p) for p in data["src_files"]]
                if dest.exists() and any(dest.iterdir()):
                    old = self.coursedir.get_existing_timestamp(str(dest))
                    new = data["timestamp"]
                    if old is not None and new is not None and new <= old:
                        self.report.kept.append((student, f"the submission collected before ({old:%Y-%m-%d %H:%M}) "
                                                          f"is not older than {', '.join(names)}"))
                        continue
                    backup = (Path(self._format_collect_path("replaced")) / student
                              / (old.strftime("%Y%m%dT%H%M%S") if old else "undated"))
                    backup.parent.mkdir(parents=True, exist_ok=True)
                    shutil.rmtree(backup, ignore_errors=True)
                    shutil.move(str(dest), str(backup))
                    change = f"{old:%Y-%m-%d %H:%M} -> {new:%Y-%m-%d %H:%M}" if old and new else "undated copy"
                    self.report.replaced.append((student, f"{change} (the earlier copy is kept in {backup})"))
                todo[student] = data
                self.report.collected.append((student, ", ".join(names)))
            super()._transfer_files(todo)

    return CourseZipCollect


def collect(api, assignment: str, source: Path, lms: str | None = None, pattern: str | None = None,
            config=None) -> CollectReport:
    """Collect an LMS bulk download (a zip, or a folder) of ``assignment`` into nbgrader's
    ``submitted/<student>/<assignment>/``.  ``source`` is only read."""
    from nbgrader.utils import capture_log, temp_attrs
    from traitlets.config import Config
    source = Path(source)
    if not source.exists():
        raise SystemExit(f"error: {source} does not exist")
    if source.is_file() and not zipfile.is_zipfile(source):
        raise SystemExit(f"error: {source} is neither a folder nor a zip archive")
    term = Term(config=config or api.config)
    lms = lms or term.lms
    regex = term.regex(lms, pattern)
    try:
        re.compile(regex)
    except re.error as exc:
        raise SystemExit(f"error: --pattern is not a regular expression: {exc}")
    root = Path(api.coursedir.root)
    work = root / "downloaded" / assignment
    archive = work / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    shutil.rmtree(work / "extracted", ignore_errors=True)
    archive.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, archive / source.name, symlinks=False,
                        ignore=lambda d, names: [n for n in names if os.path.islink(os.path.join(d, n))])
    else:
        shutil.copy2(source, archive / source.name)
    release = Path(api.coursedir.format_path(api.coursedir.release_directory, ".", assignment))
    notebooks = {_norm(p.stem): p.name for p in release.glob("*.ipynb")}
    if not notebooks:
        raise SystemExit(f"error: no released notebook for {assignment} in {release}")

    cfg = Config()
    cfg.CourseCollector.named_regexp = regex
    cfg.CourseCollector.lms = lms if not pattern else "--pattern"
    cfg.CourseCollector.extracted = str(work / "extracted")
    cfg.CourseCollector.assignment = assignment
    cfg.CourseCollector.notebooks = notebooks
    cfg.CourseCollector.due = str(due_date(api, assignment, term) or "")
    cfg.CourseExtractor.archive_timezone = term.archive_timezone
    App = _zip_collect_app()
    report = CollectReport()
    with temp_attrs(api.coursedir, assignment_id=assignment):
        app = App(coursedir=api.coursedir, parent=api)
        app.update_config(cfg)
        app.extractor_plugin = CourseExtractor
        app.collector_plugin = CourseCollector
        app.report = report
        level = app.log.level
        app.log.setLevel(logging.ERROR)  # the summary below says what happened, file by file
        try:
            result = capture_log(app)
        finally:
            app.log.setLevel(level)
    if not result["success"]:
        raise SystemExit("error: nbgrader zip_collect failed: "
                         + ((result.get("error") or "") + (result.get("log") or "")).strip()[-800:])
    _remember(work / "collected.json", app.collector_plugin_inst.seen, report)
    return report


def _remember(path: Path, seen: dict, report: CollectReport) -> None:
    """What the platform called each collected student (for feedback named the platform's way)."""
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    collected = {s for s, _ in report.collected}
    for info in seen.values():
        if isinstance(info, dict) and info["student_id"] in collected:
            known[info["student_id"]] = {k: info[k] for k in ("name", "submission_id", "timestamp", "late")}
    path.write_text(json.dumps(known, indent=1, sort_keys=True))


def collected_names(api, assignment: str) -> dict:
    try:
        return json.loads((Path(api.coursedir.root) / "downloaded" / assignment / "collected.json").read_text())
    except (OSError, ValueError):
        return {}


# ---- roster and due dates ----------------------------------------------------------------------

def read_roster(path: Path) -> list[dict]:
    """Rows of a roster CSV with the columns id, name, email (a header line; extra columns are
    ignored). One clear error line for a bad file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SystemExit(f"error: cannot read roster {path}: {exc}")
    if not rows or "id" not in rows[0]:
        raise SystemExit(f"error: roster {path} needs a header line with the columns id,name,email")
    out, seen = [], set()
    for n, row in enumerate(rows, start=2):
        sid = (row.get("id") or "").strip()
        if not sid or "/" in sid or sid.startswith("."):
            raise SystemExit(f"error: roster {path} line {n}: bad student id {sid!r}")
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
            raise SystemExit(f"error: {when!r} is not a date (e.g. '2026-10-05 23:59 UTC')")
    with Gradebook(api.coursedir.db_url) as gb:
        gb.update_or_create_assignment(assignment, duedate=value)
    return value


def apply_due(api, assignment: str) -> None:
    """Before grading: a due date from ``Term.due`` goes into the gradebook (nbgrader computes
    lateness from it)."""
    term = Term(config=api.config)
    if assignment in term.due:
        set_due(api, assignment, term.due[assignment])


# ---- grading hooks: lateness, written answers, missing students ----------------------------------

def standing(api, assignment: str) -> dict:
    """Per student in the gradebook: submitted or missing, lateness, penalty, written answers
    awaiting a person, score after the penalty."""
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


def annotate(api, assignment: str, rows: list, students=None) -> list:
    """Fill each grading row's lateness, penalty and written answers awaiting a person, and add a
    row marked *missing* for every student in nbgrader's table who handed nothing in."""
    from autograder.grading import Row
    state = standing(api, assignment)
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


def note(row, text: str) -> str:
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


def score_text(row) -> str:
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    if get("status") == "missing":
        return f"{'missing':>9}"
    return f"{get('score'):>4g}/{get('max_score'):<4g}"


# ---- grades.csv ---------------------------------------------------------------------------------

def write_grades_csv(api, dest: Path) -> Path:
    """nbgrader's CSV columns (``nbgrader export``), plus status (submitted / missing), late and
    written answers awaiting a person; a missing student's scores are empty, not 0."""
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
        for sid, s in sorted(standing(api, a).items()):
            p = people[sid]
            row = {"assignment": a, "duedate": due[a] or "", "student_id": sid,
                   "last_name": p.last_name or "", "first_name": p.first_name or "", "email": p.email or "",
                   "max_score": s["max_score"], "status": s["status"]}
            if s["status"] == "submitted":
                row.update(timestamp=s["timestamp"] or "", raw_score=s["raw_score"],
                           late_submission_penalty=s["penalty"], score=s["score"], late=s["late"],
                           written_awaiting=s["awaiting"])
            rows.append(row)
    write_csv(dest, keys, [[r.get(k, "") for k in keys] for r in rows])
    return dest


def write_csv(dest: Path, header: list, rows: list) -> Path:
    """Every field quoted; text through ``safety.csv_cell`` (escaped, never read as a formula)."""
    from autograder.safety import csv_cell
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow([csv_cell(h) for h in header])
        for row in rows:
            w.writerow([("" if v is None else (int(v) if float(v).is_integer() else round(float(v), 4)))
                        if isinstance(v, (int, float)) and not isinstance(v, bool) else csv_cell(v)
                        for v in row])
    return dest
