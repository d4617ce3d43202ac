"""nbgrader's sequential step in a process of its own, beside the pre-pass.

The pre-pass (sandboxed runs, their reading and judging) is threads of the grading process, and
so was nbgrader's ``autograde`` of each student: both are Python, so they took turns on one
interpreter lock, which was busy nearly the whole run (``py-spy record --gil``). The sandboxes'
input servers and readers waited their turn behind the gradebook's SQL, and the cores idled.
Here ``autograde_one`` runs, one student at a time as before (the gradebook's only writer),
in a child interpreter: ``python -m autograder.grader.serial``. For each student it is handed
what the pre-pass kept for that student (``RunStore.hand_over``: the runs, the judge's verdicts
and the sanitized notebooks) and sends back the student's row.

If the child cannot start or dies, the step runs in the grading process, as before; nothing is
lost (the student whose turn it was is graded again there). The child has a sandbox slot of its
own (one past the pool's) for the run the judge makes itself when it cannot use the pre-pass's.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from autograder.grader.grades import GRADER_ERROR, Row
from autograder.grader.plugins import ATTEMPTS

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI

    from autograder.grader import sandbox as sb
    from autograder.grader.plugins import RunStore

SERIAL_ENV = "BN_SERIAL_PROCESS"  # "0": nbgrader's step stays in the grading process


class SerialStep:
    """The child that runs nbgrader's step; ``autograde`` falls back to this process."""

    def __init__(self, mode: str, limits: sb.Limits, slot: int):
        self.conn: Connection | None = None
        self.proc: subprocess.Popen | None = None
        if os.environ.get(SERIAL_ENV, "1") == "0":
            return
        # This very package, wherever it lies (a checkout run without installing it too).
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [package_parent] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.grader.serial", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
            self.conn = Connection(os.dup(ours.fileno()))
            self.conn.send((mode, limits, slot))
        except Exception:  # noqa: S110 - the step runs here instead
            self._stop()
        finally:
            ours.close()
            theirs.close()

    def autograde(self, api: NbGraderAPI, store: RunStore, assignment: str, student: str,
                  notebooks: list[str], start: float, here: Callable[..., Row] | None = None) -> Row:
        """``student``'s row, graded in the child; in this process (``here``, by default
        ``autograde_one``) when there is no child, or it died."""
        if self.conn is not None:
            entries = store.hand_over(assignment, student)
            try:
                self.conn.send((entries, assignment, student, notebooks, start))
                kind, value = self.conn.recv()
            except (OSError, EOFError):  # the child is gone: this student and the rest, here
                self._stop()
                store.receive(entries)
            except Exception:  # noqa: S110 - not picklable (nothing was sent): this student, here
                store.receive(entries)
            else:
                if kind == "row":
                    return value
                raise RuntimeError(value)
        return (here or autograde_one)(api, store, assignment, student, notebooks, start)

    def _stop(self, abort: bool = False) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            if abort and self.proc.poll() is None:
                self.proc.terminate()  # it unwinds: its scratch space is removed
            try:
                self.proc.wait(timeout=10 if abort else 60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self, abort: bool = False) -> None:
        """The child ends when its connection closes, once the student in hand is graded, or at
        once with ``abort`` (Ctrl-C, a failure); either way it removes its scratch space."""
        self._stop(abort)


def serve(fd: int) -> int:
    """The child: nbgrader's step for each student it is handed, until the connection closes."""
    import warnings

    from autograder.grader.config import load_config, make_api
    from autograder.grader.keys import course_secret
    from autograder.grader.plugins import RunStore
    from autograder.grader.pyast import install

    # Ctrl-C reaches the whole process group: the grading process decides, and closes the
    # connection; this child then finishes the student in hand and leaves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # unwinds: RunDir is removed
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter, as the CLI
    conn = Connection(fd)
    try:
        mode, limits, slot = conn.recv()
    except (OSError, EOFError):
        return 0
    install()
    config = load_config()
    scratch = _ScratchWhenNeeded()
    try:
        store = RunStore(scratch, mode, limits, course_secret(Path(make_api(config).coursedir.root)),
                         workers=1, first_slot=slot)
        config.SandboxedJudge.runs = config.SanitizeOnce.runs = store
        api = make_api(config)
        while True:
            try:
                entries, assignment, student, notebooks, start = conn.recv()
            except (OSError, EOFError):
                return 0
            store.receive(entries)
            try:
                reply = ("row", autograde_one(api, store, assignment, student, notebooks, start))
            except Exception as exc:
                reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
            finally:
                store.clear()
            try:
                conn.send(reply)
            except (OSError, EOFError):
                return 0
    finally:
        scratch.close()


class _ScratchWhenNeeded:
    """The child's ``RunDir``, made only when the judge must run a notebook itself (the
    pre-pass's run was unusable): most runs never need one. SIGTERM waits while it is made, so
    a folder half made is never left behind."""

    def __init__(self):
        self.made: sb.RunDir | None = None

    def __getattr__(self, name: str):
        if self.made is None:
            from autograder.grader import sandbox as sb
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                self.made = sb.RunDir()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return getattr(self.made, name)

    def close(self) -> None:
        if self.made is not None:
            self.made.close()


# ---- the step itself: one student's autograde, wherever it runs --------------------------------

def timestamp_note(folder: Path) -> str:
    """A one-line note when a submission's timestamp.txt cannot be read."""
    path = folder / "timestamp.txt"
    if not path.exists():
        return ""
    try:
        from nbgrader.utils import parse_utc
        with open(path, "rb") as f:
            text = f.read(200).decode().strip()
        if text:
            parse_utc(text)
        return ""
    except Exception:
        return "its timestamp.txt could not be read, so it was graded as having no timestamp"


def autograde_one(api: NbGraderAPI, store: RunStore, assignment: str, student: str, notebooks: list[str],
                   start: float) -> Row:
    row = Row(student, assignment)
    folder = Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    missing = [n for n in notebooks if f"{n}.ipynb" not in present]
    result = api.autograde(assignment, student, force=True, create=True)
    why = _graders_failure(store, assignment, student, result, folder)
    for _ in range(1, ATTEMPTS):  # the grader's own failure: once more, from the start
        if not why:
            break
        result = api.autograde(assignment, student, force=True, create=True)
        why = _graders_failure(store, assignment, student, result, folder)
    if why and not missing:
        row.status, row.reason = GRADER_ERROR, grader_error(why)
    elif missing:
        row.status = "failed"
        row.reason = (f"no {missing[0]}.ipynb in the submission"
                      + (f" (found: {', '.join(present)[:80]})" if present else " (no notebook at all)"))
    elif not result["success"]:
        row.status = "failed"
        row.reason = _first_error_line(result)
    note = timestamp_note(folder)
    if note and not row.reason:
        row.reason = note
    for notebook in notebooks:
        status, reason, seconds, outcomes = store.outcomes.pop((assignment, student, notebook),
                                                               ("", "", 0.0, []))
        if reason and row.status == "graded":
            row.reason = reason
        for o in outcomes:
            row.functions[o.grade_id] = (o.passed, "; ".join(o.messages))
            row.mistakes += [m.name for m in o.mistakes]
    row.score, row.max_score = _scores(api, assignment, student)
    row.seconds = time.monotonic() - start
    return row


# What nbgrader says when the submitted file itself is at fault (not JSON, not a notebook).
_STUDENT_ERRORS = ("NotJSONError", "Notebook does not appear to be JSON", "JSONDecodeError", "validation",
                   "ValidationError")


def _graders_failure(store: RunStore, assignment: str, student: str, result: dict, folder: Path) -> str:
    """Why grading this submission failed by the grader's own doing ("" if it did not): the
    judge gave up on one of its notebooks, or nbgrader failed on notebooks that read fine."""
    mine = [why for (a, s, _), why in list(store.grader_errors.items()) if (a, s) == (assignment, student)]
    for key in [k for k in list(store.grader_errors) if k[:2] == (assignment, student)]:
        store.grader_errors.pop(key, None)
    if mine:
        return mine[0]
    if result.get("success"):
        return ""
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    if any(needle in text for needle in _STUDENT_ERRORS):
        return ""
    try:
        for path in folder.glob("*.ipynb"):
            nbformat.read(path, as_version=4)
    except Exception:
        return ""  # the file is at fault: the student's
    return _first_error_line(result).removeprefix("nbgrader could not read the notebook: ")


def grader_error(why: str) -> str:
    """The one line of a row the grader itself failed on."""
    return (f"the grader itself failed on this submission and did not grade it (not the student's "
            f"doing; grade it again): {why}")[:300]


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


if __name__ == "__main__":
    # Every gradebook session is committed and closed, and the scratch space removed, by now:
    # leave without the teardown the grading process would wait for at the end of the run (the
    # exit handlers still run: the torch cache folder, where the judge imported the reference).
    from autograder.grader import exit_now
    exit_now(serve(int(sys.argv[1])))
