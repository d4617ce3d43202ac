"""The grader side of the checks API: every test case, defined once, with its reference values.

A case table (``autograder/course/cases/<assignment>.py``, found through the registry there) declares, per graded function, a
:class:`Check`: its cases (seeded input generators, visible or hidden), the torch reference, and
the known mistakes.  Three callers use it:

* the judge (``autograder.grader.judge``) compares a sandbox run's recordings with it;
* the kit builder (``autograder.course.kits``) precomputes the visible cases' values for the student
  side's self-check (``autograder.student``), which never needs torch;
* the pytest suite, through :func:`verdict_for_function`.

Calling the student's code and deciding a verdict happen in ``autograder.student`` only, so the
self-check and the judge cannot disagree.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from autograder.student.verdict import (
    CaseSpec,
    FunctionSpec,
    Known,
    Result,
    Verdict,
    decide,
    run_case,
)

SALT_ENV = "BN_AUTOGRADER_SALT"


# ---- what a case table declares ---------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One input for a function. ``make(rng)`` returns the inputs as plain data (arrays, numbers,
    strings, None, and lists/tuples/dicts of those): they cross the trust line as JSON + npz."""
    name: str
    make: Callable[[np.random.Generator], dict]
    hidden: bool = False
    rtol: float | None = None
    atol: float | None = None
    hint: str = ""                    # said when this case fails and no known mistake matches

    @property
    def spec(self) -> CaseSpec:
        return CaseSpec(self.name, self.hidden, self.rtol, self.atol, self.hint)


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``compute(inputs)`` gives what that mistake returns (the compared
    values, in ``Check.compared`` order, as the reference does)."""
    name: str
    hint: str
    compute: Callable[[dict], Sequence[np.ndarray]]
    # The right code or formula at the mistake's place (never shown): a test holds every hint
    # against it, so a hint names the mistake and its mechanism, never the fix.
    correction: str = ""


@dataclass(frozen=True)
class Check:
    """Everything needed to test one student function."""
    function: str
    returns: tuple[str, ...]          # names of the values the function returns, in order
    compared: tuple[str, ...]         # which of them are graded (e.g. not the cache)
    reference: Callable[[dict], Sequence[np.ndarray]]
    cases: tuple[Case, ...]
    mistakes: tuple[Mistake, ...] = ()
    protocol: str = "call"
    rtol: float = 1e-7
    atol: float = 1e-9
    steps: tuple[str, ...] = ()       # compared values whose axis 0 is a step (see FunctionSpec)
    # The student's own graded functions this one calls (an experiment built from the student's
    # layers): a mistake in one of them shows in this function's results too.
    uses: tuple[str, ...] = ()
    # A transfer of a result the chapter prints (its core derivation): which result, and what the
    # student must find that the page does not give. The transcription check cannot tell such a
    # function from the printed formula (names, axes and counts are what it abstracts away), so it
    # reports it without flagging it.
    transfers: str = ""

    @property
    def spec(self) -> FunctionSpec:
        return FunctionSpec(self.function, tuple(self.returns), tuple(self.compared), self.protocol,
                            self.rtol, self.atol, tuple(self.steps))

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


# The submission being graded: a digest of the course's secret and the student's own cells
# (``autograder.grader.keys``), set by the grader around each notebook. Hidden cases draw their inputs
# from it: a table of one submission's hidden inputs is useless in the next, while grading the
# same file again gives the same inputs.
SUBMISSION_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("bn_submission_key", default="")


@contextlib.contextmanager
def keyed(key: str) -> Iterator[None]:
    """Hidden cases' seeds within this block are keyed by ``key`` (this thread only)."""
    token = SUBMISSION_KEY.set(key)
    try:
        yield
    finally:
        SUBMISSION_KEY.reset(token)


def case_seed(function: str, case: Case) -> int:
    key = SUBMISSION_KEY.get() if case.hidden else ""
    if key:
        return int.from_bytes(hashlib.sha256(f"{key}|{function}|{case.name}".encode()).digest()[:8], "big")
    salt = os.environ.get(SALT_ENV, "") if case.hidden else ""
    return zlib.crc32(f"{salt}|{function}|{case.name}".encode())


_CACHE_ENTRIES = 50_000  # per cache: hidden cases are keyed per submission, so bound them


def _remember(cache: dict, key, value):
    if len(cache) >= _CACHE_ENTRIES:
        cache.clear()
    cache[key] = value
    return value


_INPUTS: dict[tuple[str, str, int], dict] = {}
_EXPECTED: dict[tuple[str, str, int], list[np.ndarray]] = {}
_KNOWN: dict[tuple[str, str, int], list[tuple[Known, list[np.ndarray]]]] = {}


def _key(check: Check, case: Case):
    return check.function, case.name, case_seed(check.function, case)


def case_inputs(check: Check, case: Case) -> dict:
    """A private copy of a case's inputs (generated once per process)."""
    key = _key(check, case)
    found = _INPUTS.get(key)
    if found is None:
        found = _remember(_INPUTS, key, case.make(np.random.default_rng(key[2])))
    return copy.deepcopy(found)


def expected_outputs(check: Check, case: Case) -> list[np.ndarray]:
    """The reference's values for a case, computed once per process and reused."""
    key = _key(check, case)
    found = _EXPECTED.get(key)
    if found is None:
        found = _remember(_EXPECTED, key, [np.asarray(v, dtype=np.float64)
                                           for v in check.reference(case_inputs(check, case))])
    return found


def known_outputs(check: Check, case: Case) -> list[tuple[Known, list[np.ndarray]]]:
    """What each known mistake returns on a case (those that can be computed there)."""
    key = _key(check, case)
    found = _KNOWN.get(key)
    if found is None:
        found = []
        for mistake in check.mistakes:
            try:
                wrong = [np.asarray(w, dtype=np.float64) for w in mistake.compute(case_inputs(check, case))]
            except Exception:  # a mistake that cannot even be computed here cannot be the one
                continue
            found.append((Known(mistake.name, mistake.hint), wrong))
        _remember(_KNOWN, key, found)
    return found


def judged(check: Check, results: Sequence[Result], why_missing: str = "") -> Verdict:
    """The verdict on ``results`` (one per case of ``check``, in order)."""
    return decide(check.spec, ((case.spec, result,
                                lambda case=case: expected_outputs(check, case),
                                lambda case=case: known_outputs(check, case))
                               for case, result in zip(check.cases, results)), why_missing)


def verdict_for_function(check: Check, fn: Callable, cases: Sequence[Case] | None = None) -> Verdict:
    """Run ``fn`` on ``cases`` in this process and judge it (the test suite)."""
    cases = check.cases if cases is None else cases
    sub = Check(**{**check.__dict__, "cases": tuple(cases)})
    return judged(sub, [run_case(fn, case_inputs(check, c), check.spec) for c in cases])


# ---- the student side's precomputed data ------------------------------------------------

def visible_data(checks: Sequence[Check]) -> dict:
    """For the kit: each function's visible cases with their inputs, the reference's values and
    what each known mistake returns. Hidden cases never appear here."""
    out = {}
    for check in checks:
        cases = []
        for case in check.cases:
            if case.hidden:
                continue
            cases.append({"case": asdict(case.spec), "inputs": case_inputs(check, case),
                          "expected": expected_outputs(check, case),
                          "mistakes": [[k.name, k.hint, v] for k, v in known_outputs(check, case)]})
        out[check.function] = {"spec": asdict(check.spec), "cases": cases}
    return out


def recording_request(checks: Sequence[Check]) -> dict:
    """What the sandbox needs to record ``checks``: {function: (manifest entry, inputs)}."""
    out = {}
    for check in checks:
        out[check.function] = ({"spec": asdict(check.spec), "cases": [c.name for c in check.cases]},
                         {c.name: case_inputs(check, c) for c in check.cases})
    return out
