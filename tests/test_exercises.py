"""exercises/ is exactly what nbgrader generates from solutions/ today, and it leaks nothing."""
import json
import re
import subprocess
import sys

import nbformat
import pytest

from autograder.course.cases import ASSIGNMENT_IDS

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
from autograder.grader import pipeline as grading
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


@pytest.fixture(scope="module")
def blank_kits(tmp_path_factory):
    from autograder.course import kits
    out = tmp_path_factory.mktemp("kits")
    return {a: kits.build_kit(a, out).with_suffix("") for a in ASSIGNMENT_IDS}


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_blank_release_runs_all_and_reaches_every_check(assignment, blank_kits):
    """Run All on the blank release, opened from its kit with the kit's student side (issue 15,
    item 7): every check cell runs and reports "not implemented" without raising, and no other
    cell raises because a stub is still blank."""
    from nbclient import NotebookClient
    folder = blank_kits[assignment]
    nb = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    raised = [(k, o.ename, o.evalue[:200]) for k, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not raised, f"{assignment}: cells raised {raised}"
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("check(")]
    assert checks
    for cell in checks:
        function = cell.source.split('"')[1]
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert f"{function} is not implemented yet" in text, (assignment, cell.source, cell.outputs)


def test_ch3_part0_stubs_return_their_cache():
    """The release's forward stubs end as Exercise 2's did: `return out, cache` after the blank."""
    nb = nbformat.read(REPO / "exercises" / "ch3_backward" / "ch3_backward.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "forward_with_cache")
    assert cell.source.count("raise NotImplementedError()") == 3   # (N, D), (N, C, H, W), masked
    assert cell.source.count("    return out, cache") == 3
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


def test_setup_cell_without_the_kit_says_where_to_get_it(tmp_path):
    """Opened without its kit, or next to the unrelated PyPI package named `autograder`, the
    setup cell fails with one line naming the kit and the chapter page (issue 15, item 8)."""
    import subprocess

    from autograder.course.kits import setup_cell_source
    impostor = tmp_path / "impostor" / "autograder"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("")
    (impostor / "student.py").write_text("def check(*a):\n    pass\nCOURSE = 'another'\n")
    for a in ASSIGNMENT_IDS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        setup = next(c for c in nb.cells if c.cell_type == "code")
        assert setup.source.startswith(setup_cell_source(a)), f"{a}: the setup cell is not the course's"
        chapter = f"Chapter {a[2]}"
        for where in (tmp_path, impostor.parent):
            # a Python that finds NumPy but not this repository (the course venv installs it)
            code = ("import sys\n"
                    "sys.meta_path[:] = [f for f in sys.meta_path\n"
                    "                    if '__editable__' not in getattr(f, '__module__', '')]\n"
                    f"sys.path[:0] = [{str(where)!r}]\n" + setup_cell_source(a))
            done = subprocess.run([sys.executable, "-I", "-c", code], cwd=where,
                                  capture_output=True, text=True)
            last = (done.stderr.strip().splitlines() or [""])[-1]
            assert done.returncode != 0 and last.startswith("ImportError: No checks:"), done.stderr
            assert f"{a}.zip" in last and chapter in last and "PyPI" in last
        ok = subprocess.run([sys.executable, "-c", setup_cell_source(a)], cwd=REPO,
                            capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_solution_notebook_runs_top_to_bottom_in_seconds(assignment):
    """Every solution notebook, demo cells included, runs without an error in under 10 s of CPU
    (kernel start excluded): the exercises are small on purpose."""
    import time

    from nbclient import NotebookClient
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(REPO / "solutions" / assignment)}})
    with client.setup_kernel():
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
    print(f"{assignment}: {seconds:.1f} s top to bottom")
    errors = [(o.ename, o.evalue[:200]) for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert seconds < 10
