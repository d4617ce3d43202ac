"""The trusted judge: turns a sandbox run's recordings into nbgrader grade-cell outcomes.

It runs in the grader's own process (torch imported once, reference values cached per case by
``checks.expected_outputs``).  It trusts only the sanitized notebook (test cells restored from the
gradebook by nbgrader) and its own case tables; everything that came out of the sandbox is data
to validate, never code or pickles.
"""
from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbformat import from_dict

from autograder.course import cases, checks
from autograder.grader.safety import safe_text
from autograder.student.verdict import Known, Result, Verdict

if TYPE_CHECKING:
    from nbformat import NotebookNode


@dataclass
class CellOutcome:
    grade_id: str
    points: float
    passed: bool
    messages: list[str]
    mistakes: list[Known]


def checked_functions(source: str) -> list[str]:
    """Names in ``check("name", fn)`` calls of a (trusted) test cell."""
    from autograder.grader.pyast import parse
    try:
        tree = parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.append(node.args[0].value)
    return names


def grade_cells(nb: NotebookNode) -> Iterator[tuple[int, NotebookNode, dict]]:
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            yield index, cell, meta


def recording_request(nb: NotebookNode) -> dict:
    """What the sandbox must record for this (sanitized) notebook: every function its test
    cells check (see ``checks.recording_request``)."""
    functions = [f for _, cell, _ in grade_cells(nb) for f in checked_functions(cell.source)]
    return checks.recording_request([cases.find(f) for f in dict.fromkeys(functions) if f in cases.CHECKS])


def judge_notebook(nb: NotebookNode, results: dict, executed: NotebookNode | None,
                   run_reason: str) -> list[CellOutcome]:
    """Decide every grade cell of the sanitized notebook ``nb`` from a run's ``results``
    ({function: [Result per case]}); write the judge's outputs into it."""
    outcomes = []
    for index, cell, meta in grade_cells(nb):
        verdicts = []
        for function in checked_functions(cell.source):
            try:
                check = cases.find(function)
            except KeyError as exc:
                verdicts.append(Verdict(function, False, str(exc).strip('"')))
                continue
            try:
                recorded = _hide_hidden_messages(check, results.get(function) or [Result("missing")] * len(check.cases))
                why = _why_missing(executed, index, cell, function, run_reason)
                verdict = checks.judged(check, recorded, why)
            except Exception as exc:  # a value no comparison expected: this function fails alone
                verdict = Verdict(function, False, f"{function}: the grader could not compare what it "
                                                   f"returned ({type(exc).__name__}); it counts as wrong")
            verdict.message = safe_text(verdict.message)
            verdicts.append(verdict)
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


def _hide_hidden_messages(check, recorded: list) -> list:
    """What a hidden case's recording says is the student's text, written while the function held
    the hidden inputs: an error keeps only the exception's type, any other failure a fixed line."""
    out = []
    for case, result in zip(check.cases, recorded):
        if case.hidden and result.status not in ("ok", "missing", "not-implemented"):
            error = str(result.error or "")
            head = error.split(":", 1)[0]
            if result.status == "error" and error.startswith("NotImplementedError"):
                text = "NotImplementedError"
            elif result.status == "error" and head.isidentifier() and len(head) <= 40:
                text = f"{head} (the message of an error on a hidden case is not shown)"
            else:
                text = "it failed (what it said on a hidden case is not shown)"
            result = Result("error", result.values, text)
        out.append(result)
    return out + list(recorded[len(out):])


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
    """Test-cell outputs nbgrader's SaveAutoGrades understands: an error output means 0 points.
    Built as plain nodes: ``nbformat.v4.new_output`` validates each against the schema, and the
    exporter validates the whole notebook once it is done."""
    text = "\n".join(outcome.messages)
    if outcome.passed:
        return [from_dict({"output_type": "stream", "name": "stdout", "text": "\u2713 " + text + "\n"})]
    lines = [ln for m in outcome.messages
             for ln in textwrap.wrap(f"AssertionError: {m}", 100, subsequent_indent="    ")]
    return [from_dict({"output_type": "error", "ename": "AssertionError", "evalue": text,
                       "traceback": ["\n".join(lines)]})]
