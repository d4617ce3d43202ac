"""Properties of the sandbox's construction that the hostile batch cannot show on its own."""
from pathlib import Path

from autograder.grader import sandbox


def test_private_tmp_is_mounted_before_a_course_that_lives_under_tmp(monkeypatch):
    """A checkout (and its venv) under /tmp must stay visible inside the sandbox."""
    from autograder.grader.sandbox import bwrap
    monkeypatch.setattr(bwrap, "_python_roots", lambda: [Path("/tmp/ci-clone/.venv")])
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


def _in_child(body) -> int:
    """Run ``body()`` in a forked child; its return value (0..255) is the exit status."""
    import os
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = body()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_the_input_server_answers_only_a_recorder_child_once_per_case(tmp_path, monkeypatch):
    """issue 25: the notebook's process may not have a case; a child of it may, each case once,
    one child per function; a grandchild may not; a second 'runner' is refused."""
    import os

    import numpy as np

    from autograder.grader.sandbox.inputs import _InputServer
    from autograder.student import recording
    request = {"f": ({"cases": ["a", "b"]}, {"a": {"x": np.arange(3.0)}, "b": {"x": np.ones(2)}}),
               "g": ({"cases": ["c"]}, {"c": {"x": np.zeros(1)}})}
    firsts = []
    server = _InputServer(request, tmp_path / "srv", lambda: firsts.append(len(server.served)))
    server.start()
    monkeypatch.setenv(recording.INPUTS_ENV, str(tmp_path / "srv"))
    try:
        assert recording.announce_runner()          # this process is "the notebook's process"
        assert not recording.announce_runner()      # nobody may take its place

        def ask(function, k):
            try:
                return recording.case_input(recording.connect_inputs(), function, k)
            except recording.BadRecording:
                return None

        assert ask("f", 0) is None                  # the notebook's own process: never

        def recorder():
            conn = recording.connect_inputs()
            got = recording.case_input(conn, "f", 0)
            if not np.array_equal(got["x"], np.arange(3.0)):
                return 1
            try:
                recording.case_input(conn, "f", 0)  # the same case again
                return 2
            except recording.BadRecording:
                pass
            if _in_child(lambda: 0 if ask("f", 1) is None else 3) != 0:  # a grandchild: never
                return 3
            return 0 if ask("f", 1) is not None else 4
        assert _in_child(recorder) == 0
        assert _in_child(lambda: 0 if ask("f", 1) is None else 5) == 0   # another child: f is taken
        assert _in_child(lambda: 0 if ask("g", 0) is not None else 6) == 0
        assert server.served == {("f", 0), ("f", 1), ("g", 0)} and firsts == [0]
    finally:
        server.close()
    assert not (tmp_path / "srv").exists()
    assert os.environ.get(recording.INPUTS_ENV)


def test_a_recorder_child_writes_only_its_own_outputs_and_cannot_signal_the_notebook(tmp_path):
    """issue 25: the child's writable space is its own outputs folder (Landlock, where the
    kernel has it); its descriptors are the grader's connection and /dev/null."""
    import os
    import socket

    import pytest

    from autograder.student import recorder
    own, shared = tmp_path / "outputs" / "f", tmp_path / "job"
    own.mkdir(parents=True)
    shared.mkdir()
    probe = _in_child(lambda: recorder._landlock(str(own)))
    if probe == 0:
        pytest.skip("this kernel has no Landlock")
    keep, other = socket.socketpair()
    r, w = os.pipe()  # what a notebook could have opened before the check forked

    def child():
        recorder._confine(keep.fileno(), str(own))
        (own / "0.json").write_text("{}")
        for path in (shared / "leak", Path("/tmp") / f"leak-{os.getpid()}"):
            try:
                path.write_text("x")
                return 1
            except OSError:
                pass
        try:
            os.write(w, b"x")
            return 2
        except OSError:
            pass
        keep.send(b"still connected")
        if probe >= 6:
            try:
                os.kill(os.getppid(), 0)
                return 3
            except OSError:
                pass
        return 0
    assert _in_child(child) == 0
    assert (own / "0.json").exists() and not (shared / "leak").exists()
    assert other.recv(64) == b"still connected"
    os.set_blocking(r, False)
    try:
        assert os.read(r, 1) == b""
    except BlockingIOError:
        pass
    for fd in (r, w):
        os.close(fd)
    keep.close()
    other.close()


def test_cells_that_ran_after_the_inputs_show_the_graders_note_or_their_own_syntax_error():
    """What was shown before the first hidden input is kept; a cell that ran after it shows the
    grader's note, or, if it does not compile, the error the grader finds in its source (the
    same every time the same source comes: the answer is kept per source)."""
    import nbformat

    from autograder.grader.sandbox import run
    cells = [nbformat.v4.new_code_cell("x = 1", execution_count=1,
                                       outputs=[nbformat.v4.new_output("stream", text="shown\n")]),
             nbformat.v4.new_code_cell("print(x)"), nbformat.v4.new_code_cell("y = (1,\n"),
             nbformat.v4.new_code_cell("%time z = 1\nw = [\n"), nbformat.v4.new_code_cell("never ran")]
    snapshot = nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()
    final = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source, execution_count=k + 1)
                                            for k, c in enumerate(cells[:4])] + [cells[4]])
    for _ in range(2):
        shown = run._before_inputs(snapshot, final)
        outputs = [c.outputs for c in shown.cells]
        assert outputs[0][0]["text"] == "shown\n"
        assert outputs[1][0]["text"] == run.AFTER_INPUTS
        assert (outputs[2][0]["ename"], outputs[2][0]["evalue"]) == ("SyntaxError", "'(' was never closed (line 1)")
        assert outputs[3][0]["ename"] == "SyntaxError" and "line 2" in outputs[3][0]["evalue"]
        assert outputs[4] == []
        outputs[2][0]["evalue"] = "changed by a caller"  # a kept answer is not shared between pages
    assert run._syntax_error(["not", "a", "string"]) is None


def test_the_input_server_ends_when_closed_without_waiting_for_its_poll(tmp_path, monkeypatch):
    """``close`` wakes the server's loop: even a loop that would wait on its sockets for ever
    ends (each run used to wait out a 0.2 s poll here)."""
    import select as real_select
    import types

    from autograder.grader.sandbox import inputs

    def forever(r, w, x, timeout=None):
        return real_select.select(r, w, x)
    monkeypatch.setattr(inputs, "select", types.SimpleNamespace(select=forever))
    server = inputs._InputServer({}, tmp_path / "inputs")
    server.start()
    server.close()
    assert not server.is_alive()
    assert not (tmp_path / "inputs").exists()
    server.close()  # twice is harmless


def test_a_killed_graders_scratch_is_swept_and_one_being_made_is_not(tmp_path, monkeypatch):
    """``sweep_stale`` (each run's start) removes a grading run's scratch folder whose lock no
    process holds, and an old one that never got its lock; it leaves a folder another grader
    holds, and one that was just made and is not locked yet (two Dask workers on one machine)."""
    import fcntl
    import os
    import tempfile
    import time

    from autograder.grader.sandbox import jobs
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    held, killed, fresh, old = (tmp_path / f"bn-grader-{n}" for n in ("held", "killed", "fresh", "old"))
    for folder in (held, killed, fresh, old):
        folder.mkdir()
    lock = open(held / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    (killed / "lock").write_text("")
    past = time.time() - 2 * jobs.FRESH_SECONDS
    os.utime(old, (past, past))
    try:
        removed = jobs.sweep_stale()
    finally:
        lock.close()
    assert sorted(p.name for p in removed) == ["bn-grader-killed", "bn-grader-old"]
    assert held.exists() and fresh.exists() and not killed.exists() and not old.exists()
