"""Hints teach without answering, and visible cases can show an axis mix-up (issue 15, item 6).

These scan EVERY case table: each Case.hint and Mistake.hint of every assignment.
"""
import re

import nbformat
import numpy as np
import pytest

from autograder.course import cases, checks
from autograder.course.cases import ASSIGNMENT_IDS, ASSIGNMENTS

from conftest import REPO

HINTS = [(a, check.function, where, text)
         for a in ASSIGNMENT_IDS for check in ASSIGNMENTS[a]
         for where, text in ([(f"case {c.name!r}", c.hint) for c in check.cases if c.hint]
                             + [(f"mistake {m.name!r}", m.hint) for m in check.mistakes])]
HINT_IDS = [f"{a}:{f}:{w}" for a, f, w, _ in HINTS]


def _normalized(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_statements() -> set[str]:
    """Every statement between ### BEGIN SOLUTION and ### END SOLUTION in solutions/, without its
    comment and whitespace; only those long enough to be a real line of an answer."""
    found = set()
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if line.strip() == "### BEGIN SOLUTION":
                    inside = True
                elif line.strip() == "### END SOLUTION":
                    inside = False
                elif inside:
                    code = _normalized(line.split("#", 1)[0])
                    if len(code) >= 10 and not code.startswith(("return", "def", "for", "if", "else")):
                        found.add(code)
    return found


# Code, not teaching: a call of NumPy, a method call, an assignment statement, a matrix product,
# indexing with slices or None, a keyword argument.
CODE_LIKE = {
    "NumPy call": re.compile(r"\bnp\.\w+"),
    "method call": re.compile(r"\w\.\w+\("),
    "assignment": re.compile(r"(^|[\s(,:;])[A-Za-z_][\w.]*(\[[^\]]*\])?\s*[-+*/@]?=(?!=)\s*[\w(\-\[]"),
    "matrix product": re.compile(r"\w\s*@\s*\w"),
    "slicing": re.compile(r"\[[^\]]*(:|None)[^\]]*\]"),
    "power operator": re.compile(r"\*\*"),
}


def code_like(text: str) -> list[str]:
    return [name for name, rx in CODE_LIKE.items() if rx.search(text)]


def test_the_scan_can_fail():
    """The two scans flag what they are meant to flag, and let plain teaching through."""
    statements = solution_statements()
    assert len(statements) > 50
    assert "cov=xc.T@xc/x_train.shape[0]" in statements
    assert code_like("divide by N: cov = xc.T @ xc / N") == ["assignment", "matrix product"]
    assert code_like("x.transpose(0, 2, 3, 1).reshape(-1, C)") == ["method call"]
    assert code_like("add 2 * xc * dvar / N to dxc: dxc += 2 * xc * dvar / N") == ["assignment"]
    assert code_like("use s[:, None] * w") == ["slicing"]
    assert not code_like("the covariance divides by N, as batch norm's variance does (x - mu)")


@pytest.mark.parametrize("assignment,function,where,hint", HINTS, ids=HINT_IDS)
def test_hint_holds_no_solution_statement(assignment, function, where, hint):
    text = _normalized(hint)
    leaked = sorted(s for s in solution_statements() if s in text)
    assert not leaked, f"{assignment} {function} {where}: the hint quotes solution code {leaked}"
    assert not code_like(hint), f"{assignment} {function} {where}: code-like hint ({code_like(hint)}): {hint}"


_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+|\d+e-?\d+|\d{2,})(?![\w.])")


@pytest.mark.parametrize("assignment,function,where,hint",
                         [h for h in HINTS if h[2].startswith("case")],
                         ids=[i for i, h in zip(HINT_IDS, HINTS) if h[2].startswith("case")])
def test_case_hint_quotes_only_its_own_case(assignment, function, where, hint):
    """A case's hint may quote numbers, but only those of the case it is attached to (its name)."""
    name = where[len("case "):].strip("'\"")
    foreign = [n for n in _NUMBER.findall(hint) if n not in _NUMBER.findall(name)]
    assert not foreign, f"{assignment} {function} {where}: the hint quotes {foreign}, not in the case"


def _arrays(value, path=""):
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for k, v in enumerate(value):
            yield from _arrays(v, f"{path}[{k}]")


VISIBLE = [(a, check, case) for a in ASSIGNMENT_IDS for check in ASSIGNMENTS[a]
           for case in check.cases if not case.hidden]


@pytest.mark.parametrize("assignment,check,case", VISIBLE,
                         ids=[f"{a}:{c.function}:{k.name}" for a, c, k in VISIBLE])
def test_visible_case_is_rectangular(assignment, check, case):
    """A visible input of two or more dimensions has no two equal dimensions: a transposed or
    mixed-up axis then fails with a shape or a value the student can see."""
    inputs = checks.case_inputs(check, case)
    bad = [f"{path} {a.shape}" for path, a in _arrays(inputs)
           if a.ndim >= 2 and len(set(a.shape)) < a.ndim]
    assert not bad, f"{assignment} {check.function} case {case.name!r}: repeated dimensions in {bad}"


def test_a_generic_failure_shows_how_to_rebuild_the_visible_case():
    """No named mistake matches: the message quotes one line that rebuilds the case's inputs, and
    that line, run as the student would, gives the inputs the check used."""
    from autograder.student import check as self_check
    from autograder.student import visible_case
    check = cases.find("whiten")
    first = next(c for c in check.cases if not c.hidden)

    def off_by_a_bit(x_train, x_test, eps=1e-5):
        return x_train * 0.5, x_test * 0.5
    verdict = checks.verdict_for_function(check, off_by_a_bit, [first])
    line = f'inputs = visible_case("whiten", "{first.name}")'
    assert line in verdict.message and "whiten(**inputs)" in verdict.message
    with pytest.raises(AssertionError, match=re.escape(line)):
        self_check("whiten", off_by_a_bit)
    ns = {"visible_case": visible_case}
    exec(line, ns)
    rebuilt, expected = ns["inputs"], checks.case_inputs(check, first)
    assert list(rebuilt) == list(expected)
    assert all(np.array_equal(rebuilt[k], expected[k]) for k in expected)
    with pytest.raises(KeyError, match="its visible cases are"):
        visible_case("whiten", "no such case")


# ---- a hint names the mistake and its mechanism, never the fix (issue 23, item 4) ---------------

def _fix_given_away(hint: str, correction: str) -> bool:
    """Whether ``hint`` holds ``correction`` as text, as code or as a formula (canonical tokens)."""
    from autograder.tools import transcription as T
    if _normalized(correction) and _normalized(correction) in _normalized(hint):
        return True
    # the hint's formulas and code (inline math, backticks): a whole statement of the fix there
    # gives it away; statements shorter than 5 canonical tokens (``ID * ID``) say nothing
    statements = [s for s in T.inlined_statements(correction) if len(s) >= 5]
    return any(T.longest_run(s, u) >= len(s) for s in statements for u in T.units(hint))


MISTAKES = [(a, check, m) for a in ASSIGNMENT_IDS for check in ASSIGNMENTS[a] for m in check.mistakes]


@pytest.mark.parametrize("a,check,mistake", MISTAKES, ids=[f"{a}:{c.function}:{m.name}" for a, c, m in MISTAKES])
def test_every_mistake_records_its_correction(a, check, mistake):
    assert mistake.correction.strip(), "Mistake.correction: the right code or formula at the mistake's place"


@pytest.mark.parametrize("a,function,where,text", HINTS, ids=HINT_IDS)
def test_no_hint_gives_the_fix(a, function, where, text):
    check = cases.find(function)
    given = [m.name for m in check.mistakes if m.correction and _fix_given_away(text, m.correction)]
    assert not given, f"{where}'s hint holds the correction of {given}: {text!r}"


def test_the_fix_check_can_fail():
    correction = "var = (xc ** 2).mean(axis=0)"
    assert _fix_given_away("Use `var = (xc**2).mean(axis=0)` instead.", correction)
    assert _fix_given_away(r"the variance should be $\frac{1}{N}\sum_i (x_i-\mu)^2 + \epsilon$ here",
                           "var = ((x - mu) ** 2).mean(axis=0) + eps")
    assert not _fix_given_away("the variance divides by N - 1 (the unbiased estimate) where the batch's own "
                               "spread is wanted", correction)
