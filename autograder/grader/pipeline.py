"""Grade a class: nbgrader's steps, with the notebooks run in parallel sandboxes first.

1. The gradebook gets the assignment's source cells (nbgrader ``generate_assignment`` into a
   scratch release folder, so the committed ``exercises/`` is never touched).
2. Pre-pass, in parallel (``workers`` sandbox slots, one thread more): read each submission,
   sanitize it with nbgrader's sanitize preprocessors (plus the course's repairs of editor
   accidents), run it in the sandbox, and judge the run (``RunStore.prejudge``).
3. For each submission in turn, nbgrader's ``autograde`` (whose ``SandboxedJudge`` picks up the
   pre-pass's run and verdict for that exact notebook), in a process of its own
   (``autograder.grader.serial``: the pre-pass's threads keep this one's interpreter lock),
   writes the gradebook: the only writer, so gradebook writes are serialized.  A submission that
   fails gets a one-line reason.
4. ``generate_feedback`` per student, ``grades.csv`` via nbgrader's CSV export, the report.

Submission files are only ever read.
"""
from __future__ import annotations

import contextlib
import copy
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from autograder.grader import sandbox as sb
from autograder.grader.config import load_config, make_api
from autograder.grader.feedback import close_renderer, write_feedback
from autograder.grader.grades import GRADER_ERROR, Row, mark_grader_errors, write_csv
from autograder.grader.plugins import RunStore, SandboxedJudge
from autograder.grader.safety import refusal, safe_id
from autograder.grader.serial import SerialStep
from autograder.grader.serial import autograde_one as _autograde_one  # here, when no child runs it
from autograder.grader.serial import grader_error as _grader_error

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from nbgrader.apps import NbGraderAPI


def assignment_ids() -> list[str]:
    from autograder.course.cases import ASSIGNMENT_IDS
    return list(ASSIGNMENT_IDS)


# ---- step 1: the gradebook knows the assignment ---------------------------------------------

def ensure_source_in_gradebook(api: NbGraderAPI, assignment: str, scratch: Path) -> None:
    """nbgrader ``generate_assignment`` into ``scratch``, so the committed ``exercises/`` is never
    touched: it is what loads the assignment's source cells into the gradebook."""
    release_dir = api.coursedir.release_directory
    try:
        api.coursedir.release_directory = str(scratch)
        result = api.generate_assignment(assignment, force=True, create=True)
    finally:
        api.coursedir.release_directory = release_dir
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not load {assignment} into the gradebook:\n{result['log'][-2000:]}")


def release(api: NbGraderAPI, assignment: str) -> None:
    """Regenerate the student release exercises/<assignment>/ from solutions/<assignment>/."""
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"generate_assignment {assignment} failed:\n{result['log'][-2000:]}")


def source_notebooks(api: NbGraderAPI, assignment: str) -> list[str]:
    src = Path(api.coursedir.format_path(api.coursedir.source_directory, ".", assignment))
    return sorted(p.stem for p in src.glob("*.ipynb"))


def submitted_students(api: NbGraderAPI, assignment: str) -> list[str]:
    root = Path(api.coursedir.root) / api.coursedir.submitted_directory
    return sorted(p.parent.name for p in root.glob(f"*/{assignment}") if p.is_dir())


# ---- step 2: the parallel pre-pass ------------------------------------------------------------

def sanitize(api: NbGraderAPI, path: Path, assignment: str, student: str, notebook: str) -> NotebookNode:
    """What nbgrader autograde's sanitize phase makes of a submission (read-only): the file read
    and normalized as nbconvert's exporter does, then the configured sanitize preprocessors. The
    result is kept in the run's store for nbgrader's own sanitize phase (``SanitizeOnce``)."""
    from nbformat import validator
    from nbgrader.converters import Autograde

    from autograder.grader.plugins import KEEP_SANITIZED
    nb = nbformat.read(path, as_version=4)
    _, nb = validator.normalize(nb)
    resources = {"unique_key": notebook, KEEP_SANITIZED: True, "nbgrader": {
        "student": student, "assignment": assignment, "notebook": notebook,
        "db_url": api.coursedir.db_url}}
    for cls in Autograde(coursedir=api.coursedir, config=api.config).sanitize_preprocessors:
        nb, resources = cls(config=api.config)(nb, resources)
    return nb


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


@contextlib.contextmanager
def _interruptible():
    """Ctrl-C and SIGTERM stop every sandbox and unwind through every ``finally`` (so scratch
    space is removed); SIGTERM is turned into KeyboardInterrupt for that."""
    def on_term(signum, frame):
        raise KeyboardInterrupt
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    sb.CANCEL.clear()
    try:
        yield
    except BaseException:
        sb.CANCEL.set()
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


class Hooks:
    """What a layer above adds around grading; the grader's own default adds nothing. The term
    (``autograder.term.grading``) sets due dates first, annotates rows with lateness and the
    roster's missing students, and writes grades.csv with its columns."""

    def before_assignment(self, api: NbGraderAPI, assignment: str) -> None:
        pass

    def annotate(self, api: NbGraderAPI, assignment: str, rows: list[Row], students: list[str] | None) -> list[Row]:
        return rows

    def write_grades_csv(self, api: NbGraderAPI, dest: Path, rows: list[Row]) -> Path:
        keys = ["assignment", "student_id", "score", "max_score", "status"]
        return write_csv(dest, keys, [[r.assignment, r.student, None if r.status == GRADER_ERROR else r.score,
                                       r.max_score, r.status] for r in rows])


def grade(assignments: list[str], students: list[str] | None = None, workers: int | None = None,
          mode: str | None = None, limits: dict | None = None, progress: bool = True,
          feedback: bool = True, say: Callable[[str], None] = print, hooks: Hooks | None = None) -> list[Row]:
    """Grade every submission of ``assignments``. ``mode`` and ``limits`` (SandboxedJudge's
    settings by name) override ``nbgrader_config.py``. Says which sandbox mode ran. On a Dask
    cluster, ``autograder.grader.cluster.grade_on_cluster`` keeps this contract."""
    hooks = hooks or Hooks()
    config = load_config()
    for name, value in {"mode": mode, **(limits or {})}.items():
        if value is not None:
            setattr(config.SandboxedJudge, name, value)
    from autograder.grader.pyast import install
    install()  # CPython 3.11's ast is not thread-safe, and the pre-pass parses in threads
    settings = SandboxedJudge(config=config)
    chosen = settings.resolved_mode()  # refuses (SandboxUnavailable) before anything is written
    say(sb.describe_mode(chosen, settings.limits()))
    workers = workers or os.cpu_count() or 1
    rows: list[Row] = []
    api = make_api(config)
    root = Path(api.coursedir.root)
    from autograder.grader.keys import course_secret
    with _interruptible(), sb.RunDir() as run_dir, _renderer_closed():
        store = RunStore(run_dir, chosen, settings.limits(), course_secret(root), workers)
        config.SandboxedJudge.runs = config.SanitizeOnce.runs = store
        serial = SerialStep(chosen, settings.limits(), slot=workers)  # a slot past the pool's
        if chosen != "none":  # it starts (imports numpy, IPython, matplotlib) while nbgrader sets up
            from autograder.grader.sandbox import zygote
            zygote.start_meanwhile()
        api = make_api(config)
        # One thread more than sandbox slots: while a thread judges the run it just made, another
        # has its slot running the next notebook.
        with ThreadPoolExecutor(max_workers=workers + 1) as pool:
            try:
                rows = _grade_assignments(api, config, store, pool, assignments, students, workers,
                                          progress, feedback, say, hooks, serial)
            except BaseException:
                # Every sandbox stops now, and any a pre-pass thread (one more than the slots)
                # starts after this: the pool's shutdown does not wait out a cell's time limit.
                sb.CANCEL.set()
                serial.close(abort=True)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                serial.close()
        _write_outputs(api, root, rows, say, hooks)
    return rows


def _import_reference_meanwhile() -> threading.Thread:
    """Import the reference (torch: a core-second) on a thread of its own while the first
    sandboxed runs and the health check's wait on their processes, so that core is not idle; the
    judge's own import waits for it (or, if it failed here, fails again there with the reason)."""
    def load():
        try:
            import autograder.course.reference  # noqa: F401
        except BaseException:  # noqa: S110 - the judge's import reports it
            pass
    thread = threading.Thread(target=load, name="import-reference", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _renderer_closed():
    """The feedback renderer, kept across this run's assignments, stops with the run."""
    try:
        yield
    finally:
        close_renderer()


def _write_outputs(api, root: Path, rows: list[Row], say, hooks: Hooks) -> None:
    """grades.csv and the report: always written, whatever one step or notebook did."""
    from autograder.grader import report
    from autograder.grader.safety import safe_text
    for r in rows:
        r.reason = safe_text(r.reason, newlines=False)[:300]
    try:
        hooks.write_grades_csv(api, root / "grades.csv", rows)
    except Exception as exc:
        say(f"error: grades.csv could not be written: {type(exc).__name__}: {exc}"[:300])
    try:
        report.write(root, report.update_log(root, rows))
    except Exception as exc:
        say(f"error: the report could not be written: {type(exc).__name__}: {exc}"[:300])


class SandboxBroken(RuntimeError):
    """The sandbox cannot run a known-good notebook: grading stops before any grade is written."""


def _has_submissions(api, assignment: str, students) -> bool:
    return any(students is None or s in students for s in submitted_students(api, assignment))


def health_check(api: NbGraderAPI, store: RunStore, assignment: str) -> None:
    """Run the assignment's own solution notebook in the sandbox and judge it: every check must
    pass. If not, the sandbox (not any student) is broken, and grading stops."""
    from autograder.course import checks
    from autograder.grader import judge
    path = Path(api.coursedir.format_path(api.coursedir.source_directory, ".", assignment)) / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    run = store.execute(copy.deepcopy(nb))  # a slot of the pool, as the runs beside it
    with checks.keyed(store.submission_key(nb)):
        outcomes = judge.judge_notebook(nb, run.results, run.executed, run.reason)
    bad = [m for o in outcomes if not o.passed for m in o.messages]
    if run.status == "ok" and outcomes and not bad:
        return
    why = run.reason or (bad[0] if bad else "no check ran")
    raise SandboxBroken(f"the sandbox could not run a known-good notebook ({assignment}'s solution): "
                        f"{why}"[:600])


def _grade_assignments(api, config, store: RunStore, pool: ThreadPoolExecutor, assignments: list[str],
                       students, workers: int, progress: bool, feedback: bool, say, hooks: Hooks,
                       serial: SerialStep | None = None) -> list[Row]:
    """Each assignment in turn, its submissions' sandboxed runs on ``pool`` ahead of nbgrader's
    sequential step; the next assignment's runs start while this one's last are still being
    judged (``_Batch.ending``), so the pool is not idle between assignments."""
    rows: list[Row] = []
    started: dict[str, _Batch | Exception] = {}

    def start(assignment: str) -> None:
        if assignment in started:
            return
        try:
            hooks.before_assignment(api, assignment)
            started[assignment] = _Batch.start(api, store, pool, assignment, students)
        except (KeyboardInterrupt, SandboxBroken):
            raise
        except Exception as exc:  # reported in this assignment's turn
            started[assignment] = exc
    checked = False
    for k, assignment in enumerate(assignments):
        following = assignments[k + 1] if k + 1 < len(assignments) else None
        start(assignment)
        if k == 0:  # after the first gradebook work, which would wait on it for the interpreter's lock
            _import_reference_meanwhile()
        if not checked and _has_submissions(api, assignment, students):
            # The first assignment's runs go on meanwhile; no grade is written before this passes.
            health_check(api, store, assignment)  # raises SandboxBroken
            checked = True
        batch = started.pop(assignment)
        try:
            if isinstance(batch, Exception):
                raise batch
            mine = batch.finish(api, store, progress, workers,
                                ahead=(lambda nxt=following: start(nxt)) if following else None,
                                serial=serial)
        except (KeyboardInterrupt, SandboxBroken):
            raise
        except Exception as exc:  # the grader's own failure on this assignment
            say(f"error: grading {assignment} failed: {type(exc).__name__}: {exc}"[:500])
            continue
        finally:
            store.clear(assignment)  # runs nbgrader never asked for (it failed earlier)
        try:
            mark_grader_errors(Path(api.coursedir.root), mine)
        except OSError as exc:
            say(f"error: {type(exc).__name__}: {exc}"[:300])
        try:  # lateness, written answers awaiting a person, and the roster's missing students
            mine = hooks.annotate(api, assignment, mine, students)
        except Exception as exc:
            say(f"error: lateness and missing students of {assignment}: {type(exc).__name__}: {exc}"[:500])
        rows += mine
        if feedback:
            failed = write_feedback(config, assignment,
                                    [r.student for r in mine if r.status not in ("missing", "refused")],
                                    whole_class=students is None)
            for r in mine:
                if r.student in failed:
                    r.reason = "; ".join(x for x in (r.reason, "feedback could not be written: "
                                                     + failed[r.student]) if x)
    return rows


class _Batch:
    """One assignment's submissions: its pre-pass runs on the pool, then nbgrader's autograde of
    each student in turn (``finish``)."""

    def __init__(self, assignment: str, notebooks: list[str], who: list[str], refused: list[Row],
                 futures: dict):
        self.assignment, self.notebooks, self.who, self.refused = assignment, notebooks, who, refused
        self.futures = futures

    @classmethod
    def start(cls, api, store: RunStore, pool: ThreadPoolExecutor, assignment: str, students) -> _Batch:
        ensure_source_in_gradebook(api, assignment, store.run_dir.scratch(f"release-{assignment}"))
        notebooks = source_notebooks(api, assignment)
        who = [s for s in submitted_students(api, assignment) if students is None or s in students]
        # -- ids: a submitted/ folder whose name is not a safe id is refused, never handed to nbgrader
        refused = [Row(s, assignment, status="refused", reason=refusal(s)) for s in who if not safe_id(s)]
        who = [s for s in who if safe_id(s)]
        # -- end ids

        def prepass(student: str, notebook: str):
            path = (Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
                    / f"{notebook}.ipynb")
            try:
                nb = sanitize(api, path, assignment, student, notebook)
            except Exception:
                return  # nbgrader's own autograde will report why, in the sequential step
            try:
                run = store.execute(nb)  # in a slot of the store's pool, as any other sandbox
            except Exception as exc:  # the grader's, for this notebook alone: the judge runs it again
                run = sb.RunResult("grader-error", f"the grader could not run this notebook ({type(exc).__name__})", None)
            key = store.key(nb, assignment, student, notebook)
            store.put(key, run, assignment, student)
            store.prejudge(key, nb, run)  # its sandbox slot is already another run's
        futures = {(s, n): pool.submit(prepass, s, n) for s in who for n in notebooks}
        return cls(assignment, notebooks, who, refused, futures)

    def ending(self, workers: int, left: int) -> bool:
        """Time to start the next assignment's runs: no more of this one's are unfinished than
        there are workers (none waits for a slot: the next to free has nothing queued, so the
        next assignment's gradebook set-up is done while the last runs still hold both), and few
        of its students are left to judge (the runs made ahead wait in memory for their turn:
        this bounds them)."""
        return left <= 4 * workers and sum(not f.done() for f in self.futures.values()) <= workers

    def finish(self, api, store: RunStore, progress: bool, workers: int,
               ahead: Callable[[], None] | None = None, serial: SerialStep | None = None) -> list[Row]:
        bar = Progress(len(self.who), f"grading {self.assignment}", progress)
        rows = list(self.refused)
        for k, student in enumerate(self.who):
            start = time.monotonic()
            if ahead is not None and self.ending(workers, len(self.who) - k):
                ahead()
                ahead = None
            for notebook in self.notebooks:
                future = self.futures[(student, notebook)]
                while ahead is not None and not future.done():
                    if self.ending(workers, len(self.who) - k):
                        ahead()
                        ahead = None
                    else:
                        wait([future], timeout=0.05)
                try:
                    future.result()
                except Exception:
                    pass  # autograde below runs it again, and reports why
            try:
                if serial is not None:
                    rows.append(serial.autograde(api, store, self.assignment, student, self.notebooks,
                                                 start, here=_autograde_one))
                else:
                    rows.append(_autograde_one(api, store, self.assignment, student, self.notebooks, start))
            except Exception as exc:
                rows.append(Row(student, self.assignment, status=GRADER_ERROR, seconds=time.monotonic() - start,
                                reason=_grader_error(f"{type(exc).__name__}: {exc}")))
            bar.step(student)
        if ahead is not None:
            ahead()
        return rows
