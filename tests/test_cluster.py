"""Grading on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes over TCP on
127.0.0.1, and a PostgreSQL gradebook on a private socket (as ``test_postgres.py``).

Skipped where ``distributed`` or a PostgreSQL server is not installed.
"""
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, gradebook_connections, run_cli

pytest.importorskip("distributed")
from test_hostile import EVERY  # noqa: E402  (the hostile submissions, as test_hostile makes them)
from test_postgres import _pg_bin  # noqa: E402

A = "ch2_forward"
HOSTILE = ["kills-parent", "malformed-json", "wrongly-named", "script-in-markdown",
           "symlink-status-to-host-file", "returns-nan", "reads-solutions-and-gradebook"]
PORT = 55433


@pytest.fixture(scope="module")
def postgres():
    """A server with a fresh database per call of the returned function."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="bn-pgc-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    run_as = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        base.chmod(0o755)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", "grader", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                             "-o", f"-k {sock} -c listen_addresses='' -p {PORT}", "start"],
                   check=True, capture_output=True)

    def database(name: str) -> str:
        subprocess.run(run_as + [str(bindir / "createdb"), "-h", str(sock), "-p", str(PORT), "-U",
                                 "grader", name], check=True, capture_output=True)
        return f"postgresql+psycopg2://grader@/{name}?host={sock}&port={PORT}"
    try:
        yield database
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


class Cluster:
    """A scheduler and named workers, each in its own process group (so a test can kill one)."""

    def __init__(self, base: Path, secret: Path):
        self.base, self.secret = base, secret
        self.file = base / "scheduler.json"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "BN_COURSE_SECRET_FILE": str(secret),
                    "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        self.env.pop("BN_GRADER_ROOT", None)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        self._start("scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(self.file)])
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for name in ("w1", "w2"):
            self.add_worker(name)
        self.wait_for(2)

    def _start(self, name: str, cmd: list[str], env=None) -> None:
        log = open(self.base / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(cmd, cwd=REPO, env=env or self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self, name: str, env=None) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        self._start(name, [dask, "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                           "--nworkers", "1", "--no-dashboard", "--name", name,
                           "--host", "127.0.0.1", "--death-timeout", "60"], env)

    def client(self):
        from distributed import Client
        return Client(scheduler_file=str(self.file), timeout=30)

    def wait_for(self, n: int) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=120)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def close(self) -> None:
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


def write_course(root: Path, secret: bytes) -> None:
    """The sample class of A plus a few hostile submissions, and the shared course secret."""
    from autograder.course import samples
    root.mkdir(parents=True)
    (root / ".case_secret").write_bytes(secret + b"\n")
    (root / ".case_secret").chmod(0o600)
    assert run_cli("sample-class", A, env={"BN_GRADER_ROOT": str(root)}).returncode == 0
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    honest = samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    for case in (c for c in EVERY if c.name in HOSTILE):
        folder = root / "submitted" / case.name / A
        folder.mkdir(parents=True)
        made = case.make(copy.deepcopy(honest))
        if isinstance(made, tuple):
            (folder / made[0]).write_bytes(made[1])
        else:
            nbformat.write(made, folder / f"{A}.ipynb")


def gradebook(url: str) -> dict:
    """{student: {cell: points}} and the number of submission rows per student."""
    from nbgrader.api import Gradebook, MissingEntry
    scores, rows = {}, {}
    with Gradebook(url) as gb:
        for student in gb.students:
            try:
                nb = gb.find_submission_notebook(A, A, student.id)
            except MissingEntry:
                continue
            scores[student.id] = {g.name: float(g.score) for g in nb.grades}
        from nbgrader.api import SubmittedAssignment
        for sub in gb.db.query(SubmittedAssignment).all():
            rows[sub.student_id] = rows.get(sub.student_id, 0) + 1
    return {"scores": scores, "rows": rows}


def table(stdout: str) -> list[str]:
    """The score table the command prints (not the paths below it)."""
    return stdout.split("\ngradebook:")[0].splitlines()


def feedback_pages(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_text() for p in sorted((root / "feedback").rglob("*.html"))}


@pytest.fixture(scope="module")
def secret() -> bytes:
    import secrets
    return secrets.token_hex(32).encode()


@pytest.fixture(scope="module")
def template(secret, tmp_path_factory) -> Path:
    """One class, copied for each grading (its notebooks' random cell ids included)."""
    root = tmp_path_factory.mktemp("template") / "course"
    write_course(root, secret)
    return root


def make_course(template: Path, root: Path) -> None:
    shutil.copytree(template, root, symlinks=True)


@pytest.fixture(scope="module")
def local_class(postgres, template, tmp_path_factory):
    root = tmp_path_factory.mktemp("local") / "course"
    make_course(template, root)
    url = postgres("bn_local")
    done = run_cli("grade", A, "--quiet", env={"BN_GRADER_ROOT": str(root), "BN_GRADEBOOK_URL": url})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return {"root": root, "url": url, "table": done.stdout}


@pytest.fixture
def cluster(secret, tmp_path):
    base = Path(tempfile.mkdtemp(prefix="bn-dask-"))
    (base / "secret").write_bytes(secret + b"\n")
    c = Cluster(base, base / "secret")
    try:
        c.start()
        yield c
    finally:
        c.close()
        shutil.rmtree(base, ignore_errors=True)


def _grade_on(cluster, root: Path, url: str, *extra, popen=False):
    env = {"BN_GRADER_ROOT": str(root), "BN_GRADEBOOK_URL": url}
    args = ("grade", A, "--quiet", "--cluster", str(cluster.file), *extra)
    if popen:
        return subprocess.Popen([sys.executable, "-m", "autograder", *args], cwd=REPO, text=True,
                                env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return run_cli(*args, env=env)


def test_cluster_grades_as_local_mode_does(postgres, template, local_class, cluster, tmp_path):
    root = tmp_path / "course"
    make_course(template, root)
    url = postgres("bn_cluster")
    done = _grade_on(cluster, root, url)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # The workers (and their feedback renderers), still up, hold no connection to the gradebook:
    # each task gives its pooled one back when it ends. (Asked before this test opens it itself:
    # where another test made this process open gradebooks the course's way, it keeps one.)
    assert gradebook_connections(url) == 0
    local = gradebook(local_class["url"])
    remote = gradebook(url)
    assert len(local["scores"]) >= 8 + len(HOSTILE) - 2  # two hostile ones have no notebook to grade
    assert remote["scores"] == local["scores"]
    assert set(remote["rows"].values()) == {1}
    assert (root / "grades.csv").read_text() == (local_class["root"] / "grades.csv").read_text()
    assert feedback_pages(root) == feedback_pages(local_class["root"])
    assert table(done.stdout) == table(local_class["table"])
    # Each worker graded something, with the secret from its own file (never sent).
    logs = "".join((cluster.base / f"{w}.log").read_text() for w in ("w1", "w2"))
    assert "Traceback" not in logs, logs[-3000:]

    # Run again: nothing changed, so nothing is graded again; then one resubmission is regraded.
    again = _grade_on(cluster, root, url)
    assert again.returncode == 0, again.stderr[-3000:]
    assert gradebook(url) == remote
    assert again.stdout == done.stdout
    from sqlalchemy import create_engine, text
    with create_engine(url).begin() as conn:
        conn.execute(text("UPDATE bn_graded SET row_json = :r WHERE student = 'sample-honest'"),
                     {"r": '{"student": "sample-honest", "assignment": "%s", "reason": "from the table"}' % A})
    again = _grade_on(cluster, root, url)
    assert "from the table" in again.stdout  # skipped: its row came from the table, not a new run
    honest = root / "submitted" / "sample-honest" / A / f"{A}.ipynb"
    honest.write_text(honest.read_text() + "\n")  # the same notebook, another file: graded again
    changed = _grade_on(cluster, root, url)
    line = next(ln for ln in changed.stdout.splitlines() if ln.startswith("sample-honest "))
    assert "from the table" not in line  # a changed file is graded again
    assert gradebook(url)["scores"] == local["scores"]


def test_a_broken_worker_is_named_and_left_out(postgres, template, local_class, cluster, tmp_path):
    """A third worker with the wrong course secret: named, left out, nobody gets a 0."""
    wrong = cluster.base / "wrong-secret"
    wrong.write_bytes(b"f" * 64 + b"\n")
    cluster.add_worker("w3", env={**cluster.env, "BN_COURSE_SECRET_FILE": str(wrong)})
    cluster.wait_for(3)
    root = tmp_path / "course"
    make_course(template, root)
    url = postgres("bn_broken")
    done = _grade_on(cluster, root, url, "--no-feedback")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "worker" in done.stderr and "left out" in done.stderr and "secret" in done.stderr
    named = [ln for ln in done.stderr.splitlines() if "left out" in ln]
    assert len(named) == 1 and "tcp://127.0.0.1:" in named[0], done.stderr
    assert gradebook(url)["scores"] == gradebook(local_class["url"])["scores"]


def test_a_worker_killed_mid_run(postgres, template, local_class, cluster, tmp_path):
    root = tmp_path / "course"
    make_course(template, root)
    url = postgres("bn_killed")
    proc = _grade_on(cluster, root, url, "--no-feedback", popen=True)
    killed = None
    with cluster.client() as c:
        names = {w: info.get("name") for w, info in c.scheduler_info()["workers"].items()}
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            for w, keys in c.processing().items():
                if any(str(k).startswith("bn-grade-") for k in keys) and names.get(w) in ("w1", "w2"):
                    time.sleep(0.5)  # inside a sandboxed run
                    killed = names[w]
                    cluster.kill(killed)
                    break
            time.sleep(0.1)
    out, err = proc.communicate(timeout=900)
    assert killed, "no grading task was seen running"
    assert proc.returncode == 0, (out + err)[-3000:]
    book = gradebook(url)
    assert book["scores"] == gradebook(local_class["url"])["scores"]  # every submission, right grades
    assert set(book["rows"].values()) == {1}                           # each graded once
    students = [ln.split()[0] for ln in out.splitlines()[1:] if ln.strip() and not ln.startswith(" ")]
    assert len(students) == len(set(students))
