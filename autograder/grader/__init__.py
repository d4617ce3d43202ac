"""How a class is graded, on the grader's side of the trust line: the pipeline over a class
(``pipeline``), the sandbox that runs each notebook (``sandbox/``), nbgrader's preprocessors and
the judge that decides points (``plugins``, ``judge``), the per-course secret and submission keys
(``keys``), neutralizing student text (``safety``), feedback pages (``feedback``), the report
(``report``) and the row of grades with its CSV (``grades``).

It may import ``autograder.course`` and ``autograder.student``; it knows nothing of terms (the
term layer calls ``pipeline.grade`` with its hooks).
"""
