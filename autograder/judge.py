"""The trusted judge: turns a sandbox run's recordings into nbgrader grade-cell outcomes.

It runs in the grader's own process (torch imported once, reference values cached per case by
``checks.expected_outputs``).  It trusts only the sanitized notebook (test cells restored from the
gradebook by nbgrader) and its own case tables; everything that came out of the sandbox is data
to validate, never code or pickles.
"""
from __future__ import annotations

import ast
import json
import pickle
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nbformat.v4 import new_output

from autograder import checks
from autograder.checks import Check, Verdict

MAX_RECORD_BYTES = 32 << 20


@dataclass
class CellOutcome:
    grade_id: str
    points: float
    passed: bool
    messages: list[str]
    mistakes: list[str]


def checked_functions(source: str) -> list[str]:
    """Names in ``check("name", fn)`` calls of a (trusted) test cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.append(node.args[0].value)
    return names


def grade_cells(nb):
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            yield index, cell, meta


_INPUTS: dict[str, bytes] = {}


def recording_request(nb) -> dict:
    """The manifest and pickled inputs for every function the notebook's test cells check."""
    manifest, inputs = {}, {}
    for _, cell, _ in grade_cells(nb):
        for function in checked_functions(cell.source):
            check = checks.find(function)
            manifest[function] = {"protocol": check.protocol, "n_returns": len(check.returns),
                                  "cases": [c.name for c in check.cases]}
            if function not in _INPUTS:
                _INPUTS[function] = pickle.dumps({c.name: checks.case_inputs(check, c) for c in check.cases})
            inputs[function] = _INPUTS[function]
    return {"manifest": manifest, "inputs": inputs}


def _load_case(record_dir: Path, function: str, k: int):
    """Case k's recorded values: (values, None) or (None, reason). Never unpickles, bounds sizes."""
    base = record_dir / "outputs" / function
    meta_path, npz_path = base / f"{k}.json", base / f"{k}.npz"
    try:
        if not meta_path.is_file() or meta_path.stat().st_size > 65536:
            return None, None
        meta = json.loads(meta_path.read_text())
        status = str(meta.get("status"))
        if status in ("error", "shape"):
            return None, str(meta.get("error", "failed"))[:300]
        kinds = [str(k)[:60] for k in meta.get("kinds", [])][:16]
        if npz_path.stat().st_size > MAX_RECORD_BYTES:
            return None, "returned arrays too large to grade"
        with zipfile.ZipFile(npz_path) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_RECORD_BYTES:
                return None, "returned arrays too large to grade"
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        return None, f"its recording could not be read ({type(exc).__name__})"
    values = []
    for i, kind in enumerate(kinds):
        values.append(arrays[f"v{i}"] if f"v{i}" in arrays else _Described(kind))
    return values, None


def judge_function(check: Check, record_dir: Path, why_missing: str) -> Verdict:
    """Every case must be recorded and match; the first failure is the message."""
    for k, case in enumerate(check.cases):
        values, error = _load_case(record_dir, check.function, k)
        where = f"{check.function}, case '{case.name}'" + (" (hidden)" if case.hidden else "")
        if values is None and error is None:
            return Verdict(check.function, False, f"{check.function}: nothing recorded: {why_missing}")
        if error is not None:
            if error.startswith("NotImplementedError"):
                return Verdict(check.function, False, f"{check.function} is not implemented "
                                                      f"(it raised NotImplementedError)")
            return Verdict(check.function, False, f"{where}: {error}")
        if len(values) != len(check.returns):
            return Verdict(check.function, False, f"{where}: returned {len(values)} values, "
                                                  f"expected {len(check.returns)}")
        verdict = checks.compare(check, case, values, checks.case_inputs(check, case))
        if not verdict.passed:
            return verdict
    n_hidden = sum(c.hidden for c in check.cases)
    return Verdict(check.function, True,
                   f"{check.function}: all {len(check.cases)} cases pass "
                   f"({len(check.cases) - n_hidden} visible, {n_hidden} hidden)")


class _Described:
    """A returned value that was not a number array, known only by its recorded kind."""
    def __init__(self, kind: str):
        self.recorded_kind = kind


def judge_notebook(nb, record_dir: Path, executed, run_reason: str) -> list[CellOutcome]:
    """Decide every grade cell of the sanitized notebook ``nb``; write the judge's outputs into it."""
    outcomes = []
    for index, cell, meta in grade_cells(nb):
        functions = checked_functions(cell.source)
        verdicts = [judge_function(checks.find(f), record_dir, _why_missing(executed, index, cell, f, run_reason))
                    for f in functions]
        if not verdicts:
            verdicts = [Verdict(meta.get("grade_id", "?"), False, "this test cell checks nothing")]
        passed = all(v.passed for v in verdicts)
        outcome = CellOutcome(meta.get("grade_id", f"cell-{index}"), float(meta.get("points", 0)),
                              passed, [v.message for v in verdicts],
                              [m for v in verdicts for m in v.mistakes])
        cell.outputs = _outputs(outcome)
        cell.execution_count = None
        outcomes.append(outcome)
    return outcomes


def _why_missing(executed, index: int, cell, function: str, run_reason: str) -> str:
    """Explain an absent recording from the (untrusted) executed copy of the notebook."""
    try:
        for ran in executed.cells:  # the function's own cell failing is the likeliest cause
            if ran.get("metadata", {}).get("nbgrader", {}).get("grade_id") == function:
                for out in ran.get("outputs", []):
                    if out.get("output_type") == "error":
                        return (f"its cell raised {str(out.get('ename'))[:60]}: "
                                f"{str(out.get('evalue'))[:200]}")
        ran = executed.cells[index]
        if ran.source != cell.source:
            raise ValueError
        for out in ran.get("outputs", []):
            if out.get("output_type") == "error":
                return f"the check cell raised {str(out.get('ename'))[:60]}: {str(out.get('evalue'))[:200]}"
        if ran.get("execution_count") is None and run_reason:
            return f"the check cell did not run: {run_reason}"
    except Exception:
        pass
    return run_reason or "the check cell did not record anything"


def _outputs(outcome: CellOutcome):
    """Test-cell outputs nbgrader's SaveAutoGrades understands: an error output means 0 points."""
    text = "\n".join(outcome.messages)
    if outcome.passed:
        return [new_output("stream", name="stdout", text="\u2713 " + text + "\n")]
    lines = [ln for m in outcome.messages
             for ln in textwrap.wrap(f"AssertionError: {m}", 100, subsequent_indent="    ")]
    return [new_output("error", ename="AssertionError", evalue=text, traceback=["\n".join(lines)])]
