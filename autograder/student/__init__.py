"""The student side of the trust line: everything that runs beside a student's code.

NumPy only.  This folder is what a student kit ships and what the grading sandbox stages; the
grader side (the torch reference, the case tables with their hidden cases, the judge, the
sandbox) lives in the rest of ``autograder`` and is never shipped or staged.
"""
from autograder.student.selfcheck import check

__all__ = ["check"]
