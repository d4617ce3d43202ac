"""The zygote (``autograder.grader.sandbox.zygote``): a run forked from a pre-imported interpreter
must see exactly the sandbox a fresh interpreter sees, in both sandbox modes."""
import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest

from autograder.grader import sandbox
from autograder.grader.sandbox import zygote
from autograder.grader.sandbox.bwrap import sandbox_env

# What the notebook's process can tell about where it runs.
PROBE = r'''
import json, os, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
        "Seccomp")
seen = {
    "status": {k: status[k].strip() for k in keys},
    "uid_map": open("/proc/self/uid_map").read().split(),
    "gid_map": open("/proc/self/gid_map").read().split(),
    "limits": open("/proc/self/limits").read().splitlines(),
    "init_limits": open("/proc/1/limits").read().splitlines(),
    "path": sys.path, "env": dict(os.environ), "cwd": os.getcwd(),
    "mounts": sorted(line.split()[4] for line in open("/proc/self/mountinfo")),
    "mount_options": sorted(" ".join(line.split()[4:6]) for line in open("/proc/self/mountinfo")),
    "fds": sorted(os.listdir("/proc/self/fd")),
    "namespaces_unlike_init": None,
    "executable": sys.executable, "prefix": sys.prefix, "argv": sys.argv[:2],
    "stdio": [(s.encoding, s.errors, s.line_buffering) for s in (sys.__stdin__, sys.__stdout__, sys.__stderr__)],
    "dont_write_bytecode": sys.dont_write_bytecode,
    "grader_modules": sorted(m for m in sys.modules if m.startswith("autograder.grader") or m == "torch"),
    "hostname": os.uname().nodename, "ppid": os.getppid(),
    "session_leader": os.getsid(0) == os.getpid(), "group_leader": os.getpgid(0) == os.getpid(),
    "cmdline": open("/proc/self/cmdline").read().rstrip("\0").split("\0")[:4],
    "init": "waiter" if "select.select" in open("/proc/1/cmdline").read() else "bubblewrap",
    "numpy_random": float(__import__("numpy").random.random()),
    "py_random": __import__("random").random(),
    "matplotlib": [__import__("matplotlib").get_configdir(), __import__("matplotlib").get_cachedir(),
                   __import__("matplotlib").get_backend()],
}
try:
    import torch
    seen["torch"] = "imported"
except ImportError as exc:
    seen["torch"] = str(exc)
print("PROBE" + json.dumps(seen) + "@@OVER@@")
'''


@pytest.fixture(autouse=True)
def _fresh_zygote():
    _SHARED_RESET()
    yield
    _SHARED_RESET()


def _probe(mode: str, slot: int = 1) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    with sandbox.RunDir() as run_dir:
        run = sandbox.run_notebook(nb, {}, run_dir, mode=mode, slot=slot)
    assert run.status == "ok", run.reason
    text = "".join(o.get("text", "") for o in run.executed.cells[0].outputs)
    assert "PROBE" in text, run.executed.cells[0].outputs
    return json.loads(text.split("PROBE", 1)[1].split("@@OVER@@", 1)[0])


def _modes() -> list[str]:
    return ["root", "user"] if os.geteuid() == 0 else ["user"]


@pytest.mark.parametrize("mode", _modes())
def test_a_forked_run_sees_the_sandbox_a_fresh_interpreter_sees(mode, monkeypatch):
    monkeypatch.setenv("BN_ZYGOTE", "0")
    fresh = _probe(mode)
    monkeypatch.setenv("BN_ZYGOTE", "1")
    assert zygote.shared() is not None, "the zygote did not start here"
    forked = _probe(mode)
    assert fresh["ppid"] == forked["ppid"] == 1  # adopted by the sandbox's init, as bubblewrap's
    assert (fresh["init"], forked["init"]) == ("bubblewrap", "waiter")  # the second was forked
    assert forked["status"]["CapBnd"] == forked["status"]["CapEff"] == "0000000000000000"
    assert forked["status"]["NoNewPrivs"] == "1"
    assert forked["grader_modules"] == [] and "not available while grading" in forked["torch"]
    assert fresh["numpy_random"] != forked["numpy_random"]
    # Two forked runs do not share numpy's unseeded global generator.
    again = _probe(mode)
    assert forked["numpy_random"] != again["numpy_random"]  # both preloaded in the zygote
    assert forked["py_random"] != again["py_random"]
    for key in ("init", "numpy_random", "py_random", "limits", "init_limits", "argv"):
        fresh.pop(key), forked.pop(key)
    assert forked == fresh


@pytest.mark.parametrize("mode", _modes())
def test_the_sandboxes_init_has_the_runs_rlimits_when_started_without_a_fork(mode, monkeypatch):
    """A forked run's sandbox is started by ``vfork`` with ``prlimit`` in front (where the run has
    no cgroup to join), not by a forked copy of the grader calling ``setrlimit``: its init, the
    waiting process, has the runner's rlimits all the same (the plain start is the control)."""
    from autograder.grader.sandbox import memory
    monkeypatch.setenv("BN_ZYGOTE", "1")
    assert memory.limiting_prefix(sandbox.Limits()) is not None, "no prlimit here"
    started = []
    real = sandbox.run.subprocess.Popen

    def popen(args, *rest, **kwargs):
        started.append((list(args), kwargs.get("preexec_fn")))
        return real(args, *rest, **kwargs)
    monkeypatch.setattr(sandbox.run.subprocess, "Popen", popen)
    seen = _probe(mode)
    assert seen["init"] == "waiter"
    assert seen["init_limits"] == seen["limits"]
    waiter = [(a, p) for a, p in started if "--as-pid-1" in a]
    assert len(waiter) == 1 and waiter[0][1] is None and waiter[0][0][0].endswith("prlimit"), started
    monkeypatch.setenv("BN_ZYGOTE", "0")
    fresh = _probe(mode)
    assert fresh["init"] == "bubblewrap"
    nproc = [(a, b) for a, b in zip(fresh["init_limits"], seen["init_limits"]) if a != b]
    assert len(nproc) == 1 and nproc[0][0].startswith("Max processes"), nproc


@pytest.mark.parametrize("mode", _modes())
def test_the_only_difference_in_rlimits_is_the_two_processes_the_zygote_adds(mode, monkeypatch):
    monkeypatch.setenv("BN_ZYGOTE", "0")
    fresh = _probe(mode)["limits"]
    monkeypatch.setenv("BN_ZYGOTE", "1")
    forked = _probe(mode)["limits"]
    differ = [(a, b) for a, b in zip(fresh, forked) if a != b]
    assert len(differ) == 1 and differ[0][0].startswith("Max processes"), differ
    assert int(differ[0][1].split()[2]) == int(differ[0][0].split()[2]) + sandbox.run.ZYGOTE_OVERHEAD


# Errors as a graded notebook shows them: a check that fails inside the student's function, an
# error raised deep in numpy, one in a module the notebook itself wrote, and where inspect says
# each of those frames comes from (the zygote learns inspect's table of module files up front).
ERRORS = [
    "def f(a):\n    assert a.sum() == 1, 'the mean is off'\n",
    "f(np.zeros(3))",
    "np.linalg.inv(np.zeros((2, 2)))",
    "open('mine.py', 'w').write('def g():\\n    return 1 / 0\\n')\nimport mine\nmine.g()",
    "import inspect, numpy.linalg, mine\n"
    "print([getattr(inspect.getmodule(compile('0', m.__file__, 'eval')), '__name__', None)\n"
    "       for m in (numpy.linalg._linalg, mine, inspect)], inspect.getmodule(f.__code__),\n"
    "      inspect.getmodule(compile('0', ZYGOTE, 'eval')))",  # the zygote's own script: no module
]


@pytest.mark.parametrize("mode", _modes())
def test_a_forked_run_shows_errors_as_a_fresh_interpreter_does(mode, monkeypatch):
    cells = [f"ZYGOTE = {os.path.abspath(zygote.__file__)!r}", *ERRORS]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    shown = {}
    for zygote_on in ("0", "1"):
        monkeypatch.setenv("BN_ZYGOTE", zygote_on)
        with sandbox.RunDir() as run_dir:
            run = sandbox.run_notebook(nb, {}, run_dir, mode=mode, slot=1)
        assert run.status == "ok", run.reason
        shown[zygote_on] = [c.outputs for c in run.executed.cells[1:]]
    assert zygote.shared() is not None, "the zygote did not start here"
    fresh, forked = shown["0"], shown["1"]
    assert [o[0].get("ename") for o in forked[1:4]] == ["AssertionError", "LinAlgError", "ZeroDivisionError"]
    assert "the mean is off" in "".join(forked[1][0].traceback)
    assert "_linalg.py" in "".join(forked[2][0].traceback) and "mine.py" in "".join(forked[3][0].traceback)
    assert forked[4][0].text.strip() == "['numpy.linalg._linalg', 'mine', 'inspect'] None None", forked[4]
    assert forked == fresh


def test_the_zygote_holds_no_grader_state(monkeypatch):
    """Started with the sandbox's environment only, no descriptor but its channel, no grader,
    course or torch code mapped, one thread."""
    monkeypatch.setenv("BN_ZYGOTE", "1")
    monkeypatch.setenv("BN_COURSE_SECRET_PROBE", "must-not-leak")
    z = zygote.shared()
    assert z is not None
    environ = open(f"/proc/{z.pid}/environ", "rb").read().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert names <= set(sandbox_env()) | {"BN_ZYGOTE_SITES"}, names
    assert b"must-not-leak" not in b"".join(environ)
    fds = {int(fd): os.readlink(f"/proc/{z.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{z.pid}/fd")}
    assert fds.pop(0) == "/dev/null"
    fds.pop(1), fds.pop(2)  # its ready line and its log
    # the grader's channel and the loop's wake-up pipe: no file, no other socket
    assert sorted(t.split(":")[0] for t in fds.values()) == ["pipe", "pipe", "socket"], fds
    maps = open(f"/proc/{z.pid}/maps").read()
    assert "numpy" in maps and "/torch/" not in maps
    assert len(os.listdir(f"/proc/{z.pid}/task")) == 1
    zygote.stop()


def test_a_dead_zygote_costs_no_run(monkeypatch):
    """The zygote killed between runs: the next run starts a fresh interpreter and is graded."""
    monkeypatch.setenv("BN_ZYGOTE", "1")
    z = zygote.shared()
    os.kill(z.pid, signal.SIGKILL)
    z.proc.wait()
    mode = sandbox.pick_mode("auto")
    seen = _probe(mode)
    assert seen["init"] == "bubblewrap"  # a fresh interpreter, started by bubblewrap


def test_a_zygote_that_cannot_enter_the_sandbox_turns_itself_off(monkeypatch, capfd):
    """A refusal from the zygote's child (here: a namespace it may not enter) is the grader's
    problem, never the student's: that run and the later ones start the plain way."""
    monkeypatch.setenv("BN_ZYGOTE", "1")
    z = zygote.shared()
    real = z.spawn

    def spawn(job, fds, timeout=30.0):
        return real({**job, "namespaces": 0x7FFFFFFF}, fds, timeout)  # flags setns refuses
    monkeypatch.setattr(z, "spawn", spawn)
    seen = _probe(sandbox.pick_mode("auto"))
    assert seen["init"] == "bubblewrap"
    assert zygote.shared() is None
    assert "fresh interpreter each from now on" in capfd.readouterr().err
    _SHARED_RESET()


def test_runs_end_with_their_sandbox_and_leave_no_process(monkeypatch):
    """The zygote's child waits for the runner and exits; nothing it forked outlives the run."""
    monkeypatch.setenv("BN_ZYGOTE", "1")
    z = zygote.shared()
    mode = sandbox.pick_mode("auto")
    for _ in range(3):
        _probe(mode)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kids = open(f"/proc/{z.pid}/task/{z.pid}/children").read().split()
        if not kids:
            break
        time.sleep(0.05)
    assert kids == []
    assert z.cpu_seconds() > 0


def _SHARED_RESET():
    zygote.stop()
    zygote._SHARED.pop("zygote", None)


@pytest.mark.skipif(os.geteuid() != 0, reason="root mode: the slot's uid names the sandbox's processes")
def test_a_run_stopped_by_the_watchdog_leaves_no_process(monkeypatch):
    """A cell stuck in C code is killed from outside; its sandbox goes with it at once, even
    though the waiting process's uid change cleared bubblewrap's parent-death signal (a second
    attempt then found the first one's processes still counted against its process limit)."""
    import subprocess
    monkeypatch.setenv("BN_ZYGOTE", "1")
    slot = 7
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import hashlib\nhashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 10**9)")])
    with sandbox.RunDir() as run_dir:
        run = sandbox.run_notebook(nb, {}, run_dir, mode="root", slot=slot,
                                   limits=sandbox.Limits(cell_seconds=1, notebook_seconds=6))
    assert run.status in ("cell-timeout", "killed", "notebook-timeout"), (run.status, run.reason)
    uid = str(sandbox.FIRST_UID + slot)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-u", uid], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.1)
    assert left == [], f"processes of the sandbox's uid outlived the run: {left}"


def test_a_forked_run_plots_with_the_preloaded_pyplot_and_its_cache_goes_with_the_zygote(monkeypatch):
    """matplotlib is imported once, in the zygote (its font list read there, into a locked
    scratch folder of the grader's, never the host's /tmp/mpl); a forked run finds pyplot
    imported, draws with Agg and saves a figure; the folder is removed when the zygote stops."""
    monkeypatch.setenv("BN_ZYGOTE", "1")
    z = zygote.shared()
    assert z is not None, "the zygote did not start here"
    scratch = Path(z._scratch)
    assert list((scratch / "matplotlib").glob("fontlist-*.json"))
    code = ("import os, sys\npre = 'matplotlib.pyplot' in sys.modules\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\nfig.savefig('/tmp/p.png')\n"
            "print('PLOT', pre, plt.get_backend().lower(), os.path.getsize('/tmp/p.png') > 1000)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    with sandbox.RunDir() as run_dir:
        run = sandbox.run_notebook(nb, {}, run_dir, mode=_modes()[0], slot=1)
    assert run.status == "ok", run.reason
    text = "".join(o.get("text", "") for o in run.executed.cells[0].outputs)
    assert "PLOT True agg True" in text, run.executed.cells[0].outputs
    zygote.stop()
    assert not scratch.exists()
