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
import os
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


def floor_seconds(nb, repeat: int = 3) -> float:
    """The notebook's own code cells (not the check cells) in one cold ``python``: its own work."""
    from autograder.grader import judge
    tests = {i for i, _, _ in judge.grade_cells(nb)}
    code = "\n".join(c.source for i, c in enumerate(nb.cells)
                     if c.cell_type == "code" and i not in tests and not c.source.lstrip().startswith(("%", "!")))
    best = float("inf")
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=tmp, check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"})
            best = min(best, time.perf_counter() - start)
    return best


def breakdown(assignment: str, mode: str, repeat: int = 3) -> dict[str, float]:
    """Seconds per notebook in each stage of the sandboxed run and the judge (best of ``repeat``)."""
    from autograder.course import checks
    from autograder.grader import judge
    from autograder.grader import sandbox as sb
    nb = _honest(assignment)
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
    best: dict[str, float] = {}

    def keep(name, seconds):
        if warm:
            best[name] = min(best.get(name, float("inf")), seconds)
    with sb.RunDir() as run_dir:
        for k in range(repeat + 1):
            warm = k > 0  # the first round imports torch and fills the visible cases' cache
            key = f"bench-breakdown-{k}-{time.time_ns()}"
            t = time.perf_counter()
            sb.run_notebook(copy.deepcopy(empty), {}, run_dir, mode=mode)
            keep("empty", time.perf_counter() - t)
            t = time.perf_counter()
            sb.run_notebook(copy.deepcopy(nb), {}, run_dir, mode=mode)
            keep("cells", time.perf_counter() - t)
            with checks.keyed(key):
                t = time.perf_counter()
                request = judge.recording_request(nb)
                run = sb.run_notebook(copy.deepcopy(nb), request, run_dir, mode=mode)
                keep("recorded", time.perf_counter() - t)
                judged = copy.deepcopy(nb)
                t = time.perf_counter()
                judge.judge_notebook(judged, run.results, run.executed, run.reason)
                keep("judge", time.perf_counter() - t)  # reference values included: a new key
            with checks.keyed(key):  # the same key again: reference values cached
                judged = copy.deepcopy(nb)
                t = time.perf_counter()
                judge.judge_notebook(judged, run.results, run.executed, run.reason)
                keep("judge only", time.perf_counter() - t)
    return {"sandbox start, interpreter and imports": best["empty"],
            "the student's cells": max(best["cells"] - best["empty"], 0.0),
            "recording": max(best["recorded"] - best["cells"], 0.0),
            "reference values": max(best["judge"] - best["judge only"], 0.0),
            "judging": best["judge only"]}


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


def grade_local(root: Path, url: str, assignments: list[str], workers: int) -> dict:
    """In this process, so the serial step (nbgrader autograde per submission) can be timed."""
    from autograder.grader import pipeline
    serial = [0.0]
    original = pipeline._autograde_one

    def timed(*args, **kw):
        t = time.perf_counter()
        try:
            return original(*args, **kw)
        finally:
            serial[0] += time.perf_counter() - t
    pipeline._autograde_one = timed
    try:
        with _env(BN_GRADER_ROOT=root, BN_GRADEBOOK_URL=url):
            start = time.perf_counter()
            rows = pipeline.grade(assignments, workers=workers, progress=False, feedback=False,
                                  say=_errors_only, hooks=pipeline.Hooks())
            wall = time.perf_counter() - start
            feedback, csv = _feedback_and_csv(assignments, rows)
    finally:
        pipeline._autograde_one = original
    return {"wall": wall, "serial": serial[0], "feedback": feedback, "csv": csv, "rows": rows}


def _feedback_and_csv(assignments, rows) -> tuple[float, float]:
    from autograder.grader import pipeline
    from autograder.grader.config import load_config, make_api
    from autograder.grader.feedback import write_feedback
    config = load_config()
    t = time.perf_counter()
    for a in assignments:
        write_feedback(config, a, [r.student for r in rows if r.assignment == a], whole_class=True)
    feedback = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.Hooks().write_grades_csv(make_api(config), Path(config.CourseDirectory.root) / "grades.csv", rows)
    return feedback, time.perf_counter() - t


def grade_cluster(root: Path, url: str, assignments: list[str], n_workers: int, secret_file: Path) -> dict:
    from distributed import LocalCluster

    from autograder.grader import cluster
    with _env(BN_GRADER_ROOT=root, BN_GRADEBOOK_URL=url, BN_COURSE_SECRET_FILE=secret_file), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                         dashboard_address=None) as lc:
        cluster.STATS.clear()
        start = time.perf_counter()
        rows = cluster.grade_on_cluster(lc.scheduler_address, assignments, progress=False,
                                        feedback=True, say=_errors_only)
        wall = time.perf_counter() - start
    stats = list(cluster.STATS.values())
    coordinator = sum(s["coordinator_seconds"] for s in stats)
    tasks = [t for s in stats for t in s["tasks"]]
    return {"wall": wall, "coordinator": coordinator, "task": sum(t["task"] for t in tasks),
            "rows": rows}


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

    print("\nwhere one notebook's time goes (honest submission, best of 3, seconds):")
    for a in assignments:
        parts = breakdown(a, mode)
        floor = floor_seconds(_honest(a))
        for name, seconds in parts.items():
            print(f"  {a:<16} {name:<40} {seconds:6.3f}")
        print(f"  {a:<16} {'sandboxed run + judge, total':<40} {sum(parts.values()):6.3f}"
              f"   floor (own code cells, one cold python): {floor:6.3f}"
              f"   ratio {sum(parts.values()) / floor:4.1f}x", flush=True)

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
                  f"the serial nbgrader autograde step (judge, gradebook) {autograde:6.3f} s/notebook; "
                  f"feedback HTML {local['feedback'] / n:6.3f}, CSV {local['csv'] / n:6.4f} s/notebook",
                  flush=True)
            runs = {}
            for k in (1, 2):
                runs[k] = grade_cluster(roots[f"cluster{k}"], database(f"cluster{k}"), assignments, k, secret)
                print(f"  cluster, {k} worker{'s' if k > 1 else ''}: {runs[k]['wall'] / n:6.3f} s/notebook wall, "
                      f"{runs[k]['task'] / n:6.3f} core-s/notebook on the workers, coordinator "
                      f"{runs[k]['coordinator'] / n:6.4f} s/notebook serial", flush=True)
            same = [(r.student, r.score) for r in local["rows"]] == [(r.student, r.score) for r in runs[2]["rows"]]
            print(f"  same scores locally and on the cluster: {same}")
        core_s = runs[1]["task"] / n
        # feedback pages are rendered on the workers (in the tasks' time); the CSV on the coordinator
        serial = max(runs[1]["coordinator"], runs[2]["coordinator"]) / n + local["csv"] / n
        total = 10_000 * 6
        print(f"\nAmdahl projection, 10,000 students x 6 notebooks = {total} notebooks "
              f"({core_s:.2f} core-s per notebook on a worker; {serial:.3f} s per notebook serial on "
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
