"""Batch Normalization, from first principles: the course's reference, checks and grader.

Four parts, each a subpackage, imported in one direction only (``tests/test_layout.py`` reads
the imports and fails on a circle or an upward import)::

    cli  ->  term  ->  grader  ->  course  ->  student

* ``student/`` runs beside student code: NumPy only, shipped in every kit, staged into the sandbox;
* ``course/`` is what the course is: case tables, the torch reference, the checks API, samples, kits;
* ``grader/`` decides grades and never runs beside student code: pipeline, sandbox, judge, ...;
* ``term/`` is a term around the grader: collect, roster, due dates, late policy, LMS export;
* ``cli.py`` is the instructor's command line; ``tools/`` (bench, agreement) stand apart.

Importing this package imports nothing, so the kit can ship this file as it is.
"""
