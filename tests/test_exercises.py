"""exercises/ is exactly what nbgrader generates from solutions/ today, and it leaks nothing."""
import json
import subprocess
import sys

import nbformat
import pytest

from autograder.cases import ASSIGNMENT_IDS
from conftest import REPO


def _cells(path):
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source, json.dumps(c.metadata, sort_keys=True)) for c in nb.cells]


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    """Generate every release into a scratch folder with the real nbgrader configuration."""
    out = tmp_path_factory.mktemp("release")
    code = f"""
import sys; sys.path.insert(0, {str(REPO)!r})
from autograder import grading
api = grading.make_api()
api.coursedir.release_directory = {str(out)!r}
for a in {list(ASSIGNMENT_IDS)!r}:
    grading.release(api, a)
"""
    env = {"BN_GRADER_ROOT": str(tmp_path_factory.mktemp("root")),
           "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_release_is_fresh(assignment, fresh_release):
    committed = REPO / "exercises" / assignment / f"{assignment}.ipynb"
    assert committed.exists(), f"run `make exercises`: {committed} is missing"
    assert _cells(committed) == _cells(fresh_release / assignment / f"{assignment}.ipynb"), \
        f"exercises/{assignment} is stale: run `make exercises`"


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_release_has_no_solutions(assignment):
    text = (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN" not in text
    assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_test_cells_are_one_line_checks(assignment):
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
              and not c.metadata["nbgrader"].get("solution")]
    assert graded
    for cell in graded:
        assert cell.source.count("\n") == 0 and cell.source.startswith("check(")
        assert cell.metadata["nbgrader"]["points"] > 0


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_blank_release_self_check_names_the_stub(assignment):
    """What a student sees before writing code, running the release in the course's kernel from
    exercises/<a>/ (README: `jupyter lab exercises/`): the first check fails, naming the function."""
    from nbclient import NotebookClient
    folder = REPO / "exercises" / assignment
    nb = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.source.startswith("check("))
    function = first.source.split('"')[1]
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    errors = [o for o in first.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "AssertionError", first.outputs
    assert f"{function} is not implemented yet" in errors[0].evalue
