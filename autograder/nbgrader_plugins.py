"""The one piece of nbgrader we replace: executing the tests in the student's own kernel.

``SandboxedJudge`` takes the place of nbgrader's ``Execute`` preprocessor in ``nbgrader autograde``.
It runs the sanitized notebook in the sandbox (or takes the result of a run the parallel
pre-pass already made for exactly this notebook), copies back the plain outputs of ordinary
cells, and lets the trusted judge write every test cell's output.  nbgrader's own
``SaveAutoGrades`` then reads those outputs (an error output = no points) into the gradebook, so
the gradebook, ``generate_feedback``, ``export`` and formgrader keep working unchanged.
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                    LimitOutput, NbGraderPreprocessor, SaveAutoGrades)
from traitlets import Enum, Float, Instance, Integer

from autograder import sandbox as sb

# Output types shown in feedback; anything else a student's code produced (HTML, JavaScript)
# is dropped so it cannot script the instructor's browser.
SAFE_MIME = {"text/plain", "image/png", "image/jpeg"}


class RunStore:
    """One grading run's state: its scratch space, the sandbox mode and limits, the runs the
    parallel pre-pass made ahead of nbgrader's ``autograde``, and the outcomes the judge reached.
    ``grading.grade`` makes one and hands it to ``SandboxedJudge`` through nbgrader's config."""

    def __init__(self, run_dir: sb.RunDir, mode: str, limits: sb.Limits):
        self.run_dir, self.mode, self.limits = run_dir, mode, limits
        self._runs: dict[str, sb.RunResult] = {}
        self.outcomes: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo):  # nbgrader copies its config; this is a handle, not a value
        return self

    @staticmethod
    def key(nb, assignment: str, student: str, notebook: str) -> str:
        cells = [(c.cell_type, c.source) for c in nb.cells]
        return hashlib.sha256(json.dumps([assignment, student, notebook, cells]).encode()).hexdigest()

    def execute(self, nb, slot: int = 0) -> sb.RunResult:
        from autograder import judge
        return sb.run_notebook(nb, judge.recording_request(nb), self.run_dir, mode=self.mode,
                               slot=slot, limits=self.limits)

    def put(self, key: str, run: sb.RunResult) -> None:
        with self._lock:
            self._runs[key] = run

    def take(self, key: str) -> sb.RunResult | None:
        with self._lock:
            return self._runs.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()


class SandboxedJudge(NbGraderPreprocessor):
    """Runs the notebook in the sandbox and lets the trusted judge write every test cell's output."""

    mode = Enum(["auto", "root", "user", "none"], "auto",
                help="How student code runs: 'auto' picks 'root' (per-worker uids) when the grader "
                     "is root, else 'user' (unprivileged user namespaces); 'none' runs it with NO "
                     "sandbox (unsafe).").tag(config=True)
    cell_timeout = Float(30.0, help="Seconds one cell may run").tag(config=True)
    notebook_timeout = Float(120.0, help="Seconds a whole notebook may run").tag(config=True)
    memory_bytes = Integer(3 << 30, help="Address space per sandboxed process").tag(config=True)
    processes = Integer(64, help="Processes per sandbox").tag(config=True)
    file_bytes = Integer(16 << 20, help="Largest file the notebook may write").tag(config=True)
    job_bytes = Integer(64 << 20, help="All the notebook may write where results go").tag(config=True)
    runs = Instance(RunStore, allow_none=True,
                    help="Set by `python -m autograder grade` (its parallel pre-pass); when unset, "
                         "each notebook is run here").tag(config=True)

    def limits(self) -> sb.Limits:
        return sb.Limits(cell_seconds=self.cell_timeout, notebook_seconds=self.notebook_timeout,
                         memory_bytes=self.memory_bytes, processes=self.processes,
                         file_bytes=self.file_bytes, job_bytes=self.job_bytes)

    def resolved_mode(self) -> str:
        return sb.pick_mode(self.mode)

    def preprocess(self, nb, resources):
        from autograder import judge
        info = resources["nbgrader"]
        ids = (info["assignment"], info["student"], info["notebook"])
        if self.runs is not None:
            store = self.runs
            run = store.take(store.key(nb, *ids)) or store.execute(nb)
        else:  # stock `nbgrader autograde`: a scratch space for this notebook alone
            with sb.RunDir() as run_dir:
                store = RunStore(run_dir, self.resolved_mode(), self.limits())
                run = store.execute(nb)
        _copy_plain_outputs(nb, run.executed)
        outcomes = judge.judge_notebook(nb, run.results, run.executed, run.reason)
        store.outcomes[ids] = (run.status, run.reason, run.seconds, outcomes)
        return nb, resources


def _copy_plain_outputs(nb, executed) -> None:
    """Copy outputs of non-test cells whose source is unchanged, keeping only safe output types."""
    if executed is None or len(getattr(executed, "cells", [])) != len(nb.cells):
        return
    for cell, ran in zip(nb.cells, executed.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        if ran.get("cell_type") != "code" or ran.get("source") != cell.source:
            continue
        kept = []
        for out in ran.get("outputs", [])[:50]:
            out = copy.deepcopy(out)
            if out.get("output_type") in ("display_data", "execute_result"):
                out["data"] = {k: v for k, v in out.get("data", {}).items() if k in SAFE_MIME}
                if not out["data"]:
                    continue
            elif out.get("output_type") not in ("stream", "error"):
                continue
            kept.append(out)
        cell.outputs = kept
        cell.execution_count = ran.get("execution_count")


AUTOGRADE_PREPROCESSORS = [
    SandboxedJudge,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
