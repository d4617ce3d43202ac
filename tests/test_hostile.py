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

from autograder.course import samples

from conftest import REPO, graded_points, graders, tree_digest

A = "ch2_forward"
FWD, SPATIAL = "check_ghost_batchnorm_forward", "check_channels_last_batchnorm_forward"
MARKER = f"PWNED-{uuid.uuid4().hex[:8]}"


@dataclass
class Hostile:
    name: str
    make: Callable       # honest notebook -> notebook, or -> (filename, bytes)
    scores: dict         # check cell -> points
    reason: str = ""     # expected in the report line / feedback
    files: dict | None = None   # other files handed in beside the notebook


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def after(grade_id: str, source: str):
    def make(nb):
        index = nb.cells.index(_cell(nb, grade_id))
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
        return nb
    return make


def before(grade_id: str, source: str):
    def make(nb):
        nb.cells.insert(nb.cells.index(_cell(nb, grade_id)), nbformat.v4.new_code_cell(source))
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
    return solution("channels_last_batchnorm_forward",
                    f"def channels_last_batchnorm_forward(x, gamma, beta, eps=1e-5):\n    return {expr}", *extra)


def forward_returns(expr: str):
    return solution("ghost_batchnorm_forward", "def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):\n"
                    "    g = x.reshape(-1, ghost_size, x.shape[1])\n"
                    "    mu = g.mean(1, keepdims=True); v = ((g - mu) ** 2).mean(1, keepdims=True)\n"
                    "    out = (gamma * (g - mu) / np.sqrt(v + eps) + beta).reshape(x.shape)\n"
                    f"    return {expr}")


# a right ghost_batchnorm_forward's body, for the attacks that keep their points
GHOST_BODY = ("    g = x.reshape(-1, ghost_size, x.shape[1])\n"
              "    out = (gamma * (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + eps)"
              " + beta).reshape(x.shape)\n")


def raw(filename: str, data: bytes):
    return lambda nb: (filename, data)


def drop_cell(grade_id):
    def make(nb):
        nb.cells.remove(_cell(nb, grade_id))
        return nb
    return make


def _landlock_abi() -> int:
    """The Landlock ABI a recorder child gets here (0: none)."""
    import tempfile

    from autograder.student import recorder
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            code = recorder._landlock(tempfile.gettempdir())
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


LANDLOCK_ABI = _landlock_abi()
POINTS = graded_points(A)
AUTO = sum(graded_points(A, "code").values())   # what the judge grades
# These submissions attack around the first two checks; scores are compared on those two.
FULL = {FWD: POINTS[FWD], SPATIAL: POINTS[SPATIAL]}
NO_SPATIAL = {FWD: POINTS[FWD], SPATIAL: 0.0}
NO_FORWARD = {FWD: 0.0, SPATIAL: POINTS[SPATIAL]}
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
    # Defeating the runner's own clock leaves the parent's watchdog: the run is killed, then
    # resumed with that cell skipped, so the checks after it still run.
    Hostile("infinite-loop-every-signal-ignored", after(
        FWD, "import signal\nfor s in (signal.SIGINT, signal.SIGALRM, signal.SIGTERM):\n"
             "    signal.signal(s, signal.SIG_IGN)\nsignal.setitimer = lambda *a: None\nwhile True:\n    pass"),
        FULL, "the run resumed after it"),
    Hostile("infinite-loop-sigint-blocked", solution(
        "channels_last_batchnorm_forward",
        "import signal\ndef channels_last_batchnorm_forward(x, gamma, beta, eps=1e-5):\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n    while True:\n        pass"),
        NO_SPATIAL, "limit"),
    Hostile("fork-storm", after(FWD, "import os, time\nfor _ in range(5000):\n    try:\n"
                                     "        pid = os.fork()\n    except OSError:\n        break\n"
                                     "    if pid == 0:\n        time.sleep(20)\n        os._exit(0)"),
            NO_SPATIAL, "no process could be started for this check"),
    Hostile("allocates-50GB", after(FWD, "big = np.ones(50 * 2**30 // 8)"), FULL),
    Hostile("prints-1GB", after(FWD, "for _ in range(1024):\n    print('x' * (1 << 20))"), FULL),
    Hostile("writes-outside-tmp", after(FWD, "\n".join(
        f"try:\n    open({p!r}, 'w').write('x')\nexcept OSError as e:\n    print(e)"
        for p in (str(REPO / "solutions" / MARKER), f"/tmp/{MARKER}", "/course/autograder/course/checks.py",
                  "/etc/" + MARKER, str(REPO / "autograder" / MARKER)))), FULL),
    Hostile("network", after(FWD, "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), 2)\n"
                                  "    socket.create_connection(('1.1.1.1', 80), 2)\nexcept OSError as e:\n    print(e)"),
            FULL),
    Hostile("deletes-test-cell", drop_cell(SPATIAL), FULL),  # restored, like nbgrader's add_missing_cells
    Hostile("edits-test-cell", solution(FWD, "pass", solution(
        "ghost_batchnorm_forward", "def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):\n    return x, None")),
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
    Hostile("fifo-as-own-recording", planted(FWD, (REC + "ghost_batchnorm_forward/0.json", "fifo")),
            NO_FORWARD, "recording was refused"),
    Hostile("fifo-as-recording-arrays", planted(FWD, (REC + "ghost_batchnorm_forward/1.arrays", "fifo")),
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
    Hostile("symlink-recording-to-dev-zero", planted(FWD, (REC + "ghost_batchnorm_forward/0.arrays", "link:/dev/zero")),
            NO_FORWARD, "recording was refused"),
    Hostile("symlink-recording-folder-to-root", planted(FWD, (REC + "ghost_batchnorm_forward", "link:/")),
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
    Hostile("split-solution-cell", split("ghost_batchnorm_forward", "import numpy as np"), FULL),
    Hostile("split-locked-setup-cell", split("setup", "import numpy as np"), FULL),
    Hostile("copied-solution-cell", duplicate("channels_last_batchnorm_forward"), FULL),
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
    Hostile("prints-past-the-cap-then-defines", prints_then_defines("ghost_batchnorm_forward"), FULL),
]

# ---- class 4 (issue 16): one notebook never stops, fools or poisons the batch ------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def displays(*items):
    """A cell that displays raw outputs: (data, metadata) pairs."""
    lines = ["from IPython.display import display"]
    lines += [f"display({data!r}, raw=True, metadata={meta!r})" for data, meta in items]
    return after(FWD, "\n".join(lines))


def attachment_of(megabytes: int):
    def make(nb):
        cell = nbformat.v4.new_markdown_cell("My working, as a photo: ![page](attachment:page.png)")
        cell.attachments = {"page.png": {"image/png": "A" * (megabytes << 20)}}
        nb.cells.insert(3, cell)
        return nb
    return make


def big_code_cell(megabytes: float):
    """An ordinary, honest cell holding a large table of numbers."""
    def make(nb):
        row = ", ".join(f"{k * 0.001:.6f}" for k in range(100))
        n = int(megabytes * (1 << 20) / (len(row) + 8))
        source = "TABLE = [\n" + "".join(f"    [{row}],\n" for _ in range(n)) + "]\nprint(len(TABLE))"
        nb.cells.insert(nb.cells.index(_cell(nb, "setup")) + 1, nbformat.v4.new_code_cell(source))
        return nb
    return make


FORGE = PLANT + """import json
nb = json.load(open('/job/notebook.ipynb'))
for cell in nb['cells']:
    if cell['cell_type'] == 'code':
        cell['execution_count'] = 'x'
        cell['outputs'] = ['not-a-dict', {'output_type': 'stream', 'name': 'stdout', 'text': 123},
            {'output_type': 'display_data', 'data': {'image/png': 'x" onerror="window.__pwned=20'},
             'metadata': {'image/png': 'not-a-dict'}},
            {'output_type': 'display_data', 'data': {'image/png': %r}, 'metadata': ['odd']},
            {'output_type': 'execute_result', 'data': {'text/plain': ['a', 1]}, 'execution_count': '7',
             'metadata': {}},
            {'output_type': 'error', 'ename': 1, 'evalue': None, 'traceback': 'x'}]
json.dump(nb, open('/job/result/executed.ipynb', 'w'))
os.kill(os.getpid(), signal.SIGKILL)
""" % PNG

AFTER_INPUTS_NOTE = "ran after a check had been handed its hidden inputs"
SAVER = """import os
def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):
    for p in ('/tmp/saved-inputs.txt', '/job/saved-inputs.txt', '/job/record/outputs/ghost_batchnorm_forward/saved.txt'):
        try:
            with open(p, 'a') as f:
                f.write('SAVED-' + 'INPUT-' + repr(x.ravel()[:4].tolist()) + '\\n')
        except OSError:
            pass
    return np.zeros_like(x), None"""
SHOW_SAVED = """import glob
for p in ['/tmp/saved-inputs.txt', '/job/saved-inputs.txt'] + glob.glob('/job/record/outputs/*/saved.txt'):
    try:
        print(open(p).read())
    except OSError:
        pass"""
ASK_SERVER = """from autograder.student import recording
got = []
for k in range(8):
    try:
        got.append(recording.case_input(recording.connect_inputs(), 'channels_last_batchnorm_forward', k))
    except Exception:
        pass
print('INPUT-SERVER-' + ('GAVE-' + 'INPUTS' if got else 'SAID-NO'))"""
FORK_ASKS = """import os
from autograder.student import recording
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        got = recording.case_input(recording.connect_inputs(), 'channels_last_batchnorm_forward', 0)
        os.write(w, ('FORK-' + 'GOT-' + repr(got)[:300]).encode())
    except BaseException as e:
        os.write(w, ('FORK-REFUSED ' + type(e).__name__).encode())
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
print(os.read(r, 4096).decode())"""

BATCH = [
    Hostile("output-metadata-not-a-dict", displays(({"image/png": PNG}, {"image/png": "not-a-dict"}),
                                                   ({"image/png": PNG}, ["a", "list"]),
                                                   ({"text/plain": "fine"}, {"text/plain": 3})), FULL),
    Hostile("forged-executed-notebook", after(FWD, FORGE), NO_SPATIAL, "before it could report"),
    Hostile("70MB-markdown-attachment", attachment_of(70), FULL),
    Hostile("code-cell-of-11MB", big_code_cell(10.9), FULL),
    Hostile("unreadable-timestamp", lambda nb: nb, FULL, "timestamp.txt could not be read",
            files={"timestamp.txt": b"\xff\xfe not a time \x00" * 10}),
    # item 4: a bad value fails its own function, nothing else
    Hostile("returns-huge-int", forward_returns("10**400, None"), NO_FORWARD, "is int"),
    Hostile("returns-int-past-str-limit", forward_returns("10**5000, None"), NO_FORWARD, "not recordable"),
    Hostile("returns-odd-object", forward_returns(
        "type('Odd', (), {'__array__': lambda *a, **k: 1 / 0, '__len__': lambda s: -1, "
        "'__float__': lambda s: 1 / 0})(), None"), NO_FORWARD, "is Odd"),
    Hostile("ungraded-cache-as-big-list", forward_returns("out, (x.tolist(), [x.tolist()] * 50)"), FULL),
    Hostile("ungraded-cache-nested-deep", forward_returns(
        "out, __import__('functools').reduce(lambda acc, _: [acc], range(12), [1.0])"), FULL),
    # item 5: a call stuck where no signal reaches costs its own function only
    Hostile("stuck-in-c-code", solution(
        "ghost_batchnorm_forward", "import hashlib\ndef ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):\n"
        "    hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 10**9)\n    return x, None"),
        NO_FORWARD, "did not return within"),
    Hostile("stuck-in-c-code-in-ordinary-cell", after(
        FWD, "import hashlib\nhashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 10**9)"), FULL,
        "the run resumed after it"),
    # item 8: messages say what happened
    Hostile("lingering-thread", after(SPATIAL, "import threading\n"
                                               "threading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()"),
            FULL),
    Hostile("run-dies-midway-through-a-check", solution(
        "ghost_batchnorm_forward", "import os, signal\nCALLS = []\n"
        "def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):\n    CALLS.append(1)\n"
        "    if len(CALLS) == 3:\n        os.kill(os.getppid(), signal.SIGKILL)\n        os.kill(os.getpid(), signal.SIGKILL)\n"
        + GHOST_BODY + "    return out, None"),
        # Where Landlock scopes signals (Linux 6.12+), the recorder child may not kill the notebook.
        *((NO_FORWARD, "PermissionError") if LANDLOCK_ABI >= 6 else (NOTHING, "2 of "))),
    # item 3: hidden inputs are on no disk before their case, and nothing of them survives it
    Hostile("looks-for-hidden-inputs", after("setup", "import os\nfound = [f for d, _, fs in os.walk('/job') "
                                                       "for f in fs if 'inputs' in d or f.startswith('input')]\n"
                                                       "print(('INPUTS' if found else 'NO-INPUTS') + '-ON-DISK')"),
            FULL, "NO-INPUTS-ON-DISK"),
    Hostile("looks-for-the-course-secret", after("setup", "import os\nfound = [d for top in ('/tmp', '/job', "
                                                          "'/course', '/root', '/home', '/work', '/etc') "
                                                          "for d, _, fs in os.walk(top) if '.case_secret' in fs]\n"
                                                          "print(('SECRET' if found else 'NO-SECRET') + '-HERE')"),
            FULL, "NO-SECRET-HERE"),
    # Armed just before its check cell, disarmed just after: only the grader's calls count.
    Hostile("stashes-hidden-inputs", solution(
        "ghost_batchnorm_forward", "import builtins\nbuiltins.STASH, builtins.ARMED = [], False\n"
        "def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):\n    if builtins.ARMED:\n"
        "        builtins.STASH.append(x.copy())\n        print('HIDDEN-' + 'INPUT-' + repr(x.shape))\n"
        + GHOST_BODY + "    return out, None",
        before(FWD, "import builtins\nbuiltins.ARMED = True"),
        after(FWD, "import builtins\nbuiltins.ARMED = False\nprint('STASH' + 'ED-' + str(len(builtins.STASH)))")),
        FULL, AFTER_INPUTS_NOTE),
    # issue 25, item 1: each leak of a hidden input back to the notebook, and asking for inputs
    Hostile("saves-hidden-inputs-for-a-later-cell", solution("ghost_batchnorm_forward", SAVER, after(FWD, SHOW_SAVED)),
            NO_FORWARD, AFTER_INPUTS_NOTE),
    Hostile("notebook-asks-the-input-server", after("setup", ASK_SERVER), FULL, "INPUT-SERVER-SAID-NO"),
    Hostile("fork-asks-the-input-server", after("setup", FORK_ASKS), NO_SPATIAL, "could not hand over"),
]

# item 6: all of a sandbox's processes together stay under its memory cap
HOLD = """import os, time
import numpy as np
pipes = []
for _ in range(3):
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r); os.close(w)
        break
    if pid == 0:
        n = 0
        try:
            held = []
            while n < 16:
                held.append(np.ones(128 << 17)); n += 1
        except BaseException:
            pass
        finally:
            try:
                os.write(w, str(n).encode()); time.sleep(2)
            finally:
                os._exit(0)
    os.close(w)
    pipes.append(r)
total = sum(int(os.read(r, 16) or b'0') for r in pipes) * 128 / 1024
print('HELD' + f'-GIB-{total:.2f}-PROCS-{len(pipes)}-END')"""

HTML += [
    Hostile("image-metadata-with-event-handler", displays(
        ({"image/png": PNG}, {"image/png": {"width": "1 onerror=window.__pwned=9", "height": 2}})), FULL),
    Hostile("image-data-breaks-its-attribute", displays(
        ({"image/png": 'x" onerror="window.__pwned=10'}, {}),
        ({"image/jpeg": PNG, "text/html": "<script>window.__pwned=12</script>"}, {})), FULL),
    Hostile("language-info-with-script", lambda nb: (nb.metadata.update(language_info={
        "name": "<script>window.__pwned=11</script>", "version": "\" onload=\"window.__pwned=13"}), nb)[1], FULL),
]

# item 7: student-controlled text cannot write the instructor's terminal, CSV or report
BAD_IDS = ["\x1b[2K\rfake-honest ch2_forward 10 of 10 all checks pass\x1b[31m", "=1+2", "a,b", "new\nline",
           "bidi\u202eevil", "@cmd", "-2+3"]
BIDI_ERROR = forward_returns("(_ for _ in ()).throw(ValueError('\u202e\x1b[2Kfake 10/10'))")

EVERY = CASES + SPECIAL + HTML + ACCIDENTS + BATCH


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
        for name, data in (case.files or {}).items():
            (folder / name).write_bytes(data)
    for k, student in enumerate(BAD_IDS):
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        nbformat.write(BIDI_ERROR(copy.deepcopy(honest)) if k == 0 else honest, folder / f"{A}.ipynb")
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
        return {g.name: float(g.score) for g in nb.grades if g.name in NOTHING}


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
    line = next(ln for ln in hostile_class["stderr"].splitlines() if f"sandbox: {mode} mode" in ln)
    assert "memory:" in line and "per notebook" in line


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
    # torch's caches (torchinductor_<user>, triton) went in the grader's own folder, and with it
    assert not [p.name for p in tmpdir.iterdir() if p.name.startswith(("torchinductor", "triton"))]


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
    seen, running_seen = {}, []
    for how in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        proc = grader.popen("grade", A, "--quiet", "--no-feedback", env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(  # job 1 is the health check's
                tmpdir.glob("bn-grader-*/jobs/*"))) < 2:
            time.sleep(0.2)
        time.sleep(1.0)  # students' sandboxes are running now
        running_seen += own_runners(tmpdir)
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
    assert running_seen, "the test never saw its own sandboxes running"
    left = own_runners(tmpdir)
    assert left == [], f"sandboxes still running: {left}"


def own_runners(tmpdir: Path) -> list[str]:
    """Sandboxed notebook runs of the grader whose scratch space is under ``tmpdir``, and no other
    grader's: a run's sandbox (its bubblewrap, an ancestor) names that scratch folder."""
    mine = []
    marker = f"{tmpdir}/{sb_prefix()}".encode()
    for pid in subprocess_lines(["pgrep", "-f", "autograder.student.runner"]):
        current = pid
        for _ in range(8):  # runner <- sandbox init <- bubblewrap <- grader
            try:
                if marker in Path(f"/proc/{current}/cmdline").read_bytes():
                    mine.append(pid)
                    break
                current = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                break
            if current in ("0", "1"):
                break
    return mine


def sb_prefix() -> str:
    from autograder.grader.sandbox import RUN_PREFIX
    return RUN_PREFIX


def test_leftover_check_sees_only_its_own_runs(tmp_path):
    """Other grading on the machine (here a process named like a sandboxed run) is not ours."""
    import subprocess
    decoy = subprocess.Popen(["bash", "-c", "exec -a 'python -m autograder.student.runner /job 1 1' sleep 60"])
    try:
        time.sleep(0.3)
        assert str(decoy.pid) in subprocess_lines(["pgrep", "-f", "autograder.student.runner"])
        assert own_runners(tmp_path) == []
    finally:
        decoy.kill()
        decoy.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="a course venv the test user cannot reach needs root")
def test_user_mode_grades_with_the_course_venv_in_a_private_folder(tmp_path):
    """A clone under a mode-700 folder (e.g. /root): the test user cannot reach the course venv,
    and user-mode grading still works."""
    import shutil
    import subprocess
    import tempfile

    from conftest import TEST_USER, _course_packages, _user_grader
    private = Path(tempfile.mkdtemp(prefix="bncourse-private-"))
    outside = Path(tempfile.mkdtemp(prefix="bncourse-usertest-"))
    try:
        private.chmod(0o700)
        site, share = _course_packages()
        (private / "site").symlink_to(site)
        (private / "share").symlink_to(share)
        grader = _user_grader(outside, private / "site", private / "share")
        blocked = subprocess.run(["runuser", "-u", TEST_USER, "--", "ls", str(private / "site")],
                                 capture_output=True, text=True)
        assert blocked.returncode != 0  # the course venv is out of the test user's reach
        root = grader.folder("private-clone")
        release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
        honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
        (root / "submitted" / "someone" / A).mkdir(parents=True)
        nbformat.write(honest, root / "submitted" / "someone" / A / f"{A}.ipynb")
        grader.own(root)
        done = grader.run("grade", A, "--quiet", env={"BN_GRADER_ROOT": str(root)}, timeout=600)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        assert "sandbox: user mode" in done.stderr
        assert _scores(root, "someone") == FULL
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)


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


# ---- issue 16: what the batch above must also show ----------------------------------------------

def _feedback(root: Path, student: str) -> str:
    import html
    page = root / "feedback" / student / A / f"{A}.html"
    return html.unescape(page.read_text()) if page.exists() else ""


def test_hidden_inputs_leave_no_trace_in_feedback(hostile_class):
    """No input file before its case runs; what a function printed or stored while it held
    hidden inputs dies with its recording process."""
    root = hostile_class["root"]
    assert "NO-INPUTS-ON-DISK" in _feedback(root, "looks-for-hidden-inputs")
    stash = _feedback(root, "stashes-hidden-inputs")
    assert AFTER_INPUTS_NOTE in stash and "HIDDEN-INPUT-" not in stash and "STASHED-" not in stash
    assert "INPUT-SERVER-SAID-NO" in _feedback(root, "notebook-asks-the-input-server")
    for page in root.joinpath("feedback").rglob("*.html"):
        text = page.read_text()
        assert "INPUTS-ON-DISK" not in text.replace("NO-INPUTS-ON-DISK", "") and "HIDDEN-INPUT-" not in text
        assert "SAVED-INPUT-" not in text and "FORK-GOT-" not in text and "INPUT-SERVER-GAVE-" not in text
        assert "SECRET-HERE" not in text.replace("NO-SECRET-HERE", "")


def test_rendered_pages_are_bounded(hostile_class):
    root = hostile_class["root"]
    for student in ("code-cell-of-11MB", "70MB-markdown-attachment", "prints-1GB"):
        graded = root / "autograded" / student / A / f"{A}.ipynb"
        page = root / "feedback" / student / A / f"{A}.html"
        assert graded.stat().st_size < 3 << 20, student
        assert page.stat().st_size < 4 << 20, student
    assert "the grader does not show the remaining" in _feedback(root, "code-cell-of-11MB")


def test_autograded_notebooks_keep_only_allow_listed_outputs(hostile_class):
    """What formgrader renders: output types, fields and metadata from an allow-list only."""
    from autograder.grader.safety import SAFE_MIME
    for path in hostile_class["root"].joinpath("autograded").rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert set(nb["metadata"].get("language_info", {"name": "python"}).values()) <= {"python"}, path
        for cell in nb["cells"]:
            assert "attachments" not in cell, path
            for out in cell.get("outputs", []):
                assert isinstance(out, dict) and out["output_type"] in (
                    "stream", "error", "display_data", "execute_result"), path
                if out["output_type"] in ("display_data", "execute_result"):
                    assert set(out["data"]) <= set(SAFE_MIME), path
                    for mime, meta in out["metadata"].items():
                        assert mime in ("image/png", "image/jpeg") and set(meta) <= {"width", "height"}, path
                        assert all(type(v) is int for v in meta.values()), path
                if out["output_type"] == "stream":
                    assert isinstance(out["text"], str), path


def test_student_text_cannot_write_the_terminal_csv_or_report(hostile_class):
    import csv
    root, table = hostile_class["root"], hostile_class["table"]
    for raw_char in ("\x1b", "\r", "\u202e"):
        assert raw_char not in table
        assert raw_char not in (root / "grade_report.html").read_text()
    assert not any(ln.startswith("fake-honest") for ln in table.splitlines())
    assert "\\u202e" in table  # shown, escaped
    with open(root / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["student_id"]: r for r in rows}
    assert len(rows) == len({r["student_id"] for r in rows})
    from autograder.grader.safety import safe_id
    for bad in BAD_IDS:
        shown = bad.replace("\n", "\\n").replace("\x1b", "\\u001b").replace("\r", "\\u000d") \
            .replace("\u202e", "\\u202e")
        if not safe_id(bad):  # issue 25: not a student id: refused in one line, never graded
            assert any("REFUSED" in ln and shown in ln for ln in table.splitlines()), (bad, table[-2000:])
            assert not any(r.get("student_id") in (bad, shown) for r in rows)
            continue
        shown = "'" + shown if shown[:1] in "=+-@" else shown  # the CSV guard's prefix
        assert shown in by_id, (bad, sorted(by_id)[:10])
        assert float(by_id[shown]["max_score"]) == sum(POINTS.values())
    with open(root / "grades.csv") as f:
        assert all(line.startswith('"') for line in f)


def test_self_check_and_grader_agree_on_what_is_recorded():
    """The self-check applies the recording's encoding: a graded value it cannot record fails
    there as it fails in grading, and an ungraded one never costs the graded one."""
    from autograder.course import cases, checks
    from autograder.student import recording, selfcheck
    from autograder.student.verdict import Result
    check = cases.find("ghost_batchnorm_forward")

    def right(x, gamma, beta, ghost_size, eps=1e-5):
        g = x.reshape(-1, ghost_size, x.shape[1])
        out = (gamma * (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + eps)
               + beta).reshape(x.shape)
        deep = [1.0]
        for _ in range(12):
            deep = [deep]
        return out, (x.tolist() * 200, deep)

    def deep_out(x, gamma, beta, ghost_size, eps=1e-5):
        out = right(x, gamma, beta, ghost_size, eps)[0].tolist()
        for _ in range(12):
            out = [out]
        return out, None

    import numpy as np
    selfcheck.check("ghost_batchnorm_forward", right)  # passes: the cache is not graded
    with pytest.raises(AssertionError) as local:
        selfcheck.check("ghost_batchnorm_forward", deep_out)
    case = next(c for c in check.cases if not c.hidden)
    values = deep_out(**checks.case_inputs(check, case))
    meta, npz = recording.dumps(recording.recordable(values, check.returns, check.compared))
    got = recording.loads(meta, npz, untrusted=True)["value"]
    judged = checks.judged(checks.Check(**{**check.__dict__, "cases": (case,)}), [Result("ok", got)])
    assert not judged.passed and judged.message == str(local.value)
    assert "too deep" in judged.message or "nested" in judged.message


def test_a_table_of_hidden_inputs_buys_nothing(grader_for, monkeypatch):
    """Submission 1 learns its hidden inputs; submission 2 answers them from a table. Hidden
    inputs are keyed by the course secret and the submission, so the table meets new inputs;
    grading the same file again gives the same grade."""
    from autograder.course import cases, checks
    from autograder.grader import keys
    from autograder.grader import pipeline as grading
    grader = grader_for(graders()[0])
    root = grader.folder("lookup")
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    (root / "submitted" / "first" / A).mkdir(parents=True)
    nbformat.write(honest, root / "submitted" / "first" / A / f"{A}.ipynb")
    grader.own(root)
    env = {"BN_GRADER_ROOT": str(root)}
    assert grader.run("grade", A, "--quiet", "--no-feedback", env=env).returncode == 0
    # What the first submission could have printed: its inputs, as the grader drew them.
    monkeypatch.setenv("BN_GRADER_ROOT", str(root))
    api = grading.make_api(grading.load_config())
    first = grading.sanitize(api, root / "submitted" / "first" / A / f"{A}.ipynb", A, "first", A)
    secret = keys.course_secret(root)
    check = cases.find("ghost_batchnorm_forward")
    with checks.keyed(keys.submission_key(secret, first)):
        table = [(checks.case_inputs(check, c)["x"], checks.expected_outputs(check, c)[0]) for c in check.cases]
    lines = ["import numpy as np", "TABLE = ["]
    lines += [f"    (np.array({x.tolist()!r}), np.array({out.tolist()!r}))," for x, out in table]
    lines += ["]", "def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):",
              "    for seen, out in TABLE:", "        if seen.shape == x.shape and np.allclose(seen, x):",
              "            return out.copy(), None", "    return np.zeros_like(x), None"]
    cheat = copy.deepcopy(honest)
    _cell(cheat, "ghost_batchnorm_forward").source = "\n".join(lines)
    (root / "submitted" / "second" / A).mkdir(parents=True)
    nbformat.write(cheat, root / "submitted" / "second" / A / f"{A}.ipynb")
    grader.own(root)
    namespace: dict = {}
    exec("\n".join(lines), namespace)
    with checks.keyed(keys.submission_key(secret, first)):  # the table is right for those inputs
        assert checks.verdict_for_function(check, namespace["ghost_batchnorm_forward"]).passed
    for _ in range(2):  # the second time: the same files, the same grades
        done = grader.run("grade", A, "--quiet", "--no-feedback", env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert _scores(root, "first") == FULL
        assert _scores(root, "second")[FWD] == 0.0, done.stdout
        assert "(hidden)" in next(ln for ln in done.stdout.splitlines() if ln.startswith("second "))
    assert not (REPO / "autograder" / ".case_secret").exists() or \
        (REPO / "autograder" / ".case_secret").stat().st_mode & 0o077 == 0


READS_TABLE = """import json
import numpy as np
def ghost_batchnorm_forward(x, gamma, beta, ghost_size, eps=1e-5):
    table = globals().get('ANSWERS')
    if table is None:
        try:
            table = json.load(open('/job/notebook.ipynb'))['metadata'].get('answers', [])
        except Exception:
            table = []
    for seen, out in table:
        seen = np.array(seen)
        if seen.shape == x.shape and np.allclose(seen, x):
            return np.array(out), None
    return np.zeros_like(x), None"""


def test_a_table_in_the_metadata_of_an_identical_resubmission_buys_nothing(grader_for, monkeypatch):
    """issue 25: the key covers the whole submission. A notebook that answers from a table in its
    own metadata, resubmitted with the table of the inputs its first version met (code unchanged),
    meets new inputs: 0 for that function."""
    from autograder.course import cases, checks
    from autograder.grader import keys
    from autograder.grader import pipeline as grading
    grader = grader_for(graders()[0])
    root = grader.folder("metatable")
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    first = copy.deepcopy(honest)
    _cell(first, "ghost_batchnorm_forward").source = READS_TABLE
    for student in ("first", "again"):
        (root / "submitted" / student / A).mkdir(parents=True)
    nbformat.write(first, root / "submitted" / "first" / A / f"{A}.ipynb")
    grader.own(root)
    graded = grader.run("grade", A, "--quiet", "--no-feedback", env={"BN_GRADER_ROOT": str(root)})
    assert graded.returncode == 0, graded.stderr[-2000:]  # the gradebook now knows the assignment
    assert _scores(root, "first")[FWD] == 0.0  # no table: nothing to answer from
    monkeypatch.setenv("BN_GRADER_ROOT", str(root))
    api = grading.make_api(grading.load_config())
    sanitized = grading.sanitize(api, root / "submitted" / "first" / A / f"{A}.ipynb", A, "first", A)
    secret = keys.course_secret(root)
    check = cases.find("ghost_batchnorm_forward")
    with checks.keyed(keys.submission_key(secret, sanitized)):
        table = [(checks.case_inputs(check, c)["x"].tolist(), checks.expected_outputs(check, c)[0].tolist())
                 for c in check.cases]
        namespace: dict = {"ANSWERS": table}
        exec(READS_TABLE, namespace)  # the table is right for the first version's inputs
        assert checks.verdict_for_function(check, namespace["ghost_batchnorm_forward"]).passed
    again = copy.deepcopy(first)
    again.metadata["answers"] = table  # the very same code: only the metadata differs
    nbformat.write(again, root / "submitted" / "again" / A / f"{A}.ipynb")
    resubmitted = grading.sanitize(api, root / "submitted" / "again" / A / f"{A}.ipynb", A, "again", A)
    assert [c.source for c in resubmitted.cells] == [c.source for c in sanitized.cells]
    assert keys.submission_key(secret, resubmitted) != keys.submission_key(secret, sanitized)
    grader.own(root)
    done = grader.run("grade", A, "--quiet", "--no-feedback", env={"BN_GRADER_ROOT": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert _scores(root, "again")[FWD] == 0.0, done.stdout
    assert _scores(root, "again")[SPATIAL] == POINTS[SPATIAL], done.stdout


def test_a_broken_sandbox_stops_grading_before_any_grade(tmp_path):
    """A sandbox that starts but cannot run student code: the health check fails, `grade` exits
    non-zero with the reason, and no student gets a grade."""
    from conftest import run_cli
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    (tmp_path / "submitted" / "someone" / A).mkdir(parents=True)
    nbformat.write(honest, tmp_path / "submitted" / "someone" / A / f"{A}.ipynb")
    done = run_cli("grade", A, "--quiet", env={"BN_GRADER_ROOT": str(tmp_path), "BN_BWRAP": str(fake)})
    assert done.returncode == 3, done.stdout + done.stderr[-2000:]
    assert "known-good notebook" in done.stderr and "before writing any grade" in done.stderr
    assert not (tmp_path / "grades.csv").exists() and not (tmp_path / "grading_log.json").exists()
    assert "someone" not in done.stdout
    if (tmp_path / "gradebook.db").exists():
        assert _scores(tmp_path, "someone") == NOTHING
