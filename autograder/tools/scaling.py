"""Where a notebook's grading time goes, and how grading scales past one machine.

    python -m autograder.tools.bench --scaling [--students 12] [--assignment ch2_forward]

1. **Where the time goes**, per notebook, for each assignment's honest submission: sandbox start
   with the interpreter and the runner's imports (an empty notebook, sandboxed), the student's
   cells (the notebook with nothing recorded, less the empty one), recording (the full request,
   less nothing recorded), reference values (hidden cases, per submission), judging, nbgrader's
   autograde step with the gradebook writes, feedback HTML and the CSV (per notebook of the
   class). Beside it the **floor**: the notebook's own code cells in one cold ``python``.
2. **Scaling**: the class graded locally (``--workers`` sandboxes) and on a Dask cluster of 1 and
   2 single-threaded workers on this machine (a PostgreSQL gradebook started here, as the tests
   do; feedback pages rendered on the workers); per-notebook cost, the coordinator's serial cost per notebook, and from those an Amdahl
   projection of 10,000 students x 6 notebooks on 1, 10 and 100 machines of 16 cores.
"""
from __future__ import annotations

import contextlib
import copy
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]


# ---- 1. where the time goes -------------------------------------------------------------------

def _honest(assignment: str):
    from autograder.course import samples
    release = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return samples.honest(release, solution)


def cpu_seconds() -> float:
    """CPU seconds of this process (every thread), of its children that have been waited for, of
    this thread's live feedback renderer and of the live zygote (with the runs it forked)."""
    from autograder.grader.feedback import live_renderer_cpu
    from autograder.grader.sandbox import zygote
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + live_renderer_cpu()
            + zygote.cpu_seconds())


def _adopt_orphans() -> bool:
    """Make this process a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): bubblewrap's outer
    process exits as soon as the sandbox's init reports its status, without waiting for it, so the
    sandbox (the student's interpreter included) would otherwise be reparented away and its CPU
    never reach ``RUSAGE_CHILDREN``. Adopted, they are reaped here (``_reap_orphans``)."""
    import ctypes
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


ADOPTING = _adopt_orphans()


def _reap_orphans(settle: float = 0.3) -> None:
    """Wait for the adopted orphans of a finished block (its own children were waited for by
    the code that made them): a sandbox's init exits a moment after its outer process."""
    deadline = time.monotonic() + settle
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


@contextlib.contextmanager
def cost(into: dict, name: str):
    """Add the block's wall seconds and core-seconds (this process, every thread, and every
    process it started, sandboxes included) to ``into[name]`` as a [wall, core] pair. Call it
    where no child of this process outlives the block."""
    wall, core = time.perf_counter(), cpu_seconds()
    try:
        yield
    finally:
        pair = into.setdefault(name, [0.0, 0.0])
        pair[0] += time.perf_counter() - wall
        _reap_orphans()
        pair[1] += cpu_seconds() - core


def own_code(nb) -> list[str]:
    """The notebook's own code cells: not the check cells, not shell or magic lines."""
    from autograder.grader import judge
    tests = {i for i, _, _ in judge.grade_cells(nb)}
    return [c.source for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and i not in tests and not c.source.lstrip().startswith(("%", "!"))]


# Each cell in turn in one cold python; a cell that raises does not stop the next (as a kernel).
_OWN_CELLS = ("import json, sys\n"
              "ns = {'__name__': '__main__'}\n"
              "for k, src in enumerate(json.load(sys.stdin)):\n"
              "    try:\n"
              "        exec(compile(src, f'<cell {k}>', 'exec'), ns)\n"
              "    except BaseException:\n"
              "        pass\n")


def floor_run(nb, folder: str) -> None:
    """The floor for one notebook: its own code cells in one cold ``python`` (no kernel, no
    sandbox, no grading), with the course's student package importable as in the sandbox."""
    subprocess.run([sys.executable, "-c", _OWN_CELLS], input=json.dumps(own_code(nb)).encode(), cwd=folder,
                   capture_output=True, timeout=600,
                   env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg",
                        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})


def floor_seconds(nb, repeat: int = 3) -> tuple[float, float]:
    """Best (wall, core-s) of ``repeat`` runs of the notebook's own work (``floor_run``)."""
    best = [float("inf"), float("inf")]
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        for _ in range(repeat):
            got: dict = {}
            with cost(got, "floor"):
                floor_run(nb, tmp)
            best = [min(b, g) for b, g in zip(best, got["floor"])]
    return best[0], best[1]


STAGES = ("sandbox start (job tmpfs, nsenter, bwrap)", "interpreter start", "runner and its imports",
          "the student's cells", "recording", "reference values", "judging")


def breakdown(assignment: str, mode: str, repeat: int = 3) -> dict[str, tuple[float, float]]:
    """(wall, core-s) per notebook in each stage of the sandboxed run and the judge, for the
    assignment's honest submission; each measured ``repeat`` times, the cheapest kept. Each stage
    is a difference of two runs that differ by that stage alone."""
    from autograder.course import checks
    from autograder.grader import judge
    from autograder.grader import sandbox as sb
    from autograder.grader.sandbox import bwrap, jobs
    nb = _honest(assignment)
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
    best: dict[str, list[float]] = {}

    def keep(name, got):
        if warm:
            best[name] = [min(b, g) for b, g in zip(best.get(name, [float("inf")] * 2), got[name])]

    def bare(run_dir, command):  # the sandbox around ``command``, as a notebook's run has it
        if mode == "none":
            subprocess.run(command, check=True, capture_output=True)
            return
        job = jobs._Job(run_dir.new_job_path(), mode, 64 << 20)
        try:
            subprocess.run(jobs._enter(job, mode) + bwrap._bwrap_args(mode, run_dir.course, job.path, 0)
                           + command, check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
        finally:
            job.close()
    with sb.RunDir() as run_dir:
        for k in range(repeat + 1):
            warm = k > 0  # the first round imports torch and fills the visible cases' cache
            key = f"bench-breakdown-{k}-{time.time_ns()}"
            got: dict = {}
            with cost(got, "true"):
                bare(run_dir, ["/bin/true"])
            with cost(got, "python"):
                bare(run_dir, [bwrap.sandbox_python() if mode != "none" else sys.executable, "-c", "pass"])
            with cost(got, "empty"):
                sb.run_notebook(copy.deepcopy(empty), {}, run_dir, mode=mode)
            with cost(got, "cells"):
                sb.run_notebook(copy.deepcopy(nb), {}, run_dir, mode=mode)
            with checks.keyed(key):
                with cost(got, "recorded"):
                    request = judge.recording_request(nb)
                    run = sb.run_notebook(copy.deepcopy(nb), request, run_dir, mode=mode)
                judged = copy.deepcopy(nb)
                with cost(got, "judge"):  # reference values included: a new key
                    judge.judge_notebook(judged, run.results, run.executed, run.reason)
            with checks.keyed(key):  # the same key again: reference values cached
                judged = copy.deepcopy(nb)
                with cost(got, "judge only"):
                    judge.judge_notebook(judged, run.results, run.executed, run.reason)
            for name in got:
                keep(name, got)

    def less(a, b):
        return tuple(max(x - y, 0.0) for x, y in zip(best[a], best[b]))
    from autograder.grader.sandbox import zygote
    if mode != "none" and zygote.shared() is not None:  # runs are forked: no interpreter starts
        return dict(zip(STAGES, (tuple(best["true"]), (0.0, 0.0), less("empty", "true"),
                                 less("cells", "empty"), less("recorded", "cells"),
                                 less("judge", "judge only"), tuple(best["judge only"]))))
    return dict(zip(STAGES, (tuple(best["true"]), less("python", "true"), less("empty", "python"),
                             less("cells", "empty"), less("recorded", "cells"), less("judge", "judge only"),
                             tuple(best["judge only"]))))


# ---- a PostgreSQL server, as the tests start one -----------------------------------------------

@contextlib.contextmanager
def postgres(base: Path):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("--scaling needs a PostgreSQL server (apt-get install postgresql)")
    bindir = Path(found[-1]).parent
    data, sock = base / "pg-data", base / "pg-sock"
    sock.mkdir(parents=True)
    run_as = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        base.chmod(0o755)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", "grader", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "pg.log"),
                             "-o", f"-k {sock} -c listen_addresses='' -p 55434", "start"],
                   check=True, capture_output=True)

    def database(name: str) -> str:
        subprocess.run(run_as + [str(bindir / "createdb"), "-h", str(sock), "-p", "55434", "-U", "grader",
                                 name], check=True, capture_output=True)
        return f"postgresql+psycopg2://grader@/{name}?host={sock}&port=55434"
    try:
        yield database
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)


# ---- 2. the class, locally and on 1 and 2 workers ------------------------------------------------

@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _errors_only(line: str) -> None:
    if line.startswith("error"):
        print("  " + line, file=sys.stderr)


def grade_local(root: Path, url: str, assignments: list[str], workers: int, feedback_in_run: bool = False) -> dict:
    """In this process, so the serial step (nbgrader autograde per submission, on the main
    thread: ``BN_SERIAL_PROCESS=0`` keeps it here) and the judge (on the pre-pass's threads, and
    within the serial step where it judges again) can be timed in core-s (``time.thread_time``)."""
    import threading

    from autograder.grader import judge, pipeline
    from autograder.grader.serial import SERIAL_ENV
    spent = {"serial": 0.0, "judge": 0.0, "judge in serial": 0.0}
    original_one, original_judge = pipeline._autograde_one, judge.judge_notebook

    def timed(into, original):
        def wrapper(*args, **kw):
            t = time.thread_time()
            try:
                return original(*args, **kw)
            finally:
                spent[into] += time.thread_time() - t
                if into == "judge" and threading.current_thread() is threading.main_thread():
                    spent["judge in serial"] += time.thread_time() - t
        return wrapper
    pipeline._autograde_one = timed("serial", original_one)
    judge.judge_notebook = timed("judge", original_judge)
    try:
        with _env(BN_GRADER_ROOT=root, **{SERIAL_ENV: "0"}, **({"BN_GRADEBOOK_URL": url} if url else {})):
            start = time.perf_counter()
            rows = pipeline.grade(assignments, workers=workers, progress=False, feedback=False,
                                  say=_errors_only, hooks=pipeline.Hooks())
            wall = time.perf_counter() - start
            _reap_orphans()  # the sandboxes' adopted inits: their CPU is grading's, not feedback's
            feedback, csv = _feedback_and_csv(assignments, rows)
    finally:
        pipeline._autograde_one, judge.judge_notebook = original_one, original_judge
    return {"wall": wall, "serial": spent["serial"] - spent["judge in serial"], "judge": spent["judge"],
            "feedback": feedback, "csv": csv, "rows": rows}


def _feedback_and_csv(assignments, rows) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, core-s) of the feedback pages (one renderer process per assignment) and of the CSV."""
    from autograder.grader import pipeline
    from autograder.grader.config import load_config, make_api
    from autograder.grader.feedback import write_feedback
    config = load_config()
    got: dict = {}
    with cost(got, "feedback"):
        for a in assignments:
            write_feedback(config, a, [r.student for r in rows if r.assignment == a], whole_class=True)
    with cost(got, "csv"):
        pipeline.Hooks().write_grades_csv(make_api(config), Path(config.CourseDirectory.root) / "grades.csv", rows)
    return tuple(got["feedback"]), tuple(got["csv"])


IDLE_SAMPLE_SECONDS = 4.0


def grade_cluster(root: Path, url: str, assignments: list[str], n_workers: int, secret_file: Path) -> dict:
    """The class on a LocalCluster of ``n_workers`` single-threaded workers. ``core`` is every
    core-second of the run: the cluster's start, its workers and their sandboxes and renderers,
    the scheduler and the coordinator (a sandbox outlives bubblewrap's own process and comes to
    this process, a subreaper, to be waited for: ``_reap_orphans``)."""
    from distributed import Client, LocalCluster

    from autograder.grader import cluster
    got: dict = {}
    with cost(got, "cluster"), \
            _env(BN_GRADER_ROOT=root, BN_GRADEBOOK_URL=url, BN_COURSE_SECRET_FILE=secret_file), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                         dashboard_address=None) as lc:
        cluster.STATS.clear()
        # What this process (the client, and the scheduler and nannies a LocalCluster runs here)
        # spends per second with nothing to do: heartbeats and monitors, a cost of time, not of
        # notebooks. Subtracted below from the coordinator's CPU while grading.
        with Client(lc.scheduler_address):
            time.sleep(1.0)
            cpu, t = time.process_time(), time.monotonic()
            time.sleep(IDLE_SAMPLE_SECONDS)
            idle_rate = (time.process_time() - cpu) / (time.monotonic() - t)
        start = time.perf_counter()
        rows = cluster.grade_on_cluster(lc.scheduler_address, assignments, progress=False,
                                        feedback=True, say=_errors_only)
        wall = time.perf_counter() - start
    stats = list(cluster.STATS.values())
    coordinator = sum(s["coordinator_seconds"] for s in stats)
    coordinator_cpu = sum(s.get("coordinator_cpu", 0.0) for s in stats)
    idle = idle_rate * sum(s.get("wall", 0.0) for s in stats)
    tasks = [t for s in stats for t in s["tasks"]]
    return {"wall": wall, "coordinator": coordinator, "coordinator_cpu": max(coordinator_cpu - idle, 0.0),
            "idle_rate": idle_rate, "core": got["cluster"][1],
            "task": sum(t["task"] for t in tasks), "rows": rows}


def where_the_time_goes(assignments: list[str], students: int, workers: int, mode: str,
                        pipeline: tuple[float, float], floor: tuple[float, float], n: int) -> None:
    """Per notebook, in core-s: each stage of the honest submission's run (``breakdown``, the mean
    over ``assignments``), the class's serial step and feedback (``grade_local`` on a SQLite
    gradebook), and what the class run (``pipeline``, a fresh process) spent beyond them: once per
    run (imports, health check, release, report) and the planted bugs' own costs."""
    from autograder.course.samples import write_many
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter, as the CLI
    print(f"\nwhere a notebook's time goes ({mode} mode; core-s per notebook; sandbox stages: each "
          f"assignment's honest submission, best of 3, mean over assignments):", flush=True)
    stages = {name: 0.0 for name in STAGES}
    for a in assignments:
        for name, (_, core) in breakdown(a, mode).items():
            stages[name] += core / len(assignments)
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        write_many(Path(tmp), assignments, students)
        local = grade_local(Path(tmp), "", assignments, workers)
    stages["reference values"] = max(stages["reference values"], 0.0)
    judged = stages["reference values"] + stages["judging"]
    stages["nbgrader autograde and the gradebook"] = max(local["serial"], 0.0) / n
    stages["grades.csv"] = local["csv"][1] / n
    total = sum(stages.values())
    for name, core in stages.items():
        print(f"  {name:<46} {core:7.3f}", flush=True)
    print(f"  {'sum of the stages':<46} {total:7.3f}")
    print(f"  {'once per run and the planted bugs, amortized':<46} {max(pipeline[1] / n - total, 0.0):7.3f}"
          f"   (the class run: {pipeline[1] / n:.3f})")
    print(f"  {'floor: own code cells, one cold python':<46} {floor[1] / n:7.3f}")
    print(f"  {'feedback HTML (not in the run above)':<46} {local['feedback'][1] / n:7.3f}")
    print(f"  judged in the class run: {local['judge'] / n:.3f} core-s per notebook (the honest one: "
          f"{judged:.3f})", flush=True)


def amdahl(serial_per_nb: float, parallel_core_s: float, notebooks: int, machines: int,
           cores: int = 16) -> float:
    """Hours to grade ``notebooks``: the coordinator's serial part plus the rest over every core."""
    return notebooks * (serial_per_nb + parallel_core_s / (machines * cores)) / 3600


def main(args) -> int:
    from autograder.course.samples import write_many
    from autograder.grader import sandbox as sb
    from autograder.grader.keys import course_secret
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter, as the CLI
    os.environ.setdefault("PYTHONWARNINGS", "ignore")       # and in the Dask workers
    assignments = args.assignment or ["ch2_forward"]
    mode = sb.pick_mode("auto")
    print(f"sandbox: {mode} mode, {os.cpu_count()} cores here", flush=True)

    print("\nwhere one notebook's time goes (honest submission, best of 3; wall s, core-s):")
    for a in assignments:
        parts = breakdown(a, mode)
        floor = floor_seconds(_honest(a))
        for name, (wall, core) in parts.items():
            print(f"  {a:<16} {name:<42} {wall:6.3f} {core:6.3f}")
        core = sum(c for _, c in parts.values())
        print(f"  {a:<16} {'sandboxed run + judge, total':<42} {sum(w for w, _ in parts.values()):6.3f} "
              f"{core:6.3f}   floor (own code cells, one cold python): {floor[0]:6.3f} {floor[1]:6.3f}"
              f"   ratio {core / floor[1]:4.1f}x (core-s)", flush=True)

    base = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    try:
        with postgres(base) as database:
            n = len(assignments) * args.students
            print(f"\none class: {args.students} students x {len(assignments)} assignments = {n} notebooks")
            roots = {}
            for name in ("local", "cluster1", "cluster2"):
                roots[name] = base / name
                write_many(roots[name], assignments, args.students)
            secret = base / "secret"
            secret.write_bytes(course_secret(roots["local"]) + b"\n")
            for name in ("cluster1", "cluster2"):
                shutil.copy(secret, roots[name] / ".case_secret")
            local = grade_local(roots["local"], database("local"), assignments, args.workers)
            autograde = local["serial"] / n
            print(f"  local, {args.workers} sandboxes: {local['wall'] / n:6.3f} s/notebook wall, of which "
                  f"the serial nbgrader autograde step (gradebook; kept in this process to time it) "
                  f"{autograde:6.3f} s/notebook; "
                  f"feedback HTML {local['feedback'][1] / n:6.3f}, CSV {local['csv'][1] / n:6.4f} core-s/notebook",
                  flush=True)
            runs = {}
            for k in (1, 2):
                runs[k] = grade_cluster(roots[f"cluster{k}"], database(f"cluster{k}"), assignments, k, secret)
                print(f"  cluster, {k} worker{'s' if k > 1 else ''}: {runs[k]['wall'] / n:6.3f} s/notebook wall, "
                      f"{runs[k]['core'] / n:6.3f} core-s/notebook in all (the cluster's start, workers, "
                      f"sandboxes, feedback pages, scheduler, coordinator); serial: the coordinator's "
                      f"handling {runs[k]['coordinator'] / n:6.4f} s/notebook (wall), its process "
                      f"{runs[k]['coordinator_cpu'] / n:6.4f} core-s/notebook (coordinator and "
                      f"scheduler threads, beyond their idle {runs[k]['idle_rate']:.3f} core-s per "
                      f"second)", flush=True)
            same = [(r.student, r.score) for r in local["rows"]] == [(r.student, r.score) for r in runs[2]["rows"]]
            print(f"  same scores locally and on the cluster: {same}")
        core_s = runs[1]["core"] / n  # an upper bound: the cluster's start is spread over this class
        # feedback pages are rendered on the workers (in the tasks' time); the CSV on the coordinator
        # the larger of the two measures: the handling's wall time (here on cores the workers
        # share) and the coordinator's process CPU (with the scheduler's, which a real cluster
        # runs beside it)
        serial = max(runs[k][m] for k in (1, 2) for m in ("coordinator", "coordinator_cpu")) / n \
            + local["csv"][0] / n
        total = 10_000 * 6
        print(f"\nAmdahl projection, 10,000 students x 6 notebooks = {total} notebooks "
              f"({core_s:.2f} core-s per notebook, everything included; {serial:.3f} s per notebook serial on "
              f"the coordinator, the CSV included; feedback pages on the workers):")
        print("  | machines (16 cores) | hours | speed-up over 1 |")
        print("  | ---: | ---: | ---: |")
        one = amdahl(serial, core_s, total, 1)
        for m in (1, 10, 100):
            h = amdahl(serial, core_s, total, m)
            print(f"  | {m} | {h:6.2f} | {one / h:5.1f}x |")
        print(f"  ceiling: {1 / serial if serial else float('inf'):.0f} notebooks/s, set by the coordinator")
    finally:
        subprocess.run(["rm", "-rf", str(base)])
    return 0
