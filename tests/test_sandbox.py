"""Properties of the sandbox's construction that the hostile batch cannot show on its own."""
from pathlib import Path

from autograder.grader import sandbox


def test_private_tmp_is_mounted_before_a_course_that_lives_under_tmp(monkeypatch):
    """A checkout (and its venv) under /tmp must stay visible inside the sandbox."""
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [Path("/tmp/ci-clone/.venv")])
    args = sandbox._bwrap_args("root", Path("/tmp/course"), Path("/tmp/job"), 0)
    tmpfs = max(i for i, a in enumerate(args) if a == "--tmpfs" and args[i + 1] == "/tmp")
    venv = args.index("/tmp/ci-clone/.venv")
    assert tmpfs < venv


def test_student_code_runs_unprivileged_and_offline():
    for mode in ("root", "user"):
        args = sandbox._bwrap_args(mode, None, None, 3)
        assert "--unshare-net" in args and "--unshare-pid" in args and "--die-with-parent" in args
        assert not any(a.endswith("/solutions") or a.endswith("gradebook.db") for a in args)
    root = sandbox._bwrap_args("root", None, None, 3)
    assert f"--reuid={sandbox.FIRST_UID + 3}" in root and "--bounding-set=-all" in root
    user = sandbox._bwrap_args("user", None, None, 3)
    assert "--unshare-user" in user and "--disable-userns" in user and "ALL" in user


def test_only_the_student_side_is_staged(tmp_path):
    """What runs beside student code is what a kit ships: no reference, cases, judge, samples."""
    staged = sandbox.stage_course(tmp_path / "course")
    names = {str(p.relative_to(staged)) for p in staged.rglob("*.py")}
    assert names >= {"autograder/__init__.py", "autograder/student/selfcheck.py",
                     "autograder/student/runner.py", "torch/__init__.py"}
    grader_side = [n for n in names if n.startswith("autograder/")
                   and n != "autograder/__init__.py" and not n.startswith("autograder/student/")]
    assert not grader_side, grader_side


def test_job_reader_refuses_special_files_and_symlinks(tmp_path):
    """Everything the grader reads from a sandbox's job folder goes through JobReader."""
    import os
    import socket

    import pytest
    (tmp_path / "ok.json").write_text("{}")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("/etc/passwd")
    (tmp_path / "dirlink").symlink_to("/etc")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(1 << 40)
    reader = sandbox.JobReader(str(tmp_path))
    assert reader.read("ok.json", 10) == b"{}"
    for name in ("fifo", "link", "sock", "sparse", "dirlink/passwd", "../etc/passwd"):
        with pytest.raises(sandbox.Unsafe):
            reader.read(name, 1 << 20)
    with pytest.raises(sandbox.Unsafe):
        reader.read("ok.json", 1)
    with pytest.raises(FileNotFoundError):
        reader.read("missing.json", 10)


def _tiny_run(tmp_path, source: str, limits=None):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    with sandbox.RunDir() as run_dir:
        return sandbox.run_notebook(nb, {}, run_dir, mode=sandbox.pick_mode("auto"), slot=0,
                                    limits=limits or sandbox.Limits(cell_seconds=20, notebook_seconds=40))


def test_a_venv_reached_through_a_symlink_still_runs_student_code(tmp_path, monkeypatch):
    """Only real paths are bound into the sandbox; the interpreter must be named by its real path
    too (a symlinked venv made every student score 0: `setpriv: failed to execute python`)."""
    import sys
    link = tmp_path / "venv-link"
    link.symlink_to(Path(sys.prefix).resolve())
    monkeypatch.setattr(sys, "prefix", str(link))
    run = _tiny_run(tmp_path, "import numpy\nprint('ran', numpy.__name__)")
    assert run.status == "ok", run.reason
    assert "ran numpy" in "".join(o.get("text", "") for o in run.executed.cells[0].outputs)


def test_a_lingering_thread_is_not_called_a_timeout(tmp_path):
    run = _tiny_run(tmp_path, "import threading\nthreading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\n"
                              "print('done')")
    assert run.status == "ok" and "ran past" not in run.reason, run.reason
    assert run.seconds < 15


def test_the_memory_cap_is_stated_and_bounds_the_total():
    plan = sandbox.memory_plan(sandbox.Limits())
    assert plan.processes * plan.address_space <= 2 * plan.total or plan.cgroup is not None
    assert plan.processes * plan.address_space < 64 * (3 << 30)
    line = sandbox.describe_mode("root", sandbox.Limits())
    assert "memory:" in line and "GiB" in line


def test_one_notebook_that_does_not_fit_fails_alone(tmp_path):
    """Past the job's space (code alone larger than it): a one-line reason, no exception."""
    run = _tiny_run(tmp_path, "x = 1\n# " + "y" * (3 << 20),
                    sandbox.Limits(cell_seconds=20, notebook_seconds=40, job_bytes=1 << 20))
    assert run.status == "failed" and "does not fit" in run.reason, run.reason


def test_processes_together_stay_under_the_memory_cap(tmp_path):
    """A sandbox's processes together hold no more than its stated total (3 GiB of address space
    x 64 processes let four processes hold 5 GiB before)."""
    import re
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_hostile import HOLD
    run = _tiny_run(tmp_path, HOLD, sandbox.Limits(cell_seconds=90, notebook_seconds=120))
    text = "".join(o.get("text", "") for o in run.executed.cells[0].outputs)
    held = re.search(r"HELD-GIB-([0-9.]+)-PROCS-([0-9]+)-END", text)
    assert held, (run.reason, text[-500:])
    plan = sandbox.memory_plan(sandbox.Limits())
    assert 0 < float(held.group(1)) <= plan.total / (1 << 30) and float(held.group(1)) < 5.0
