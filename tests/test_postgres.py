"""The gradebook on PostgreSQL: a server started by this test, on a private Unix socket.

Skipped only where no PostgreSQL server is installed (.ci/run installs one).
"""
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    # Not under pytest's tmp: that is private to root, and postgres runs as its own user.
    base = Path(tempfile.mkdtemp(prefix="bn-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    run_as = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        base.chmod(0o755)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", "grader", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                             "-o", f"-k {sock} -c listen_addresses='' -p 55432", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run(run_as + [str(bindir / "createdb"), "-h", str(sock), "-p", "55432", "-U", "grader",
                                 "bn_course"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://grader@/bn_course?host={sock}&port=55432"
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_grading_writes_a_postgresql_gradebook(postgres, tmp_path, graded_class):
    env = {"BN_GRADER_ROOT": str(tmp_path), "BN_GRADEBOOK_URL": postgres}
    assert run_cli("sample-class", "ch2_forward", env=env).returncode == 0
    done = run_cli("grade", "ch2_forward", "--quiet", "--no-feedback", env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert not (tmp_path / "gradebook.db").exists()
    from nbgrader.api import Gradebook
    with Gradebook(postgres) as gb:
        full = sum(graded_class.max_scores("ch2_forward").values())   # the autograded points
        assert gb.find_submission("ch2_forward", "sample-honest").score == full
        assert gb.find_submission("ch2_forward", "sample-blank").score == 0
        assert len(gb.students) >= 8
        # A second, independent grading run gives every cell the same points (run to run).
        for student in gb.students:
            nb = gb.find_submission_notebook("ch2_forward", "ch2_forward", student.id)
            again = {g.name: float(g.score) for g in nb.grades if g.cell_type == "code"}
            assert again == graded_class.cell_scores("ch2_forward", student.id), student.id
