"""Batch Normalization, from first principles: reference, checks, sandboxed grading.

``autograder.student`` is the student side (NumPy only: shipped in every kit, staged into the
grading sandbox); everything else here is the grader side.  Importing this package imports
nothing, so the kit can ship this file as it is.
"""
