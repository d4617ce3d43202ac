"""What the course is: the case tables of every assignment (``cases/``, with the registry of
checks), the one PyTorch float64 reference (``reference``), the checks API that declares cases
and known mistakes (``checks``), the sample class's planted bugs (``samples/``) and the student
kits (``kits``).

It may import ``autograder.student`` (the verdict is decided there, shared with the self-check)
and nothing else of the package; the grader, the term and the tools import it.
"""
