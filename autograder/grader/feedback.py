"""Feedback pages: nbgrader ``generate_feedback`` with the course's template, in a subprocess with a
clock and a memory cap (``python -m autograder.grader.feedback ASSIGNMENT [STUDENT ...]``), so a
page that cannot be rendered, or only at great cost, fails alone instead of stopping the batch.
"""
from __future__ import annotations

import copy
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from traitlets.config import Config

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"


FEEDBACK_SECONDS = 120.0          # one feedback run, plus FEEDBACK_PER_STUDENT per student
FEEDBACK_PER_STUDENT = 10.0
FEEDBACK_MEMORY = 4 << 30          # address space of a feedback run


MATHJAX_SRC = "../../_mathjax/"   # where a feedback page finds MathJax (templates/bn_feedback)


def mathjax_wheel() -> Path:
    """MathJax 3 from the django-static-mathjax wheel (static files only)."""
    import mathjax as wheel
    return Path(wheel.__file__).parent / "static" / "mathjax" / "es5"


def offline_mathjax() -> list[tuple[Path, str]]:
    """(file, path in a zip) of what a feedback page needs to render its math with no network:
    the TeX-to-CHTML component, the safe extension, the fonts, and the TeX extensions it may
    autoload, less those the page refuses to load (html, unicode). About 2 MB."""
    es5 = mathjax_wheel()
    picked = [es5 / "tex-chtml.js", es5 / "ui" / "safe.js",
              *sorted((es5 / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")),
              *sorted(p for p in (es5 / "input" / "tex" / "extensions").glob("*.js")
                      if p.stem not in ("html", "unicode", "all-packages"))]
    return [(p, "_mathjax/" + p.relative_to(es5).as_posix()) for p in picked]


def write_feedback(config: Config, assignment: str, who: list[str], whole_class: bool) -> dict[str, str]:
    """nbgrader ``generate_feedback`` with the course's template, in a subprocess with a clock and
    a memory cap. One run for the class first; if it fails, one run per student, so a page that
    cannot be rendered costs its own student only. Returns {student: one-line reason} of those
    whose feedback could not be written."""
    if not who:
        return {}
    seconds = FEEDBACK_SECONDS + FEEDBACK_PER_STUDENT * len(who)
    ok, _ = _feedback_process(assignment, None if whole_class else who, seconds)
    if ok:
        return {}
    failed = {}
    for student in who:
        ok, why = _feedback_process(assignment, [student], FEEDBACK_SECONDS)
        if not ok:
            failed[student] = why
    return failed


def _feedback_process(assignment: str, students, seconds: float, env: dict | None = None) -> tuple[bool, str]:
    import resource
    import subprocess

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (FEEDBACK_MEMORY, FEEDBACK_MEMORY))
    cmd = [sys.executable, "-m", "autograder.grader.feedback", assignment, *(students or [])]
    try:
        done = subprocess.run(cmd, cwd=str(HERE.parents[1]), capture_output=True, text=True,
                              timeout=seconds, preexec_fn=limit, env=env)
    except subprocess.TimeoutExpired:
        return False, f"rendering took longer than {seconds:g} s"
    if done.returncode == 0:
        return True, ""
    lines = [ln for ln in (done.stderr or "").strip().splitlines() if ln.strip()]
    return False, (lines[-1] if lines else f"exit status {done.returncode}")[:200]


def place_mathjax(feedback_dir: Path) -> None:
    """MathJax beside the feedback pages (``feedback/_mathjax``), which load it from there."""
    mathjax = feedback_dir / "_mathjax"
    if not (mathjax / "tex-chtml.js").exists():
        shutil.copytree(mathjax_wheel(), mathjax, dirs_exist_ok=True)


def render_feedback(config: Config, assignment: str, students: list[str] | None) -> None:
    """nbgrader ``generate_feedback`` in this process (``students`` None: the whole class), with the
    course's template (sanitized, MathJax served from ``feedback/_mathjax`` rather than a CDN)."""
    import nbgrader
    config = copy.deepcopy(config)
    config.HTMLExporter.template_name = "bn_feedback"
    config.HTMLExporter.extra_template_basedirs = [
        str(TEMPLATES), str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")]
    from autograder.grader.config import make_api
    api = make_api(config)
    place_mathjax(Path(api.coursedir.root) / api.coursedir.feedback_directory)
    from nbgrader.apps.api import capture_log
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import temp_attrs
    from traitlets.config import Config
    # What NbGraderAPI.generate_feedback does, but with the course's template (the API pins
    # nbgrader's own, which loads MathJax from a CDN).
    template = Config()
    template.HTMLExporter.template_name = "bn_feedback"
    for student in (students or [None]):  # None: one nbgrader run for the whole class
        attrs = {"assignment_id": assignment, **({"student_id": student} if student else {})}
        with temp_attrs(api.coursedir, **attrs):
            app = GenerateFeedback(coursedir=api.coursedir, parent=api)
            app.update_config(template)
            app.force = True
            result = capture_log(app)
        if not result["success"]:
            text = (result.get("error") or "") + (result.get("log") or "")
            lines = [ln for ln in text.splitlines() if "Error" in ln or "error" in ln] or text.splitlines() or [""]
            raise RuntimeError(f"generate_feedback failed for {assignment}: {lines[-1].strip()[:200]}")


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    from autograder.grader.config import load_config
    try:
        render_feedback(load_config(), argv[0], argv[1:] or None)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}"[:300], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
