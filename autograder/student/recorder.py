"""Recording mode of ``check(...)``, inside the grading sandbox: each function runs in a process
of its own.

The check forks; the child asks the grader for each case's inputs when that case runs
(``recording.case_input``), calls the student's function and writes what it returned; the parent
(the notebook's process) waits, for at most the time left to the cell. So

* a call stuck where no signal reaches it (C code, a blocked signal) costs its own function only:
  the child is killed, its remaining cases are recorded as stopped, and the notebook goes on;
* whatever the function printed, stored or changed while it ran on the grader's (hidden) inputs
  dies with the child; the grader serves a case only to a child of the notebook's process, once,
  and shows no output of a cell that ran after the first case left it.

Where no process can be started (the notebook's own processes hold the sandbox's process limit)
for half the time left, the function is not graded: the grader serves no case to this process.
"""
from __future__ import annotations

import json
import os
import select
import signal
import time

from autograder.student import recording
from autograder.student.verdict import FunctionSpec, Result, run_case

# Taken before any student code runs, so a notebook that replaces them changes nothing here.
_fork, _waitpid, _kill, _exit, _monotonic = os.fork, os.waitpid, os.kill, os._exit, time.monotonic
_pidfd_open = getattr(os, "pidfd_open", None)
_select, _getitimer = select.select, signal.getitimer

DEFAULT_SECONDS = 30.0
MARGIN = 0.5


def _save(record_dir: str, function: str, k: int, result: Result, spec: FunctionSpec) -> None:
    stem = recording.output_stem(record_dir, function, k)
    try:
        values = recording.recordable(result.values, spec.returns, spec.compared) if result.status == "ok" else ()
        recording.save(stem, values, {"status": result.status, "error": result.error})
    except Exception as exc:  # e.g. past the file-size limit
        recording.save(stem, (), {"status": "error",
                                  "error": f"its values could not be recorded ({type(exc).__name__})"})


# ---- the child's confinement ----------------------------------------------------------------------
# Landlock (Linux 5.13+, unprivileged): from here on the child may write files only in its own
# outputs folder, and (Linux 6.12+) may not signal the notebook's process or reach its abstract
# sockets. Best effort: where the kernel has no Landlock the grader's own guarantee stands alone
# (it shows nothing the notebook printed after the first case left it).
_LANDLOCK_CREATE, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
_FS_WRITE_FILE, _FS_REMOVE_DIR, _FS_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_FS_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1


def _landlock(writable: str) -> int:
    """Restrict this process (see above); the Landlock ABI applied, 0 where none."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    handled = _FS_WRITE_FILE | _FS_REMOVE_DIR | _FS_REMOVE_FILE | _FS_MAKE
    handled |= (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = struct.pack("QQQ", handled, 0, scoped) if abi >= 6 else struct.pack("Q", handled)
    ruleset = libc.syscall(_LANDLOCK_CREATE, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    try:
        folder = os.open(writable, os.O_PATH | os.O_DIRECTORY)
        try:
            allowed = _FS_WRITE_FILE | _FS_REMOVE_FILE | (1 << 8) | (_FS_TRUNCATE if abi >= 3 else 0)
            rule = struct.pack("=Qi", allowed, folder)
            if libc.syscall(_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1),
                            ctypes.c_char_p(rule), ctypes.c_uint32(0)) < 0:
                return 0
        finally:
            os.close(folder)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return 0
        if libc.syscall(_LANDLOCK_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return 0
        return abi
    finally:
        os.close(ruleset)


def _confine(keep: int, writable: str) -> None:
    """Before the child's first case: no descriptor but the grader's connection (and /dev/null
    as its standard streams), no shared writable mapping the notebook made, and Landlock."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    top = max(keep, null) + 1
    try:
        top = max(top, max(int(n) for n in os.listdir("/proc/self/fd")) + 1)
    except (OSError, ValueError):
        top = max(top, 1024)
    os.closerange(3, keep)
    os.closerange(keep + 1, top)
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
        for line in maps:
            span, perms = line.split()[:2]
            if perms[1] == "w" and perms[3] == "s":
                start, end = (int(x, 16) for x in span.split("-"))
                libc.munmap(ctypes.c_void_p(start), ctypes.c_size_t(end - start))
    except Exception:
        pass
    try:
        _landlock(writable)
    except Exception:
        pass


def _run_cases(function: str, fn, spec: FunctionSpec, names, record_dir: str, child: bool = False) -> None:
    try:
        conn = recording.connect_inputs()
    except Exception:
        conn = None
    if child and conn is not None:
        _confine(conn.fileno(), os.path.dirname(recording.output_stem(record_dir, function, 0)))
    for k, _ in enumerate(names):
        try:
            if conn is None:
                raise recording.BadRecording("no connection to the grader")
            inputs = recording.case_input(conn, function, k)
        except Exception as exc:
            result = Result("error", error=f"the grader could not hand over this case's inputs "
                                           f"({type(exc).__name__})")
        else:
            try:
                result = run_case(fn, inputs, spec)
            except BaseException as exc:  # KeyboardInterrupt and kin: this case only
                result = Result("error", error=f"{type(exc).__name__}: {exc}"[:500])
        _save(record_dir, function, k, result, spec)


def _time_left() -> float:
    left = _getitimer(signal.ITIMER_REAL)[0]
    return (left if left > 0 else DEFAULT_SECONDS) - MARGIN


def _wait(pid: int, seconds: float) -> bool:
    """True when the child ended within ``seconds``."""
    deadline = _monotonic() + max(seconds, 0.05)
    fd = None
    try:
        fd = _pidfd_open(pid) if _pidfd_open else None
    except OSError:
        fd = None
    try:
        while True:
            done, _ = _waitpid(pid, os.WNOHANG)
            if done:
                return True
            left = deadline - _monotonic()
            if left <= 0:
                return False
            if fd is not None:
                _select([fd], [], [], left)
            else:
                time.sleep(min(left, 0.005))
    finally:
        if fd is not None:
            os.close(fd)


def record(function: str, fn, record_dir: str) -> None:
    """Write what ``fn`` returns on each case the judge asked for (see ``recording``)."""
    with open(recording.manifest_path(record_dir)) as f:
        wanted = json.load(f).get(function)
    if wanted is None:
        print(f"(no recording requested for {function})")
        return
    if recording.GRADED_CELLS and recording.CURRENT_CELL[0] not in recording.GRADED_CELLS:
        print(f"(not recorded: only the notebook's graded check cell records {function})")
        return
    spec = FunctionSpec(**wanted["spec"])
    names = list(wanted["cases"])
    os.makedirs(os.path.dirname(recording.output_stem(record_dir, function, 0)), exist_ok=True)
    seconds = _time_left()
    pid, start = None, _monotonic()
    while pid is None:
        try:
            pid = _fork()
        except OSError:  # the notebook's own processes hold every slot: wait for one, a while
            if _monotonic() - start > seconds / 2:
                break
            time.sleep(0.1)
    seconds -= _monotonic() - start
    if pid is None:  # the grader serves no case to this process: the function is not graded
        why = ("no process could be started for this check: the notebook's own processes used up "
               "the sandbox's process limit")
        for k in range(len(names)):
            recording.save(recording.output_stem(record_dir, function, k), (), {"status": "error", "error": why})
        print(f"not recorded: {function}")
        return
    if pid == 0:
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # past the budget, the kernel ends it
            signal.setitimer(signal.ITIMER_REAL, seconds + 1.0)
            _run_cases(function, fn, spec, names, record_dir, child=True)
        finally:
            _exit(0)
    ended = False
    try:
        ended = _wait(pid, seconds)
    finally:
        if not ended:
            try:
                _kill(pid, signal.SIGKILL)
                _waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        why = (f"stopped by the grader: the call did not return within the {max(seconds, 0):.0f} s "
               f"left for this check" if not ended else
               "its run ended before this case was recorded (did the code exit or kill itself?)")
        for k in range(len(names)):
            if not os.path.exists(recording.output_stem(record_dir, function, k) + ".json"):
                recording.save(recording.output_stem(record_dir, function, k), (),
                               {"status": "error", "error": why})
    print(f"recorded {function}")
