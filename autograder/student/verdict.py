"""The one verdict path: from what a student's function returned on a case to a pass or a message.

The self-check (on the student's machine, against the kit's precomputed values) and the judge
(in the grading process, against the torch reference) both call :func:`run_case` to get a
:class:`Result` and :func:`decide` to turn a function's results into a :class:`Verdict`.  Known
mistakes travel as data (:class:`Known`), never as text to be parsed back.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from autograder.student.protocols import WrongKind, run_student
from autograder.student.recording import Described


@dataclass(frozen=True)
class FunctionSpec:
    """What is needed to call and compare one graded function (no inputs, no reference)."""
    function: str
    returns: tuple[str, ...]        # names of the values it returns, in order
    compared: tuple[str, ...]       # which of them are graded
    protocol: str = "call"
    rtol: float = 1e-7
    atol: float = 1e-9


@dataclass(frozen=True)
class CaseSpec:
    name: str
    hidden: bool = False
    rtol: float | None = None
    atol: float | None = None
    hint: str = ""                  # said when this case fails and no known mistake matches


@dataclass(frozen=True)
class Known:
    """A known mistake the comparison recognised."""
    name: str
    hint: str

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"


@dataclass
class Verdict:
    function: str
    passed: bool
    message: str
    mistakes: list[Known] = field(default_factory=list)


@dataclass
class Result:
    """What one case's run of the student's code gave."""
    status: str                     # ok | error | shape | not-implemented | missing
    values: tuple = ()
    error: str = ""


def run_case(fn, inputs: dict, spec: FunctionSpec) -> Result:
    """Run the student's code on a private copy of one case's inputs."""
    try:
        if not callable(fn):
            raise WrongKind(f"{spec.function} is {type(fn).__name__}, not a function")
        values = run_student(fn, copy.deepcopy(inputs), spec.protocol, len(spec.returns))
        return Result("ok", tuple(values))
    except WrongKind as exc:
        return Result("shape", error=str(exc))
    except NotImplementedError:
        return Result("not-implemented")
    except (Exception, SystemExit) as exc:
        return Result("error", error=f"{type(exc).__name__}: {exc}"[:500])


# ---- comparing ---------------------------------------------------------------------------

def describe(value) -> str:
    if isinstance(value, Described):
        return value.kind
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype} {value.shape}"
    return type(value).__name__


def as_number_array(value):
    """Scalars may come back as Python or NumPy numbers; arrays must be real number arrays."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (OverflowError, ValueError):  # e.g. 10**400: no float holds it
            return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value
    return None


def _where(spec: FunctionSpec, case: CaseSpec) -> str:
    return f"{spec.function}, case '{case.name}'" + (" (hidden)" if case.hidden else "")


def compare(spec: FunctionSpec, case: CaseSpec, got: Sequence, expected: Sequence[np.ndarray],
            known: Callable[[], Iterable[tuple[Known, Sequence]]]) -> Verdict:
    """Compare one case's returned values with the expected ones; name the mistake if known.

    ``known()`` gives (mistake, the values that mistake returns) pairs; it is called only when
    the values are wrong.
    """
    where = _where(spec, case)
    rtol = case.rtol if case.rtol is not None else spec.rtol
    atol = case.atol if case.atol is not None else spec.atol
    chosen = [got[spec.returns.index(name)] for name in spec.compared]

    def fail(text: str) -> Verdict:
        found = _diagnose(chosen, known, rtol, atol)
        if found:
            text += ". Likely mistake: " + "; or ".join(map(str, found))
        else:
            text += f". Hint: {case.hint}" if case.hint else "."
        return Verdict(spec.function, False, text, found)

    for name, value, exp in zip(spec.compared, chosen, expected):
        arr = as_number_array(value)
        if arr is None:
            return Verdict(spec.function, False, f"{where}: `{name}` is {describe(value)}; expected "
                                                 f"a NumPy float array of shape {exp.shape}")
        if arr.shape != exp.shape:
            return fail(f"{where}: `{name}` has shape {arr.shape}; expected {exp.shape}")
        if not np.all(np.isfinite(arr)) and np.all(np.isfinite(exp)):
            return fail(f"{where}: `{name}` contains NaN or inf")
        if not np.allclose(arr, exp, rtol=rtol, atol=atol):
            err = float(np.max(np.abs(arr.astype(np.float64) - exp)))
            return fail(f"{where}: `{name}` differs from the reference (max abs error {err:.3g})")
    return Verdict(spec.function, True, f"{where}: ok")


def _diagnose(chosen, known, rtol, atol) -> list[Known]:
    arrays = [as_number_array(v) for v in chosen]
    if any(a is None for a in arrays):
        return []
    found = []
    for mistake, wrong in known():
        wrong = [np.asarray(w, dtype=np.float64) for w in wrong]
        # Every compared value must match the mistake's (NaN only where the mistake has NaN).
        if len(wrong) == len(arrays) and all(
                a.shape == w.shape and np.allclose(a, w, rtol=max(rtol, 1e-6), atol=max(atol, 1e-8),
                                                   equal_nan=True)
                for a, w in zip(arrays, wrong)):
            found.append(mistake)
    return found


def decide(spec: FunctionSpec, cases: Iterable[tuple[CaseSpec, Result, Callable, Callable]],
           why_missing: str = "") -> Verdict:
    """The verdict on a function: every case must have run and match; the first failure speaks.

    ``cases`` yields (case, result, expected(), known()) with the last two computed lazily.
    """
    n_visible = n_hidden = 0
    cases = list(cases)
    for case, result, expected, known in cases:
        where = _where(spec, case)
        if result.status == "missing":
            done = n_visible + n_hidden
            return Verdict(spec.function, False, f"{spec.function}: "
                           + (f"{done} of {len(cases)} cases recorded, then nothing: " if done else
                              "nothing recorded: ") + (why_missing or 'the check cell did not run'))
        if result.status == "not-implemented" or result.error.startswith("NotImplementedError"):
            return Verdict(spec.function, False,
                           f"{spec.function} is not implemented yet (it raised NotImplementedError)")
        if result.status == "shape":
            return Verdict(spec.function, False, f"{where}: {result.error}")
        if result.status != "ok":
            return Verdict(spec.function, False, f"{where}: {result.error or 'failed'}")
        if len(result.values) != len(spec.returns):
            return Verdict(spec.function, False, f"{where}: returned {len(result.values)} values, "
                                                 f"expected {len(spec.returns)}")
        verdict = compare(spec, case, result.values, expected(), known)
        if not verdict.passed:
            return verdict
        n_hidden += case.hidden
        n_visible += not case.hidden
    n = n_visible + n_hidden
    if n_hidden:
        text = f"{spec.function}: all {n} cases pass ({n_visible} visible, {n_hidden} hidden)"
    else:
        text = f"{spec.function}: {n} check{'s' * (n != 1)} passed"
    return Verdict(spec.function, True, text)
