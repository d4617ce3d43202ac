"""The student side of the trust line: everything that runs beside a student's code.

NumPy only.  This folder is what a student kit ships and what the grading sandbox stages; the
grader side (the torch reference, the case tables with their hidden cases, the judge, the
sandbox) lives in the rest of ``autograder`` and is never shipped or staged.
"""
from autograder.student.selfcheck import check, demo, visible_case

# What a notebook's setup cell checks, so that another package named ``autograder`` (there is
# one on PyPI) is never taken for this course's checks.
COURSE = "batchnorm-from-first-principles"

__all__ = ["COURSE", "check", "demo", "visible_case"]
