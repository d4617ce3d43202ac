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
