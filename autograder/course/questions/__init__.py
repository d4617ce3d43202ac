"""The written questions of every assignment, one module per assignment (``ch<N>_<topic>.py``, each
exporting ``QUESTIONS``): the prompt a student answers, a model answer and a rubric for the
person who grades it, and its points. ``autograder.term.written`` puts them into the solution
notebooks as nbgrader manually graded cells (the model answer and rubric never reach a release)."""
from __future__ import annotations

import pkgutil
import re
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path


@dataclass(frozen=True)
class Question:
    grade_id: str
    prompt: str          # markdown; what the student reads
    answer: str          # the model answer (solution notebook only)
    rubric: str          # how the points are given (solution notebook only)
    points: float = 2


ASSIGNMENT_IDS = tuple(sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                              if re.fullmatch(r"ch\d+_\w+", m.name)))

QUESTIONS: dict[str, list[Question]] = {
    a: import_module(f"autograder.course.questions.{a}").QUESTIONS for a in ASSIGNMENT_IDS
}
