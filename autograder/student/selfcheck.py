"""``check(name, fn)``: the one line every check cell runs, in the kit, the release and grading.

* On a student's machine it runs the function's *visible* cases and compares with the values the
  course precomputed from its torch reference when the kit was built (``visible/<assignment>``),
  then raises an ``AssertionError`` that names the mistake it recognised, or prints a tick.
* Inside the grading sandbox (``RECORD_ENV`` set) it only RECORDS what the function returns on
  every case the judge prepared; nothing is compared there.
"""
from __future__ import annotations

import functools
import glob
import os
from typing import Callable

from autograder.student import recording
from autograder.student.verdict import CaseSpec, FunctionSpec, Known, decide, run_case

VISIBLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "visible")


def check(function: str, fn: Callable) -> None:
    """Check a student's ``fn`` on the visible cases, or record it while grading."""
    record_dir = os.environ.get(recording.RECORD_ENV)
    if record_dir:
        record(function, fn, record_dir)
        return
    data = _visible().get(function)
    if data is None:
        raise KeyError(f"no checks are defined for a function named {function!r}")
    spec = FunctionSpec(**data["spec"])
    results = []
    for case in data["cases"]:
        result = run_case(fn, case["inputs"], spec)
        if result.status == "ok":  # what the grader's recording would keep of the values
            result.values = recording.recordable(result.values, spec.returns, spec.compared)
        known = [(Known(n, h), v) for n, h, v in case["mistakes"]]
        results.append((CaseSpec(**case["case"]), result,
                        lambda c=case: c["expected"], lambda k=known: k))
    verdict = decide(spec, results)
    if not verdict.passed:
        raise AssertionError(verdict.message)
    print(f"\u2713 {verdict.message} (the grader also runs hidden cases)")


@functools.lru_cache(maxsize=1)
def _visible() -> dict:
    found: dict = {}
    for meta in sorted(glob.glob(os.path.join(VISIBLE_DIR, "*.json"))):
        found.update(recording.load(meta[:-len(".json")])["value"])
    if not found:
        raise RuntimeError(f"the precomputed checks are missing ({VISIBLE_DIR}): download the "
                           f"exercise's kit again, or in the course repository run `make exercises`")
    return found


def record(function: str, fn, record_dir: str) -> None:
    """Write what ``fn`` returns on each case the judge asked for (see ``recorder``)."""
    from autograder.student import recorder
    recorder.record(function, fn, record_dir)
