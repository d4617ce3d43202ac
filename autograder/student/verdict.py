"""The one verdict path: from what a student's function returned on a case to a pass or a message.

The self-check (on the student's machine, against the kit's precomputed values) and the judge
(in the grading process, against the torch reference) both call :func:`run_case` to get a
:class:`Result` and :func:`decide` to turn a function's results into a :class:`Verdict`.  Known
mistakes travel as data (:class:`Known`), never as text to be parsed back.
"""
from __future__ import annotations

import copy
import json
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
    steps: tuple[str, ...] = ()     # compared values whose axis 0 is a step: the first step that
                                    # differs is reported, whichever of them differs there


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
    not_implemented: bool = False   # a stub still raising NotImplementedError: no points, but
                                    # the self-check reports it without stopping Run All


@dataclass
class Result:
    """What one case's run of the student's code gave."""
    status: str                     # ok | error | shape | not-implemented | modified | missing
    values: tuple = ()
    error: str = ""                 # for "modified": the input's name, as input_name gives it


MODIFIED_HINT = ("the caller's arrays are inputs, not scratch space: the caller still needs them "
                 "unchanged after the call")


def changed_input(before, after, path: tuple = ()) -> tuple | None:
    """The path (keys and indices) of the first place ``after`` differs from ``before``, or None."""
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        same = (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)
                and before.shape == after.shape and before.dtype == after.dtype
                and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
        return None if same else path
    if isinstance(before, dict):
        if not isinstance(after, dict) or list(before) != list(after):
            return path
        for key in before:
            found = changed_input(before[key], after[key], path + (key,))
            if found is not None:
                return found
        return None
    if isinstance(before, (list, tuple)):
        if type(after) is not type(before) or len(after) != len(before):
            return path
        for k, (b, a) in enumerate(zip(before, after)):
            found = changed_input(b, a, path + (k,))
            if found is not None:
                return found
        return None
    same = type(before) is type(after) and (before == after or (before != before and after != after))
    return None if same else path


def input_name(protocol: str, path: tuple) -> str:
    """How a student would name the input at ``path``: the argument's name, with its place."""
    if protocol == "layer_script" and len(path) >= 3 and path[0] == "steps" and path[2] == "x":
        return "x"                  # the array a step passed to forward
    text = str(path[0]) if path else "inputs"
    for key in path[1:]:
        text += f"[{key!r}]"
    return text


def run_case(fn, inputs: dict, spec: FunctionSpec) -> Result:
    """Run the student's code on a private copy of one case's inputs, and check afterwards that
    it left that copy as it found it (the arguments are the caller's)."""
    try:
        if not callable(fn):
            raise WrongKind(f"{spec.function} is {type(fn).__name__}, not a function")
        private = copy.deepcopy(inputs)
        values = run_student(fn, private, spec.protocol, len(spec.returns))
        changed = changed_input(inputs, private)
        if changed is not None:
            return Result("modified", tuple(values), input_name(spec.protocol, changed))
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


REBUILD_CALL = {"call": "{f}(**inputs)", "mlp_training": "{f}(**inputs)",
                "layer_script": "its 'steps' are the forward calls the check made"}


def rebuild_line(spec: FunctionSpec, case: CaseSpec) -> str:
    """One line that rebuilds a visible case's inputs in the student's notebook."""
    line = f"inputs = visible_case({json.dumps(spec.function)}, {json.dumps(case.name)})"
    then = REBUILD_CALL.get(spec.protocol, "").format(f=spec.function)
    return f"Rebuild this case with `{line}`" + (f" (then {then})" if then else "")


def _differs(name, arr, exp, rtol, atol, hidden: bool = False) -> str | None:
    """Why ``arr`` is not ``exp`` (None if it is), for a message. On a hidden case no number the
    student's values chose is shown (they could spell out the hidden inputs)."""
    if arr.shape != exp.shape:
        if hidden:
            return f"`{name}` has the wrong shape; expected {exp.shape}"
        return f"`{name}` has shape {arr.shape}; expected {exp.shape}"
    if not np.all(np.isfinite(arr)) and np.all(np.isfinite(exp)):
        return f"`{name}` contains NaN or inf"
    if not np.allclose(arr, exp, rtol=rtol, atol=atol):
        if hidden:
            return f"`{name}` differs from the reference"
        err = float(np.max(np.abs(arr.astype(np.float64) - exp)))
        return f"`{name}` differs from the reference (max abs error {err:.3g})"
    return None


def compare(spec: FunctionSpec, case: CaseSpec, got: Sequence, expected: Sequence[np.ndarray],
            known: Callable[[], Iterable[tuple[Known, Sequence]]]) -> Verdict:
    """Compare one case's returned values with the expected ones; name the mistake if known.

    Values are compared in ``spec.compared`` order, so a table lists a root cause (a buffer, a
    parameter gradient) before what it feeds. The values named in ``spec.steps`` are compared
    step by step together: the first step where any of them differs is reported, by number.
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
            if not case.hidden:
                text += " " + rebuild_line(spec, case) + "."
        return Verdict(spec.function, False, text, found)

    arrays = {}
    for name, value, exp in zip(spec.compared, chosen, expected):
        arr = as_number_array(value)
        if arr is None:
            if case.hidden:  # its type's name is the student's to choose
                return Verdict(spec.function, False, f"{where}: `{name}` is not a NumPy float array "
                                                     f"of shape {exp.shape}")
            return Verdict(spec.function, False, f"{where}: `{name}` is {describe(value)}; expected "
                                                 f"a NumPy float array of shape {exp.shape}")
        arrays[name] = (arr, exp)
    stepped = [n for n in spec.compared if n in spec.steps and arrays[n][1].ndim > 0]
    done_steps = False
    for name in spec.compared:
        if name in stepped:
            if done_steps:
                continue
            done_steps = True
            # shapes first (a wrong number of steps is not a step that differs)
            for n in stepped:
                arr, exp = arrays[n]
                if arr.shape != exp.shape:
                    return fail(f"{where}: {_differs(n, arr, exp, rtol, atol, case.hidden)}")
            n_steps = min(arrays[n][1].shape[0] for n in stepped)
            # All steps at once first (the same test, element by element); step by step only to
            # name the first step that differs.
            if all(_differs(n, arrays[n][0][:n_steps], arrays[n][1][:n_steps], rtol, atol) is None
                   for n in stepped):
                continue
            for k in range(n_steps):
                for n in stepped:
                    arr, exp = arrays[n]
                    why = _differs(n, arr[k], exp[k], rtol, atol, case.hidden)
                    if why:
                        return fail(f"{where}: at step {k + 1}, {why}")
            continue
        why = _differs(name, *arrays[name], rtol, atol, case.hidden)
        if why:
            return fail(f"{where}: {why}")
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
                           f"{spec.function} is not implemented yet (it raised NotImplementedError)",
                           not_implemented=True)
        if result.status == "modified":
            mistake = Known(f"modified its input `{result.error[:80]}` in place", MODIFIED_HINT)
            return Verdict(spec.function, False, f"{where}: an argument changed during the call. "
                                                 f"Likely mistake: {mistake}", [mistake])
        if result.status == "shape":
            return Verdict(spec.function, False, f"{where}: {result.error}")
        if result.status != "ok":
            return Verdict(spec.function, False, f"{where}: {result.error or 'failed'}")
        if len(result.values) != len(spec.returns):
            count = "a different number of" if case.hidden else len(result.values)
            return Verdict(spec.function, False, f"{where}: returned {count} values, "
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
