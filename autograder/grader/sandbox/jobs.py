"""Scratch space: one grading run's folder (locked, swept when stale) and each job's tmpfs in a
mount namespace of its own, so nothing is ever mounted on the host."""
from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from autograder.grader.sandbox.memory import close_cgroups
from autograder.grader.sandbox.settings import (
    LEGACY_PREFIXES,
    PACKAGE,
    RUN_PREFIX,
    SandboxUnavailable,
)

# ---- the job directory: a tmpfs in a mount namespace of its own ---------------------------------

class _Job:
    """A size-capped tmpfs at ``path``, visible only inside a holder process's mount namespace.

    The holder is ``unshare`` (``-U -r`` too in user mode) that mounts the tmpfs and sleeps; it
    gets SIGKILL when the grader's thread that made it dies (setpriv --pdeathsig), and the tmpfs
    goes with the last process in its namespace.  The grader reaches the files through
    ``/proc/<holder>/root``.
    """

    def __init__(self, path: Path, mode: str, size: int):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        userns = ["--user", "--map-root-user"] if mode == "user" else []
        script = 'mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" && echo ready && exec sleep 86400'
        self.holder = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "unshare", *userns, "--mount", "--propagation",
             "private", "sh", "-c", script, "sh", str(path), str(size)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            err = self.holder.stderr.read(2000).decode(errors="replace").strip()
            self.close()
            raise SandboxUnavailable(f"could not make the job's tmpfs: {err or 'unshare failed'}")
        self.root = f"/proc/{self.holder.pid}/root{path}"

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()
        for f in (self.holder.stdout, self.holder.stderr):
            f.close()


def _enter(job: _Job, mode: str) -> list[str]:
    """The command prefix that runs the sandbox inside the job holder's namespaces."""
    userns = ["--user", "--preserve-credentials"] if mode == "user" else []
    return ["nsenter", f"--target={job.holder.pid}", *userns, "--mount", "--"]


# ---- one grading run's scratch space -------------------------------------------------------------

class RunDir:
    """``$TMPDIR/bn-grader-*``: the staged student side and the jobs' mount points of one
    grading run, locked while it runs, removed on every exit (and swept at the next start if the
    grader was killed)."""

    def __init__(self):
        sweep_stale()
        self.path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX))
        self.path.chmod(0o755)
        self._lock = open(self.path / "lock", "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.course = stage_course(self.path / "course")
        self._jobs = 0
        self._count = threading.Lock()

    def new_job_path(self) -> Path:
        with self._count:
            self._jobs += 1
            return self.path / "jobs" / str(self._jobs)

    def scratch(self, name: str) -> Path:
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        close_cgroups()
        _remove(self.path)
        self._lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _remove(path: Path) -> None:
    # rm -rf never follows symlinks and copes with any depth; shutil.rmtree may recurse too far.
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True)


FRESH_SECONDS = 120  # a scratch folder without its lock yet is another grader's, being made


def sweep_stale() -> list[Path]:
    """Remove scratch folders of grading runs that are no longer running (killed, or from
    earlier versions); unmount anything an earlier version left mounted in them."""
    tmp = Path(tempfile.gettempdir())
    removed = []
    for path in tmp.iterdir():
        name = path.name
        if not name.startswith((RUN_PREFIX,) + LEGACY_PREFIXES):
            continue
        try:
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue
            if name.startswith(RUN_PREFIX) and (path / "lock").exists():
                with open(path / "lock") as lock:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a grading run still holds it
            elif name.startswith(RUN_PREFIX) and time.time() - info.st_mtime < FRESH_SECONDS:
                continue  # just made by another grader (a Dask worker beside this one), not locked yet
        except OSError:
            continue
        if os.geteuid() == 0:
            for mount in _mounts_below(path):
                subprocess.run(["umount", "-l", mount], capture_output=True)
        _remove(path)
        removed.append(path)
    return removed


def _mounts_below(path: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    prefix = str(path) + "/"
    points = [ln.split()[4] for ln in lines if len(ln.split()) > 4]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def stage_course(dest: Path) -> Path:
    """The student side of ``autograder`` (and nothing else of it: no precomputed checks, only
    the digits the exercises' ungraded cells load) and a torch stub."""
    from autograder.course.kits import student_files, write_digits
    for src in student_files():
        target = dest / "autograder" / src.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    write_digits(dest / "autograder" / "student" / "visible")  # what ungraded cells load
    (dest / "torch").mkdir(parents=True, exist_ok=True)
    (dest / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not available while grading: the exercises are NumPy only")\n')
    # Byte-compiled once here, by the interpreter the sandbox runs: the sandbox may not write
    # __pycache__, so without this every notebook compiled the student package again (40 ms).
    import compileall
    compileall.compile_dir(str(dest), quiet=1, workers=1)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest
