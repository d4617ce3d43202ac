"""Hostile and broken submissions, graded in one batch by the real command.

Each row starts from the honest ch2 submission, breaks or attacks it, and states the points each
check cell must get: honest parts keep their points, tampered parts get none, the batch completes,
the report gives a one-line reason, and no submission file changes.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from autograder import samples
from conftest import REPO, run_cli, tree_digest

A = "ch2_forward"
FWD, SPATIAL = "check_batchnorm_forward", "check_spatial_batchnorm_forward"
MARKER = f"PWNED-{uuid.uuid4().hex[:8]}"


@dataclass
class Hostile:
    name: str
    make: Callable       # honest notebook -> notebook, or -> (filename, bytes)
    scores: dict         # check cell -> points
    reason: str = ""     # expected in the report line / feedback


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def after(grade_id: str, source: str):
    def make(nb):
        index = nb.cells.index(_cell(nb, grade_id))
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
        return nb
    return make


def solution(grade_id: str, source: str, *extra):
    def make(nb):
        _cell(nb, grade_id).source = source
        for step in extra:
            nb = step(nb)
        return nb
    return make


def spatial_returns(expr: str, *extra):
    return solution("spatial_batchnorm_forward",
                    f"def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):\n    return {expr}", *extra)


def forward_returns(expr: str):
    return solution("batchnorm_forward", "def batchnorm_forward(x, gamma, beta, eps=1e-5):\n"
                    "    mu = x.mean(0); v = x.var(0)\n"
                    "    out = gamma * (x - mu) / np.sqrt(v + eps) + beta\n"
                    f"    return {expr}")


def raw(filename: str, data: bytes):
    return lambda nb: (filename, data)


def drop_cell(grade_id):
    def make(nb):
        nb.cells.remove(_cell(nb, grade_id))
        return nb
    return make


FULL = {FWD: 5.0, SPATIAL: 5.0}
NO_SPATIAL = {FWD: 5.0, SPATIAL: 0.0}
NO_FORWARD = {FWD: 0.0, SPATIAL: 5.0}
NOTHING = {FWD: 0.0, SPATIAL: 0.0}

TRANSFORMER = '''\
def _swallow(lines):
    return ["try:\\n"] + ["    " + line for line in lines] + ["\\nexcept BaseException:\\n    pass\\n"]
get_ipython().input_transformers_post.append(_swallow)'''

CASES = [
    Hostile("input-transformer", spatial_returns("x, None", after("setup", TRANSFORMER)), NO_SPATIAL),
    Hostile("noop-assert-allclose", spatial_returns(
        "np.zeros_like(x), None",
        after("setup", "np.testing.assert_allclose = lambda *a, **k: None\n"
                       "np.allclose = lambda *a, **k: True")), NO_SPATIAL),
    Hostile("calls-torch", spatial_returns(
        "__import__('torch').nn.functional.batch_norm(x, None, None, training=True), None"),
        NO_SPATIAL, "torch is not available"),
    Hostile("reads-solutions-and-gradebook", spatial_returns(
        f"open({str(REPO / 'solutions' / A / (A + '.ipynb'))!r}).read() and "
        f"open({str(REPO / 'autograder' / 'gradebook.db')!r}).read(), None"),
        NO_SPATIAL, "FileNotFoundError"),
    # The runner's parent is the sandbox's init, owned by root: the kill fails, grading goes on.
    Hostile("kills-parent", after(FWD, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
            FULL),
    # kill(-1) spares the caller, and nothing else in the sandbox is the student's to kill.
    Hostile("kills-every-process", after(FWD, "import os, signal\nos.kill(-1, signal.SIGKILL)"), FULL),
    Hostile("kills-process-group", after(FWD, "import os, signal\nos.killpg(0, signal.SIGKILL)"),
            NO_SPATIAL, "before it could report"),
    Hostile("set-custom-exc", spatial_returns("x, None", after(
        "setup", "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)")), NO_SPATIAL),
    Hostile("patched-builtins-and-numpy", spatial_returns("x, None", after(
        "setup", "import builtins\nbuiltins.AssertionError = type('AssertionError', (Exception,), {})\n"
                 "builtins.print = lambda *a, **k: None\nnp.abs = lambda *a, **k: 0.0\n"
                 "np.isfinite = lambda *a, **k: True")), NO_SPATIAL),
    Hostile("sys-exit-in-function", spatial_returns("__import__('sys').exit(0)"), NO_SPATIAL, "SystemExit"),
    Hostile("os-exit", after(FWD, "import os\nos._exit(0)"), NO_SPATIAL, "before it could report"),
    # A runaway ungraded cell is stopped; the checks after it still run.
    Hostile("infinite-loop-sigint-ignored", after(
        FWD, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
        FULL, "limit"),
    # Defeating the runner's own clock leaves the parent's watchdog: the run is killed.
    Hostile("infinite-loop-every-signal-ignored", after(
        FWD, "import signal\nfor s in (signal.SIGINT, signal.SIGALRM, signal.SIGTERM):\n"
             "    signal.signal(s, signal.SIG_IGN)\nsignal.setitimer = lambda *a: None\nwhile True:\n    pass"),
        NO_SPATIAL, "limit"),
    Hostile("infinite-loop-sigint-blocked", solution(
        "spatial_batchnorm_forward",
        "import signal\ndef spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n    while True:\n        pass"),
        NO_SPATIAL, "limit"),
    Hostile("fork-storm", after(FWD, "import os, time\nfor _ in range(5000):\n    try:\n"
                                     "        pid = os.fork()\n    except OSError:\n        break\n"
                                     "    if pid == 0:\n        time.sleep(20)\n        os._exit(0)"),
            FULL),
    Hostile("allocates-50GB", after(FWD, "big = np.ones(50 * 2**30 // 8)"), FULL),
    Hostile("prints-1GB", after(FWD, "for _ in range(1024):\n    print('x' * (1 << 20))"), FULL),
    Hostile("writes-outside-tmp", after(FWD, "\n".join(
        f"try:\n    open({p!r}, 'w').write('x')\nexcept OSError as e:\n    print(e)"
        for p in (str(REPO / "solutions" / MARKER), f"/tmp/{MARKER}", "/course/autograder/checks.py",
                  "/etc/" + MARKER, str(REPO / "autograder" / MARKER)))), FULL),
    Hostile("network", after(FWD, "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), 2)\n"
                                  "    socket.create_connection(('1.1.1.1', 80), 2)\nexcept OSError as e:\n    print(e)"),
            FULL),
    Hostile("deletes-test-cell", drop_cell(SPATIAL), NO_SPATIAL),
    Hostile("edits-test-cell", solution(FWD, "pass", solution(
        "batchnorm_forward", "def batchnorm_forward(x, gamma, beta, eps=1e-5):\n    return x, None")),
        NO_FORWARD),
    Hostile("returns-nan", forward_returns("out * np.nan, None"), NO_FORWARD, "NaN"),
    Hostile("returns-wrong-dtype", forward_returns("out.astype(np.complex128), None"), NO_FORWARD,
            "complex128"),
    Hostile("returns-wrong-shape", forward_returns("out.T, None"), NO_FORWARD, "has shape"),
    Hostile("returns-list", forward_returns("out.tolist(), None"), NO_FORWARD, "is list"),
    Hostile("returns-one-value", forward_returns("out"), NO_FORWARD, "expected a tuple of 2 values"),
    Hostile("malformed-json", raw(f"{A}.ipynb", b'{"cells": [ this is not json'), NOTHING, "could not read"),
    Hostile("no-cells", lambda nb: nbformat.v4.new_notebook(), NOTHING),
    Hostile("wrongly-named", lambda nb: ("my_ch2_work.ipynb", nbformat.writes(nb).encode()), NOTHING,
            f"no {A}.ipynb"),
    Hostile("extra-files", lambda nb: nb, FULL),
]


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-root")
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    for case in CASES:
        folder = root / "submitted" / case.name / A
        folder.mkdir(parents=True)
        made = case.make(copy.deepcopy(honest))
        if isinstance(made, tuple):
            (folder / made[0]).write_bytes(made[1])
        else:
            nbformat.write(made, folder / f"{A}.ipynb")
        if case.name == "extra-files":
            (folder / "notes.txt").write_text("scratch")
            (folder / "scratch.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    before = tree_digest(root / "submitted")
    cli = run_cli("grade", A, "--quiet", "--cell-timeout", "10", "--notebook-timeout", "60",
                  env={"BN_GRADER_ROOT": str(root)})
    assert cli.returncode == 0, (cli.stdout + cli.stderr)[-4000:]
    return root, cli.stdout, before, tree_digest(root / "submitted")


def _scores(root: Path, student: str) -> dict:
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        try:
            nb = gb.find_submission_notebook(A, A, student)
        except MissingEntry:
            return NOTHING
        return {g.name: float(g.score) for g in nb.grades}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_submission(hostile_class, case):
    root, table, _, _ = hostile_class
    assert _scores(root, case.name) == case.scores
    line = next(ln for ln in table.splitlines() if ln.startswith(case.name + " "))
    if case.reason:
        feedback = root / "feedback" / case.name / A / f"{A}.html"
        shown = line + (feedback.read_text() if feedback.exists() else "")
        assert case.reason in shown, line


def test_batch_completes_and_nothing_changes(hostile_class):
    root, table, before, after = hostile_class
    assert before == after
    graded = [ln.split()[0] for ln in table.splitlines()[1:] if ln and not ln.startswith(("gradebook", "grades", "feedback"))]
    assert set(c.name for c in CASES) <= set(graded)


def test_nothing_was_written_outside_the_sandbox(hostile_class):
    assert not (REPO / "solutions" / MARKER).exists()
    assert not Path(f"/tmp/{MARKER}").exists()
    assert not (REPO / "autograder" / MARKER).exists()
    assert not Path(f"/etc/{MARKER}").exists()


def test_output_flood_is_bounded(hostile_class):
    root = hostile_class[0]
    graded = root / "autograded" / "prints-1GB" / A / f"{A}.ipynb"
    assert graded.stat().st_size < 5 << 20
