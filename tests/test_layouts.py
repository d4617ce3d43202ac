"""The grade equals the self-check for an honest notebook, whatever its honest layout (issue 15,
item 3).

For every assignment the same code is handed in in the released layout and in rearrangements
whose self-checks pass top to bottom: the answer in a new cell below the stub, a helper defined
lower down, check cells moved or deleted, a solution cell copied (its nbgrader metadata then
appears twice). Every layout of every assignment is one "student" of ONE class, graded by ONE
`python -m autograder grade` run; each must score what the released layout scores. A planted bug
rearranged the same ways must lose the same points.
"""
from __future__ import annotations

import copy
import re

import nbformat
import pytest

from autograder.course import samples
from autograder.course.cases import ASSIGNMENT_IDS

from conftest import REPO, run_cli


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and bool(_meta(cell).get("grade")) and not _meta(cell).get("solution")


def _is_solution(cell) -> bool:
    return bool(_meta(cell).get("solution")) and cell.cell_type == "code"


def _plain(source: str):
    return nbformat.v4.new_code_cell(source)


def _stub_of(release, cell):
    return next(c.source for c in release.cells if _meta(c).get("grade_id") == _meta(cell).get("grade_id"))


def below_the_stub(nb, release):
    """The stub left as released; the answer in a new cell right under it."""
    out = []
    for cell in nb.cells:
        if _is_solution(cell):
            answer = cell.source
            cell = copy.deepcopy(cell)
            cell.source = _stub_of(release, cell)
            out += [cell, _plain(answer)]
        else:
            out.append(cell)
    nb.cells = out
    return nb


_DEF = re.compile(r"^(def|class) (\w+)\b", re.M)


def helper_lower_down(nb, release):
    """Each top-level function or class of an answer delegates to a helper in a new cell below
    it (above the check): the helper is the answer, renamed."""
    out = []
    for cell in nb.cells:
        names = _DEF.findall(cell.source) if _is_solution(cell) else []
        if not names:
            out.append(cell)
            continue
        helper, wrapper = cell.source, []
        for kind, name in names:
            helper = re.sub(rf"\b{name}\b", f"_{name}_impl", helper)
            if kind == "def":
                wrapper.append(f"def {name}(*args, **kwargs):\n    return _{name}_impl(*args, **kwargs)")
            else:
                wrapper.append(f"class {name}:\n    def __new__(cls, *args, **kwargs):\n"
                               f"        return _{name}_impl(*args, **kwargs)\n\n"
                               f"    from_keras = classmethod(lambda cls, *a, **k: _{name}_impl.from_keras(*a, **k))")
        cell = copy.deepcopy(cell)
        cell.source = "\n\n".join(wrapper)
        out += [cell, _plain(helper)]
    nb.cells = out
    return nb


def checks_deleted(nb, release):
    nb.cells = [c for c in nb.cells if not _is_check(c)]
    return nb


def checks_at_the_end(nb, release):
    checks = [c for c in nb.cells if _is_check(c)]
    nb.cells = [c for c in nb.cells if not _is_check(c)] + checks
    return nb


def answers_at_the_end(nb, release):
    """Stubs as released, every answer rewritten in new cells at the end, the checks after them."""
    answers = [_plain(c.source) for c in nb.cells if _is_solution(c)]
    checks = [c for c in nb.cells if _is_check(c)]
    rest = []
    for cell in nb.cells:
        if _is_check(cell):
            continue
        if _is_solution(cell):
            cell = copy.deepcopy(cell)
            cell.source = _stub_of(release, cell)
        rest.append(cell)
    nb.cells = rest + answers + checks
    return nb


def copied_cell(nb, release):
    """The answer cell copied and pasted below itself (same nbgrader metadata twice), the first
    copy then emptied back to the stub."""
    out = []
    for cell in nb.cells:
        if _is_solution(cell):
            first = copy.deepcopy(cell)
            first.source = _stub_of(release, cell)
            pasted = copy.deepcopy(cell)
            pasted.id = nbformat.v4.new_code_cell().id  # a pasted cell gets a new id, same metadata
            out += [first, pasted]
        else:
            out.append(cell)
    nb.cells = out
    return nb


def _then(*steps):
    def layout(nb, release):
        for step in steps:
            nb = step(nb, release)
        return nb
    return layout


LAYOUTS = {
    "below": below_the_stub,
    "helper": helper_lower_down,
    "deleted": checks_deleted,
    "below-deleted": _then(below_the_stub, checks_deleted),
    "helper-deleted": _then(helper_lower_down, checks_deleted),
    "checks-at-end": checks_at_the_end,
    "answers-at-end": answers_at_the_end,
    "copied": copied_cell,
    "copied-deleted": _then(copied_cell, checks_deleted),
    "helper-checks-at-end": _then(helper_lower_down, checks_at_the_end),
}
BUG_LAYOUTS = ("below", "helper-deleted", "answers-at-end")


def self_check_passes(nb) -> None:
    """Run the layout top to bottom as the student's kernel would, with the kit's self-check
    (demo cells skipped: they check nothing); raise if a check cell fails."""
    import contextlib
    import io
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in nb.cells:
            if cell.cell_type != "code" or "try_it" in str(_meta(cell).get("grade_id", "")):
                continue
            exec(compile(cell.source, "<layout>", "exec"), ns)


def _bug(assignment):
    for bug in samples.bugs(assignment):
        try:
            compile(bug.source, "<bug>", "exec")
            return bug
        except SyntaxError:
            continue
    return None


@pytest.fixture(scope="module")
def layout_class(tmp_path_factory):
    """One class: every layout of every assignment, honest and with one planted bug; graded once."""
    root = tmp_path_factory.mktemp("layouts")
    students: dict[tuple[str, str], str] = {}   # (assignment, student) -> the layout it mirrors
    not_honest = set()
    for a in ASSIGNMENT_IDS:
        release = nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4)
        solution = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        bug = _bug(a)
        variants = {"honest": samples.honest(release, solution)}
        if bug is not None:
            variants["bug"] = samples.with_bug(release, solution, bug)
        for code, base in variants.items():
            layouts = {"released": lambda nb, r: nb, **LAYOUTS}
            for name, layout in layouts.items():
                if code == "bug" and name not in ("released",) + BUG_LAYOUTS or (a, name) in not_honest:
                    continue
                nb = layout(copy.deepcopy(base), release)
                if code == "honest":
                    try:
                        self_check_passes(nb)
                    except Exception as exc:  # e.g. a given cell that needs an answer above it
                        print(f"skipped {a} {name}: its self-check fails top to bottom "
                              f"({type(exc).__name__}: {exc})"[:300])
                        not_honest.add((a, name))
                        continue
                student = f"{code}-{name}"
                dest = root / "submitted" / student / a
                dest.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, dest / f"{a}.ipynb")
                students[(a, student)] = f"{code}-released"
    assert ("honest-released" not in {s for (_, s) in students}
            or all((a, "released") not in not_honest for a in ASSIGNMENT_IDS)), not_honest
    assert len(not_honest) <= len(ASSIGNMENT_IDS), f"most layouts are not honest: {sorted(not_honest)}"
    done = run_cli("grade", *ASSIGNMENT_IDS, "--quiet", env={"BN_GRADER_ROOT": str(root)})
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return root, students


def _scores(root, assignment, student):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: float(g.score) for g in nb.grades}


def test_every_layout_scores_as_the_released_one(layout_class):
    root, students = layout_class
    differ = []
    for (a, student), twin in students.items():
        got, want = _scores(root, a, student), _scores(root, a, twin)
        if got != want:
            differ.append(f"{a} {student}: {got} != {twin} {want}")
    print(f"{len(students)} notebook layouts graded in one run "
          f"({sum(s.startswith('honest') for _, s in students)} honest)")
    assert not differ, "\n".join(differ)
    honest = [(a, s) for a, s in students if s == "honest-released"]
    assert len(honest) == len(ASSIGNMENT_IDS)
    for a, s in honest:
        assert sum(_scores(root, a, s).values()) > 0


def test_a_deleted_check_lands_after_the_helper_it_needs():
    """The placing rule alone, in process: the function's last definition and the module-level
    helpers its body reads decide where a deleted check comes back; a present check stays."""
    from autograder.grader.plugins import RestoreCheckCells
    a = "ch1_covariate_shift"
    release = nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)

    def restored(nb):
        from traitlets.config import Config
        config = Config()
        config.CourseDirectory.root = str(REPO)
        config.CourseDirectory.source_directory = str(REPO / "solutions")
        pre = RestoreCheckCells(config=config)
        nb, _ = pre.preprocess(nb, {"nbgrader": {"assignment": a, "notebook": a}})
        return [(_meta(c).get("grade_id") or c.source.splitlines()[0][:30]) for c in nb.cells
                if c.cell_type == "code"]

    nb = helper_lower_down(checks_deleted(samples.honest(release, solution), release), release)
    order = [o.split("(")[0] for o in restored(nb)]
    assert order.index("check_whiten") == order.index("def _whiten_impl") + 1
    assert order.index("check_condition_number") == order.index("def _condition_number_impl") + 1
    assert order.index("check_train_sigmoid_mlp") == order.index("def _train_sigmoid_mlp_impl") + 1
    nb = checks_at_the_end(samples.honest(release, solution), release)
    assert restored(nb)[-4:] == ["check_whiten", "check_condition_number", "check_sigmoid_mlp_gradients",
                                 "check_train_sigmoid_mlp"]


def test_a_check_dragged_above_every_definition_goes_below_it():
    """A check above every definition of its function could never have passed there: it is
    placed as a deleted one is; a check below a definition stays where it is."""
    from traitlets.config import Config

    from autograder.grader.plugins import RestoreCheckCells
    a = "ch4_inference"
    release = nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4)
    nb = samples.honest(release, nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4))
    check = next(c for c in nb.cells if _meta(c).get("grade_id") == "check_BatchNorm")
    nb.cells = [check] + [c for c in nb.cells if c is not check]
    config = Config()
    config.CourseDirectory.root = str(REPO)
    config.CourseDirectory.source_directory = str(REPO / "solutions")
    nb, _ = RestoreCheckCells(config=config).preprocess(nb, {"nbgrader": {"assignment": a, "notebook": a}})
    ids = [_meta(c).get("grade_id") for c in nb.cells]
    assert ids.index("check_BatchNorm") == ids.index("BatchNorm") + 1
    assert ids.count("check_BatchNorm") == 1
