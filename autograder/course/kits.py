"""Student kits: what a student downloads from a chapter page to do its exercise anywhere.

``<assignment>.zip`` unpacks to one folder ``<assignment>/`` holding

    <assignment>.ipynb                 the nbgrader release notebook (from exercises/)
    requirements.txt                   NumPy only
    README.md                          how to set up, check and hand in
    autograder/__init__.py             the student side of the package (autograder/student),
    autograder/student/*.py            exactly what the grading sandbox stages
    autograder/student/visible/<assignment>.json|.arrays
                                       the visible cases, the torch reference's values on them and
                                       what each known mistake returns, precomputed here
    autograder/student/visible/digits.npz   the 8x8 digits (from scikit-learn), for ungraded cells

so that the notebook's ``check(...)`` lines work with NumPy alone.  Hidden cases, the reference,
the case tables and solutions never enter a kit; ``tests/test_kits.py`` scans every kit for them.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np

from autograder.student import COURSE, recording

PACKAGE = Path(__file__).resolve().parents[1]  # the autograder package
REPO = PACKAGE.parent
STUDENT = PACKAGE / "student"
VISIBLE = STUDENT / "visible"

REQUIREMENTS = """\
# What this exercise needs on your machine: NumPy (Python 3.10 or newer).
# Any Jupyter can open the notebook (JupyterLab, classic Notebook, VS Code, a JupyterHub, Colab).
# If you have none yet, also run: pip install jupyterlab
numpy>=1.23
"""

README = """\
# {assignment}: Batch Normalization, from first principles

This folder is the exercise's kit: the notebook, its checks (the `autograder` folder, which only
this kit provides: the PyPI package named `autograder` is an unrelated one) and `requirements.txt`.
The kit's link is in the Exercise section, the last section, of the chapter's page on the course
site.

1. Set up once.
   - Your own machine, in a virtual environment (this also works on Debian's and Ubuntu's own
     Python, which refuses a plain `pip install` as "externally managed"; if `venv` is missing
     there: `sudo apt install python3-venv`):

         python3 -m venv .venv
         source .venv/bin/activate        # Windows: .venv\\Scripts\\activate
         python -m pip install -r requirements.txt jupyterlab
         jupyter lab {assignment}.ipynb

   - A JupyterHub: NumPy is there; open the notebook from this folder. If NumPy is missing, run
     `%pip install -r requirements.txt` in a notebook cell.
   - Colab: upload the notebook (File > Upload notebook) and this zip (Files pane); run a new
     first cell with `!unzip -oq {assignment}.zip` and `%cd {assignment}`, then the notebook.

2. Open `{assignment}.ipynb` **from this folder** (the checks import the `autograder` folder next
   to it; without it, the first cell says where to get the kit).
3. Replace each `raise NotImplementedError()` with your NumPy code and run the check cell under
   it. A failing check says what is wrong and, when it recognises it, names the mistake;
   otherwise it quotes one line, `inputs = visible_case(...)`, that rebuilds the failing case.
   You may add cells above a check (a helper, a rewritten function).
4. Hand in `{assignment}.ipynb` with its name unchanged. The grader runs the same checks where
   you left them, and hidden cases too (other shapes and edge cases), so make your code general.
   A function that changes the arrays it was given loses its points.
"""


CHAPTER_OF = {"ch1": "Chapter 1", "ch2": "Chapter 2", "ch3": "Chapter 3", "ch4": "Chapter 4",
              "ch5": "Chapter 5", "ch6": "Chapter 6"}


def setup_cell_source(assignment: str) -> str:
    """The first code cell of every exercise notebook: NumPy and the checks, and, without the
    kit, one line saying where to get it. The import is verified (``COURSE``) because an
    unrelated package named ``autograder`` is on PyPI: a student who pip-installs it by name
    gets the same one line, not a puzzling AttributeError further down."""
    chapter = CHAPTER_OF.get(assignment.split("_")[0], "its chapter")
    return (
        "import numpy as np\n"
        "try:  # the checks: the `autograder` folder of this exercise's kit, next to this notebook\n"
        "    from autograder.student import COURSE, check, demo, visible_case\n"
        f"    assert COURSE == {COURSE!r}\n"
        "except (ImportError, AssertionError):\n"
        f"    raise ImportError(\"No checks: download {assignment}.zip from the Exercise section of \"\n"
        f"                      \"{chapter} on the course site, unzip it and open this notebook from \"\n"
        "                      \"that folder (the PyPI package named autograder is another one)\") from None")


def student_files() -> list[Path]:
    """The student side's code: the files a kit ships and the sandbox stages."""
    return [PACKAGE / "__init__.py", *sorted(STUDENT.glob("*.py"))]


def write_digits(dest: Path) -> Path:
    """scikit-learn's bundled digits as ``dest/digits.npz`` (see ``autograder.student.given``)."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "digits.npz"
    if not path.exists():
        from autograder.course import digits
        data, target = digits.load()
        np.savez_compressed(path, data=data.astype(np.uint8), target=target.astype(np.uint8))
    return path


def write_visible(assignment: str, dest: Path) -> Path:
    """Precompute ``assignment``'s visible cases into ``dest/<assignment>.json|.arrays``, next to
    the digits the exercises' ungraded cells use (``autograder.student.given.load_digits``)."""
    from autograder.course import checks
    from autograder.course.cases import ASSIGNMENTS
    write_digits(dest)
    stem = dest / assignment
    recording.save(str(stem), checks.visible_data(ASSIGNMENTS[assignment]))
    return stem


def build_kit(assignment: str, out: Path) -> Path:
    """Write ``out/<assignment>/`` and ``out/<assignment>.zip``; return the zip."""
    folder = out / assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy2(REPO / "exercises" / assignment / f"{assignment}.ipynb", folder)
    (folder / "requirements.txt").write_text(REQUIREMENTS)
    (folder / "README.md").write_text(README.format(assignment=assignment))
    for src in student_files():
        target = folder / src.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    write_visible(assignment, folder / "autograder" / "student" / "visible")
    zip_path = out / f"{assignment}.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                # A fixed timestamp: the same sources make the same zip.
                info = zipfile.ZipInfo(str(path.relative_to(out)), date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                z.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return zip_path


def build_all(out: Path, assignments: list[str] | None = None) -> list[Path]:
    """Every kit into ``out``, and the repository's own visible data (so that notebooks opened
    in the repository check the same way as in a kit)."""
    from autograder.course.cases import ASSIGNMENT_IDS
    chosen = list(assignments or ASSIGNMENT_IDS)
    for assignment in chosen:
        write_visible(assignment, VISIBLE)
    return [build_kit(a, out) for a in chosen]
