"""Grade on a Dask cluster: ``python -m autograder grade A ... --cluster ADDRESS``.

The coordinator (the instructor's command) reads each submission and sends it, as bytes, to a Dask
task; the task runs on a worker, which has the course installed (the same venv, the sandbox's
needs). One task is one student's submission of one assignment, start to finish:

1. it writes the submission into a private scratch course root on the worker;
2. it sanitizes each notebook and runs it in the sandbox (never outside it: ``--no-sandbox`` is
   refused with ``--cluster``), then runs nbgrader's ``autograde`` for that one student, whose
   ``SandboxedJudge`` takes the run and lets the trusted judge write every test cell: the very
   code local mode runs (``serial.autograde_one``);
3. nbgrader writes that submission's grades straight into the shared PostgreSQL gradebook
   (*sharded* writes: each task writes its own submission; the students are created up front by
   the coordinator, so no two tasks create the same row);
4. it renders the student's feedback page there (nbgrader ``generate_feedback`` with the course's
   template, in a subprocess with a clock and a memory cap, as local mode does);
5. it returns what the grade needs: the row (score, status, one-line reason, per-check outcome),
   the autograded notebook (for formgrader), the feedback page and where its time went.

Why shard, not batch: in local mode the serial part is nbgrader's ``autograde`` step (sanitize
again, the preprocessors, SaveAutoGrades' gradebook writes, the autograded notebook), measured by
``python -m autograder.tools.bench --scaling``; kept on the coordinator it would cap a cluster at
one coordinator core. Sharded, the coordinator's serial work per notebook is reading the file,
sending it and writing the autograded notebook and the feedback page back (feedback is rendered
on the workers: on the coordinator it was the largest serial cost left, ``bench --scaling``).

The course secret (it keys the hidden inputs) never travels in a task: each worker reads it from
the file named by ``BN_COURSE_SECRET_FILE`` (or its course root's ``.case_secret``, never created
there), and the per-worker health check compares a fingerprint of it (an HMAC of a fixed string,
which does not reveal the secret) with the coordinator's.

Faults: the health check (the assignment's solution, sandboxed and judged) runs on every worker
first; a worker that fails it is named and left out, and the others carry on. A task that raises
(the worker's fault, not the student's) is retried on another worker; Dask reruns the tasks of
a worker that dies. Tasks are idempotent (nbgrader's ``autograde --force`` for one submission
rewrites its rows in one place), so a rerun leaves exactly one gradebook row per student and
assignment. A table ``bn_graded`` in the gradebook keeps each graded submission's digest and the
grader version: running the command again grades only what changed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.grader.grades import Row

if TYPE_CHECKING:
    from distributed import Client

    from autograder.grader.pipeline import Hooks

SECRET_FILE_ENV = "BN_COURSE_SECRET_FILE"
FINGERPRINT_LABEL = b"bn-course-secret-fingerprint"
TASK_RETRIES = 2          # a task that raised runs again on another worker, this many times
MAX_SUBMISSION_BYTES = 64 << 20   # one submission's files, all together, sent to a worker


class ClusterError(RuntimeError):
    """The cluster cannot grade at all (no scheduler, no shared gradebook, no healthy worker)."""


class WorkerBroken(RuntimeError):
    """This worker cannot grade: its environment (course, sandbox, secret, gradebook) is broken."""


# ---- the secret: read on each worker, never sent ----------------------------------------------

def fingerprint(secret: bytes) -> str:
    return hmac.new(secret, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:32]


def worker_secret() -> bytes:
    """The course secret as this worker has it: the file ``BN_COURSE_SECRET_FILE`` names, or the
    course root's ``.case_secret``. Never created here: a new secret would draw other hidden inputs."""
    from autograder.grader.config import load_config
    from autograder.grader.keys import SECRET_NAME
    named = os.environ.get(SECRET_FILE_ENV)
    path = Path(named) if named else Path(load_config().CourseDirectory.root) / SECRET_NAME
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise WorkerBroken(f"no course secret at {path} ({type(exc).__name__}); set "
                           f"{SECRET_FILE_ENV} on the worker to a copy of the course's .case_secret") from None
    if len(data) < 32:
        raise WorkerBroken(f"the course secret at {path} is too short")
    return data


# ---- what identifies a grading: the submission's digest and the grader's version --------------

def grader_version(assignment: str, mode: str, limits: dict) -> str:
    """The package version, the assignment's source notebook and the sandbox settings: a change
    to any of them regrades everything."""
    from autograder.grader.config import load_config
    from autograder.grader.keys import submission_key  # noqa: F401  (the key's code is the grader's)
    config = load_config()
    source = Path(config.CourseDirectory.source_directory) / assignment / f"{assignment}.ipynb"
    h = hashlib.sha256()
    h.update(_package_version().encode())
    h.update(source.read_bytes())
    h.update(json.dumps([mode, sorted(limits.items())]).encode())
    return h.hexdigest()[:32]


def _package_version() -> str:
    try:
        from importlib.metadata import version
        return version("bn-course")
    except Exception:
        text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
        return next((ln.split("=", 1)[1].strip().strip('"') for ln in text.splitlines()
                     if ln.startswith("version")), "0")


def read_submission(folder: Path) -> dict:
    """A submission's notebooks and timestamp as bytes, and their digest."""
    files, total = {}, 0
    for path in sorted(folder.glob("*.ipynb")) + [folder / "timestamp.txt"]:
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        total += size
        if total > MAX_SUBMISSION_BYTES:
            raise ValueError(f"the submission is larger than {MAX_SUBMISSION_BYTES >> 20} MiB")
        files[path.name] = path.read_bytes()
    h = hashlib.sha256()
    for name, data in sorted(files.items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return {"files": files, "digest": h.hexdigest()}


# ---- the table of what was graded -------------------------------------------------------------

def _engine(db_url: str):
    """For one statement or two: its connection is closed when given back (no pool kept)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool
    return create_engine(db_url, poolclass=NullPool)


def _ensure_table(db_url: str) -> None:
    """nbgrader's tables first, then ours. nbgrader records its schema's version (the table
    ``alembic_version``) only in a database with no table at all: ``bn_graded`` made first kept
    it from doing so, so ``nbgrader db upgrade`` could not tell the schema's version, and every
    opening of the gradebook took nbgrader's slow way (``config.speed_up_nbgrader`` knows a
    ready gradebook by that table). A gradebook made that way gets the table here."""
    from nbgrader import api as nb_api
    from sqlalchemy import inspect, text
    nb_api.Gradebook(db_url).close()
    engine = _engine(db_url)
    if "alembic_version" not in inspect(engine).get_table_names():
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
            if conn.execute(text("SELECT 1 FROM alembic_version")).first() is None:
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                             {"v": nb_api.get_alembic_version()})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bn_graded (assignment TEXT NOT NULL, "
                          "student TEXT NOT NULL, digest TEXT NOT NULL, version TEXT NOT NULL, "
                          "row_json TEXT NOT NULL, PRIMARY KEY (assignment, student))"))


def _record(db_url: str, assignment: str, student: str, digest: str, version: str, row: dict) -> None:
    from sqlalchemy import text
    with _engine(db_url).begin() as conn:
        conn.execute(text("INSERT INTO bn_graded (assignment, student, digest, version, row_json) "
                          "VALUES (:a, :s, :d, :v, :r) ON CONFLICT (assignment, student) DO UPDATE "
                          "SET digest = :d, version = :v, row_json = :r"),
                     {"a": assignment, "s": student, "d": digest, "v": version, "r": json.dumps(row)})


def _already_graded(db_url: str, assignment: str) -> dict[str, tuple[str, str, dict]]:
    from sqlalchemy import text
    with _engine(db_url).begin() as conn:
        got = conn.execute(text("SELECT student, digest, version, row_json FROM bn_graded "
                                "WHERE assignment = :a"), {"a": assignment}).fetchall()
    return {s: (d, v, json.loads(r)) for s, d, v, r in got}


def _row_from(data: dict) -> Row:
    fields = {f.name for f in dataclasses.fields(Row)}
    row = Row(**{k: v for k, v in data.items() if k in fields})
    row.functions = {k: tuple(v) for k, v in row.functions.items()}
    return row


# ---- on the worker ----------------------------------------------------------------------------

@contextlib.contextmanager
def _slot():
    """A sandbox slot unique on this machine, across worker processes and threads (root mode
    runs slot k as uid 61000 + k): an exclusive lock on /tmp/bn-slot-<k>.lock."""
    for k in range(256):
        path = Path(tempfile.gettempdir()) / f"bn-slot-{k}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            yield k
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise WorkerBroken("no free sandbox slot on this machine (256 in use)")


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except Exception:
        return f"pid {os.getpid()}"


def _worker_config(root: Path, settings: dict):
    from autograder.grader.config import load_config
    config = load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = settings["db_url"]
    for name, value in {"mode": settings["mode"], **settings["limits"]}.items():
        setattr(config.SandboxedJudge, name, value)
    return config


def worker_health(assignment: str, settings: dict) -> dict:
    """On one worker: the course is here, the secret matches, the gradebook answers, and the
    sandbox runs the assignment's solution with every check passing. Raises WorkerBroken."""
    import nbformat

    from autograder.grader import pipeline
    from autograder.grader import sandbox as sb
    from autograder.grader.config import release_gradebook_connections
    from autograder.grader.plugins import RunStore, SandboxedJudge
    secret = worker_secret()
    if fingerprint(secret) != settings["fingerprint"]:
        raise WorkerBroken(f"its course secret ({os.environ.get(SECRET_FILE_ENV) or '.case_secret'}) "
                           f"is not the coordinator's: hidden inputs would differ")
    with tempfile.TemporaryDirectory(prefix="bn-health-") as tmp:
        config = _worker_config(Path(tmp), settings)
        judge = SandboxedJudge(config=config)
        try:
            mode = judge.resolved_mode()
        except sb.SandboxUnavailable as exc:
            raise WorkerBroken(f"no sandbox can start here: {exc}") from None
        if mode == "none":
            raise WorkerBroken("the sandbox is off ('none'): submissions never run unsandboxed on a worker")
        try:
            from nbgrader.api import Gradebook
            with Gradebook(settings["db_url"]) as gb:
                gb.find_assignment(assignment)
        except Exception as exc:
            raise WorkerBroken(f"the gradebook cannot be read from here ({type(exc).__name__}: "
                               f"{str(exc)[:120]})") from None
        source = Path(config.CourseDirectory.source_directory) / assignment / f"{assignment}.ipynb"
        if not source.exists():
            raise WorkerBroken(f"the course is not installed here (no {source})")
        nbformat.read(source, as_version=4)
        with sb.RunDir() as run_dir, _slot() as slot:
            store = RunStore(run_dir, mode, judge.limits(), secret)
            api = pipeline.make_api(config)

            class _SlotStore:  # health_check runs slot 0: give it this machine's free slot
                def __getattr__(self, name):
                    return getattr(store, name)

                def execute(self, nb, _slot_ignored=0):
                    return store.execute(nb, slot)
            try:
                pipeline.health_check(api, _SlotStore(), assignment)
            except pipeline.SandboxBroken as exc:
                raise WorkerBroken(str(exc)) from None
            finally:
                release_gradebook_connections()
    return {"worker": _worker_name(), "mode": mode}


def grade_submission(task: dict, settings: dict) -> dict:
    """On a worker: one student's submission of one assignment, sandboxed, judged and written to
    the shared gradebook. Idempotent. Returns the row, the autograded notebooks and timings."""
    from autograder.grader import pipeline, serial
    from autograder.grader import sandbox as sb
    from autograder.grader.config import release_gradebook_connections
    from autograder.grader.plugins import RunStore, SandboxedJudge
    assignment, student = task["assignment"], task["student"]
    times: dict[str, float] = {}
    start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="bn-task-"))
    try:
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        for name, data in task["files"].items():
            (folder / Path(name).name).write_bytes(data)
        config = _worker_config(root, settings)
        judge = SandboxedJudge(config=config)
        mode = judge.resolved_mode()
        if mode == "none":
            raise WorkerBroken("the sandbox is off ('none') on this worker")
        secret = worker_secret()
        with sb.RunDir() as run_dir:
            store = RunStore(run_dir, mode, judge.limits(), secret)
            config.SandboxedJudge.runs = config.SanitizeOnce.runs = store
            api = pipeline.make_api(config)
            notebooks = task["notebooks"]
            t = time.monotonic()
            with _slot() as slot:
                for notebook in notebooks:
                    path = folder / f"{notebook}.ipynb"
                    try:
                        nb = pipeline.sanitize(api, path, assignment, student, notebook)
                    except Exception:
                        continue  # nbgrader's autograde reports why
                    try:
                        run = store.execute(nb, slot)
                    except Exception as exc:
                        run = sb.RunResult("failed", f"the grader could not run this notebook "
                                                     f"({type(exc).__name__})", None)
                    store.put(store.key(nb, assignment, student, notebook), run)
            times["sandboxed run"] = time.monotonic() - t
            t = time.monotonic()
            row = serial.autograde_one(api, store, assignment, student, notebooks, start)
            release_gradebook_connections()  # the renderer connects next: one connection at a time
            times["autograde (judge, gradebook)"] = time.monotonic() - t
        out = root / "autograded" / student / assignment
        autograded = _files(out)
        page, why = {}, ""
        if settings.get("feedback") and autograded:
            t = time.monotonic()
            page, why = _render_feedback(root, assignment, student, settings["db_url"])
            times["feedback"] = time.monotonic() - t
        if why:
            row.reason = "; ".join(x for x in (row.reason, "feedback could not be written: " + why) if x)
        data = dataclasses.asdict(row)
        t = time.monotonic()
        _record(settings["db_url"], assignment, student, task["digest"], settings["version"], data)
        times["record"] = time.monotonic() - t
        times["task"] = time.monotonic() - start
        return {"row": data, "autograded": autograded, "feedback": page, "worker": _worker_name(),
                "times": times}
    finally:
        shutil.rmtree(root, ignore_errors=True)
        release_gradebook_connections()  # no connection held between tasks


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))
            if p.is_file() and not p.is_symlink()} if folder.is_dir() else {}


def _render_feedback(root: Path, assignment: str, student: str, db_url: str) -> tuple[dict, str]:
    """This student's feedback page, rendered in the task's scratch root (MathJax linked, not
    copied); returns ({file name: bytes}, one-line reason when it could not be written)."""
    from autograder.grader import feedback
    (root / "feedback").mkdir(exist_ok=True)
    (root / "feedback" / "_mathjax").symlink_to(feedback.mathjax_wheel(), target_is_directory=True)
    env = {**os.environ, "BN_GRADER_ROOT": str(root), "BN_GRADEBOOK_URL": db_url}
    ok, why = feedback._feedback_process(assignment, [student], feedback.FEEDBACK_SECONDS, env=env)
    return (_files(root / "feedback" / student / assignment), "") if ok else ({}, why)


# ---- the coordinator --------------------------------------------------------------------------

def connect(address: str) -> Client:
    """A Dask client for a scheduler address (tcp://host:8786) or a scheduler file."""
    from distributed import Client
    try:
        if os.path.exists(address):
            return Client(scheduler_file=address, timeout=30)
        return Client(address, timeout=30)
    except OSError as exc:
        raise ClusterError(f"no Dask scheduler answers at {address}: {exc}") from None


def check_workers(client: Client, assignment: str, settings: dict, say: Callable[[str], None]) -> list[str]:
    """The health check on every worker; returns the healthy ones, names the others."""
    from distributed import wait
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"]) if _takes_n_workers(client) \
        else sorted(client.scheduler_info()["workers"])
    if not workers:
        raise ClusterError("the Dask scheduler has no workers")
    futures = {w: client.submit(worker_health, assignment, settings, workers=[w],
                                allow_other_workers=False, pure=False, key=f"bn-health-{assignment}-{w}-{time.time_ns()}")
               for w in workers}
    wait(list(futures.values()))
    healthy = []
    for w, f in futures.items():
        try:
            f.result()
            healthy.append(w)
        except Exception as exc:
            say(f"error: worker {w} cannot grade, left out: {type(exc).__name__}: {exc}"[:600])
    if not healthy:
        raise ClusterError("no worker passed the health check (see above): no grade was written")
    return healthy


def _due(db_url: str, assignment: str) -> str:
    """The assignment's due date as the gradebook has it: a new one regrades (lateness)."""
    from nbgrader.api import Gradebook
    with Gradebook(db_url) as gb:
        return str(gb.find_assignment(assignment).duedate or "")


def _takes_n_workers(client) -> bool:
    import inspect
    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def grade_on_cluster(address: str, assignments: list[str], students: list[str] | None = None,
                     mode: str | None = None, limits: dict | None = None, progress: bool = True,
                     feedback: bool = True, say: Callable[[str], None] = print,
                     hooks: Hooks | None = None) -> list[Row]:
    """``pipeline.grade``'s contract, with each submission graded by a task on the cluster."""
    from distributed import as_completed

    from autograder.grader import pipeline
    from autograder.grader import sandbox as sb
    from autograder.grader.config import load_config, make_api
    from autograder.grader.feedback import close_renderer, place_mathjax, write_feedback
    from autograder.grader.keys import course_secret
    hooks = hooks or pipeline.Hooks()
    if mode == "none":
        raise ClusterError("--cluster never runs submissions outside the sandbox: drop --no-sandbox")
    config = load_config()
    api = make_api(config)
    db_url = api.coursedir.db_url
    if db_url.startswith("sqlite"):
        raise ClusterError("--cluster needs a gradebook every worker can reach: set BN_GRADEBOOK_URL "
                           "to a PostgreSQL URL (README: larger courses)")
    root = Path(api.coursedir.root)
    limits = {k: v for k, v in (limits or {}).items() if v is not None}
    _ensure_table(db_url)
    client = connect(address)
    rows: list[Row] = []
    say(f"cluster: {address}, sandbox on each worker ({mode or 'auto'} mode), gradebook {db_url.split('?')[0]}")
    try:
        settings = {"db_url": db_url, "mode": mode or "auto", "limits": limits, "feedback": feedback,
                    "fingerprint": fingerprint(course_secret(root))}
        healthy = None
        for assignment in assignments:
            who = [s for s in pipeline.submitted_students(api, assignment) if students is None or s in students]
            try:
                with sb.RunDir() as run_dir:
                    pipeline.ensure_source_in_gradebook(api, assignment, run_dir.scratch(f"release-{assignment}"))
                hooks.before_assignment(api, assignment)
                if who and healthy is None:
                    healthy = check_workers(client, assignment, settings, say)
                version = grader_version(assignment, settings["mode"], {**limits, "feedback": feedback,
                                                                          "due": _due(db_url, assignment)})
                mine = _grade_assignment(client, api, root, assignment, who, healthy or [],
                                         {**settings, "version": version}, progress, say, as_completed)
            except (KeyboardInterrupt, ClusterError):
                raise
            except Exception as exc:
                say(f"error: grading {assignment} failed: {type(exc).__name__}: {exc}"[:500])
                continue
            try:
                mine = hooks.annotate(api, assignment, mine, students)
            except Exception as exc:
                say(f"error: lateness and missing students of {assignment}: {type(exc).__name__}: {exc}"[:500])
            rows += mine
            if feedback:  # rendered on the workers; here only MathJax, and a page a worker left out
                place_mathjax(root / api.coursedir.feedback_directory)
                left = [r.student for r in mine if r.status != "missing" and not
                        (root / api.coursedir.feedback_directory / r.student / assignment).is_dir()
                        and (root / "autograded" / r.student / assignment).is_dir()]
                failed = write_feedback(config, assignment, left, whole_class=False) if left else {}
                for r in mine:
                    if r.student in failed:
                        r.reason = "; ".join(x for x in (r.reason, "feedback could not be written: "
                                                         + failed[r.student]) if x)
        pipeline._write_outputs(api, root, rows, say, hooks)
    finally:
        client.close()
        close_renderer()
    return rows


STATS: dict[str, list] = {}   # the last run's timings, for the bench


def _grade_assignment(client, api, root: Path, assignment: str, who: list[str], healthy: list[str],
                      settings: dict, progress: bool, say, as_completed) -> list[Row]:
    from nbgrader.api import Gradebook

    from autograder.grader import pipeline
    notebooks = pipeline.source_notebooks(api, assignment)
    coordinator, cpu = time.monotonic(), time.process_time()
    with Gradebook(settings["db_url"]) as gb:  # students up front: no two tasks create one
        for s in who:
            gb.update_or_create_student(s)
    done = _already_graded(settings["db_url"], assignment)
    rows: dict[str, Row] = {}
    tasks: dict[str, dict] = {}
    for student in who:
        folder = Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
        try:
            sub = read_submission(folder)
        except Exception as exc:
            rows[student] = Row(student, assignment, status="failed",
                                reason=f"the submission could not be read: {exc}"[:300])
            continue
        previous = done.get(student)
        if (previous and previous[0] == sub["digest"] and previous[1] == settings["version"]
                and (root / "autograded" / student / assignment).is_dir()):
            rows[student] = _row_from(previous[2])
            continue
        tasks[student] = {"assignment": assignment, "student": student, "notebooks": notebooks, **sub}
    bar = pipeline.Progress(len(tasks), f"grading {assignment} on the cluster", progress)
    STATS[assignment] = {"skipped": len(who) - len(tasks), "tasks": [],
                         "coordinator_seconds": time.monotonic() - coordinator}

    def submit(student: str, allowed: list[str], attempt: int):
        task = tasks[student]
        f = client.submit(grade_submission, task, settings, workers=allowed, allow_other_workers=False,
                          pure=False, key=f"bn-grade-{assignment}-{student}-{task['digest'][:12]}-{attempt}")
        meta[f.key] = (student, allowed, attempt)
        return f

    meta: dict[str, tuple] = {}
    pending = as_completed([submit(s, healthy, 0) for s in tasks])
    for future in pending:
        student, allowed, attempt = meta.pop(future.key)
        t = time.monotonic()
        try:
            result = future.result()
        except Exception as exc:
            bad = _who_ran(client, future)
            rest = [w for w in allowed if w != bad] or allowed
            if attempt < TASK_RETRIES:
                say(f"error: the grader failed on {student}'s {assignment}"
                    + (f" on worker {bad}" if bad else "") + f": {type(exc).__name__}: {exc}"[:300]
                    + "; trying again")
                pending.add(submit(student, rest, attempt + 1))
                continue
            rows[student] = Row(student, assignment, status="failed",
                                reason=f"the grader failed on this submission (not graded; run the "
                                       f"command again): {type(exc).__name__}: {exc}"[:300])
            bar.step(student)
            continue
        row = _row_from(result["row"])
        out = root / "autograded" / student / assignment
        if out.exists():
            shutil.rmtree(out)
        if result["autograded"]:  # none when nbgrader could not read the submission, as locally
            out.mkdir(parents=True)
        for name, data in result["autograded"].items():
            (out / Path(name).name).write_bytes(data)
        page = root / "feedback" / student / assignment
        if result.get("feedback"):
            if page.exists():
                shutil.rmtree(page)
            page.mkdir(parents=True)
            for name, data in result["feedback"].items():
                (page / Path(name).name).write_bytes(data)
        rows[student] = row
        STATS[assignment]["tasks"].append(result["times"])
        STATS[assignment]["coordinator_seconds"] += time.monotonic() - t
        bar.step(student)
    # This process's CPU over the assignment: the coordinator's threads, and the scheduler's where
    # it runs here (the bench's LocalCluster), while the workers graded.
    STATS[assignment]["coordinator_cpu"] = time.process_time() - cpu
    STATS[assignment]["wall"] = time.monotonic() - coordinator
    return [rows[s] for s in who if s in rows]


def _who_ran(client, future) -> str | None:
    try:
        return client.run_on_scheduler(_last_worker, future.key)
    except Exception:
        return None


def _last_worker(key, dask_scheduler=None):
    ts = dask_scheduler.tasks.get(key) if dask_scheduler is not None else None
    if ts is None:
        return None
    erred = sorted(getattr(ts, "erred_on", None) or ())
    if erred:
        return erred[-1]
    ws = getattr(ts, "processing_on", None)
    return ws.address if ws is not None else None
