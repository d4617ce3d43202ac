"""How a class is graded, on the grader's side of the trust line: the pipeline over a class
(``pipeline``), the sandbox that runs each notebook (``sandbox/``), nbgrader's preprocessors and
the judge that decides points (``plugins``, ``judge``), the per-course secret and submission keys
(``keys``), neutralizing student text (``safety``), feedback pages (``feedback``), the report
(``report``) and the row of grades with its CSV (``grades``).

It may import ``autograder.course`` and ``autograder.student``; it knows nothing of terms (the
term layer calls ``pipeline.grade`` with its hooks).
"""
import sys

# jsonschema (under nbformat) imports ``rfc3987_syntax`` when it is installed (jupyter-events pulls
# it in), and that compiles a lark grammar at import: 1.5 core-s in every grading process, the
# coordinator, each feedback renderer and each Dask worker (``python -X importtime -c "import
# nbformat"``). It only adds the "iri" string format to jsonschema's format checker, which no
# notebook schema uses; a grading process goes without it. Set before anything imports jsonschema.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)


def exit_now(code: int | str | None) -> None:
    """Leave this process now, as ``sys.exit(code)`` would, less the interpreter's teardown of
    torch, nbgrader and SQLAlchemy object by object (0.3-0.7 s after a class is graded): the exit
    handlers run (the zygote's stop, torch's private cache folder, logging), the standard streams
    are flushed, then ``os._exit``. For a process whose work is closed and committed by now (the
    grading command, nbgrader's child)."""
    import atexit
    import os

    def flush():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
    flush()
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):  # as sys.exit: a message, and status 1
        print(code, file=sys.stderr)
    flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)
