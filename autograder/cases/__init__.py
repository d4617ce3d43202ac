"""Case tables, one module per assignment; ``CHECKS`` maps a function name to its Check.

Every module here named like an assignment (``ch<N>_<topic>``) is an assignment's table and
exports ``CHECKS``, a list. Function names are unique across the course, so a notebook's
``check("name", fn)`` needs no assignment name.
"""
import pkgutil
import re
from importlib import import_module
from pathlib import Path

from autograder.checks import Check

ASSIGNMENT_IDS = tuple(sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                              if re.fullmatch(r"ch\d+_\w+", m.name)))

ASSIGNMENTS: dict[str, list[Check]] = {
    a: import_module(f"autograder.cases.{a}").CHECKS for a in ASSIGNMENT_IDS
}

CHECKS: dict[str, Check] = {c.function: c for checks in ASSIGNMENTS.values() for c in checks}
if len(CHECKS) != sum(len(v) for v in ASSIGNMENTS.values()):
    raise RuntimeError("two assignments define checks for the same function name")
