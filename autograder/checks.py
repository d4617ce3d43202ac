"""The checks API: one definition of every test case, three callers.

* A student's notebook calls ``check("batchnorm_forward", batchnorm_forward)``.  On their own
  machine this runs the *visible* cases against the torch reference and raises an
  ``AssertionError`` that names the mistake it recognised.
* While grading, the same line runs inside the sandbox with ``BN_AUTOGRADER_RECORD`` set: it only
  RECORDS what the student's function returns for every case the judge prepared (visible and
  hidden), as plain ``.npz`` files.  Nothing is compared there; torch is not even importable.
* The trusted judge (``autograder.judge``) and the pytest suite call :func:`verdict` on those
  recordings (or on a function) to decide.

This module imports NumPy only; the reference (torch) and the case tables are imported lazily,
on the side that compares.
"""
from __future__ import annotations

import copy
import json
import os
import pickle
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

RECORD_ENV = "BN_AUTOGRADER_RECORD"
SALT_ENV = "BN_AUTOGRADER_SALT"


# ---- what a case table declares ---------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One input for a function. ``make(rng)`` returns the positional arguments, in order."""
    name: str
    make: Callable[[np.random.Generator], dict]
    hidden: bool = False
    rtol: float | None = None
    atol: float | None = None
    hint: str = ""                    # said when this case fails and no known mistake matches


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``compute(inputs)`` gives what that mistake returns."""
    name: str
    hint: str
    compute: Callable[[dict], Sequence[np.ndarray]]


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

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


@dataclass
class Verdict:
    function: str
    passed: bool
    message: str
    mistakes: list[str] = field(default_factory=list)


# ---- calling a student's function: identical in self-check and sandbox -------------------

def _call(fn, inputs: dict):
    return fn(*inputs.values())


# ch4's exercises thread running statistics through several calls.
def _train_steps(fn, inputs: dict):
    """inputs: batches (list), gamma, beta, running_mean, running_var, momentum, eps.

    Calls ``fn(x, gamma, beta, running_mean, running_var, momentum, eps)`` once per batch,
    feeding each call's new running statistics to the next. ``momentum=None`` is the
    cumulative average: step k (1-based) is passed momentum 1/k.
    Returns the last output and the final running_mean and running_var.
    """
    rm, rv = inputs["running_mean"], inputs["running_var"]
    out = None
    for k, x in enumerate(inputs["batches"], start=1):
        m = inputs["momentum"]
        m = 1.0 / k if m is None else m
        result = fn(x, inputs["gamma"], inputs["beta"], rm, rv, m, inputs["eps"])
        if not isinstance(result, tuple) or len(result) != 3:
            return result
        out, rm, rv = result
    return out, rm, rv


PROTOCOLS: dict[str, Callable] = {"call": _call, "train_steps": _train_steps}


def run_student(fn, inputs: dict, protocol: str, n_returns: int):
    """Call the student's function on a private copy of the inputs; return a tuple of values."""
    result = PROTOCOLS[protocol](fn, copy.deepcopy(inputs))
    if n_returns == 1:
        return (result,)
    if not isinstance(result, tuple):
        raise _Shape(f"returned {type(result).__name__}, expected a tuple of {n_returns} values")
    if len(result) != n_returns:
        raise _Shape(f"returned {len(result)} values, expected {n_returns}")
    return result


class _Shape(Exception):
    """The function returned the wrong *kind* of thing (tuple length, type)."""


# ---- the case tables, loaded lazily (they import the torch reference when called) --------

def all_checks() -> dict[str, Check]:
    from autograder.cases import CHECKS
    return CHECKS


def find(function: str) -> Check:
    checks = all_checks()
    if function not in checks:
        raise KeyError(f"no checks are defined for a function named {function!r}")
    return checks[function]


def case_seed(function: str, case: Case) -> int:
    salt = os.environ.get(SALT_ENV, "") if case.hidden else ""
    return zlib.crc32(f"{salt}|{function}|{case.name}".encode())


def case_inputs(check: Check, case: Case) -> dict:
    return case.make(np.random.default_rng(case_seed(check.function, case)))


# ---- comparing ---------------------------------------------------------------------------

def _describe(value) -> str:
    if hasattr(value, "recorded_kind"):  # a value the judge knows only from a recording
        return value.recorded_kind
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype} {value.shape}"
    return type(value).__name__


def _as_number_array(value):
    """Scalars may come back as Python or NumPy numbers; arrays must be real float arrays."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value
    return None


def _close(got, expected, rtol, atol) -> bool:
    return (got.shape == expected.shape
            and bool(np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=False)))


def compare(check: Check, case: Case, got: Sequence, inputs: dict) -> Verdict:
    """Compare one case's returned values with the reference and name the mistake if known."""
    where = f"{check.function}, case '{case.name}'" + (" (hidden)" if case.hidden else "")
    expected = expected_outputs(check, case)
    rtol = case.rtol if case.rtol is not None else check.rtol
    atol = case.atol if case.atol is not None else check.atol
    chosen = [got[check.returns.index(name)] for name in check.compared]
    for name, value, exp in zip(check.compared, chosen, expected):
        arr = _as_number_array(value)
        if arr is None:
            return Verdict(check.function, False,
                           f"{where}: `{name}` is {_describe(value)}; expected a NumPy float array "
                           f"of shape {exp.shape}")
        if arr.shape != exp.shape:
            bad = _diagnose(check, inputs, chosen, rtol, atol)
            return Verdict(check.function, False,
                           f"{where}: `{name}` has shape {arr.shape}; expected {exp.shape}"
                           + _named(bad, case), bad)
        if not np.all(np.isfinite(arr)) and np.all(np.isfinite(exp)):
            bad = _diagnose(check, inputs, chosen, rtol, atol)
            return Verdict(check.function, False,
                           f"{where}: `{name}` contains NaN or inf" + _named(bad, case), bad)
        if not _close(arr, exp, rtol, atol):
            err = float(np.max(np.abs(arr.astype(np.float64) - exp)))
            bad = _diagnose(check, inputs, chosen, rtol, atol)
            return Verdict(check.function, False,
                           f"{where}: `{name}` differs from the reference "
                           f"(max abs error {err:.3g})" + _named(bad, case), bad)
    return Verdict(check.function, True, f"{where}: ok")


def _named(mistakes: list[str], case: Case) -> str:
    if not mistakes:
        return f". Hint: {case.hint}" if case.hint else "."
    return ". Likely mistake: " + "; or ".join(mistakes)


def _diagnose(check: Check, inputs: dict, chosen, rtol, atol) -> list[str]:
    arrays = [_as_number_array(v) for v in chosen]
    if any(a is None for a in arrays):
        return []
    found = []
    for mistake in check.mistakes:
        try:
            wrong = [np.asarray(w, dtype=np.float64) for w in mistake.compute(copy.deepcopy(inputs))]
        except Exception:  # a mistake that cannot even be computed here cannot be the one
            continue
        # Every compared value must match the mistake's (NaN only where the mistake has NaN).
        if all(a.shape == w.shape and np.allclose(a, w, rtol=max(rtol, 1e-6), atol=max(atol, 1e-8),
                                                  equal_nan=True)
               for a, w in zip(arrays, wrong)):
            found.append(f"{mistake.name} ({mistake.hint})")
    return found


_EXPECTED: dict[tuple[str, str, int], list[np.ndarray]] = {}


def expected_outputs(check: Check, case: Case) -> list[np.ndarray]:
    """The reference's values for a case, computed once per process and reused."""
    key = (check.function, case.name, case_seed(check.function, case))
    if key not in _EXPECTED:
        _EXPECTED[key] = [np.asarray(v, dtype=np.float64)
                          for v in check.reference(copy.deepcopy(case_inputs(check, case)))]
    return _EXPECTED[key]


def verdict_for_function(check: Check, fn, cases: Sequence[Case]) -> Verdict:
    """Run ``fn`` on ``cases`` in this process and compare (self-checks and tests)."""
    for case in cases:
        inputs = case_inputs(check, case)
        try:
            got = run_student(fn, inputs, check.protocol, len(check.returns))
        except NotImplementedError:
            return Verdict(check.function, False,
                           f"{check.function} is not implemented yet (it raised NotImplementedError)")
        except _Shape as exc:
            return Verdict(check.function, False, f"{check.function}, case '{case.name}': {exc}")
        v = compare(check, case, got, inputs)
        if not v.passed:
            return v
    n = len(cases)
    return Verdict(check.function, True, f"{check.function}: {n} check{'s' * (n != 1)} passed")


# ---- the one line a notebook runs --------------------------------------------------------

def check(function: str, fn: Callable) -> None:
    """Check a student's ``fn`` (self-check), or record it (inside the grading sandbox)."""
    record_dir = os.environ.get(RECORD_ENV)
    if record_dir:
        record(function, fn, record_dir)
        return
    c = find(function)
    if not callable(fn):
        raise AssertionError(f"{function} is {type(fn).__name__}, not a function")
    v = verdict_for_function(c, fn, [case for case in c.cases if not case.hidden])
    if not v.passed:
        raise AssertionError(v.message)
    print(f"\u2713 {v.message} (the grader also runs hidden cases)")


# ---- recording, inside the sandbox -------------------------------------------------------
# Layout of a recording directory, written by the judge before the run:
#   manifest.json                  {function: {"protocol", "n_returns", "cases": [names]}}
#   inputs/<function>.pkl          {case name: inputs}
# and by the student's run:
#   outputs/<function>/<k>.json    {"status": "ok"|"error"|"shape", "kinds": [...], "error": str}
#   outputs/<function>/<k>.npz     the returned values that are numbers (allow_pickle=False)
# where k is the case's position in the manifest (case names are free text, not file names).

def record(function: str, fn, record_dir: str) -> None:
    with open(os.path.join(record_dir, "manifest.json")) as f:
        spec = json.load(f).get(function)
    if spec is None:
        print(f"(no recording requested for {function})")
        return
    with open(os.path.join(record_dir, "inputs", f"{function}.pkl"), "rb") as f:
        all_inputs = pickle.load(f)
    out_dir = os.path.join(record_dir, "outputs", function)
    os.makedirs(out_dir, exist_ok=True)
    for k, name in enumerate(spec["cases"]):
        meta: dict[str, Any] = {"status": "ok", "kinds": [], "error": ""}
        arrays = {}
        try:
            if not callable(fn):
                raise _Shape(f"{function} is {type(fn).__name__}, not a function")
            got = run_student(fn, all_inputs[name], spec["protocol"], spec["n_returns"])
            for i, value in enumerate(got):
                meta["kinds"].append(_describe(value))
                arr = _as_number_array(value)
                if arr is not None:
                    arrays[f"v{i}"] = arr
        except _Shape as exc:
            meta.update(status="shape", error=str(exc))
        except (Exception, SystemExit) as exc:  # the judge reports it; later cases still run
            meta.update(status="error", error=f"{type(exc).__name__}: {exc}"[:500])
        np.savez(os.path.join(out_dir, f"{k}.npz"), **arrays)
        with open(os.path.join(out_dir, f"{k}.json"), "w") as f:
            json.dump(meta, f)
    print(f"recorded {function}")
