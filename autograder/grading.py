"""Grade a class: nbgrader's steps, with the notebooks run in parallel sandboxes first.

1. The gradebook gets the assignment's source cells (nbgrader ``generate_assignment`` into a
   scratch release folder, so the committed ``exercises/`` is never touched).
2. Pre-pass, in parallel (``workers`` threads, each with its own sandbox uid): read each
   submission, sanitize it with nbgrader's own sanitize preprocessors, run it in the sandbox.
3. For each submission in turn, nbgrader's ``autograde`` (whose ``SandboxedJudge`` picks up the
   pre-pass's run for that exact notebook) judges it and writes the gradebook: the only writer,
   so gradebook writes are serialized.  A submission that fails gets a one-line reason.
4. ``generate_feedback`` per student, ``grades.csv`` via nbgrader's CSV export, the report.

Submission files are only ever read.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import sandbox as sb

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "nbgrader_config.py"


@dataclass
class Row:
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"             # graded | failed
    reason: str = ""                   # one line when something went wrong
    functions: dict = field(default_factory=dict)   # grade_id -> (passed, message)
    mistakes: list = field(default_factory=list)
    seconds: float = 0.0


# ---- configuration ------------------------------------------------------------------------

def load_config():
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(HERE)).load_config()


def make_api(config=None):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    config = config or load_config()
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def assignment_ids() -> list[str]:
    from autograder.cases import ASSIGNMENT_IDS
    return list(ASSIGNMENT_IDS)


# ---- step 1: the gradebook knows the assignment ---------------------------------------------

def ensure_source_in_gradebook(api, assignment: str) -> None:
    release = api.coursedir.release_directory
    scratch = tempfile.mkdtemp(prefix="bn-release-")
    try:
        api.coursedir.release_directory = scratch
        result = api.generate_assignment(assignment, force=True, create=True)
    finally:
        api.coursedir.release_directory = release
        shutil.rmtree(scratch, ignore_errors=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not load {assignment} into the gradebook:\n{result['log'][-2000:]}")


def release(api, assignment: str) -> None:
    """Regenerate the student release exercises/<assignment>/ from solutions/<assignment>/."""
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"generate_assignment {assignment} failed:\n{result['log'][-2000:]}")


def source_notebooks(api, assignment: str) -> list[str]:
    src = Path(api.coursedir.format_path(api.coursedir.source_directory, ".", assignment))
    return sorted(p.stem for p in src.glob("*.ipynb"))


def submitted_students(api, assignment: str) -> list[str]:
    root = Path(api.coursedir.root) / api.coursedir.submitted_directory
    return sorted(p.parent.name for p in root.glob(f"*/{assignment}") if p.is_dir())


# ---- step 2: the parallel pre-pass ------------------------------------------------------------

_RUNS: dict[str, sb.RunResult] = {}
_RUNS_LOCK = threading.Lock()
_SETTINGS = {"limits": sb.Limits(), "course": None}


def _key(nb, assignment: str, student: str, notebook: str) -> str:
    cells = [(c.cell_type, c.source) for c in nb.cells]
    blob = json.dumps([assignment, student, notebook, cells]).encode()
    return hashlib.sha256(blob).hexdigest()


def sanitize(api, path: Path, assignment: str, student: str, notebook: str):
    """What nbgrader autograde's sanitize phase makes of a submission (read-only)."""
    from nbgrader.converters import Autograde
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nb = nbformat.convert(nb, 4)
    resources = {"unique_key": notebook, "nbgrader": {
        "student": student, "assignment": assignment, "notebook": notebook,
        "db_url": api.coursedir.db_url}}
    for cls in Autograde(coursedir=api.coursedir, config=api.config).sanitize_preprocessors:
        nb, resources = cls(config=api.config)(nb, resources)
    return nb


def _course_dir() -> Path:
    if _SETTINGS["course"] is None:
        _SETTINGS["course"] = sb.stage_course(Path(tempfile.mkdtemp(prefix="bn-course-")))
    return _SETTINGS["course"]


def _execute(nb, slot: int, sandbox: bool) -> sb.RunResult:
    from autograder import judge
    return sb.run_notebook(nb, judge.recording_request(nb), _course_dir(), slot=slot,
                           limits=_SETTINGS["limits"], sandbox=sandbox)


def run_for(nb, assignment: str, student: str, notebook: str, sandbox: bool = True) -> sb.RunResult:
    """The sandbox run for this sanitized notebook: the pre-pass's, or a fresh one."""
    with _RUNS_LOCK:
        run = _RUNS.pop(_key(nb, assignment, student, notebook), None)
    return run if run is not None else _execute(nb, 0, sandbox)


_OUTCOMES: dict[tuple, tuple] = {}


def remember(assignment, student, notebook, run, outcomes) -> None:
    _OUTCOMES[(assignment, student, notebook)] = (run.status, run.reason, run.seconds, outcomes)


# ---- the whole class --------------------------------------------------------------------------

class Progress:
    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.done, self.label, self.enabled = total, 0, label, enabled
        self.start = time.monotonic()

    def step(self, note: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        rate = (time.monotonic() - self.start) / self.done
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total} {rate:4.1f} s/nb  {note[:30]:<30}")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def grade(assignments: list[str], students: list[str] | None = None, workers: int | None = None,
          sandbox: bool = True, limits: sb.Limits | None = None, progress: bool = True,
          feedback: bool = True) -> list[Row]:
    if sandbox:
        sb.probe()
    _SETTINGS["limits"] = limits or sb.Limits()
    workers = workers or os.cpu_count() or 1
    api = make_api()
    rows: list[Row] = []
    for assignment in assignments:
        ensure_source_in_gradebook(api, assignment)
        notebooks = source_notebooks(api, assignment)
        who = [s for s in submitted_students(api, assignment) if students is None or s in students]
        jobs = [(s, n) for s in who for n in notebooks]
        bar = Progress(len(who), f"grading {assignment}", progress)
        slots: queue.Queue[int] = queue.Queue()
        for k in range(workers):
            slots.put(k)

        def prepass(student: str, notebook: str):
            path = (Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
                    / f"{notebook}.ipynb")
            try:
                nb = sanitize(api, path, assignment, student, notebook)
            except Exception:
                return  # nbgrader's own autograde will report why, in the sequential step
            slot = slots.get()
            try:
                run = _execute(nb, slot, sandbox)
            finally:
                slots.put(slot)
            with _RUNS_LOCK:
                _RUNS[_key(nb, assignment, student, notebook)] = run

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {job: pool.submit(prepass, *job) for job in jobs}
            for student in who:
                start = time.monotonic()
                for notebook in notebooks:
                    futures[(student, notebook)].result()
                rows.append(_autograde_one(api, assignment, student, notebooks, start))
                bar.step(student)
        with _RUNS_LOCK:  # runs nbgrader never asked for (it failed earlier): clean up
            for run in _RUNS.values():
                run.cleanup()
            _RUNS.clear()
        if feedback and who:
            if students is None:  # one nbgrader run for the whole class
                api.generate_feedback(assignment, force=True)
            else:
                for student in who:
                    api.generate_feedback(assignment, student, force=True)
    export_csv(api)
    from autograder import report
    root = Path(api.coursedir.root)
    report.write(root, report.update_log(root, rows))
    return rows


def _autograde_one(api, assignment: str, student: str, notebooks: list[str], start: float) -> Row:
    row = Row(student, assignment)
    folder = Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    missing = [n for n in notebooks if f"{n}.ipynb" not in present]
    result = api.autograde(assignment, student, force=True, create=True)
    if missing:
        row.status = "failed"
        row.reason = (f"no {missing[0]}.ipynb in the submission"
                      + (f" (found: {', '.join(present)[:80]})" if present else " (no notebook at all)"))
    elif not result["success"]:
        row.status = "failed"
        row.reason = _first_error_line(result)
    for notebook in notebooks:
        status, reason, seconds, outcomes = _OUTCOMES.pop((assignment, student, notebook),
                                                          ("", "", 0.0, []))
        if reason and row.status == "graded":
            row.reason = reason
        for o in outcomes:
            row.functions[o.grade_id] = (o.passed, "; ".join(o.messages))
            row.mistakes += o.mistakes
    row.score, row.max_score = _scores(api, assignment, student)
    row.seconds = time.monotonic() - start
    return row


def _first_error_line(result: dict) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    for needle in ("NotJSONError", "Notebook does not appear to be JSON", "JSONDecodeError",
                   "validation", "Error", "error"):
        for line in text.splitlines():
            if needle in line:
                return "nbgrader could not read the notebook: " + line.strip()[:160]
    return "nbgrader could not autograde this submission"


def _scores(api, assignment: str, student: str) -> tuple[float, float]:
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(api.coursedir.db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return 0.0, float(gb.find_assignment(assignment).max_score)
        return float(sub.score), float(sub.max_score)


def export_csv(api) -> Path:
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin
    dest = Path(api.coursedir.root) / "grades.csv"
    with Gradebook(api.coursedir.db_url) as gb:
        CsvExportPlugin(to=str(dest)).export(gb)
    return dest
