"""Benchmark grading three ways on one generated class; print seconds per notebook and ratios.

    python -m autograder.tools.bench [--students 40] [--workers N] [--skip-stock]
    python -m autograder.tools.bench --solutions     # each solution notebook, top to bottom
    python -m autograder.tools.bench --scaling --students 12   # where the time goes; 1 and 2
                                                               # Dask workers; Amdahl (tools/scaling.py)

1. this pipeline: ``grading.grade`` (sandboxed parallel runs, trusted judge, nbgrader gradebook),
   in each sandbox mode this user can run: root mode and user mode (unprivileged user
   namespaces) when run as root, user mode otherwise;
2. stock nbgrader: ``nbgrader autograde`` per assignment, sequential, tests run in the student's
   kernel (the self-check mode of the same check cells, which imports torch there);
3. the floor: bare nbclient execution of the same notebooks, ``--workers`` at a time, no grading
   at all (check cells are told to record nothing).

Targets on 2 cores: (1) at least 4x faster than (2), and at most 1.3x (3).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]




def time_pipeline(root: Path, assignments: list[str], workers: int, mode: str) -> float:
    """The instructor's command, in a fresh process (torch import and reference values included)."""
    for stale in ("gradebook.db", "autograded", "grading_log.json"):
        subprocess.run(["rm", "-rf", str(root / stale)])
    env = {**os.environ, "BN_GRADER_ROOT": str(root)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", *assignments, "--sandbox", mode,
                    "--workers", str(workers), "--no-feedback", "--quiet"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def time_stock(root: Path, assignments: list[str]) -> float:
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.source_directory = {str(REPO / 'solutions')!r}\n"
        f"c.CourseDirectory.release_directory = {str(root / 'release')!r}\n"
        "c.Execute.timeout = 120\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("BN_AUTOGRADER_RECORD", None)
    for a in assignments:
        subprocess.run(["nbgrader", "generate_assignment", a, "--force", "--create"], cwd=root, env=env,
                       check=True, capture_output=True)
    start = time.perf_counter()
    for a in assignments:
        subprocess.run(["nbgrader", "autograde", a, "--force"], cwd=root, env=env, check=True,
                       capture_output=True)
    return time.perf_counter() - start


def time_floor(paths: list[Path], workers: int) -> float:
    from nbclient import NotebookClient
    record = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    (record / "manifest.json").write_text(json.dumps({}))
    os.environ["BN_AUTOGRADER_RECORD"] = str(record)

    def run(path: Path) -> None:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, paths))
    finally:
        os.environ.pop("BN_AUTOGRADER_RECORD", None)
        subprocess.run(["rm", "-rf", str(record)])
    return time.perf_counter() - start


def time_reference(keys: int = 5) -> float:
    """Seconds per submission to draw every hidden case's inputs and compute its reference values:
    hidden cases are keyed per submission (``checks.case_seed``), so this is paid once per
    submission (the cache still serves a regrade, and every visible case, once per class)."""
    from autograder.course import cases, checks
    every = list(cases.CHECKS.values())
    for check in every:  # torch import and visible cases: once per class, not counted
        for case in check.cases:
            if not case.hidden:
                checks.expected_outputs(check, case)
    start = time.perf_counter()
    for k in range(keys):
        with checks.keyed(f"bench-{k}-{time.time()}"):
            for check in every:
                for case in check.cases:
                    if case.hidden:
                        checks.expected_outputs(check, case)
    return (time.perf_counter() - start) / keys


def time_solutions(assignments: list[str]) -> None:
    """Each solution notebook top to bottom in a fresh kernel (self-checks, torch import included)."""
    from nbclient import NotebookClient
    for a in assignments:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "solutions" / a)}}).execute()
        print(f"solution {a}: {time.perf_counter() - start:5.1f} s top to bottom (target < 10 s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--assignment", action="append", help="default: every assignment")
    parser.add_argument("--skip-stock", action="store_true", help="stock nbgrader is slow: skip it")
    parser.add_argument("--solutions", action="store_true",
                        help="only time each solution notebook top to bottom")
    parser.add_argument("--scaling", action="store_true",
                        help="where each notebook's time goes, the class locally and on 1 and 2 Dask "
                             "workers, and an Amdahl projection (autograder/tools/scaling.py)")
    args = parser.parse_args(argv)
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    if args.scaling:
        from autograder.tools import scaling
        return scaling.main(args)
    from autograder.course.cases import ASSIGNMENT_IDS
    assignments = args.assignment or list(ASSIGNMENT_IDS)
    if args.solutions:
        time_solutions(assignments)
        return 0
    base = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        return _compare(base, assignments, args)
    finally:
        subprocess.run(["rm", "-rf", str(base)])


def _compare(base: Path, assignments: list[str], args) -> int:
    from autograder.course import samples
    ours_root, stock_root = base / "pipeline", base / "stock"
    paths = samples.write_many(ours_root, assignments, args.students)
    samples.write_many(stock_root, assignments, args.students)
    n = len(paths)
    print(f"{args.students} students x {len(assignments)} assignments = {n} notebooks, "
          f"{args.workers} workers, {os.cpu_count()} cores", flush=True)
    floor = time_floor(paths, args.workers)
    print(f"floor (bare nbclient, {args.workers} parallel): {floor / n:6.2f} s/notebook", flush=True)
    ours = {}
    for mode in (["root", "user"] if os.geteuid() == 0 else ["user"]):
        ours[mode] = time_pipeline(ours_root, assignments, args.workers, mode)
        print(f"this pipeline, {mode} mode ({args.workers} workers): {ours[mode] / n:6.2f} s/notebook"
              f"   ratio to floor: {ours[mode] / floor:5.2f} (target <= 1.3)", flush=True)
    if len(ours) == 2:
        print(f"  user mode / root mode: {ours['user'] / ours['root']:5.2f}")
    per = time_reference()
    print(f"hidden cases' reference values, per submission (every function): {per * 1000:6.1f} ms"
          f"   ({per / (min(ours.values()) / n) * 100:4.1f} % of the pipeline's time per notebook)", flush=True)
    if not args.skip_stock:
        stock = time_stock(stock_root, assignments)
        print(f"stock nbgrader autograde (sequential): {stock / n:6.2f} s/notebook")
        for mode, seconds in ours.items():
            print(f"  speed-up of {mode} mode over stock nbgrader: {stock / seconds:5.2f}x  (target >= 4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
