"""The instructor's command line: ``python -m autograder <command>``.

    release  [A ...|--all]   regenerate exercises/<A>/ from solutions/<A>/ (nbgrader generate_assignment)
    sample-class [A ...|--all]   put the bundled sample class into autograder/submitted/
    kits     [A ...|--all]   build the student kits (_build/kits/<A>.zip) and the visible checks
    grade    [A ...|--all]   grade every submission: gradebook, autograded/, feedback/, grades.csv
    collect, roster, due, export, formgrader: a term with the course (autograder/term/cli.py)
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import autograder.grader  # noqa: F401  (first: it keeps a slow optional import out of grading)


def _assignments(args) -> list[str]:
    from autograder.grader.pipeline import assignment_ids
    known = assignment_ids()
    chosen = known if args.all or not args.assignments else args.assignments
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise SystemExit(f"error: unknown assignment {unknown[0]!r} (known: {', '.join(known)})")
    return chosen


def _start_zygote_meanwhile() -> None:
    """Notebooks are forked from a pre-imported interpreter (``sandbox.zygote``): start it now, a
    process of its own importing numpy, IPython and matplotlib while this one imports nbgrader and
    opens the gradebook; the first run waits for it, and it stops with this process."""
    import atexit

    from autograder.grader.sandbox import zygote
    thread = zygote.start_meanwhile()

    def stop():  # a command that ended early (refused, interrupted) leaves no zygote nor its folder
        thread.join(timeout=90)
        zygote.stop()
    atexit.register(stop)


def _table(rows) -> str:
    """The score table; student-controlled text (ids, reasons, messages) with control and bidi
    characters escaped, so it cannot redraw the terminal."""
    from autograder.grader.grades import cut, score_text
    from autograder.grader.grades import note as row_note
    from autograder.grader.safety import safe_text

    def clean(text) -> str:
        return safe_text(text, newlines=False)
    w = max([len("student")] + [len(clean(r.student)) for r in rows])
    lines = [f"{'student':<{w}} {'assignment':<20} {'score':>9}  result"]
    for r in rows:
        if r.status == "grader error":
            note = f"GRADER ERROR (not graded, not the student's doing): {r.reason}"
        elif r.status != "graded":
            note = f"{'REFUSED' if r.status == 'refused' else 'FAILED'}: {r.reason}"
        else:
            lost = [gid for gid, (ok, _) in r.functions.items() if not ok]
            note = "all checks pass" if not lost else "lost " + ", ".join(lost)
            if r.mistakes:
                note += " — " + "; ".join(sorted(set(r.mistakes)))
            elif lost:
                first = next(msg for gid, (ok, msg) in r.functions.items() if not ok)
                note += " — " + cut(first, 90)
            if r.reason:  # graded, with something to know (a cell stopped, a bad timestamp)
                note += f" (note: {cut(r.reason, 120)})"
        lines.append(f"{clean(r.student):<{w}} {r.assignment:<20} {score_text(r)}  "
                     f"{clean(row_note(r, note))}")
    waiting = sum(getattr(r, "awaiting", 0) for r in rows)
    if waiting:
        lines.append(f"\n{waiting} written answers await a person: `python -m autograder formgrader`")
    return "\n".join(lines)


def _cluster(args) -> dict:
    return {"cluster": args.cluster} if getattr(args, "cluster", None) else {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("release", "kits", "sample-class", "grade"):
        p = sub.add_parser(name)
        p.add_argument("assignments", nargs="*")
        p.add_argument("--all", action="store_true", help="every assignment")
        if name == "kits":
            p.add_argument("--out", default=None, help="where the kits go (default: _build/kits)")
        if name == "grade":
            p.add_argument("--student", action="append", help="only this student (repeatable)")
            p.add_argument("--workers", type=int, default=None, help="parallel sandboxes (default: cores)")
            p.add_argument("--cell-timeout", type=float, default=None,
                           help="seconds per cell (default: SandboxedJudge.cell_timeout, 30)")
            p.add_argument("--notebook-timeout", type=float, default=None,
                           help="seconds per notebook (default: SandboxedJudge.notebook_timeout, 120)")
            p.add_argument("--sandbox", choices=["auto", "root", "user"], default=None,
                           help="sandbox mode (default: SandboxedJudge.mode, auto: root when run "
                                "as root, else unprivileged user namespaces)")
            p.add_argument("--no-sandbox", action="store_true",
                           help="run student code WITHOUT bubblewrap (unsafe; for machines where it cannot start)")
            p.add_argument("--no-feedback", action="store_true", help="skip feedback HTML")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument("--cluster", default=None, metavar="ADDRESS",
                           help="grade on a Dask cluster: its scheduler address (tcp://host:8786) "
                                "or scheduler file; needs a PostgreSQL gradebook (README)")
    from autograder.term import cli as term_cli
    term_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "grade" and not getattr(args, "no_sandbox", False) and not getattr(args, "cluster", None):
        _start_zygote_meanwhile()
    # nbgrader runs `alembic` from PATH: make the interpreter's own bin dir come first.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter inside nbgrader

    if term_cli.wants(args):
        return term_cli.run(args)
    from autograder.grader import pipeline
    assignments = _assignments(args)
    api = pipeline.make_api()
    if args.command == "release":
        for a in assignments:
            pipeline.release(api, a)
            print(f"released {a} -> exercises/{a}/")
        return 0
    if args.command == "kits":
        from autograder.course import kits
        out = Path(args.out) if args.out else kits.REPO / "_build" / "kits"
        for path in kits.build_all(out, assignments):
            print(f"kit {path} ({path.stat().st_size // 1024} KiB)")
        return 0
    if args.command == "sample-class":
        from autograder.course import samples
        root = Path(api.coursedir.root)
        for a in assignments:
            ids = samples.write_class(a, Path(api.coursedir.root) / api.coursedir.release_directory,
                                      root / api.coursedir.source_directory, root / api.coursedir.submitted_directory)
            print(f"{a}: wrote {len(ids)} sample submissions to autograder/submitted/")
        return 0

    from autograder.grader.cluster import ClusterError
    from autograder.grader.sandbox import SandboxUnavailable
    if args.no_sandbox:
        print("WARNING: --no-sandbox: student code runs with the grader's own privileges, network "
              "and files. Use only on submissions you trust.", file=sys.stderr)
    limits = {"cell_timeout": args.cell_timeout, "notebook_timeout": args.notebook_timeout}
    try:
        from autograder.term.grading import grade
        rows = grade(assignments, students=args.student, workers=args.workers,
                     mode="none" if args.no_sandbox else args.sandbox, limits=limits,
                     progress=not args.quiet, feedback=not args.no_feedback,
                     say=lambda line: print(line, file=sys.stderr), **_cluster(args))
    except SandboxUnavailable as exc:
        print(f"error: no sandbox can start here: {exc}. Refusing to grade; --no-sandbox runs "
              f"student code unprotected.", file=sys.stderr)
        return 2
    except pipeline.SandboxBroken as exc:
        print(f"error: {exc}. Stopped before writing any grade: the fault is the grader's, not "
              f"the students'.", file=sys.stderr)
        return 3
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("\ninterrupted: grading stopped, scratch space removed", file=sys.stderr)
        return 130
    print(_table(rows))
    print(f"\ngradebook: {api.coursedir.db_url}\ngrades:    {Path(api.coursedir.root) / 'grades.csv'}"
          f"\nfeedback:  {Path(api.coursedir.root) / api.coursedir.feedback_directory}/"
          f"\nreport:    {Path(api.coursedir.root) / 'grade_report.html'}")
    return 0
