"""Hostile, broken and accidentally mangled submissions, graded in one batch by the real command,
once per sandbox mode: as root (root mode) and as an ordinary user (user mode; CI creates the user).

Each row starts from the honest ch2 submission, breaks, attacks or mangles it the way an editor
would, and states the points each check cell must get: honest parts keep their points, tampered
parts get none, the batch completes in bounded time whatever the job folder holds, the report
gives a one-line reason, every HTML the grader writes is free of student scripts, nothing is left
in the temp folder, and no submission file changes.
"""
from __future__ import annotations

import copy
import html.parser
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from autograder import samples
from conftest import REPO, graders, tree_digest

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
    Hostile("deletes-test-cell", drop_cell(SPATIAL), FULL),  # restored, like nbgrader's add_missing_cells
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


# ---- class 1: the job folder is the student's: special files there must not hang the grader ----

PLANT = """import os, socket, signal
def plant(path, kind):
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil; shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == 'fifo':
        os.mkfifo(path)
    elif kind == 'socket':
        socket.socket(socket.AF_UNIX).bind(path)
    elif kind.startswith('link:'):
        os.symlink(kind[5:], path)
    elif kind == 'sparse':
        with open(path, 'wb') as f:
            f.truncate(15 << 20)
    elif kind == 'deep':
        os.makedirs(path)
        os.chdir(path)
        for _ in range(3000):
            try:
                os.mkdir('d' * 100)
                os.chdir('d' * 100)
            except OSError:
                break
        os.chdir('/tmp')
"""
REC = "/job/record/outputs/"


def planted(where: str, *plants, die=False):
    body = PLANT + "".join(f"plant({p!r}, {k!r})\n" for p, k in plants)
    if die:  # so the runner cannot replace what was planted when it finishes
        body += "os.kill(os.getpid(), signal.SIGKILL)\n"
    return after(where, body)


SPECIAL = [
    Hostile("fifo-as-own-recording", planted(FWD, (REC + "batchnorm_forward/0.json", "fifo")),
            NO_FORWARD, "recording was refused"),
    Hostile("fifo-as-recording-arrays", planted(FWD, (REC + "batchnorm_forward/1.npz", "fifo")),
            NO_FORWARD, "recording was refused"),
    Hostile("fifo-as-status", planted(FWD, ("/job/result/status.json", "fifo"), die=True),
            NO_SPATIAL, "before it could report"),
    Hostile("fifo-as-executed-notebook", planted(FWD, ("/job/result/executed.ipynb", "fifo"), die=True),
            NO_SPATIAL, "before it could report"),
    Hostile("fifo-as-progress", planted(SPATIAL, ("/job/result/progress.json", "fifo")), FULL),
    Hostile("fifo-as-manifest", planted(FWD, ("/job/record/manifest.json", "fifo")), NO_SPATIAL, "limit"),
    Hostile("socket-as-status", planted(FWD, ("/job/result/status.json", "socket"), die=True),
            NO_SPATIAL, "before it could report"),
    Hostile("symlink-status-to-host-file", planted(FWD, ("/job/result/status.json", "link:/etc/shadow"),
                                                   ("/job/result/executed.ipynb", "link:/etc/passwd"), die=True),
            NO_SPATIAL, "before it could report"),
    Hostile("symlink-recording-to-dev-zero", planted(FWD, (REC + "batchnorm_forward/0.npz", "link:/dev/zero")),
            NO_FORWARD, "recording was refused"),
    Hostile("symlink-recording-folder-to-root", planted(FWD, (REC + "batchnorm_forward", "link:/")),
            NO_FORWARD, "recording was refused"),
    Hostile("symlink-result-folder-to-host", planted(FWD, ("/job/result", "link:/proc/self/root/etc"), die=True),
            NO_SPATIAL, "before it could report"),
    Hostile("sparse-executed-notebook", planted(FWD, ("/job/result/executed.ipynb", "sparse"), die=True),
            NO_SPATIAL, "before it could report"),
    Hostile("deep-directory-tree", planted(FWD, ("/job/record/outputs/deep", "deep"),
                                           ("/job/result/deep", "deep")), FULL),
]

# ---- class 2: student-written HTML must not reach an instructor's browser ----------------------

XSS = ("<script>window.__pwned = 1</script>\n<img src=x onerror=\"window.__pwned = 2\">\n"
       "[click me](javascript:window.__pwned=3)\n<iframe srcdoc='<script>parent.__pwned=4</script>'></iframe>\n"
       "<a href=\"javascript:alert(1)\" onclick=\"alert(2)\">x</a><svg onload=alert(3)></svg>")


def markdown(source: str, attachments=None):
    def make(nb):
        cell = nbformat.v4.new_markdown_cell(source)
        if attachments:
            cell.attachments = attachments
        nb.cells.insert(3, cell)
        return nb
    return make


HTML = [
    Hostile("script-in-markdown", markdown(XSS), FULL),
    Hostile("svg-attachment-with-script", markdown("![x](attachment:x.svg)", {"x.svg": {
        "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' onload='window.__pwned=5'>"
                         "<script>window.__pwned=6</script></svg>"}}), FULL),
    Hostile("html-and-js-outputs", after(FWD, "from IPython.display import HTML, Javascript, display\n"
                                              "display(HTML('<script>window.__pwned=7</script>'))\n"
                                              "display(Javascript('window.__pwned=8'))"), FULL),
]

# ---- class 3: what honest editors do: a student keeps every point the code earns ----------------


def split(grade_id: str, head: str):
    """JupyterLab's split: both halves keep the cell's metadata (and so its grade_id)."""
    def make(nb):
        cell = _cell(nb, grade_id)
        first = copy.deepcopy(cell)
        first.source, first.id = head, "split-" + uuid.uuid4().hex[:8]
        nb.cells.insert(nb.cells.index(cell), first)
        return nb
    return make


def duplicate(grade_id: str):
    def make(nb):
        cell = _cell(nb, grade_id)
        twin = copy.deepcopy(cell)
        twin.id = "copy-" + uuid.uuid4().hex[:8]
        nb.cells.insert(nb.cells.index(cell) + 1, twin)
        return nb
    return make


def move(grade_id: str, to: int):
    def make(nb):
        cell = _cell(nb, grade_id)
        nb.cells.remove(cell)
        nb.cells.insert(to if to >= 0 else len(nb.cells), cell)
        return nb
    return make


def saved_as(minor: int, ids: bool, vscode: bool = False):
    def make(nb):
        doc = json.loads(nbformat.writes(nb))
        doc["nbformat_minor"] = minor
        for cell in doc["cells"]:
            if not ids:
                cell.pop("id", None)
            if vscode and cell["cell_type"] == "code":
                cell["metadata"]["vscode"] = {"languageId": "python"}
                cell["execution_count"] = 3
                cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "stray\n"}]
        if vscode:
            doc["metadata"]["vscode"] = {"interpreter": {"hash": "0" * 16}}
            doc["metadata"]["kernelspec"] = {"name": "python3", "display_name": ".venv (Python 3.12)",
                                             "language": "python"}
        return (f"{A}.ipynb", json.dumps(doc, indent=1).encode())
    return make


def prints_then_defines(grade_id: str):
    def make(nb):
        cell = _cell(nb, grade_id)
        cell.source = "for _ in range(3):\n    print('y' * (1 << 20))\n" + cell.source
        return nb
    return make


ACCIDENTS = [
    Hostile("split-solution-cell", split("batchnorm_forward", "import numpy as np"), FULL),
    Hostile("split-locked-setup-cell", split("setup", "import numpy as np"), FULL),
    Hostile("copied-solution-cell", duplicate("spatial_batchnorm_forward"), FULL),
    Hostile("copied-check-cell", duplicate(FWD), FULL),
    Hostile("copied-markdown-cell", duplicate("part1"), FULL),
    Hostile("deleted-both-check-cells", lambda nb: drop_cell(SPATIAL)(drop_cell(FWD)(nb)), FULL),
    Hostile("deleted-setup-cell", drop_cell("setup"), FULL),
    Hostile("check-moved-above-its-function", move(FWD, 0), FULL),
    Hostile("check-moved-to-the-end", move(SPATIAL, -1), FULL),
    Hostile("nbformat-4.0-no-ids", saved_as(0, ids=False), FULL),
    Hostile("nbformat-4.4-no-ids", saved_as(4, ids=False), FULL),
    Hostile("nbformat-4.5-with-ids", saved_as(5, ids=True), FULL),
    Hostile("vscode-with-stray-outputs", saved_as(4, ids=False, vscode=True), FULL),
    Hostile("prints-past-the-cap-then-defines", prints_then_defines("batchnorm_forward"), FULL),
]

EVERY = CASES + SPECIAL + HTML + ACCIDENTS


def _scratch(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("bn-"))


@pytest.fixture(scope="module", params=graders())
def hostile_class(request, grader_for, tmp_path_factory):
    grader = grader_for(request.param)
    root = grader.folder("hostile")
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    for case in EVERY:
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
    grader.own(root)
    before = tree_digest(root / "submitted")
    start = time.monotonic()
    cli = grader.run("grade", A, "--quiet", "--cell-timeout", "10", "--notebook-timeout", "60",
                     env={"BN_GRADER_ROOT": str(root)}, timeout=900)
    seconds = time.monotonic() - start
    assert cli.returncode == 0, (cli.stdout + cli.stderr)[-4000:]
    return {"root": root, "table": cli.stdout, "stderr": cli.stderr, "before": before,
            "after": tree_digest(root / "submitted"), "grader": grader, "seconds": seconds}


def _scores(root: Path, student: str) -> dict:
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        try:
            nb = gb.find_submission_notebook(A, A, student)
        except MissingEntry:
            return NOTHING
        return {g.name: float(g.score) for g in nb.grades}


@pytest.mark.parametrize("case", EVERY, ids=lambda c: c.name)
def test_hostile_submission(hostile_class, case):
    root, table = hostile_class["root"], hostile_class["table"]
    line = next(ln for ln in table.splitlines() if ln.startswith(case.name + " "))
    assert _scores(root, case.name) == case.scores, line
    if case.reason:
        feedback = root / "feedback" / case.name / A / f"{A}.html"
        shown = line + (feedback.read_text() if feedback.exists() else "")
        assert case.reason in " ".join(shown.split()), line


def test_the_mode_that_ran_is_said(hostile_class):
    mode = hostile_class["grader"].mode
    assert f"sandbox: {mode} mode" in hostile_class["stderr"]


def test_batch_completes_and_nothing_changes(hostile_class):
    assert hostile_class["before"] == hostile_class["after"]
    graded = [ln.split()[0] for ln in hostile_class["table"].splitlines()[1:]
              if ln and not ln.startswith(("gradebook", "grades", "feedback", "report"))]
    assert set(c.name for c in EVERY) <= set(graded)


def test_nothing_was_written_outside_the_sandbox(hostile_class):
    assert not (REPO / "solutions" / MARKER).exists()
    assert not Path(f"/tmp/{MARKER}").exists()
    assert not (REPO / "autograder" / MARKER).exists()
    assert not Path(f"/etc/{MARKER}").exists()


def test_output_flood_is_bounded(hostile_class):
    graded = hostile_class["root"] / "autograded" / "prints-1GB" / A / f"{A}.ipynb"
    assert graded.stat().st_size < 5 << 20


def test_nothing_is_left_in_the_temp_folder(hostile_class):
    tmpdir = Path(hostile_class["grader"].env["TMPDIR"])
    assert _scratch(tmpdir) == []


class _Active(html.parser.HTMLParser):
    """Everything in a page that can run script: <script>, on* attributes, javascript: URLs,
    frames and embedded objects."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script, self.scripts = [], False, []

    def handle_starttag(self, tag, attrs):
        if tag in ("iframe", "object", "embed", "frame"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "action", "srcdoc", "formaction") and value and \
                    value.strip().lower().startswith(("javascript:", "data:text/html")):
                self.found.append(f"<{tag} {name}={value[:30]}>")
        if tag == "script":
            self._in_script = True
            src = dict(attrs).get("src")
            if src is not None and not src.endswith("_mathjax/tex-chtml.js"):
                self.found.append(f"<script src={src}>")
            if src is not None:
                self.scripts.append(src)

    def handle_data(self, data):
        if self._in_script and data.strip() and not data.strip().startswith("window.MathJax = {"):
            self.found.append(f"<script>{data.strip()[:40]}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


def test_no_student_script_reaches_an_instructors_browser(hostile_class):
    root = hostile_class["root"]
    pages = [*root.joinpath("feedback").rglob("*.html"), root / "grade_report.html"]
    assert len(pages) > len(EVERY) // 2
    for page in pages:
        if "_mathjax" in page.parts:
            continue
        parser = _Active()
        parser.feed(page.read_text())
        assert parser.found == [], f"{page.relative_to(root)}: {parser.found[:5]}"
        assert all("//" not in s for s in parser.scripts), f"{page}: loads a script from the network"


def test_feedback_math_is_served_locally(hostile_class):
    root = hostile_class["root"]
    page = (root / "feedback" / "script-in-markdown" / A / f"{A}.html").read_text()
    assert '<script src="../../_mathjax/tex-chtml.js">' in page
    assert (root / "feedback" / "_mathjax" / "tex-chtml.js").stat().st_size > 100_000


# ---- class 5: nothing is left behind, whatever way a run ends ---------------------------------

@pytest.mark.parametrize("mode", graders())
def test_interrupted_and_killed_runs_leave_nothing(mode, grader_for, tmp_path_factory):
    grader = grader_for(mode)
    root = grader.folder("interrupt")
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    slow = after("setup", "import time\ntime.sleep(60)")(copy.deepcopy(release))
    for k in range(4):
        (root / "submitted" / f"slow-{k}" / A).mkdir(parents=True)
        nbformat.write(slow, root / "submitted" / f"slow-{k}" / A / f"{A}.ipynb")
    grader.own(root)
    tmpdir = Path(grader.env["TMPDIR"])
    env = {"BN_GRADER_ROOT": str(root)}
    seen = {}
    for how in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        proc = grader.popen("grade", A, "--quiet", "--no-feedback", env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                tmpdir.glob("bn-grader-*/jobs/*")):
            time.sleep(0.2)
        time.sleep(1.0)  # sandboxes are running now
        if how == signal.SIGKILL:  # everything in the session: runuser, the grader, its threads
            subprocess_lines(["pkill", "-KILL", "-s", str(proc.pid)])
        else:
            _signal_grader(proc, how)
        proc.communicate(timeout=60)
        time.sleep(0.5)
        seen[how.name] = _scratch(tmpdir)
        if how != signal.SIGKILL:
            assert seen[how.name] == [], f"after {how.name}: {seen[how.name]}"
            assert proc.returncode != 0
    # A killed run cannot clean up after itself; the next run sweeps what it left.
    assert seen["SIGKILL"] != []
    done = grader.run("grade", A, "--quiet", "--no-feedback", "--student", "nobody", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _scratch(tmpdir) == []
    left = subprocess_lines(["pgrep", "-f", "autograder.student.runner"])
    assert left == [], f"sandboxes still running: {left}"


def _signal_grader(proc, how):
    """Signal the grading process itself (not its sandboxes), as Ctrl-C or `kill` would."""
    import subprocess
    pids = subprocess.run(["pgrep", "-s", str(proc.pid), "-x", "python"],
                          capture_output=True, text=True).stdout.split()
    for pid in pids or [str(proc.pid)]:
        try:
            os.kill(int(pid), how)
        except ProcessLookupError:
            pass


def subprocess_lines(cmd) -> list[str]:
    import subprocess
    return subprocess.run(cmd, capture_output=True, text=True).stdout.split()
