"""Memory: one cap for a whole sandbox (cgroup v2 ``memory.max`` where the grader may make
cgroups, else fewer processes with less address space each) and the child's rlimits."""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.grader.sandbox.settings import RUN_PREFIX, Limits

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
            # (numpy, IPython and matplotlib map ~270 MiB; a 1 GiB cap failed on honest output bursts).
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


def rlimits(limits: Limits, plan: MemoryPlan | None = None, overhead: int = 0) -> list[tuple[int, int]]:
    """The sandbox's rlimits: (resource, value) pairs, soft and hard alike."""
    plan = plan or MemoryPlan(None, limits.processes, limits.memory_bytes, 0)
    return [(resource.RLIMIT_AS, plan.address_space),
            (resource.RLIMIT_NPROC, plan.processes + overhead),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_CORE, 0)]


_PRLIMIT_NAMES = {resource.RLIMIT_AS: "as", resource.RLIMIT_NPROC: "nproc", resource.RLIMIT_FSIZE: "fsize",
                  resource.RLIMIT_NOFILE: "nofile", resource.RLIMIT_CORE: "core"}


def limiting_prefix(limits: Limits, plan: MemoryPlan | None = None, cgroup: _Cgroup | None = None,
                    overhead: int = 0) -> list[str] | None:
    """What ``_limit`` does in a forked child, as a command line that runs the command put after
    it: util-linux's ``prlimit`` sets the same rlimits, soft and hard, then execs. The grader
    can then start the sandbox with ``vfork`` (``subprocess`` forks the whole grading process,
    page tables and all, for a ``preexec_fn``: 10 ms of CPU a run). The session is the caller's
    ``start_new_session``. None (the caller forks and calls ``_limit``) where there is no
    ``prlimit``, or where the run has a cgroup to join before the command starts."""
    import shutil
    prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
    if prlimit is None or cgroup is not None:
        return None
    args = [prlimit]
    for what, value in rlimits(limits, plan, overhead):
        text = "unlimited" if value < 0 or value == resource.RLIM_INFINITY else str(int(value))
        args.append(f"--{_PRLIMIT_NAMES[what]}={text}:{text}")
    return args + ["--"]


def _limit(limits: Limits, plan: MemoryPlan | None = None, cgroup: _Cgroup | None = None,
           overhead: int = 0):
    pairs = rlimits(limits, plan, overhead)

    def apply():
        os.setsid()
        if cgroup is not None:
            cgroup.join()
        for what, value in pairs:
            resource.setrlimit(what, (value, value))
    return apply
