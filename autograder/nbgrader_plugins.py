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

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                    LimitOutput, NbGraderPreprocessor, SaveAutoGrades)
from traitlets import Bool

# Output types shown in feedback; anything else a student's code produced (HTML, JavaScript)
# is dropped so it cannot script the instructor's browser.
SAFE_MIME = {"text/plain", "image/png", "image/jpeg"}


class SandboxedJudge(NbGraderPreprocessor):

    sandbox = Bool(True, help="Run student code under bubblewrap (see autograder.sandbox)").tag(config=True)

    def preprocess(self, nb, resources):
        from autograder import grading, judge
        info = resources["nbgrader"]
        run = grading.run_for(nb, info["assignment"], info["student"], info["notebook"],
                              sandbox=self.sandbox)
        try:
            _copy_plain_outputs(nb, run.executed)
            outcomes = judge.judge_notebook(nb, run.record_dir, run.executed, run.reason)
        finally:
            run.cleanup()
        grading.remember(info["assignment"], info["student"], info["notebook"], run, outcomes)
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
