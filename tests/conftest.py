"""Shared fixtures: the course's assignments, their solution code, and one graded sample class."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_cli(*args, env=None, timeout=1500) -> subprocess.CompletedProcess:
    """The instructor CLI, exactly as README shows it, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def solution_namespace(assignment: str) -> dict:
    """Run the solution notebook's non-test cells in-process; return its namespace."""
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    ns: dict = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not (meta.get("grade") and not meta.get("solution")):
            exec(compile(cell.source, f"<{assignment}:{meta.get('grade_id')}>", "exec"), ns)
    return ns


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class GradedClass:
    def __init__(self, root: Path, cli: subprocess.CompletedProcess, before: dict, after: dict):
        self.root, self.cli, self.before, self.after = root, cli, before, after

    def cell_scores(self, assignment: str, student: str) -> dict[str, float]:
        from nbgrader.api import Gradebook
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            nb = gb.find_submission_notebook(assignment, assignment, student)
            return {g.name: float(g.score) for g in nb.grades}

    def max_scores(self, assignment: str) -> dict[str, float]:
        from nbgrader.api import Gradebook
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            nb = gb.find_notebook(assignment, assignment)
            return {c.name: float(c.max_score) for c in nb.grade_cells}

    def feedback(self, assignment: str, student: str) -> str:
        import html
        path = self.root / "feedback" / student / assignment / f"{assignment}.html"
        return html.unescape(path.read_text())


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory) -> GradedClass:
    """The bundled sample class for every assignment, graded once by the real command."""
    root = tmp_path_factory.mktemp("grader-root")
    env = {"BN_GRADER_ROOT": str(root)}
    made = run_cli("sample-class", "--all", env=env)
    assert made.returncode == 0, made.stderr[-3000:]
    before = tree_digest(root / "submitted")
    cli = run_cli("grade", "--all", "--quiet", env=env)
    assert cli.returncode == 0, (cli.stdout + cli.stderr)[-4000:]
    return GradedClass(root, cli, before, tree_digest(root / "submitted"))


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The site, built as `make book` builds it (-W: any warning fails)."""
    jb = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(jb), "build", ".", "--path-output", ".", "-W", "-n", "--keep-going"],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return REPO / "_build" / "html"
