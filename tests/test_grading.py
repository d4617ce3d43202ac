"""The real grading command on the bundled sample class (honest, blank, one per planted bug)."""
import csv
import os
from pathlib import Path

import pytest

from autograder.course import samples
from autograder.course.cases import ASSIGNMENT_IDS, ASSIGNMENTS

ALL_BUGS = [(a, b) for a in ASSIGNMENT_IDS for b in samples.bugs(a)]


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_solution_scores_full_marks(graded_class, assignment):
    scores = graded_class.cell_scores(assignment, "sample-honest")
    assert scores == graded_class.max_scores(assignment)
    assert sum(scores.values()) > 0


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_blank_release_scores_zero(graded_class, assignment):
    assert set(graded_class.cell_scores(assignment, "sample-blank").values()) == {0.0}
    assert "not implemented" in graded_class.feedback(assignment, "sample-blank")


@pytest.mark.parametrize("assignment,bug", ALL_BUGS, ids=lambda v: getattr(v, "name", v))
def test_bug_loses_exactly_its_function(graded_class, assignment, bug):
    scores = graded_class.cell_scores(assignment, f"sample-bug-{bug.name}")
    full = graded_class.max_scores(assignment)
    # a check that runs the student's own buggy function (an experiment) may lose its points too:
    # whether it does depends on whether the bug shows in the experiment's setting
    may_lose = {f"check_{c.function}" for c in ASSIGNMENTS[assignment] if bug.function in c.uses}
    expected = {cell: (0.0 if cell == f"check_{bug.function}" else pts) for cell, pts in full.items()}
    assert {c: s for c, s in scores.items() if c not in may_lose} == \
        {c: s for c, s in expected.items() if c not in may_lose}
    assert all(scores[c] in (0.0, full[c]) for c in may_lose)
    assert bug.mistake in graded_class.feedback(assignment, f"sample-bug-{bug.name}")


def test_submissions_are_never_modified(graded_class):
    assert graded_class.before == graded_class.after


def test_grades_csv_has_nbgraders_columns(graded_class):
    with open(graded_class.root / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"assignment", "student_id", "score", "max_score"} <= set(rows[0])
    honest = [r for r in rows if r["student_id"] == "sample-honest"]
    assert len(honest) == len(ASSIGNMENT_IDS)
    from autograder.course.questions import QUESTIONS  # written answers await a person: 0 so far
    assert all(float(r["score"]) == float(r["max_score"]) - sum(q.points for q in QUESTIONS[r["assignment"]]) > 0
               and r["status"] == "submitted" for r in honest)


def test_feedback_shows_no_hidden_test_source(tmp_path):
    """A submission that fails only a hidden case: the feedback names the case, not its source."""
    import html

    import nbformat

    from conftest import REPO, run_cli
    a = "ch2_forward"
    release = nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4)
    nb = samples.honest(release, nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ghost_batchnorm_forward")
    cell.source += ("\n_right = ghost_batchnorm_forward\n"
                    "def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):\n"
                    "    out, cache = _right(x, gamma, beta, ghost_size, eps)\n"
                    "    return (out * 0 if x.shape[1] == 1 else out), cache\n")
    (tmp_path / "submitted" / "one-feature-slip" / a).mkdir(parents=True)
    nbformat.write(nb, tmp_path / "submitted" / "one-feature-slip" / a / f"{a}.ipynb")
    done = run_cli("grade", a, "--quiet", env={"BN_GRADER_ROOT": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    text = html.unescape((tmp_path / "feedback" / "one-feature-slip" / a / f"{a}.html").read_text())
    assert "case 'ghost_size=3, N=3, D=1' (hidden)" in text              # the failing hidden case is named...
    assert "_ghost_inputs" not in text and "Case(" not in text  # ...its source is not shown
    assert "BEGIN HIDDEN" not in text


def test_command_prints_a_table_with_named_mistakes(graded_class):
    out = graded_class.cli.stdout
    assert "sample-honest" in out and "all checks pass" in out
    assert "unbiased variance" in out
    syntax = next(ln for ln in out.splitlines() if ln.startswith("sample-bug-syntax-error "))
    assert "its cell raised SyntaxError" in syntax


def test_stock_nbgrader_commands_use_the_sandboxed_judge(tmp_path):
    """An instructor's habit: `cd autograder && nbgrader autograde <a>` still grades safely."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import nbformat

    from conftest import REPO
    a = "ch2_forward"
    release = nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
    bug = next(b for b in samples.bugs(a) if b.name == "ghost-unbiased-variance")
    for student, nb in {"honest": samples.honest(release, solution),
                        "buggy": samples.with_bug(release, solution, bug)}.items():
        (tmp_path / "submitted" / student / a).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "submitted" / student / a / f"{a}.ipynb")
    env = {**os.environ, "BN_GRADER_ROOT": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for step in (["generate_assignment", a, "--force", "--create",
                  f"--CourseDirectory.release_directory={tmp_path / 'release'}"],
                 ["autograde", a, "--force"]):
        done = subprocess.run(["nbgrader", *step], cwd=REPO / "autograder", env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    from conftest import graded_points
    checks = graded_points(a, "code")
    full, lost = sum(checks.values()), checks[f"check_{bug.function}"]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        assert gb.find_submission(a, "honest").score == full
        assert gb.find_submission(a, "buggy").score == full - lost
    graded = (tmp_path / "autograded" / "buggy" / a / f"{a}.ipynb").read_text()
    assert "unbiased variance" in graded


def test_no_sandbox_still_grades_but_warns_loudly(tmp_path):
    from conftest import run_cli
    env = {"BN_GRADER_ROOT": str(tmp_path)}
    assert run_cli("sample-class", "ch2_forward", env=env).returncode == 0
    done = run_cli("grade", "ch2_forward", "--student", "sample-honest", "--student", "sample-blank",
                   "--no-sandbox", "--no-feedback", "--quiet", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING: --no-sandbox" in done.stderr
    lines = {ln.split()[0]: ln for ln in done.stdout.splitlines() if ln.startswith("sample-")}
    from conftest import graded_points
    total, auto = sum(graded_points("ch2_forward").values()), sum(graded_points("ch2_forward", "code").values())
    assert auto < total  # the written answer waits for a person
    assert f"{auto:g}/{total:g}" in lines["sample-honest"] and f"0/{total:g}" in lines["sample-blank"]


def test_refuses_when_the_sandbox_cannot_start(tmp_path):
    from conftest import run_cli
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"BN_GRADER_ROOT": str(tmp_path), "BN_BWRAP": "/bin/false", "TMPDIR": str(scratch)}
    assert run_cli("sample-class", "ch2_forward", env=env).returncode == 0
    done = run_cli("grade", "ch2_forward", "--quiet", env=env)
    assert done.returncode == 2
    assert "no sandbox can start here" in done.stderr and "--no-sandbox" in done.stderr
    assert not (tmp_path / "autograded").exists()
    # The zygote the command started at once (before it knew) stopped with it, its folder gone.
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("bn-grader-")]


def test_ast_parsing_is_serialized():
    """CPython 3.11's ast is not thread-safe (gh-106905): in the grader every parse, ast.parse
    included, takes one lock."""
    import ast
    import threading

    from autograder.grader import pyast
    pyast.install()
    assert ast.parse is pyast.parse
    done = threading.Event()
    with pyast.LOCK:
        worker = threading.Thread(target=lambda: (ast.parse("x = 1"), done.set()))
        worker.start()
        assert not done.wait(0.3)  # waits for the lock
    worker.join(10)
    assert done.is_set()


def test_a_grader_failure_is_retried_and_never_scored_zero(grader_for):
    """issue 25 item 7: the judge fails for two students (injected). The one it fails once is
    retried and graded; the one it always fails is marked "grader error" in the table, the report,
    grades.csv (no score) and the LMS files, never 0; graded again without the failure, it gets
    its points and the mark goes."""
    import json

    import nbformat

    from autograder.grader.grades import ERRORS_FILE

    from conftest import REPO, graded_points, graders
    a = "ch2_forward"
    grader = grader_for(graders()[-1])  # user mode where it runs: the ordinary user's grader
    root = grader.folder("fault")
    release = nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4))
    for student in ("broken", "flaky", "fine"):
        (root / "submitted" / student / a).mkdir(parents=True)
        nbformat.write(honest, root / "submitted" / student / a / f"{a}.ipynb")
    grader.own(root)
    env = {"BN_GRADER_ROOT": str(root), "BN_GRADER_TEST_FAULT": "broken,flaky:once"}
    tmpdir = Path(grader.env["TMPDIR"])
    before = set(os.listdir(tmpdir))
    done = grader.run("grade", a, "--quiet", env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    home = {".cache", ".config"} if grader.env.get("HOME") == str(tmpdir) else set()  # HOME's, not temp
    assert set(os.listdir(tmpdir)) - home <= before  # item 6: nothing left behind, torch's caches included
    lines = {ln.split()[0]: ln for ln in done.stdout.splitlines()[1:] if ln.strip()}
    assert "GRADER ERROR" in lines["broken"] and "injected" in lines["broken"], done.stdout
    assert "all checks pass" in lines["flaky"] and "all checks pass" in lines["fine"], done.stdout
    full = sum(graded_points(a, "code").values())
    with open(root / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert rows["broken"]["status"] == "grader error" and rows["broken"]["score"] == "", rows["broken"]
    assert float(rows["flaky"]["raw_score"]) == full and rows["flaky"]["status"] == "submitted"
    report = (root / "grade_report.html").read_text()
    assert "Grader errors" in report and "not graded/" in report
    assert "broken" in json.loads((root / ERRORS_FILE).read_text())[a]
    exported = grader.run("export", a, "--lms", "canvas", "--no-feedback", "--out", str(root / "export"),
                          env={"BN_GRADER_ROOT": str(root)})
    assert exported.returncode == 0, (exported.stdout + exported.stderr)[-3000:]
    with open(root / "export" / "canvas_grades.csv") as f:  # the LMS files never carry a 0 for it
        row = next(r for r in csv.reader(f) if "broken" in r)
    assert row[-1] == "", row
    again = grader.run("grade", a, "--quiet", "--student", "broken", env={"BN_GRADER_ROOT": str(root)})
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    with open(root / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert rows["broken"]["status"] == "submitted" and float(rows["broken"]["raw_score"]) == full
    assert "broken" not in json.loads((root / ERRORS_FILE).read_text() or "{}").get(a, {})


def test_every_sandbox_takes_a_slot_from_the_pool(monkeypatch):
    """issue 25 item 6: a run the judge starts itself (nbgrader could not reuse the pre-pass's)
    waits for a free slot of the same pool, never doubling up on one a pre-pass run holds."""
    import threading

    import nbformat

    from autograder.grader import judge, plugins
    from autograder.grader import sandbox as sb
    used, running = [], []

    def fake_run(nb, request, run_dir, *, mode, slot, limits):
        assert slot not in running, "two sandboxes in one slot"
        running.append(slot)
        used.append(slot)
        running.remove(slot)
        return sb.RunResult("ok", "", None)
    monkeypatch.setattr(plugins.sb, "run_notebook", fake_run)
    monkeypatch.setattr(judge, "recording_request", lambda nb: {})
    store = plugins.RunStore(None, "none", sb.Limits(), workers=2)
    done = threading.Event()
    with store.slot() as first, store.slot() as second:  # the pre-pass holds every slot
        assert {first, second} == {0, 1}
        worker = threading.Thread(target=lambda: (store.execute(nbformat.v4.new_notebook()), done.set()))
        worker.start()
        assert not done.wait(0.3)   # the judge's run waits for a slot
        held = second
    worker.join(10)
    assert done.is_set() and used and used[0] in (first, held)
    assert store.slots.qsize() == 2


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_checks_declare_the_graded_functions_their_solution_calls(assignment):
    """``Check.uses`` is what lets a bug cost an experiment too: it must name exactly the other
    graded functions the solution cell calls."""
    import re

    import nbformat

    from conftest import REPO
    graded = {c.function for c in ASSIGNMENTS[assignment]}
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    for check in ASSIGNMENTS[assignment]:
        called = set(re.findall(r"\b(\w+)\(", source[check.function])) & graded - {check.function}
        assert set(check.uses) == called, f"{check.function}: uses {check.uses}, calls {sorted(called)}"


def test_feedback_renderer_is_kept_between_requests_and_replaced_after_a_failure(graded_class, monkeypatch):
    """One renderer process serves a run's requests (its imports are paid once); a request that
    fails or runs out of time takes the process with it, and the next one gets a fresh process."""
    from autograder.grader import feedback
    monkeypatch.setenv("BN_GRADER_ROOT", str(graded_class.root))
    page = graded_class.root / "feedback" / "sample-honest" / "ch2_forward" / "ch2_forward.html"
    renderer = feedback.Renderer()
    try:
        page.unlink()
        assert renderer.render("ch2_forward", ["sample-honest"], 120) == (True, "")
        assert "ghost_batchnorm_forward" in page.read_text()
        first = renderer.proc.pid
        assert renderer.render("ch4_inference", ["sample-honest"], 120) == (True, "")
        assert renderer.proc.pid == first and renderer.cpu > 0
        assert renderer.render("ch2_forward", ["sample-honest"], 0.01) == (
            False, "rendering took longer than 0.01 s")
        assert renderer.proc is None
        ok, why = renderer.render("no_such_assignment", ["sample-honest"], 120)
        assert not ok and why and "\n" not in why and renderer.proc is None
        page.unlink(missing_ok=True)  # the request that ran out of time may have removed it already
        assert renderer.render("ch2_forward", ["sample-honest"], 120) == (True, "")
        assert page.exists() and renderer.proc.pid != first
    finally:
        renderer.close()


def _autograded_copy(graded_class, tmp_path, student="sample-honest", assignment="ch2_forward"):
    """A copy of the graded class's gradebook with ``student``'s auto scores and comments blanked,
    the autograded notebook, and the resources nbgrader hands ``SaveAutoGrades``."""
    import shutil

    import nbformat
    from nbgrader.api import Gradebook
    db = tmp_path / "gradebook.db"
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(graded_class.root / "gradebook.db", db)
    url = f"sqlite:///{db}"
    with Gradebook(url) as gb:
        sub = gb.find_submission_notebook(assignment, assignment, student)
        for grade in sub.grades:
            grade.auto_score = None
        for comment in sub.comments:
            comment.auto_comment = "blanked"
        gb.db.commit()
    nb = nbformat.read(graded_class.root / "autograded" / student / assignment / f"{assignment}.ipynb",
                       as_version=4)
    resources = {"nbgrader": {"notebook": assignment, "assignment": assignment, "student": student,
                              "db_url": url}}
    return url, nb, resources


def _counting_queries(call, *args):
    """``call(*args)``'s result and how many SQL statements it sent (every SQLAlchemy engine)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    seen = []

    def count(*args):
        seen.append(1)
    event.listen(Engine, "before_cursor_execute", count)
    try:
        return call(*args), len(seen)
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def _auto_scores(url, student="sample-honest", assignment="ch2_forward") -> dict:
    from nbgrader.api import Gradebook
    with Gradebook(url) as gb:
        sub = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.auto_score for g in sub.grades if g.cell_type == "code"}


@pytest.mark.parametrize("ours", [False, True], ids=["stock", "ours"])
def test_a_notebooks_autogrades_are_saved_in_one_transaction(graded_class, tmp_path, ours):
    """``SaveAutoGradesAtOnce`` commits once per notebook, and a notebook whose saving fails half
    way keeps none of it. nbgrader's own ``SaveAutoGrades`` is the control: it commits per cell
    and keeps the cells before the failure (so the test can tell the two apart)."""
    import copy

    from nbgrader.api import MissingEntry
    from nbgrader.preprocessors import SaveAutoGrades
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from autograder.grader.config import speed_up_nbgrader
    from autograder.grader.plugins import SaveAutoGradesAtOnce
    speed_up_nbgrader()
    saver = SaveAutoGradesAtOnce if ours else SaveAutoGrades
    expected = graded_class.cell_scores("ch2_forward", "sample-honest")
    url, nb, resources = _autograded_copy(graded_class, tmp_path)
    assert set(_auto_scores(url).values()) == {None}

    commits = []

    def count(conn):
        commits.append(conn)
    event.listen(Engine, "commit", count)
    try:
        saver().preprocess(copy.deepcopy(nb), copy.deepcopy(resources))
        saved = len(commits)
        # A later graded cell whose id the gradebook does not know: saving fails there.
        broken = copy.deepcopy(nb)
        graded = [c for c in broken.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert len(graded) >= 2
        graded[-1].metadata.nbgrader.grade_id = "not-in-the-gradebook"
        url2, _, resources2 = _autograded_copy(graded_class, tmp_path / "again")
        with pytest.raises(MissingEntry):
            saver().preprocess(broken, resources2)
    finally:
        event.remove(Engine, "commit", count)

    assert {k: float(v) for k, v in _auto_scores(url).items()} == expected
    after_failure = _auto_scores(url2)
    if ours:
        assert saved == 1
        assert set(after_failure.values()) == {None}, after_failure
    else:
        assert saved > 1
        assert any(v is not None for v in after_failure.values()), after_failure


def test_save_autogrades_at_once_saves_what_nbgraders_own_saves(graded_class, tmp_path):
    """``SaveAutoGradesAtOnce`` reads a notebook's grade and comment rows in two queries; the
    rows it leaves (auto scores, the manual-grading flags, auto comments) are those nbgrader's
    ``SaveAutoGrades`` leaves, for code, written-answer and task cells (a task cell is found
    by name after the grade and solution cells, as nbgrader's ``find_grade``/``find_comment``
    do; the course has none yet, so one is added here), with under half the queries."""
    import copy

    import nbformat
    from nbgrader.api import Comment, Grade, Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    from autograder.grader.config import speed_up_nbgrader
    from autograder.grader.plugins import SaveAutoGradesAtOnce
    speed_up_nbgrader()
    saved, queries = {}, {}
    for cls in (SaveAutoGrades, SaveAutoGradesAtOnce):
        url, nb, resources = _autograded_copy(graded_class, tmp_path / cls.__name__)
        with Gradebook(url) as gb:
            task = gb.add_task_cell("a-task", "ch2_forward", "ch2_forward", max_score=2.0,
                                    cell_type="markdown")
            sub = gb.find_submission_notebook("ch2_forward", "ch2_forward", "sample-honest")
            gb.db.add_all([Grade(cell_id=task.id, notebook=sub), Comment(cell_id=task.id, notebook=sub)])
            gb.db.commit()
        nb = copy.deepcopy(nb)
        nb.cells.append(nbformat.v4.new_markdown_cell("Explain.", metadata={"nbgrader": {
            "grade": True, "solution": False, "locked": True, "task": True, "points": 2.0,
            "grade_id": "a-task", "schema_version": 3}}))
        kinds = {c.metadata.nbgrader.get("grade_id"): (c.cell_type, bool(c.metadata.nbgrader.get("solution")))
                 for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
        assert ("markdown", True) in kinds.values() and ("code", False) in kinds.values()
        _, queries[cls] = _counting_queries(cls().preprocess, nb, copy.deepcopy(resources))
        with Gradebook(url) as gb:
            sub = gb.find_submission_notebook("ch2_forward", "ch2_forward", "sample-honest")
            saved[cls] = ({g.cell.name: (g.auto_score, g.needs_manual_grade) for g in sub.grades},
                          {c.cell.name: c.auto_comment for c in sub.comments})
    grades, comments = saved[SaveAutoGradesAtOnce]
    assert saved[SaveAutoGradesAtOnce] == saved[SaveAutoGrades]
    assert grades["a-task"] == (None, True) and comments["a-task"] != "blanked"
    assert any(score for score, _ in grades.values())
    assert queries[SaveAutoGradesAtOnce] < queries[SaveAutoGrades] / 2, queries


def test_nbgraders_sanitize_phase_takes_what_the_prepass_made(graded_class, monkeypatch):
    """The pre-pass's sanitize (``pipeline.sanitize``) is kept in the run's store; nbgrader's own
    sanitize phase (``SanitizeOnce``), given the same notebook, takes it: what the sanitize
    preprocessors make of that notebook, a private copy, taken once. A notebook that differs
    from the one the pre-pass saw is sanitized afresh."""
    import copy

    import nbformat
    from nbformat import validator

    from autograder.grader import pipeline
    from autograder.grader import sandbox as sb
    from autograder.grader.config import load_config
    from autograder.grader.plugins import RunStore, SanitizeOnce, sanitize_preprocessors
    monkeypatch.setenv("BN_GRADER_ROOT", str(graded_class.root))
    config = load_config()
    a, s = "ch2_forward", "sample-honest"
    path = graded_class.root / "submitted" / s / a / f"{a}.ipynb"
    with sb.RunDir() as run_dir:
        store = RunStore(run_dir, "none", sb.Limits())
        config.SanitizeOnce.runs = store
        api = pipeline.make_api(config)
        resources = {"nbgrader": {"student": s, "assignment": a, "notebook": a,
                                  "db_url": api.coursedir.db_url}}

        def given():  # what nbgrader's exporter hands its first sanitize preprocessor
            return validator.normalize(nbformat.read(path, as_version=4))[1]

        def in_full(nb):
            r = copy.deepcopy(resources)
            for cls in sanitize_preprocessors():
                nb, r = cls(config=config)(nb, r)
            return nb

        kept = pipeline.sanitize(api, path, a, s, a)
        assert len(store._sanitized) == 1
        full = in_full(given())
        taken, _ = SanitizeOnce(config=config).preprocess(given(), copy.deepcopy(resources))
        assert taken == full == kept and taken is not kept
        assert not store._sanitized
        again, _ = SanitizeOnce(config=config).preprocess(given(), copy.deepcopy(resources))
        assert again == full and not store._sanitized

        pipeline.sanitize(api, path, a, s, a)
        changed = given()
        answer = next(c for c in changed.cells if c.cell_type == "code"
                      and c.metadata.get("nbgrader", {}).get("solution"))
        answer.source += "\n# edited after the pre-pass"
        mine, _ = SanitizeOnce(config=config).preprocess(copy.deepcopy(changed), copy.deepcopy(resources))
        assert mine == in_full(changed) and mine != full
        assert len(store._sanitized) == 1  # the pre-pass's, for the notebook it saw, still waiting
        store.clear()
        assert not store._sanitized


def test_cell_metadata_is_judged_as_jsonschema_judges_it_when_remembered():
    """The validator nbgrader's metadata check is given remembers only metadata it found valid:
    every value here gets jsonschema's own verdict and message, the first time and again."""
    import json
    from pathlib import Path

    import jsonschema
    import nbgrader.nbgraderformat as fmt
    from nbgrader.nbgraderformat import common

    from autograder.grader.config import speed_up_nbgrader
    speed_up_nbgrader()
    schema = json.loads((Path(fmt.__file__).parent / "v3.json").read_text())
    good = {"schema_version": 3, "grade": True, "solution": False, "locked": True, "points": 2,
            "grade_id": "cell-1"}
    variants = [good, {**good, "points": 2.0}, {**good, "points": True}, {**good, "points": -1},
                {**good, "schema_version": 3.0}, {**good, "schema_version": True},
                {**good, "grade": 1}, {**good, "grade_id": "a b"}, {**good, "grade_id": "ok\n"},
                {**good, "extra": 1}, {k: v for k, v in good.items() if k != "locked"},
                {**good, "points": float("nan")}, {**good, "checksum": "0" * 32},
                {**good, "checksum": "0" * 31}, {**good, "cell_type": "raw"}, {**good, "cell_type": "html"}]
    def verdict(validate, meta):
        try:  # fresh values each call: nothing is remembered by identity
            validate(json.loads(json.dumps(meta)), json.loads(json.dumps(schema)))
            return "valid"
        except jsonschema.ValidationError as e:
            return e.message
    for round_ in range(2):
        for meta in variants:
            assert verdict(common.jsonschema.validate, meta) == verdict(jsonschema.validate, meta), (round_, meta)
    assert common.jsonschema.validate is not jsonschema.validate


def test_an_sqlite_gradebook_is_reopened_on_its_pooled_connections_until_the_file_changes(graded_class, tmp_path):
    """Once an SQLite gradebook file was found ready, opening it again runs no schema query and
    closing it keeps its connection in the pool; a file deleted and made again at the same path
    (another class's gradebook) is checked afresh, and what is read is the new file's."""
    import os
    import shutil

    from nbgrader.api import Gradebook
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from autograder.grader.config import speed_up_nbgrader
    speed_up_nbgrader()
    url, _, _ = _autograded_copy(graded_class, tmp_path)
    db = tmp_path / "gradebook.db"
    statements, connects = [], []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        with Gradebook(url) as gb:
            students = {s.id for s in gb.students}
        assert "sample-honest" in students
        engine = gb.engine
        event.listen(engine.pool, "connect", lambda *a: connects.append(1))
        statements.clear()
        for _ in range(3):
            with Gradebook(url) as gb:
                assert {s.id for s in gb.students} == students
        assert not [s for s in statements if "sqlite_master" in s or "FROM course" in s], statements
        assert connects == []  # the same pooled connection each time

        # Another gradebook takes the file's place: one student fewer.
        other = tmp_path / "other.db"
        shutil.copy(db, other)
        with Gradebook(f"sqlite:///{other}") as gb:
            gb.remove_student("sample-honest")
        os.unlink(db)
        shutil.copy(other, db)
        statements.clear()
        with Gradebook(url) as gb:
            assert {s.id for s in gb.students} == students - {"sample-honest"}
        assert [s for s in statements if "sqlite_master" in s], statements  # checked afresh
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


def test_sanitized_markdown_is_the_same_from_the_kept_copy_and_the_kept_text_is_bounded(monkeypatch):
    """The clean HTML of a markdown source is kept per process; what comes from the kept copy
    is what a fresh cleaning gives, unsafe markup is still removed, and the kept text stops
    growing at ``KEPT_CHARS``."""
    from autograder.grader.plugins import SanitizeMarkdown
    monkeypatch.setattr(SanitizeMarkdown, "_kept", {})
    monkeypatch.setattr(SanitizeMarkdown, "_kept_chars", 0)
    monkeypatch.setattr(SanitizeMarkdown, "KEPT_CHARS", 2000)
    source = ("# Title\n\nSome *text* <script>alert(1)</script> [x](javascript:alert(1)) "
              "<img src=x onerror=alert(1)> and $x^2$")
    first = SanitizeMarkdown.clean(source)
    assert source in SanitizeMarkdown._kept
    second = SanitizeMarkdown.clean(source)
    assert second == first
    monkeypatch.setattr(SanitizeMarkdown, "_kept", {})
    monkeypatch.setattr(SanitizeMarkdown, "_kept_chars", 0)
    assert SanitizeMarkdown.clean(source) == first
    for bad in ("<script", "<img", 'href="javascript'):  # left as escaped text at most
        assert bad not in first.lower()
    assert "<h1" in first and "<em>text</em>" in first
    for i in range(100):
        SanitizeMarkdown.clean(f"paragraph {i} " + "word " * 20)
    assert 0 < SanitizeMarkdown._kept_chars <= 2000
    assert len(SanitizeMarkdown._kept) < 101
    late = f"paragraph 99 {'word ' * 20}"
    assert late not in SanitizeMarkdown._kept
    assert "paragraph 99" in SanitizeMarkdown.clean(late)


def test_feedback_exporter_gives_the_page_nbconvert_gives_without_its_soup_pass(graded_class):
    """The feedback exporter skips nbconvert's BeautifulSoup pass. The page it writes reads the
    same (text and elements) as ``HTMLExporter``'s, and images still get an alt text: a default
    where the notebook gives none, the notebook's own where it does."""
    import copy

    import nbformat
    from bs4 import BeautifulSoup
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config

    from autograder.grader.feedback import IMAGE_ALT, feedback_exporter
    nb = nbformat.read(graded_class.root / "autograded" / "sample-honest" / "ch3_backward"
                       / "ch3_backward.ipynb", as_version=4)
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    nb.cells.append(nbformat.v4.new_code_cell("plot()", outputs=[
        nbformat.v4.new_output("display_data", data={"image/png": png}),
        nbformat.v4.new_output("display_data", data={"image/png": png},
                               metadata={"image/png": {"alt": "loss against batch size"}})]))
    config = Config()  # nbconvert's classic template, which nbgrader's feedback template extends
    config.HTMLExporter.template_name = "classic"
    ours, _ = feedback_exporter()(config=config).from_notebook_node(copy.deepcopy(nb))
    stock, _ = HTMLExporter(config=config).from_notebook_node(copy.deepcopy(nb))
    a, b = BeautifulSoup(ours, "html.parser"), BeautifulSoup(stock, "html.parser")
    assert " ".join(a.get_text().split()) == " ".join(b.get_text().split())
    assert [t.name for t in a.find_all(True)] == [t.name for t in b.find_all(True)]
    assert "ghost_batchnorm_backward" in a.get_text() or "batchnorm_backward" in a.get_text()
    alts = [img.get("alt") for img in a.find_all("img")]
    assert alts == [IMAGE_ALT, "loss against batch size"], alts
    assert [img.get("alt") for img in b.find_all("img")] == alts
    # Metadata nbconvert's own template cannot read (it fails on it) gets the default too.
    nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data={"image/jpeg": png},
                                                   metadata={"image/jpeg": "x"})]
    page, _ = feedback_exporter()(config=config).from_notebook_node(nb)
    assert [img.get("alt") for img in BeautifulSoup(page, "html.parser").find_all("img")] == [IMAGE_ALT]


def test_feedback_highlighting_is_remembered_per_source_and_gives_nbconverts_html(monkeypatch):
    """The feedback exporter remembers a code cell's highlighted HTML: a source met again (the
    given code, the check cells, in every student's page) is not highlighted again, and what it
    gives is what nbconvert's own filter gives, for each language and magics language."""
    from nbconvert.exporters import HTMLExporter
    from nbconvert.filters import highlight as nbhighlight
    from nbconvert.filters.highlight import Highlight2HTML

    from autograder.grader import feedback
    monkeypatch.setattr(feedback, "_HIGHLIGHTED", {})
    exporter = feedback.feedback_exporter()()
    exporter.from_notebook_node(__import__("nbformat").v4.new_notebook())  # registers the filter
    ours = exporter.environment.filters["highlight_code"]
    assert isinstance(ours, Highlight2HTML) and type(ours) is not Highlight2HTML
    stock = Highlight2HTML(pygments_lexer="ipython3", parent=HTMLExporter())
    calls = []
    real = nbhighlight._pygments_highlight
    monkeypatch.setattr(nbhighlight, "_pygments_highlight", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    cells = [("x = np.mean(a, axis=0)\n", None, None), ("%%bash\necho hi", None, {"magics_language": "bash"}),
             ("%%bash\necho hi", None, {}), ("x = np.mean(a, axis=0)\n", "python", None), ("", None, None)]
    first = [ours(s, lang, meta) for s, lang, meta in cells]
    assert len(calls) == len(cells)  # each differs in what the HTML depends on
    assert first == [ours(s, lang, meta) for s, lang, meta in cells] and len(calls) == len(cells)
    monkeypatch.setattr(nbhighlight, "_pygments_highlight", real)
    assert first == [stock(s, lang, meta) for s, lang, meta in cells]
    assert first[1] != first[2] and first[0] != first[3]
    # Bounded in characters held (source and HTML): a full memory starts again, and a source
    # too long for it is highlighted each time, not kept.
    monkeypatch.setattr(feedback, "_HIGHLIGHT_BUDGET", 64 * 300)
    monkeypatch.setattr(feedback, "_HIGHLIGHT_HELD", [0])
    feedback._HIGHLIGHTED.clear()
    for k in range(200):
        ours(f"y = {k}\n")
    held = sum(len(key[0]) + len(html) for key, html in feedback._HIGHLIGHTED.items())
    assert 0 < held == feedback._HIGHLIGHT_HELD[0] <= feedback._HIGHLIGHT_BUDGET
    assert len(feedback._HIGHLIGHTED) < 200
    ours("z = 1\n" * 5000)
    assert not any(len(key[0]) > 300 for key in feedback._HIGHLIGHTED)


def test_overwrite_cells_at_once_restores_what_nbgraders_own_restores(graded_class, tmp_path):
    """``OverwriteCellsAtOnce`` reads a notebook's rows in one go; what it makes of a tampered
    notebook (a locked cell edited, points raised, a cell's type changed, an unknown id) is what
    nbgrader's ``OverwriteCells`` makes of it, with fewer queries."""
    import copy

    from nbgrader.preprocessors import OverwriteCells

    from autograder.grader.plugins import OverwriteCellsAtOnce
    url, nb, resources = _autograded_copy(graded_class, tmp_path)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    locked = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked")]
    assert len(graded) >= 2 and locked
    locked[0].source = "print('edited by the student')"
    graded[0].metadata.nbgrader["points"] = 1000
    graded[1].cell_type = "markdown"
    graded[-1].metadata.nbgrader["grade_id"] = "not-in-the-gradebook"
    made, queries = {}, {}
    for cls in (OverwriteCells, OverwriteCellsAtOnce):
        (made[cls], _), queries[cls] = _counting_queries(cls().preprocess, copy.deepcopy(nb),
                                                         copy.deepcopy(resources))
    assert made[OverwriteCellsAtOnce] == made[OverwriteCells]
    assert made[OverwriteCells] != nb  # the tampering was undone
    assert queries[OverwriteCellsAtOnce] < queries[OverwriteCells] / 2, queries


def test_report_draws_each_histogram_and_tables_the_common_mistakes(tmp_path):
    """The report: per assignment, an inline SVG histogram of the scores (a bar per whole score
    holding the students who scored it; no matplotlib, so the run's last step costs it nothing)
    and the named mistakes most common first, each with its count and a bar as wide as its share
    of the most common one; hostile text escaped, in the histogram too; a grader error has no
    score in the histogram."""
    import re
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    from autograder.grader import report
    from autograder.grader.grades import GRADER_ERROR, Row
    rows = [Row("s1", "ch2_forward", 3, 4, mistakes=["biased variance", "<b>x</b>"]),
            Row("s2", "ch2_forward", 4, 4, mistakes=["biased variance"]),
            Row("s3", "ch2_forward", 1, 4, mistakes=["biased variance", "<b>x</b>"]),
            Row("s5", "ch2_forward", 2.5, 4),  # a late penalty's half point: counted in bar 3
            Row("s4", "ch2_forward", 0, 4, status=GRADER_ERROR, reason="injected"),
            Row("t1", "ch3_backward", 2, 2), Row("t2", "ch3_backward", 2, 2),
            Row("u1", "<script>x</script>", 1, 1)]
    page = report.write(tmp_path, report.update_log(tmp_path, rows)).read_text()
    svgs = re.findall(r"<svg class=\"histogram\".*?</svg>", page, re.S)
    assert len(svgs) == 3
    bars = []
    for svg in svgs:  # each one well-formed XML: the page's text is escaped inside it
        tree = ET.fromstring(svg)
        bars.append({int(r.get("data-score")): int(r.get("data-count"))
                     for r in tree.iter("{http://www.w3.org/2000/svg}rect")})
    by_name = dict(zip(sorted(["<script>x</script>", "ch2_forward", "ch3_backward"]), bars))
    assert by_name["ch2_forward"] == {1: 1, 3: 2, 4: 1}  # s4, the grader error, is not a score
    assert by_name["ch3_backward"] == {2: 2} and by_name["<script>x</script>"] == {1: 1}
    heights = {ET.fromstring(svgs[2]).find("{http://www.w3.org/2000/svg}rect").get("height")}
    assert heights and float(heights.pop()) > 0
    assert "<script>x" not in page and "matplotlib" not in page
    table = page.split("<table class='mistakes'>")[1].split("</table>")[0]
    assert table.index("biased variance") < table.index("&lt;b&gt;x&lt;/b&gt;") and "<b>x" not in page
    assert "width:100px'></span> 3<" in table and "width:66px'></span> 2<" in table
    assert page.count("<table class='mistakes'>") == 1 and "No named mistakes." in page  # ch3: none
    assert "5 submissions, mean 2.62 / 4" in page  # the grader error is not a score
    code = ("import sys; from pathlib import Path; from autograder.grader import report; "
            f"report.write(Path({str(tmp_path)!r}), report.update_log(Path({str(tmp_path)!r}), [])); "
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_next_assignments_runs_start_before_this_ones_last_are_judged(monkeypatch):
    """The pool is not idle between assignments: the next assignment's pre-pass starts while
    this one's last students are judged (not before its runs thin out below the workers and few
    students are left: the runs made ahead wait in memory); clearing one assignment's runs
    keeps the next one's; an assignment that cannot start is reported in its own turn, the
    others graded; the health check takes a slot of the pool like any run."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from autograder.grader import pipeline, plugins
    from autograder.grader import sandbox as sb
    from autograder.grader.grades import Row
    events, said, lock = [], [], threading.Lock()
    students = {"a1": [f"s{k:02d}" for k in range(20)], "a2": ["t0", "t1", "t2"], "a3": ["u0"]}

    def log(*what):
        with lock:
            events.append(what)

    def ensure(api, assignment, scratch):
        log("start", assignment)
        if assignment == "a2":
            raise RuntimeError("no source for a2")
    monkeypatch.setattr(pipeline, "ensure_source_in_gradebook", ensure)
    monkeypatch.setattr(pipeline, "source_notebooks", lambda api, a: [a])
    monkeypatch.setattr(pipeline, "submitted_students", lambda api, a: students[a])
    monkeypatch.setattr(pipeline, "sanitize", lambda api, path, a, s, n: {"who": (a, s)})
    monkeypatch.setattr(plugins.RunStore, "key", staticmethod(lambda nb, a, s, n: f"{a}/{s}"))

    def execute(self, nb, slot=None):
        with self.slot():
            log("run", *nb["who"])
            time.sleep(0.01)
        return sb.RunResult("ok", "", None)
    monkeypatch.setattr(plugins.RunStore, "execute", execute)
    kept_ahead = []

    def autograde(api, store, assignment, student, notebooks, start):
        if assignment == "a3":
            kept_ahead.append(store.take(f"a3/{student}") is not None)
        log("judge", assignment, student)
        time.sleep(0.02)
        return Row(student, assignment, 1, 1)
    monkeypatch.setattr(pipeline, "_autograde_one", autograde)
    checked = []
    monkeypatch.setattr(pipeline, "health_check", lambda api, store, a: checked.append(a))

    class FakeDir:
        def scratch(self, name):
            return name
    store = plugins.RunStore(FakeDir(), "none", sb.Limits(), workers=2)

    class Api:
        class coursedir:
            submitted_directory, root = "submitted", "/nonexistent"

            @staticmethod
            def format_path(*parts):
                return "/".join(parts)
    monkeypatch.setattr(pipeline, "mark_grader_errors", lambda root, rows: None)
    with ThreadPoolExecutor(2) as pool:
        rows = pipeline._grade_assignments(Api(), None, store, pool, ["a1", "a2", "a3"], None, 2, False,
                                           False, said.append, pipeline.Hooks())
    assert [(r.assignment, r.student) for r in rows] == \
        [("a1", s) for s in students["a1"]] + [("a3", "u0")]
    assert said == ["error: grading a2 failed: RuntimeError: no source for a2"]
    judged_a1 = [e for e in events if e[:2] == ("judge", "a1")]
    started = events.index(("start", "a2"))
    # a2 started while a1 was still being judged, but only near its end (the bounded look-ahead)
    assert 0 < len([e for e in events[started:] if e[:2] == ("judge", "a1")]) <= 4 * 2
    assert events.index(("start", "a3")) > events.index(("judge", "a1", "s19"))  # in a2's turn
    assert judged_a1 and kept_ahead == [True]  # a1's clear() kept a3's run, made ahead
    assert checked == ["a1"]  # once, on the first assignment with submissions
    assert store._runs == {} and store._run_owner == {}


def test_the_health_check_takes_its_slot_from_the_pool(tmp_path):
    """The health check runs beside the first assignment's pre-pass: its sandbox takes a free
    slot of the pool (never a fixed one a pre-pass run may hold), and a run that fails stops
    grading with the sandbox's reason."""
    from autograder.grader import pipeline
    from autograder.grader import sandbox as sb

    from conftest import REPO
    asked = []

    class Store:
        def execute(self, nb, slot=None):
            asked.append(slot)
            return sb.RunResult("failed", "bubblewrap: setting up uid map: Permission denied", None)

        def submission_key(self, nb):
            return ""

    class Api:
        class coursedir:
            source_directory = str(REPO / "solutions")

            @staticmethod
            def format_path(root, student, assignment):
                return f"{root}/{assignment}"
    with pytest.raises(pipeline.SandboxBroken, match="uid map"):
        pipeline.health_check(Api(), Store(), "ch2_forward")
    assert asked == [None]


def test_feedback_templates_are_compiled_once_per_process_while_their_source_stays(monkeypatch):
    """Each feedback run makes a new exporter and Jinja environment; the templates' compiled code
    is kept in this process (a Jinja bytecode cache) and reused by the next environment, and a
    template whose source changed is compiled again."""
    import jinja2

    from autograder.grader import feedback
    cache = feedback._compiled_templates()
    assert feedback.feedback_exporter()().environment.bytecode_cache is cache
    cache.clear()
    parsed = []
    real = jinja2.Environment._parse
    monkeypatch.setattr(jinja2.Environment, "_parse",
                        lambda self, *a, **k: parsed.append(a[1]) or real(self, *a, **k))

    def render(source):
        env = jinja2.Environment(loader=jinja2.DictLoader({"page.j2": source}), bytecode_cache=cache)
        return env.get_template("page.j2").render(score=3)
    assert render("score {{ score }}") == "score 3" and parsed == ["page.j2"]
    assert render("score {{ score }}") == "score 3" and parsed == ["page.j2"]  # not parsed again
    assert render("points {{ score }}") == "points 3" and parsed == ["page.j2", "page.j2"]


def test_get_grades_at_once_shows_what_nbgraders_own_shows(graded_class, tmp_path):
    """A feedback page's scores and comments: ``GetGradesAtOnce`` reads a notebook's grade and
    comment rows in two queries; what it puts in each cell (score, points, comment) and in the
    page's totals is what nbgrader's ``GetGrades`` puts there, for code, written-answer and task
    cells, with a grader's manual score and comment in place, in under half the queries. The
    feedback run uses it."""
    import copy

    import nbformat
    from nbgrader.api import Comment, Grade, Gradebook
    from nbgrader.preprocessors import GetGrades

    from autograder.grader import feedback
    from autograder.grader.config import speed_up_nbgrader
    from autograder.grader.plugins import GetGradesAtOnce
    speed_up_nbgrader()  # as the feedback process has it
    url, nb, resources = _autograded_copy(graded_class, tmp_path)
    with Gradebook(url) as gb:
        task = gb.add_task_cell("a-task", "ch2_forward", "ch2_forward", max_score=2.0, cell_type="markdown")
        sub = gb.find_submission_notebook("ch2_forward", "ch2_forward", "sample-honest")
        gb.db.add_all([Grade(cell_id=task.id, notebook=sub, manual_score=1.5),
                       Comment(cell_id=task.id, notebook=sub, manual_comment="clear, but short")])
        graded = [g for g in sub.grades if g.cell.name != "a-task"]
        graded[0].manual_score = 0.25
        gb.db.commit()
    nb.cells.append(nbformat.v4.new_markdown_cell("Explain.", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "task": True, "points": 2.0,
        "grade_id": "a-task", "schema_version": 3}}))
    shown, queries = {}, {}
    for cls in (GetGrades, GetGradesAtOnce):
        (got, res), queries[cls] = _counting_queries(cls().preprocess, copy.deepcopy(nb),
                                                     copy.deepcopy(resources))
        shown[cls] = ([c.metadata.get("nbgrader") for c in got.cells],
                      {k: res["nbgrader"][k] for k in ("score", "max_score", "late_penalty")})
    cells, totals = shown[GetGradesAtOnce]
    assert shown[GetGradesAtOnce] == shown[GetGrades]
    task_cell = next(c for c in cells if c and c.get("grade_id") == "a-task")
    assert (task_cell["score"], task_cell["comment"]) == (1.5, "clear, but short")
    assert 0.25 in [c.get("score") for c in cells if c]
    assert totals["max_score"] > 0
    assert queries[GetGradesAtOnce] < queries[GetGrades] / 2, queries
    # The feedback run uses it in place of nbgrader's default, ``GetGrades``.
    assert feedback.feedback_config().GenerateFeedback.preprocessors[0] is GetGradesAtOnce
