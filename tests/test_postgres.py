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

from conftest import gradebook_connections, run_cli


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


_DATABASES: dict = {}  # "new": makes another database on the module's server


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
    def database(name: str) -> str:
        subprocess.run(run_as + [str(bindir / "createdb"), "-h", str(sock), "-p", "55432", "-U", "grader",
                                 name], check=True, capture_output=True)
        return f"postgresql+psycopg2://grader@/{name}?host={sock}&port=55432"
    try:
        url = database("bn_course")
        _DATABASES["new"] = database
        yield url
    finally:
        _DATABASES.clear()
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


def _nbgraders_schema_head() -> str:
    """nbgrader's schema version, read from its migration scripts (what ``alembic heads`` says)."""
    import nbgrader.api
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(nbgrader.api.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _versions(url: str) -> list[str]:
    from sqlalchemy import create_engine, inspect, text
    engine = create_engine(url)
    try:
        if "alembic_version" not in inspect(engine).get_table_names():
            return []
        with engine.connect() as conn:
            return [v for (v,) in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def test_a_cluster_gradebook_records_nbgraders_schema_version(postgres):
    """``--cluster`` makes its own table beside nbgrader's; nbgrader records its schema version
    only in a database with no table yet. Made first, our table kept it from doing so (no
    ``alembic_version``: ``nbgrader db upgrade`` could not tell the version, and every opening
    took nbgrader's slow way). A fresh database gets the version, and so does one made the old
    way; the version is not written twice."""
    from sqlalchemy import create_engine, text

    from autograder.grader import cluster
    from autograder.grader.config import make_api
    make_api()
    head = _nbgraders_schema_head()
    fresh = _DATABASES["new"]("bn_fresh")
    cluster._ensure_table(fresh)
    cluster._ensure_table(fresh)  # a second run changes nothing
    assert _versions(fresh) == [head]

    old = _DATABASES["new"]("bn_made_the_old_way")
    engine = create_engine(old)
    with engine.begin() as conn:  # what earlier versions did: our table first ...
        conn.execute(text("CREATE TABLE bn_graded (assignment TEXT NOT NULL, student TEXT NOT NULL, "
                          "digest TEXT NOT NULL, version TEXT NOT NULL, row_json TEXT NOT NULL, "
                          "PRIMARY KEY (assignment, student))"))
    engine.dispose()
    import nbgrader.api
    nbgrader.api.Gradebook(old).close()  # ... then nbgrader's tables, without their version
    assert _versions(old) == []
    cluster._ensure_table(old)
    assert _versions(old) == [head]


def test_a_server_gradebook_is_opened_on_one_connection_until_released(postgres):
    """nbgrader opens the gradebook about ten times per submission. On a server (a cluster's
    PostgreSQL) each opening connected anew and read the schema; now a gradebook found ready is
    opened on one pooled connection, and ``release_gradebook_connections`` (each Dask task's
    end) gives it back: the server sees no connection from this process between tasks."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from autograder.grader import cluster
    from autograder.grader.config import make_api, release_gradebook_connections
    make_api()  # nbgrader's Gradebook, opened the course's way
    import nbgrader.api
    url = _DATABASES["new"]("bn_pooled")
    cluster._ensure_table(url)
    connects = []

    def count(dbapi_connection, record):
        connects.append(1)
    event.listen(Engine, "connect", count)
    try:
        release_gradebook_connections()
        assert gradebook_connections(url) == 0
        for _ in range(5):  # a submission's worth of openings, each with a query
            with nbgrader.api.Gradebook(url) as gb:
                gb.update_or_create_student("s1")
        assert len(connects) == 1, f"{len(connects)} connections for 5 openings"
        assert gradebook_connections(url) == 1
        release_gradebook_connections()
        assert gradebook_connections(url) == 0, "a connection was kept after the task's end"
        with nbgrader.api.Gradebook(url) as gb:  # the next task: connected and checked afresh
            assert [s.id for s in gb.students] == ["s1"]
        assert len(connects) == 2
    finally:
        event.remove(Engine, "connect", count)
        release_gradebook_connections()
