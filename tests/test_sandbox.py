"""Properties of the sandbox's construction that the hostile batch cannot show on its own."""
from pathlib import Path

from autograder import sandbox


def test_private_tmp_is_mounted_before_a_course_that_lives_under_tmp(monkeypatch):
    """A checkout (and its venv) under /tmp must stay visible inside the sandbox."""
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [Path("/tmp/ci-clone/.venv")])
    args = sandbox._bwrap_args(Path("/tmp/course"), Path("/tmp/job"), 0)
    tmpfs = max(i for i, a in enumerate(args) if a == "--tmpfs" and args[i + 1] == "/tmp")
    venv = args.index("/tmp/ci-clone/.venv")
    assert tmpfs < venv


def test_student_code_runs_unprivileged_and_offline():
    args = sandbox._bwrap_args(None, None, 3)
    assert "--unshare-net" in args and "--unshare-pid" in args and "--die-with-parent" in args
    assert f"--reuid={sandbox.FIRST_UID + 3}" in args and "--bounding-set=-all" in args
    assert not any(a.endswith("/solutions") or a.endswith("gradebook.db") for a in args)
