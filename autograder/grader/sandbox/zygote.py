"""A pre-imported interpreter that notebooks start from: each run's bubblewrap sandbox is built as
before, fresh, around a waiting process, and the notebook's runner is forked from this one
and moved into that sandbox, so no run pays for Python's start-up, numpy, IPython and matplotlib
again.

Two halves in one file:

* the grader's side (:class:`Zygote`, :func:`shared`), imported as usual;
* the zygote itself, run as a script (``python -I -S zygote.py``): it imports only the standard
  library, numpy, IPython and matplotlib (no grader code, no course, no secret: it starts with a clean
  environment and never reads a job's message), then forks once per connection.

Each forked child (outside the sandbox) reads its job from the connection: descriptors for the
waiting process (a pidfd and its root) and the run's stderr, and the run's argv, environment,
rlimits, uid and cgroup. It joins the run's cgroup, enters *all* the waiting process's
namespaces at once (``setns`` on the pidfd: user in user mode, mount, pid, net, ipc, uts,
cgroup), takes its root, drops what bubblewrap drops (the capability bounding set, ambient and
inheritable capabilities, every capability; in root mode the per-slot uid and gid and no
groups) and sets no_new_privs, then forks the runner into the sandbox's pid namespace, hands
the grader a pidfd of it and exits. The runner, adopted by the sandbox's init (the waiting
process, pid 1 there, which the notebook cannot signal), starts only then: a new session, the
run's rlimits, stdin and stdout on /dev/null, no other descriptor, the sandbox's environment and
``sys.path`` as a fresh ``python -m`` would build them there, and ``autograder.student.runner``
run as ``__main__`` from ``/course``; its session is new, and not its own, as there. When the runner exits, the grader closes the waiting
process's stdin and the sandbox ends, as it ends when a runner bubblewrap started exits.

What the runner sees therefore equals what bubblewrap gives a fresh interpreter (a test compares
uids, capabilities, no_new_privs, namespaces, mounts, rlimits, descriptors, environment and
``sys.path`` both ways, in both modes), except that its memory starts as a copy of this
pre-imported interpreter, which holds nothing but the imported modules.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

# Imported before the first fork; nothing else is. Beyond numpy (with numpy.random, which numpy
# imports on first use and most notebooks use: ~10 ms a run; each run reseeds it) and IPython,
# what the runner's shell and the student package import as they start, what IPython's first
# cell imports (its logger, hashlib: OpenSSL's libcrypto), what IPython's first traceback
# imports (stack_data and what it uses, pygments' terminal formatter and styles: nearly every
# graded notebook shows one, as a failing check raises), and matplotlib with pyplot and the
# Agg backend's module, which the chapters' experiments plot with (0.4 core-s per notebook that
# imports it: ``python -X importtime -c "import matplotlib.pyplot"``). Modules only: no object
# is made here, no figure, no backend switched to (the runner's first figure does that, as in a
# fresh interpreter); the one table learnt here is ``_learn_module_files``'. matplotlib reads
# its font list once, here, from its own cache folder (``Zygote``: a locked scratch folder of
# the grader's, removed with the zygote).
PRELOAD = ("numpy", "numpy.random", "IPython", "IPython.core.interactiveshell",
           "IPython.core.displaypub", "IPython.core.inputtransformer2", "IPython.core.completer",
           "IPython.core.completerlib", "IPython.core.magics", "IPython.core.oinspect",
           "IPython.core.application", "IPython.core.crashhandler", "IPython.core.logger",
           "traitlets.config", "runpy", "site", "json", "io", "random", "tempfile", "shutil", "glob",
           "zipfile", "bz2", "lzma", "hashlib", "bdb", "importlib.resources", "unicodedata",
           "stack_data", "pygments.formatters.terminal256", "pygments.styles",
           "matplotlib", "matplotlib.pyplot", "matplotlib.backends.backend_agg")

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x10000000, 0x20000000, 0x40000000
NAMESPACES = {"user": CLONE_NEWUSER, "mnt": CLONE_NEWNS, "pid": CLONE_NEWPID, "net": CLONE_NEWNET,
              "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS, "cgroup": CLONE_NEWCGROUP}
REQUIRED = ("mnt", "pid", "net", "ipc", "uts")  # a sandbox that lacks one of these is refused
MAX_MESSAGE = 64 << 10
FDS = 3  # the waiting process's pidfd and root, the run's stderr
CMDLINE_ROOM = 256  # spaces the zygote's own command line carries for a runner's (see _set_cmdline)


# ==== the zygote (a script: standard library, numpy, IPython, matplotlib only) ==================

def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def _drop_capabilities(libc, uid: int | None) -> None:
    """What bubblewrap and setpriv leave the sandboxed command: an empty bounding set, no ambient,
    inheritable, permitted or effective capability, the slot's uid and gid in root mode, and
    no_new_privs."""
    import ctypes
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        _check(libc.prctl(24, ctypes.c_ulong(cap), 0, 0, 0), "PR_CAPBSET_DROP")
    _check(libc.prctl(47, 4, 0, 0, 0), "PR_CAP_AMBIENT_CLEAR_ALL")
    if uid is not None:  # root mode: the slot's uid (permitted and effective go with uid 0)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    none = (Data * 2)()
    _check(libc.capset(ctypes.byref(Header(0x20080522, 0)), none), "capset")
    _check(libc.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    fds: list[int] = []
    data = b""
    while True:
        chunk, ancillary, flags, _ = conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(FDS * 4))
        if flags & socket.MSG_CTRUNC:
            raise ValueError("too many descriptors")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4]))
        if not chunk:
            raise ValueError("the grader closed the connection")
        data += chunk
        if data.endswith(b"\n") or len(data) > MAX_MESSAGE:
            break
    if len(fds) != FDS:
        raise ValueError(f"expected {FDS} descriptors, got {len(fds)}")
    return json.loads(data), fds


def _child(conn: socket.socket) -> None:
    """In the forked child: enter the job's sandbox, fork the runner into it, hand the grader a
    pidfd of the runner and exit, so that the runner's parent is the sandbox's init (pid 1), as
    with a runner that bubblewrap starts."""
    libc = _libc()
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the zygote
    job, (pidfd, rootfd, errfd) = _receive(conn)
    if job.get("cgroup"):
        with open(os.path.join(job["cgroup"], "cgroup.procs"), "w") as f:
            f.write("0")
    _check(libc.setns(pidfd, int(job["namespaces"])), "setns")
    os.fchdir(rootfd)
    os.chroot(".")
    os.chdir("/")
    os.close(rootfd)
    os.close(pidfd)
    _drop_capabilities(libc, job.get("uid"))
    null = os.open("/dev/null", os.O_RDWR)
    inside = os.fork()  # into the sandbox's pid namespace
    if inside == 0:
        try:
            _orphan_runner(libc, job, conn, null, errfd)
        except BaseException as exc:
            try:
                os.write(errfd, f"the runner could not start: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(70)
    os.close(errfd)
    os.close(null)
    conn.close()
    while True:
        try:
            os.waitpid(inside, 0)
            break
        except InterruptedError:
            continue
    os._exit(0)


def _orphan_runner(libc, job: dict, conn: socket.socket, null: int, errfd: int) -> None:
    """In the sandbox's pid namespace: fork the runner, hand the grader a pidfd of it and exit.
    The orphaned runner is adopted by the sandbox's init (pid 1, the waiting process), as a
    runner that bubblewrap starts is its init's child; it starts once this process is gone."""
    os.setsid()  # bubblewrap's --new-session: the runner is in it, but does not lead it
    orphaned_r, orphaned_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(orphaned_w)
            conn.close()
            while os.read(orphaned_r, 1):  # EOF: this process's parent is exiting
                pass
            os.close(orphaned_r)
            for _ in range(5000):  # its descriptors close a moment before its children move
                if os.getppid() == 1:
                    break
                select.select([], [], [], 0.0002)
            else:
                raise OSError("the runner was not adopted by the sandbox's init")
            _runner(libc, job, null, errfd)
        except BaseException as exc:
            try:
                os.write(errfd, f"the runner could not start: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(70)
    runner = os.pidfd_open(pid)
    conn.sendmsg([b"ok\n"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", runner))])
    os._exit(0)


def _runner(libc, job: dict, null: int, errfd: int) -> None:
    """In the sandbox, as ``python -m autograder.student.runner ARGS`` started by bubblewrap."""
    import resource
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # bubblewrap's --die-with-parent
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(errfd, 2)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for what, value in job["rlimits"]:
        resource.setrlimit(what, (value, value))
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    # sys.path as a fresh interpreter builds it there: cwd and PYTHONPATH first, then the
    # standard library, then site (its .pth files as the sandbox shows them).
    sys.path[:] = [os.getcwd(), *job["env"].get("PYTHONPATH", "").split(os.pathsep), *BASE_PATH]
    sys.path[:] = [p for p in sys.path if p]
    sys.path_importer_cache.clear()
    sys.meta_path[:] = list(BASE_META_PATH)
    sys.dont_write_bytecode = bool(job["env"].get("PYTHONDONTWRITEBYTECODE"))
    import importlib
    import site
    site.main()
    importlib.invalidate_caches()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it at start-up
    signal.set_wakeup_fd(-1)
    sys.argv = ["-m", *job["argv"]]
    _set_cmdline([sys.executable, "-m", "autograder.student.runner", *job["argv"]])
    # The standard streams as Python opens them at start-up (not a terminal: stdout buffered,
    # stderr line-buffered and never failing on an unencodable character).
    sys.stdin = open(0, "r", encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    if "numpy.random" in sys.modules:  # seeded when the zygote imported it: fresh entropy per run
        sys.modules["numpy.random"].seed()
    _forget_matplotlib_folders(sys.modules.get("matplotlib"))
    import runpy
    runpy._run_module_as_main("autograder.student.runner")
    sys.stdout.flush()
    os._exit(0)


def _forget_matplotlib_folders(mpl) -> None:
    """matplotlib remembers its config and cache folders from its first call (the zygote's own
    scratch folder): here they are found again from this run's environment (MPLCONFIGDIR, the
    sandbox's /tmp/mpl), on first use, as in a fresh interpreter."""
    if mpl is None:
        return
    for name, fmt in (("get_configdir", "CONFIGDIR=%s"), ("get_cachedir", "CACHEDIR=%s")):
        found = getattr(getattr(mpl, name, None), "__wrapped__", None)
        remember = getattr(mpl, "_logged_cached", None)
        if found is not None and remember is not None:
            setattr(mpl, name, remember(fmt)(found))


def _set_cmdline(args: list[str]) -> None:
    """What ``ps`` and ``/proc/<pid>/cmdline`` show for this process: the runner's command line,
    as for a runner bubblewrap starts, written over the zygote's own (which has room for it)."""
    import ctypes
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
    data = "\0".join(args).encode()[:end - start - 1]
    ctypes.memmove(start, data + b"\0" * (end - start - len(data)), end - start)


BASE_PATH: list[str] = []
BASE_META_PATH: list = []


def _reap() -> None:
    # The same loop as the bench's ``scaling._reap_orphans``: this file runs as a standalone
    # script that imports nothing of the grader, so it keeps its own copy.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _learn_module_files() -> None:
    """What a run's first traceback would otherwise build (``inspect.getmodule``, which IPython's
    traceback calls for each frame): inspect's table of which file is which module, over every
    module imported here. About 25 ms of each run that shows an error; learnt once here, as a
    fresh interpreter learns it, less the zygote's own ``__main__`` (a run's is the runner)."""
    import inspect
    inspect.getmodule(compile("0", "<zygote>", "eval"))
    names, files = getattr(inspect, "_filesbymodname", None), getattr(inspect, "modulesbyfile", None)
    if isinstance(names, dict) and isinstance(files, dict):
        names.pop("__main__", None)
        for path in [path for path, name in files.items() if name == "__main__"]:
            del files[path]


def serve(control_fd: int) -> None:
    """The zygote's loop: the grader sends one connection per run over ``control_fd`` (a socket
    only it holds); each is served by a fresh fork. Ends when the grader closes its end."""
    global BASE_PATH, BASE_META_PATH
    sys.dont_write_bytecode = True
    BASE_PATH = list(sys.path)  # -I -S: the standard library only
    BASE_META_PATH = list(sys.meta_path)
    sites = json.loads(os.environ.pop("BN_ZYGOTE_SITES", "[]"))
    sys.path[:] = BASE_PATH + sites
    import importlib
    for name in PRELOAD:
        importlib.import_module(name)
    roots = tuple(os.path.realpath(p) + os.sep for p in BASE_PATH + sites if p)
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if name != "__main__" and where and not os.path.realpath(where).startswith(roots):
            raise SystemExit(f"zygote: {name} was imported from outside the sandbox's view ({where})")
    for hidden in ("torch", "autograder", "sklearn"):
        if hidden in sys.modules:
            raise SystemExit(f"zygote: {hidden} must not be imported here")
    if len(os.listdir("/proc/self/task")) != 1:  # forking a threaded process is not safe
        raise SystemExit("zygote: the preloaded modules started a thread")
    _learn_module_files()
    sys.path[:] = BASE_PATH
    import gc
    gc.collect()
    gc.freeze()  # the preloaded objects: a run's collections never touch (and copy) their pages
    control = socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop: children are reaped at once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides when this ends
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        try:
            ready, _, _ = select.select([control, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 512)
        _reap()
        if control not in ready:
            continue
        try:
            data, ancillary, _, _ = control.recvmsg(16, socket.CMSG_SPACE(4))
        except InterruptedError:
            continue
        if not data:
            return  # the grader closed its end (or died)
        fds = [fd for level, kind, payload in ancillary
               if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
               for fd in struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])]
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            conn = socket.socket(fileno=fds[0])
            try:
                control.close()
                os.close(wake_r)
                os.close(wake_w)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                _child(conn)
            except BaseException as exc:
                try:
                    conn.sendall(f"error {type(exc).__name__}: {exc}"[:300].encode() + b"\n")
                finally:
                    os._exit(71)
            os._exit(0)
        os.close(fds[0])



# ==== the grader's side ===========================================================================

class ZygoteBroken(RuntimeError):
    """The zygote cannot serve a run: the run starts the plain way (a fresh interpreter)."""


class Zygote:
    """The grader's handle: start once (a process per grading process), ``spawn`` per run."""

    def __init__(self):
        import fcntl
        import subprocess
        import tempfile
        import threading

        from autograder.grader.sandbox.bwrap import _site_dirs, sandbox_env, sandbox_python
        from autograder.grader.sandbox.settings import RUN_PREFIX
        self._lock = threading.Lock()
        # matplotlib's cache (its font list), outside any sandbox: the sandbox's MPLCONFIGDIR
        # (/tmp/mpl) would be the host's /tmp here. Locked as a grading run's scratch is, so a
        # killed grader's is swept by the next run (``jobs.sweep_stale``).
        self._scratch = tempfile.mkdtemp(prefix=RUN_PREFIX + "zygote-")
        self._scratch_lock = open(os.path.join(self._scratch, "lock"), "w")
        fcntl.flock(self._scratch_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._log = tempfile.TemporaryFile()
        env = {**sandbox_env(), "BN_ZYGOTE_SITES": json.dumps([str(p) for p in _site_dirs()]),
               "MPLCONFIGDIR": os.path.join(self._scratch, "matplotlib")}
        env.pop("PYTHONPATH", None)
        try:
            self.proc = subprocess.Popen(
                [sandbox_python(), "-I", "-S", os.path.abspath(__file__), str(theirs.fileno()),
                 " " * CMDLINE_ROOM],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=self._log, env=env, cwd="/", start_new_session=True)
        except BaseException:
            self._remove_scratch()
            raise
        finally:
            theirs.close()
        self._control = ours
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else b""
        if line != b"ready\n":
            self.close()
            self._log.seek(0)
            tail = self._log.read().decode(errors="replace").strip().splitlines()
            raise ZygoteBroken(tail[-1] if tail else "the zygote did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def spawn(self, job: dict, fds: list[int], timeout: float = 30.0) -> int:
        """Start the runner of one run in the sandbox whose waiting process ``fds[0]`` (a pidfd)
        names; returns a pidfd of the runner once it has been forked there (the caller closes it)."""
        if self.proc.poll() is not None:
            raise ZygoteBroken("the zygote has exited")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        got: list[int] = []
        try:
            with self._lock:
                self._control.sendmsg([b"fork"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                   struct.pack("i", theirs.fileno()))])
            theirs.close()
            ours.sendmsg([json.dumps(job).encode() + b"\n"],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
            ours.settimeout(timeout)
            reply = b""
            while not reply.endswith(b"\n") and len(reply) < 512:
                chunk, ancillary, _, _ = ours.recvmsg(512, socket.CMSG_SPACE(4))
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        got += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
                if not chunk:
                    break
                reply += chunk
        except OSError as exc:
            for fd in got:
                os.close(fd)
            raise ZygoteBroken(f"the zygote did not answer: {exc}") from None
        finally:
            ours.close()
            theirs.close()
        if reply != b"ok\n" or len(got) != 1:
            for fd in got:
                os.close(fd)
            raise ZygoteBroken(reply.decode(errors="replace").strip()[6:] or "the zygote's child died")
        return got[0]

    def cpu_seconds(self) -> float:
        """CPU of the zygote and of every run it has forked that has ended (``/proc``'s
        utime, stime, cutime, cstime): it is this process's child only once it exits."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        try:
            self._control.close()
        except AttributeError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        import shutil
        shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch_lock.close()


_SHARED: dict = {}


def shared() -> Zygote | None:
    """This process's zygote, started on first use; None when it is turned off (``BN_ZYGOTE=0``)
    or cannot start here (then every run starts a fresh interpreter, as before)."""
    import atexit
    import threading

    from autograder.grader.sandbox.settings import zygote_enabled
    if not zygote_enabled():
        return None
    lock = _SHARED.setdefault("lock", threading.Lock())
    with lock:
        if "zygote" in _SHARED:
            z = _SHARED["zygote"]
            return z if z is not None and z.proc.poll() is None else None
        try:
            _SHARED["zygote"] = Zygote()
            atexit.register(stop)
        except (ZygoteBroken, OSError) as exc:
            _SHARED["zygote"] = None
            sys.stderr.write(f"note: notebooks start a fresh interpreter each (no zygote: {exc})\n")
        return _SHARED["zygote"]


def start_meanwhile() -> threading.Thread:
    """Start this process's zygote (``shared``) on a thread of its own: its process imports
    numpy, IPython and matplotlib while the grader sets up; the first run waits for it."""
    import threading
    thread = threading.Thread(target=shared, name="start-zygote", daemon=True)
    thread.start()
    return thread


def broken(why: str) -> None:
    """A run could not start from the zygote: later runs start the plain way."""
    with _SHARED.setdefault("lock", __import__("threading").Lock()):
        z = _SHARED.get("zygote")
        _SHARED["zygote"] = None
    if z is not None:
        sys.stderr.write(f"note: notebooks start a fresh interpreter each from now on ({why})\n")
        z.close()


def stop() -> None:
    """End this process's zygote (it is reaped here, so its runs' CPU reaches RUSAGE_CHILDREN)."""
    z = _SHARED.pop("zygote", None)
    if z is not None:
        z.close()


def cpu_seconds() -> float:
    z = _SHARED.get("zygote")
    return z.cpu_seconds() if z is not None else 0.0


if __name__ == "__main__":
    serve(int(sys.argv[1]))
