"""What every part of the sandbox shares: its limits, what a run brings back, the uids and the
scratch folders' names."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]  # the autograder package
FIRST_UID = 61000  # root mode: worker slot k runs student code as uid/gid FIRST_UID + k
SANDBOX_UID = 1000  # user mode: the uid the student's code sees inside its namespace
RUN_PREFIX = "bn-grader-"
# Left behind by earlier versions of this grader; swept like stale runs.
LEGACY_PREFIXES = ("bn-course-", "bn-job-", "bn-release-")


def zygote_enabled() -> bool:
    """Runs are forked from a pre-imported interpreter (``zygote``) unless ``BN_ZYGOTE=0``."""
    import os
    return os.environ.get("BN_ZYGOTE", "1").strip().lower() not in ("0", "no", "off", "false")


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
    #                             "grader-error": the grader's own machinery failed (retried, never a 0)
    reason: str                 # one line for the report ("" when ok)
    executed: object | None     # the executed notebook (untrusted data) or None
    results: dict = field(default_factory=dict)   # function -> [Result per case]
    seconds: float = 0.0
