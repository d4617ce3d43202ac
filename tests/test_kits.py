"""Students take the course from the website alone: kits that work with NumPy only and leak nothing.

* Every kit unpacks to one folder whose release notebook runs its self-checks in a fresh venv
  holding only the kit's requirements (plus what executes a notebook headless): blank, it fails
  with "not implemented"; with the solution planted every check passes; with each sample bug
  planted a check fails and names the bug's mistake.
* No kit file and no built page holds solution code, hidden cases, the reference, or nbgrader's
  solution markers.
* No chapter shows (40 % or more of the statements of) the NumPy answer of a graded function.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import checks, kits, samples
from autograder.course.cases import ASSIGNMENT_IDS, ASSIGNMENTS

from conftest import REPO


@pytest.fixture(scope="module")
def built_kits(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("kits")
    return {p.stem: p for p in kits.build_all(out)}


def _unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        z.extractall(dest)
    assert {n.split("/")[0] for n in names} == {zip_path.stem}, "a kit unpacks to one folder"
    return dest / zip_path.stem


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_kit_holds_the_notebook_light_requirements_and_the_student_side(built_kits, assignment, tmp_path):
    folder = _unzip(built_kits[assignment], tmp_path)
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert f"{assignment}.ipynb" in names and "requirements.txt" in names
    assert f"autograder/student/visible/{assignment}.json" in names
    # the student side only: never the course's tables and reference, the grader or the term
    grader_side = [n for n in names if n.startswith("autograder/")
                   and n != "autograder/__init__.py" and not n.startswith("autograder/student/")]
    assert not grader_side, grader_side
    reqs = [ln.split("=")[0].split(">")[0].strip().lower() for ln in
            (folder / "requirements.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert reqs == ["numpy"]
    release = (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_bytes()
    assert (folder / f"{assignment}.ipynb").read_bytes() == release


# ---- what leaks -------------------------------------------------------------------------------

def _solution_lines() -> set[str]:
    """Every non-trivial line between ### BEGIN / END SOLUTION in every solution notebook, less
    the lines its release shows anyway (code the exercise hands out, e.g. a given cache layout)."""
    lines = set()
    for a in ASSIGNMENT_IDS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        public = "\n".join(c.source for c in
                           nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4).cells)
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                text = line.strip()
                if text == "### BEGIN SOLUTION":
                    inside = True
                elif text == "### END SOLUTION":
                    inside = False
                elif inside and len(text) >= 16 and not text.startswith(("#", '"""')) \
                        and not re.fullmatch(r"return [\w, ]+", text) and text not in public:
                    lines.add(text)
    return lines


def _hidden_names() -> set[str]:
    visible = {c.name for a in ASSIGNMENT_IDS for ch in ASSIGNMENTS[a] for c in ch.cases if not c.hidden}
    return {c.name for a in ASSIGNMENT_IDS for ch in ASSIGNMENTS[a] for c in ch.cases
            if c.hidden and c.name not in visible}


def _reference_lines() -> set[str]:
    source = (REPO / "autograder" / "course" / "reference.py").read_text()
    return {ln.strip() for ln in source.splitlines()
            if len(ln.strip()) >= 24 and not ln.strip().startswith(("#", '"""', "def ", "from ", "import "))}


SECRETS = {"### BEGIN SOLUTION", "### END SOLUTION", "BEGIN HIDDEN TESTS"}


def _leaks(text: str, solution: set, hidden: set, reference: set) -> list[str]:
    found = [f"marker {m!r}" for m in SECRETS if m in text]
    found += [f"solution line {s!r}" for s in solution if s in text]
    found += [f"hidden case {h!r}" for h in hidden if h in text]
    found += [f"reference line {r!r}" for r in reference if r in text]
    return found


def test_no_kit_file_holds_a_secret(built_kits, tmp_path):
    solution, hidden, reference = _solution_lines(), _hidden_names(), _reference_lines()
    assert len(solution) > 20 and len(hidden) > 20 and len(reference) > 10
    scanned = 0
    for assignment, zip_path in built_kits.items():
        folder = _unzip(zip_path, tmp_path / assignment)
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                texts = [data.decode(errors="replace")]
                if path.suffix == ".npz":  # array names and any strings stored in them
                    texts = [" ".join(zipfile.ZipFile(path).namelist())]
                leaks = _leaks("\n".join(texts), solution, hidden, reference)
                assert not leaks, f"{path.relative_to(tmp_path)}: {leaks[:3]}"
                scanned += 1
    print(f"leak scan: {scanned} kit files, {len(solution)} solution lines, {len(hidden)} hidden "
          f"case names, {len(reference)} reference lines")


def test_no_built_page_holds_a_secret(built_book):
    import html
    solution, hidden, reference = _solution_lines(), _hidden_names(), _reference_lines()
    pages = [p for p in built_book.rglob("*") if p.suffix in (".html", ".ipynb", ".txt", ".md", ".py", ".js")
             and "_static" not in p.parts]
    assert len(pages) >= 8
    for page in pages:
        text = html.unescape(page.read_text(errors="replace"))
        leaks = _leaks(text, solution, hidden, reference)
        assert not leaks, f"{page.relative_to(built_book)}: {leaks[:3]}"


# ---- chapters do not hand over graded answers ----------------------------------------------------

def _leaf_statements(source: str) -> list[str]:
    """Simple statements, each written the way ast.unparse writes it (spacing, comments and line
    breaks do not count)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not hasattr(node, "body"):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # docstrings
            out.append(ast.unparse(node))
    return out


def _graded_solutions() -> dict[tuple[str, str], list[str]]:
    """(assignment, function) -> the statements of its solution."""
    out = {}
    for a in ASSIGNMENT_IDS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        graded = {c.function for c in ASSIGNMENTS[a]}
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.metadata.get("nbgrader", {}).get("solution") and gid in graded:
                lines = [ln for ln in cell.source.splitlines() if "### " not in ln]
                statements = _leaf_statements("\n".join(lines))
                if statements:
                    out[(a, gid)] = statements
    return out


def _chapter_statements(path: Path) -> set[str]:
    text = path.read_text()
    blocks = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S)
    statements = set()
    for block in blocks:
        code = "\n".join(ln for ln in block.splitlines() if not ln.startswith((":", "%", "!")))
        statements |= set(_leaf_statements(code))
    return statements


def test_the_statement_comparison_can_fail():
    solution = "def f(x):\n    mu = x.mean(axis=0)\n    xc = x - mu\n    return xc / (xc ** 2).mean(0)\n"
    chapter = "```{code-cell} ipython3\nmu = x.mean(axis = 0)   # spaced differently\nxc = (x\n  - mu)\n```\n"
    ours = set(_leaf_statements(solution))
    (Path(__file__).parent / ".tmp-chapter.md").write_text(chapter)
    try:
        theirs = _chapter_statements(Path(__file__).parent / ".tmp-chapter.md")
    finally:
        (Path(__file__).parent / ".tmp-chapter.md").unlink()
    assert len(ours & theirs) == 2


@pytest.mark.parametrize("chapter", sorted((REPO / "book").glob("ch*.md")), ids=lambda p: p.stem)
def test_no_chapter_shows_a_graded_answer(chapter):
    shown = _chapter_statements(chapter)
    for (assignment, function), statements in _graded_solutions().items():
        held = [s for s in statements if s in shown]
        assert len(held) < 0.4 * len(statements), (
            f"{chapter.name} holds {len(held)} of the {len(statements)} statements of the "
            f"solution of {function} ({assignment}): {held[:4]}")


# ---- a kit in a fresh venv with only its requirements -------------------------------------------

DRIVER = r'''
import json, sys
import nbformat
from nbclient import NotebookClient
out = {}
for path in sys.argv[2:]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": sys.argv[1]}}).execute()
    checks = {}
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        key = cell.source if cell.source.startswith("check(") else f"cell {k}"
        if errors or key.startswith("check("):
            checks[key] = [errors[0].ename + ": " + errors[0].evalue] if errors else ["ok", text]
    out[path] = checks
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def kit_venv(tmp_path_factory, built_kits):
    """A fresh venv with one kit's requirements.txt, ipykernel and nbclient, and nothing else."""
    import time
    venv = tmp_path_factory.mktemp("kit-venv") / "venv"
    # The README's route, on Debian's own (externally managed) Python where there is one.
    base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    readme = (_unzip(built_kits["ch2_forward"], tmp_path_factory.mktemp("readme"))
              / "README.md").read_text()
    assert "python3 -m venv .venv" in readme and "python -m pip install -r requirements.txt" in readme
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    folder = _unzip(built_kits["ch2_forward"], tmp_path_factory.mktemp("req"))
    start = time.monotonic()
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "-r", str(folder / "requirements.txt"), "ipykernel", "nbclient"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"kit venv set up in {time.monotonic() - start:.1f} s")
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0, "the kit venv must not have torch"
    return venv


def _compiles(source: str) -> bool:
    try:
        compile(source, "<bug>", "exec")
        return True
    except SyntaxError:
        return False


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_kit_self_checks_work_with_numpy_alone(assignment, built_kits, kit_venv, tmp_path):
    folder = _unzip(built_kits[assignment], tmp_path)
    release = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    variants = {"blank": release, "solution": samples.honest(release, solution)}
    bugs = {b.name: b for b in samples.bugs(assignment) if _compiles(b.source)}
    for name, bug in bugs.items():
        variants[f"bug-{name}"] = samples.with_bug(release, solution, bug)
    paths = []
    for name, nb in variants.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
        paths.append(str(folder / f"{name}.ipynb"))
    (tmp_path / "driver.py").write_text(DRIVER)
    done = subprocess.run([str(kit_venv / "bin" / "python"), str(tmp_path / "driver.py"), str(folder), *paths],
                          capture_output=True, text=True, cwd=folder, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = {Path(k).stem: v for k, v in json.loads(done.stdout).items()}
    for source, outcome in result["blank"].items():  # Run All reaches every check, no cell raises
        assert outcome[0] == "ok" and "not implemented" in outcome[1], f"blank {source}: {outcome}"
    for source, outcome in result["solution"].items():  # every cell, not only the checks
        assert outcome[0] == "ok", f"{source}: {outcome}"
    for name, bug in bugs.items():
        cell = f'check("{bug.function}", {bug.function})'
        outcome = result[f"bug-{name}"][cell]
        assert outcome[0].startswith("AssertionError"), f"{name}: {outcome}"
        assert bug.mistake in outcome[0], f"{name}: {outcome[0][:300]}"


def test_visible_data_never_holds_hidden_cases(built_kits):
    for assignment in ASSIGNMENT_IDS:
        data = checks.visible_data(ASSIGNMENTS[assignment])
        for check in ASSIGNMENTS[assignment]:
            names = {c["case"]["name"] for c in data[check.function]["cases"]}
            assert names == {c.name for c in check.cases if not c.hidden}
