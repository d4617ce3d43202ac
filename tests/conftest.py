"""Shared fixtures: the course's assignments, their solution code, and one graded sample class."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session", autouse=True)
def visible_checks():
    """The precomputed visible checks the notebooks' self-checks read (generated, git-ignored:
    `make exercises` writes them too), fresh for this run."""
    from autograder.course import kits
    from autograder.course.cases import ASSIGNMENT_IDS
    for assignment in ASSIGNMENT_IDS:
        kits.write_visible(assignment, kits.VISIBLE)


def run_cli(*args, env=None, timeout=1500) -> subprocess.CompletedProcess:
    """The instructor CLI, exactly as README shows it, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def gradebook_connections(url: str) -> int:
    """Connections to a PostgreSQL gradebook's database that the server sees, other than this
    question's own (asked over psycopg2, not SQLAlchemy: a test counting SQLAlchemy's connects
    does not count it)."""
    import psycopg2
    from sqlalchemy.engine import make_url
    where = make_url(url)
    conn = psycopg2.connect(host=where.query["host"], port=where.query["port"], user=where.username,
                            dbname=where.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (where.database,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def graded_points(assignment: str, cell_type: str | None = None) -> dict[str, float]:
    """grade_id -> points of the source notebook's graded cells: "code" for the autograded
    checks, "markdown" for the written answers a person grades, None for both."""
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and cell_type in (None, c.cell_type)}


def solution_namespace(assignment: str) -> dict:
    """Run the solution notebook's non-test cells in-process; return its namespace."""
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    ns: dict = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not (meta.get("grade") and not meta.get("solution")):
            exec(compile(cell.source, f"<{assignment}:{meta.get('grade_id')}>", "exec"), ns)
    return ns


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class GradedClass:
    def __init__(self, root: Path, cli: subprocess.CompletedProcess, before: dict, after: dict):
        self.root, self.cli, self.before, self.after = root, cli, before, after

    # Autograded (code) cells only: written answers wait for a person (tests/test_term.py).
    def cell_scores(self, assignment: str, student: str) -> dict[str, float]:
        from nbgrader.api import Gradebook
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            nb = gb.find_submission_notebook(assignment, assignment, student)
            return {g.name: float(g.score) for g in nb.grades if g.cell_type == "code"}

    def max_scores(self, assignment: str) -> dict[str, float]:
        from nbgrader.api import Gradebook
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            nb = gb.find_notebook(assignment, assignment)
            return {c.name: float(c.max_score) for c in nb.grade_cells if c.cell_type == "code"}

    def feedback(self, assignment: str, student: str) -> str:
        import html
        path = self.root / "feedback" / student / assignment / f"{assignment}.html"
        # whitespace as a browser shows it: the judge's messages are wrapped in the page
        return " ".join(html.unescape(path.read_text()).split())


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory) -> GradedClass:
    """The bundled sample class for every assignment, graded once by the real command."""
    root = tmp_path_factory.mktemp("grader-root")
    env = {"BN_GRADER_ROOT": str(root)}
    made = run_cli("sample-class", "--all", env=env)
    assert made.returncode == 0, made.stderr[-3000:]
    before = tree_digest(root / "submitted")
    cli = run_cli("grade", "--all", "--quiet", env=env)
    assert cli.returncode == 0, (cli.stdout + cli.stderr)[-4000:]
    return GradedClass(root, cli, before, tree_digest(root / "submitted"))


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The site, built as `make book` builds it (-W: any warning fails)."""
    jb = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(jb), "build", ".", "--path-output", ".", "-W", "-n", "--keep-going"],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return REPO / "_build" / "html"


# ---- grading as an ordinary user ------------------------------------------------------------

TEST_USER = "bn-course-test"


class Grader:
    """Runs the instructor CLI as root (root mode) or as an ordinary user (user mode)."""

    def __init__(self, mode: str, base: Path, course: Path, prefix: list[str], env: dict,
                 owner: str | None):
        self.mode, self.base, self.course, self.prefix, self.env, self.owner = \
            mode, base, course, prefix, env, owner

    def folder(self, name: str) -> Path:
        """A fresh folder the grader can write to (the test user owns it in user mode)."""
        path = Path(tempfile.mkdtemp(prefix=name + "-", dir=self.base))
        path.mkdir(parents=True, exist_ok=True)
        if self.owner:
            subprocess.run(["chown", "-R", self.owner, str(path)], check=True)
            path.chmod(0o755)
        return path

    def own(self, path: Path) -> None:
        if self.owner:
            subprocess.run(["chown", "-R", self.owner, str(path)], check=True)

    def popen(self, *args, env=None, **kw) -> subprocess.Popen:
        full = {**self.env, **(env or {})}
        return subprocess.Popen([*self.prefix, "env", *(f"{k}={v}" for k, v in full.items()),
                                 self.python, "-m", "autograder", *args], cwd=self.course,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def command(self, *cmd, timeout=600) -> subprocess.CompletedProcess:
        """Any command, as the grader runs (the test user's own Python is ``self.python``)."""
        return subprocess.run([*self.prefix, "env", *(f"{k}={v}" for k, v in self.env.items()), *cmd],
                              cwd=self.course, capture_output=True, text=True, timeout=timeout)

    def run(self, *args, env=None, timeout=1500) -> subprocess.CompletedProcess:
        proc = self.popen(*args, env=env)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _course_packages() -> tuple[Path, Path]:
    """The course venv's site-packages and its share/jupyter (nbconvert's templates)."""
    import sysconfig
    return Path(sysconfig.get_paths()["purelib"]), Path(sys.prefix) / "share" / "jupyter"


def _user_grader(tmp: Path, site: Path | None = None, share: Path | None = None) -> Grader:
    """The course, graded by an unprivileged user with its own venv: Debian's python3 plus the
    course venv's packages. The course venv may live where the user cannot reach (a clone under
    /root, mode 700), so its site-packages and share/jupyter are bind-mounted, read-only, into the
    user's own folder, in a mount namespace of each command's own: nothing changes on the host."""
    if subprocess.run(["id", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", TEST_USER], check=True)
    base = Path("/usr/bin/python3")
    if not base.exists():
        pytest.fail("user-mode tests need Debian's /usr/bin/python3 (apt-get install python3-venv)")
    default_site, default_share = _course_packages()
    site, share = site or default_site, share or default_share
    tmp.chmod(0o755)
    venv = tmp / "venv"
    done = subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True)
    assert done.returncode == 0, f"apt-get install python3-venv: {done.stderr[-500:]}"
    own_site = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    # (named site-packages: the sandbox binds the grader's site-packages folders by that name)
    mounts = {tmp / "course-venv" / "site-packages": site, tmp / "course-venv" / "jupyter": share}
    for target in mounts:
        target.mkdir(parents=True)
    Path(own_site, "course-venv.pth").write_text(str(tmp / "course-venv" / "site-packages") + "\n")
    alembic = venv / "bin" / "alembic"
    alembic.write_text(f"#!{venv / 'bin' / 'python'}\nfrom alembic.config import main\nmain()\n")
    alembic.chmod(0o755)
    course = tmp / "course"
    shutil.copytree(REPO, course, ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build", "__pycache__", ".pytest_cache", "submitted", "autograded",
        "feedback", "gradebook.db", ".case_secret"))
    subprocess.run(["chown", "-R", TEST_USER, str(tmp)], check=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp), "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(tmp), "JUPYTER_PATH": str(tmp / "course-venv" / "jupyter")}
    script = "".join(f'mount --bind "${k * 2 + 1}" "${k * 2 + 2}" && ' for k in range(len(mounts)))
    binds = [str(p) for target, source in mounts.items() for p in (source, target)]
    prefix = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
              script + f'shift {len(binds)} && exec runuser -u {TEST_USER} -- "$@"', "sh", *binds]
    grader = Grader("user", tmp, course, prefix, env, TEST_USER)
    grader.python = str(venv / "bin" / "python")
    return grader


def graders() -> list[str]:
    """Modes to test: both when the suite runs as root (CI), user mode otherwise."""
    return ["root", "user"] if os.geteuid() == 0 else ["user"]


@pytest.fixture(scope="session")
def grader_for(tmp_path_factory):
    made, outside = {}, []

    def get(mode: str) -> Grader:
        if mode not in made:
            tmp = tmp_path_factory.mktemp(f"grader-{mode}")
            if mode == "user" and os.geteuid() == 0:
                # pytest's own temp folder is private to root: the test user works elsewhere.
                outside.append(Path(tempfile.mkdtemp(prefix="bncourse-usertest-")))
                made[mode] = _user_grader(outside[-1])
            else:
                tmp.chmod(0o755)
                g = Grader(mode, tmp, REPO, [], {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                            "HOME": os.environ.get("HOME", "/tmp"),
                                            "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}, None)
                g.python = sys.executable
                made[mode] = g
        return made[mode]
    yield get
    for path in outside:
        shutil.rmtree(path, ignore_errors=True)
