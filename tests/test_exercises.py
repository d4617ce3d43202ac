"""exercises/ is exactly what nbgrader generates from solutions/ today, and it leaks nothing."""
import json
import re
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


@pytest.mark.parametrize("assignment", ["ch3_backward", "ch5_alternatives"])
def test_blank_release_reaches_every_check(assignment):
    """Run All on the blank release: no given cell raises because a stub is still blank, so every
    check cell runs and reports its function as not implemented (whether check() raises or
    prints, which the checks API decides)."""
    from nbclient import NotebookClient
    folder = REPO / "exercises" / assignment
    nb = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    checks_seen = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if cell.source.startswith("check("):
            checks_seen += 1
            said = "".join(o.get("text", "") for o in cell.outputs) + "".join(
                o.evalue for o in errors)
            assert "is not implemented yet" in said, (cell.source, said)
        else:
            assert not errors, (cell.source[:80], errors[0].ename, errors[0].evalue)
    assert checks_seen == sum(1 for c in nb.cells if c.source.startswith("check("))


def test_ch3_part0_stubs_return_their_cache():
    """The release's forward stubs end as Exercise 2's did: `return out, cache` after the blank."""
    nb = nbformat.read(REPO / "exercises" / "ch3_backward" / "ch3_backward.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "forward_with_cache")
    assert cell.source.count("raise NotImplementedError()") == 2
    assert cell.source.count("    return out, cache") == 2
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "provided `spatial_batchnorm_forward`" not in text


def test_ch5_backward_parts_point_to_the_chapters_derivation():
    """Chapter 5 derives the backward pass for any sets S_i; the notebook's backward parts send
    the student there and give no gradient formula of their own."""
    chapter = (REPO / "book" / "ch5_alternatives.md").read_text()
    for label in ("(ch5-backward-sets)=", ":label: eq-ch5-backward\n", ":label: eq-ch5-backward-params"):
        assert label in chapter, label
    title = re.search(r"\(ch5-backward-sets\)=\n## (.+)", chapter).group(1)
    nb = nbformat.read(REPO / "solutions" / "ch5_alternatives" / "ch5_alternatives.ipynb", as_version=4)
    parts = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells}
    assert "any sets $S_i$" in title
    for part in ("part1b", "part2b", "part3b"):
        text = parts[part]
        assert "any sets $S_i$" in text or "same derivation" in text, part
        assert "$$" not in text and "dx =" not in text and ".mean(" not in text, part
