"""``check(name, fn)``: the one line every check cell runs, in the kit, the release and grading.

* On a student's machine it runs the function's *visible* cases and compares with the values the
  course precomputed from its torch reference when the kit was built (``visible/<assignment>``),
  then raises an ``AssertionError`` that names the mistake it recognised, or prints a tick. A stub
  that still raises ``NotImplementedError`` is reported in one printed line, without raising, so
  that Run All reaches every check.
* Inside the grading sandbox (``RECORD_ENV`` set) it only RECORDS what the function returns on
  every case the judge prepared; nothing is compared there.
"""
from __future__ import annotations

import contextlib
import copy
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
    if verdict.not_implemented:
        print(f"\u2717 {verdict.message}: 0 points so far")
        return
    if not verdict.passed:
        raise AssertionError(verdict.message)
    print(f"\u2713 {verdict.message} (the grader also runs hidden cases)")


def visible_case(function: str, case: str) -> dict:
    """The inputs of one visible case, exactly as the check passed them (a fresh copy).

    A failing check quotes this call, e.g. ``inputs = visible_case("whiten", "eps=0.1")``."""
    data = _visible().get(function)
    if data is None:
        raise KeyError(f"no checks are defined for a function named {function!r}")
    for c in data["cases"]:
        if c["case"]["name"] == case:
            return copy.deepcopy(c["inputs"])
    names = ", ".join(repr(c["case"]["name"]) for c in data["cases"])
    raise KeyError(f"{function} has no visible case {case!r}; its visible cases are {names}")


@contextlib.contextmanager
def demo(*functions: str):
    """Run an ungraded demo cell only as far as the student's functions allow: a stub that still
    raises NotImplementedError ends the cell with one printed line instead of an error, so that
    Run All goes on to the next check."""
    try:
        yield
    except NotImplementedError:
        names = " and ".join(f"`{f}`" for f in functions) or "the functions above"
        print(f"(this demo runs once {names} {'is' if len(functions) == 1 else 'are'} "
              f"implemented)")


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
