"""The registry: case tables, one module per assignment; ``CHECKS`` maps a function name to its Check.

Every module here named like an assignment (``ch<N>_<topic>``) is an assignment's table and
exports ``CHECKS``, a list. Function names are unique across the course, so a notebook's
``check("name", fn)`` needs no assignment name.
"""
import pkgutil
import re
from importlib import import_module
from pathlib import Path

from autograder.course.checks import (
    Check,  # the registry imports the API, never the reverse
)

ASSIGNMENT_IDS = tuple(sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                              if re.fullmatch(r"ch\d+_\w+", m.name)))

ASSIGNMENTS: dict[str, list[Check]] = {
    a: import_module(f"autograder.course.cases.{a}").CHECKS for a in ASSIGNMENT_IDS
}

CHECKS: dict[str, Check] = {c.function: c for checks in ASSIGNMENTS.values() for c in checks}
if len(CHECKS) != sum(len(v) for v in ASSIGNMENTS.values()):
    raise RuntimeError("two assignments define checks for the same function name")


def find(function: str) -> Check:
    """The Check of a graded function, or a KeyError that says there is none."""
    if function not in CHECKS:
        raise KeyError(f"no checks are defined for a function named {function!r}")
    return CHECKS[function]
