"""Running one notebook: the sandboxed runner under a watchdog (per-cell and per-notebook clocks,
enforced from outside), resuming after a stuck cell, and reading its status."""
from __future__ import annotations

import functools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from autograder.grader.sandbox import zygote
from autograder.grader.sandbox.bwrap import (
    SANDBOX_CWD,
    _bwrap_args,
    bwrap_path,
    sandbox_env,
    sandbox_python,
)
from autograder.grader.sandbox.inputs import _InputServer
from autograder.grader.sandbox.jobs import RunDir, _enter, _Job
from autograder.grader.sandbox.memory import (
    USER_MODE_OVERHEAD,
    _Cgroup,
    _limit,
    limiting_prefix,
    memory_plan,
    rlimits,
)
from autograder.grader.sandbox.reader import JobReader, read_results
from autograder.grader.sandbox.settings import (
    FIRST_UID,
    Limits,
    RunResult,
    SandboxUnavailable,
)
from autograder.student import recording

if TYPE_CHECKING:
    from nbformat import NotebookNode

CANCEL = threading.Event()  # set on Ctrl-C / SIGTERM: every running sandbox is stopped


def run_notebook(nb: NotebookNode, request: dict, run_dir: RunDir, *, mode: str, slot: int = 0,
                 limits: Limits = Limits()) -> RunResult:
    """Execute ``nb``, recording the functions in ``request`` ({function: (manifest entry, inputs)},
    from ``checks.recording_request``). ``mode`` is "root", "user" or "none" (no sandbox: a plain
    subprocess, still timed, for machines where neither mode starts). Whatever goes wrong here
    fails this notebook alone, with a one-line reason."""
    start = time.monotonic()
    try:
        path = run_dir.new_job_path()
        if mode == "none":
            path.mkdir(parents=True)
            return _run(nb, request, run_dir, None, str(path), mode, slot, limits, start)
        job = _Job(path, mode, limits.job_bytes)
        try:
            return _run(nb, request, run_dir, job, job.root, mode, slot, limits, start)
        finally:
            job.close()
    except SandboxUnavailable:
        raise
    except Exception as exc:
        if getattr(exc, "errno", None) == 28:  # the notebook filled its job folder
            return RunResult("failed", "the grader could not run this notebook: it does not fit the "
                                       "grader's space for one notebook", None, {}, time.monotonic() - start)
        return RunResult("grader-error", f"the grader could not run this notebook: {type(exc).__name__}: "
                                         f"{exc}"[:300], None, {}, time.monotonic() - start)


MAX_RESUMES = 3


def _prepare(root: str, nb, manifest: dict, mode: str, slot: int) -> None:
    """The job folder as a run starts: the manifest and the notebook, owned by the student's uid."""
    from autograder.grader.safety import without_excess
    record = os.path.join(root, "record")
    os.makedirs(record)
    with open(recording.manifest_path(record), "w") as f:
        json.dump(manifest, f)
    nbformat.write(without_excess(nb), os.path.join(root, "notebook.ipynb"))
    if mode == "root":  # the student's uid owns the job folder, and nothing else
        uid = FIRST_UID + slot
        for dirpath, dirs, files in os.walk(root):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
                os.chown(name, uid, uid)


def _wipe(root: str) -> None:
    """Empty the job folder whatever the run left (modes, depth; rm never follows a symlink)."""
    entries = [os.path.join(root, n) for n in os.listdir(root)]
    folders = [e for e in entries if not os.path.islink(e) and os.path.isdir(e)]  # never a link's target
    if folders:
        subprocess.run(["chmod", "-R", "u+rwX", "--", *folders], capture_output=True)
    if entries:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", *entries], capture_output=True)


def _run(nb, request, run_dir, job, root, mode, slot, limits, start) -> RunResult:
    record = os.path.join(root, "record")
    manifest = {f: entry for f, (entry, _) in request.items()}
    _prepare(root, nb, manifest, mode, slot)
    plan = memory_plan(limits) if mode != "none" else None
    reader = JobReader(root)
    deadline = start + limits.notebook_seconds
    skip: list[int] = []
    notes: list[str] = []
    oom = 0
    while True:
        left = max(deadline - time.monotonic(), 1.0)
        snapshot: list = []

        def take_snapshot(into=snapshot):  # before the first hidden input leaves: what was shown so far
            try:
                into.append(reader.read("result/executed.ipynb", 32 << 20))
            except Exception:
                into.append(b"")
        server = _InputServer(request, run_dir.scratch("inputs") / f"{Path(root).name}-{len(skip)}",
                              take_snapshot)
        clocks = [str(limits.cell_seconds), f"{left:.3f}", ",".join(map(str, skip))]
        if mode == "none":
            cmd = [sys.executable, "-m", "autograder.student.runner", root, *clocks]
            env = {**os.environ, "PYTHONPATH": str(run_dir.course), recording.RECORD_ENV: record,
                   "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   **server.env()}
            preexec, cgroup = os.setsid, None
        else:
            prefix = _enter(job, mode) + _bwrap_args(mode, run_dir.course, job.path, slot, limits.tmp_bytes,
                                                     server.env("/grader"), server.folder)
            cmd = prefix + [sandbox_python(), "-m", "autograder.student.runner", "/job", *clocks]
            cgroup = None
            if plan.cgroup is not None:
                try:
                    cgroup = _Cgroup(plan.cgroup, f"job-{Path(root).name}-{len(skip)}", plan.total)
                except OSError:
                    cgroup = None
            overhead = USER_MODE_OVERHEAD if mode == "user" else 0
            env, preexec = {"PATH": "/usr/bin:/bin"}, _limit(limits, plan, cgroup, overhead)
        err_path = run_dir.scratch("logs") / f"{Path(root).name}-{slot}.log"
        try:
            with open(err_path, "wb") as log:
                proc, init = None, -1
                starter = zygote.shared() if mode != "none" else None
                if starter is not None:
                    zygote_job = {
                        "argv": ["/job", *clocks], "env": {**sandbox_env(server.env("/grader")), "PWD": SANDBOX_CWD},
                        "cwd": SANDBOX_CWD, "uid": FIRST_UID + slot if mode == "root" else None,
                        "rlimits": rlimits(limits, plan, overhead + ZYGOTE_OVERHEAD),
                        "cgroup": str(cgroup.path) if cgroup is not None else None}
                    proc, init = _start_from_zygote(
                        starter, prefix, zygote_job, log, env,
                        _limit(limits, plan, cgroup, overhead + ZYGOTE_OVERHEAD), min(left, 30.0),
                        limiting_prefix(limits, plan, cgroup, overhead + ZYGOTE_OVERHEAD))
                if proc is None:
                    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=log, env=env, preexec_fn=preexec)
                server.start()
                killed, stuck = _watch(proc, reader, limits, time.monotonic() + left + GRACE)
        finally:
            if init >= 0:  # the sandbox's init: with it goes everything in the sandbox (in root
                try:       # mode its uid change cleared the parent-death signal bubblewrap set)
                    signal.pidfd_send_signal(init, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.close(init)
            server.close()
            if cgroup is not None:
                oom += cgroup.oom_kills()
                cgroup.close()
        err = err_path.read_bytes()[-4096:]
        err_path.unlink()
        try:  # the notebook's own children (no pid namespace without a sandbox), and stragglers
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        served = bool(server.served)
        if stuck is not None and len(skip) < MAX_RESUMES and deadline - time.monotonic() > 2.0:
            skip.append(stuck)
            notes.append(killed)
            if served:  # what that run left in the job folder may hold hidden inputs: a fresh one
                _wipe(root)
                _prepare(root, nb, manifest, mode, slot)
            continue
        break
    status, reason, executed = _read_status(reader, killed, err, served)
    if served:  # nothing the notebook wrote after a hidden input left the grader is shown
        executed = _before_inputs(snapshot[0] if snapshot else b"", executed)
    if oom and status in ("killed", "runner-died"):
        status, reason = "out-of-memory", (f"the notebook used more than its "
                                           f"{plan.total / (1 << 30):g} GiB of memory and was stopped")
    if notes:  # cells that had to be skipped; the runner then reports the first as late too
        resumed = [f"{n[:-len(' and was stopped')]}, could not be interrupted and was skipped "
                   f"(the run resumed after it)" if n.endswith(" and was stopped") else n for n in notes]
        if reason and not reason.startswith(f"cell {skip[0]} "):
            resumed.append(reason)
        reason = "; ".join(resumed)
        if status == "ok":
            status = "cell-timeout"
    results = read_results(reader, manifest)
    return RunResult(status, reason[:300], executed, results, time.monotonic() - start)


# The sandbox's first process, pid 1 there, when the runner comes from the zygote: it says it is
# ready (the kernel names it to the grader), reaps what it adopts (the runner among them) as
# bubblewrap's init does, and exits at EOF on stdin, which the grader closes when the runner
# exits. Being pid 1, the notebook cannot signal it (bubblewrap's init is as safe).
WAITER_CODE = (
    "import os, select\n"
    "os.write(1, b'ready\\n')\n"
    "while True:\n"
    "    ready = select.select([0], [], [], 0.25)[0]\n"
    "    while True:\n"
    "        try:\n"
    "            if os.waitpid(-1, os.WNOHANG)[0] == 0:\n"
    "                break\n"
    "        except ChildProcessError:\n"
    "            break\n"
    "    if ready and not os.read(0, 64):\n"
    "        break\n")
ZYGOTE_OVERHEAD = 2  # the waiter and the zygote's child count against the sandbox's processes
_UCRED = struct.Struct("3i")


def _start_from_zygote(starter, prefix: list[str], job: dict, log, env: dict, preexec,
                       timeout: float, limiting: list[str] | None = None):
    """Build the sandbox around a waiting process and have the zygote fork the runner into it.
    Returns the sandbox's process (it ends with the run) and a pidfd of the waiting process (the
    sandbox's init, -1 if it never said it was ready; the caller kills and closes it), or
    (None, -1) when the zygote failed: it is then turned off for this grader and the run starts
    the plain way. With ``limiting`` (``memory.limiting_prefix``) the sandbox's command sets its
    own rlimits and the grader starts it without forking itself; else ``preexec`` does, in a
    forked child. Either way the runner gets the run's rlimits and cgroup from the zygote's child."""
    keep_r, keep_w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    pidfd = rootfd = -1
    ending = False
    try:
        try:
            marker = prefix.index("--", prefix.index(bwrap_path()))  # the waiter is the sandbox's pid 1
            waiter = (prefix[:marker] + ["--as-pid-1"] + prefix[marker:]
                      + [sandbox_python(), "-I", "-S", "-c", WAITER_CODE])
            if limiting is not None:
                proc = subprocess.Popen(limiting + waiter, stdin=keep_r, stdout=theirs.fileno(),
                                        stderr=log, env=env, start_new_session=True)
            else:
                proc = subprocess.Popen(waiter, stdin=keep_r, stdout=theirs.fileno(), stderr=log,
                                        env=env, preexec_fn=preexec)
        finally:
            os.close(keep_r)
            theirs.close()
        ours.settimeout(timeout)
        try:
            message, ancillary, _, _ = ours.recvmsg(64, socket.CMSG_SPACE(_UCRED.size))
        except OSError:
            message, ancillary = b"", []
        pid = next((_UCRED.unpack(data[:_UCRED.size])[0] for level, kind, data in ancillary
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
                    and len(data) >= _UCRED.size), None)
        if message != b"ready\n" or not pid:
            return proc, -1  # bubblewrap did not start: its own words are in the log, as before
        try:
            pidfd = os.pidfd_open(pid)
            rootfd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            namespaces = 0
            for name, flag in zygote.NAMESPACES.items():
                theirs_ns, own = os.stat(f"/proc/{pid}/ns/{name}"), os.stat(f"/proc/self/ns/{name}")
                if (theirs_ns.st_dev, theirs_ns.st_ino) != (own.st_dev, own.st_ino):
                    namespaces |= flag
                elif name in zygote.REQUIRED:
                    raise zygote.ZygoteBroken(f"the sandbox shares the grader's {name} namespace")
            signal.pidfd_send_signal(pidfd, 0)  # still the waiting process: its root and ns are its own
            runner = starter.spawn({**job, "namespaces": namespaces}, [pidfd, rootfd, log.fileno()],
                                   timeout)
        except (zygote.ZygoteBroken, OSError) as exc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if pidfd >= 0:
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
            zygote.broken(f"{type(exc).__name__}: {exc}")
            return None, -1
        threading.Thread(target=_end_with, args=(runner, keep_w), daemon=True).start()
        ending = True
        return proc, pidfd
    finally:
        for fd in (rootfd,) + (() if ending else (pidfd, keep_w)):
            if fd >= 0:
                os.close(fd)
        ours.close()


def _end_with(runner: int, keep_w: int) -> None:
    """When the runner exits (or is killed with its sandbox), the waiter's stdin closes."""
    import select
    try:
        select.select([runner], [], [])
    finally:
        os.close(keep_w)
        os.close(runner)


AFTER_INPUTS = ("[the grader does not show this cell's output: the cell ran after a check had "
                "been handed its hidden inputs]\n")


_RUNNER_STATUSES = ("ok", "cell-timeout", "notebook-timeout", "unreadable")


def _plain_status(status: str, reason: str) -> tuple[str, str]:
    """After a hidden input was served, the runner's own words (status.json) may carry it: keep
    a known status and only the numbers of the grader's own sentences."""
    import re
    if status not in _RUNNER_STATUSES:
        return "runner-died", "the notebook's run reported a status the grader does not know"
    cells = re.findall(r"\bcell (\d{1,4})\b", reason)
    seconds = re.findall(r"its (\d{1,5}(?:\.\d{1,3})?) s\b", reason)
    cell, limit = (cells[0] if cells else "?"), (seconds[0] if seconds else "?")
    return status, {"ok": "", "unreadable": "the grader could not read the notebook",
                    "cell-timeout": f"cell {cell} ran past its {limit} s limit and was stopped",
                    "notebook-timeout": f"stopped before cell {cell}: the notebook ran out of its "
                                        f"{limit} s"}[status]


def _before_inputs(snapshot: bytes, final):
    """The executed notebook as it was before the first hidden input was served; a cell that
    ran after that shows a note instead of its outputs (the final copy, untrusted, only says
    which cells ran). Outputs are built as plain nodes (``nbformat.v4.new_output`` validates each;
    the exporter validates the whole notebook once it is done)."""
    try:
        nb = nbformat.reads(snapshot.decode(), as_version=4)
    except Exception:
        return None
    try:
        ran = [c.get("execution_count") is not None or bool(c.get("outputs")) for c in final.cells]
    except Exception:
        ran = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or cell.get("execution_count") is not None or cell.get("outputs"):
            continue
        if index < len(ran) and ran[index]:
            cell["outputs"] = [_syntax_error(cell.get("source", "")) or nbformat.from_dict(
                {"output_type": "stream", "name": "stdout", "text": AFTER_INPUTS})]
    return nb


def _syntax_error(source: str):
    """A cell that does not even compile ran nothing, so its error is free of any input: the
    grader states it itself, from the submitted source (never from the run's untrusted output)."""
    if not isinstance(source, str):
        return None
    found = (_compile_error if len(source) <= KEPT_SOURCE else _compile_error.__wrapped__)(source)
    if found is None:
        return None
    name, text = found
    return nbformat.from_dict({"output_type": "error", "ename": name, "evalue": text,
                               "traceback": [f"{name}: {text}"]})


KEPT_SOURCE = 64 << 10  # characters: a longer cell's answer is not kept


@functools.lru_cache(maxsize=4096)
def _compile_error(source: str) -> tuple[str, str] | None:
    """(exception name, message) where ``source`` does not compile as IPython would take it;
    kept per source, as most cells of a class are the released ones."""
    import ast
    try:
        ast.parse(_transformer().transform_cell(source))
        return None
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return type(exc).__name__, f"{exc.msg}{where}"
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def _transformer():
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager()


GRACE = 3.0  # seconds past a deadline before the parent kills the sandbox
LINGER = 2.0  # seconds a run may take to exit once it reported its end


def _watch(proc, reader: JobReader, limits: Limits, hard: float) -> tuple[str, int | None]:
    """Wait for the run; kill it past the notebook's clock, or when one cell has been running
    longer than the cell limit (the runner's own SIGALRM clock can be defeated by the student's
    code, and anything it writes can be forged, so the cell is timed from when this parent first
    sees it start). Returns why it was killed ("" if not) and, when one cell was stuck, its index
    (the run can resume after it)."""
    cell, since, finished = None, time.monotonic(), None
    while proc.poll() is None:
        try:  # a run that ends is seen at once, not at the next tick
            proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        try:
            seen = int(reader.read_json("result/progress.json", 512)["cell"])
        except Exception:
            seen = cell
        if seen != cell:
            cell, since = seen, now
        if finished is None:
            try:
                reader.read_json("result/status.json", 4096)
                finished = now
            except Exception:
                pass
        why, stuck = "", None
        if CANCEL.is_set():
            why = "grading was interrupted"
        elif finished is not None and now - finished > LINGER:
            why = LINGERING
        elif now > hard:
            why = f"the notebook ran past its {limits.notebook_seconds:g} s limit and was stopped"
        elif cell is not None and now - since > limits.cell_seconds + GRACE:
            why = f"cell {cell} ran past its {limits.cell_seconds:g} s limit and was stopped"
            stuck = cell
        if why:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return why, stuck
    return "", None


LINGERING = ("every cell had run, but a thread or process the notebook started kept it from "
             "ending; it was stopped")


def _read_status(reader: JobReader, killed: str, err: bytes, served: bool = False):
    executed = None
    try:
        executed = nbformat.reads(reader.read("result/executed.ipynb", 32 << 20).decode(), as_version=4)
    except Exception:
        executed = None
    if killed and killed != LINGERING:
        return "killed", killed, executed
    try:
        status = reader.read_json("result/status.json", 4096)
        code, reason = str(status.get("status", "unknown"))[:40], str(status.get("reason", ""))[:300]
        if served:
            code, reason = _plain_status(code, reason)
    except Exception:
        tail = (err or b"").decode(errors="replace").strip().splitlines() if not served else []
        hint = f" ({tail[-1][:200]})" if tail else ""
        return ("runner-died",
                "the notebook's run ended before it could report (did the code kill its parent "
                "process or every process?)" + hint, executed)
    if killed == LINGERING:
        reason = "; ".join(r for r in (reason, killed) if r)
    return code, reason, executed
