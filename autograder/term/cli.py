"""The term's commands, hooked into ``python -m autograder`` (see autograder/cli.py).

    collect  A PATH [--lms canvas|moodle|plain] [--pattern RE]   an LMS bulk download (zip or folder)
    roster   FILE                      the class list (id,name,email) into nbgrader's student table
    due      A [WHEN]                  set (or show) a due date, e.g. "2026-10-05 23:59 UTC"
    export   [A ...|--all] [--lms canvas|moodle|plain] [--out DIR]   grades + feedback for the LMS
    formgrader [--port N]              nbgrader's formgrader (a Jupyter server) for written answers
    sample-class A --term DIR [--lms L] [--students N]   a made-up class: platform zip + roster
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from autograder.term.settings import PATTERNS

COMMANDS = ("collect", "roster", "due", "export", "formgrader")


def add_parsers(sub) -> None:
    p = sub.add_parser("collect", help="collect an LMS bulk download (zip or folder) with nbgrader zip_collect")
    p.add_argument("assignment")
    p.add_argument("path", help="the platform's bulk download: a .zip or a folder")
    p.add_argument("--lms", choices=list(PATTERNS), default=None, help="file-name layout (default: Term.lms)")
    p.add_argument("--pattern", default=None, help="a regular expression for another layout, with the "
                   "groups student_id and file_id (optional: timestamp, late)")
    p = sub.add_parser("roster", help="load the class list (CSV: id,name,email) into the gradebook")
    p.add_argument("file")
    p = sub.add_parser("due", help="set or show an assignment's due date")
    p.add_argument("assignment")
    p.add_argument("when", nargs="?", default=None, help="e.g. '2026-10-05 23:59 UTC'; 'none' clears it")
    p = sub.add_parser("export", help="grades (Canvas / Moodle CSV) and per-student feedback zips")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--all", action="store_true")
    p.add_argument("--lms", choices=list(PATTERNS), default=None, help="naming of the feedback upload (default: Term.lms)")
    p.add_argument("--out", default=None, help="where (default: autograder/export/)")
    p.add_argument("--no-feedback", action="store_true")
    p = sub.add_parser("formgrader", help="start nbgrader's formgrader to grade written answers")
    p.add_argument("--port", type=int, default=8899)
    p.add_argument("--ip", default="127.0.0.1")
    sc = sub.choices["sample-class"]
    sc.add_argument("--term", default=None, metavar="DIR",
                    help="instead: write a made-up class of the first assignment as a platform zip + roster to DIR")
    sc.add_argument("--lms", choices=list(PATTERNS), default="canvas")
    sc.add_argument("--students", type=int, default=30)


def wants(args) -> bool:
    return args.command in COMMANDS or (args.command == "sample-class" and args.term)


def _known(assignment: str) -> str:
    from autograder.grader.pipeline import assignment_ids
    if assignment not in assignment_ids():
        raise SystemExit(f"error: unknown assignment {assignment!r} (known: {', '.join(assignment_ids())})")
    return assignment


def run(args) -> int:
    from autograder.grader import pipeline as grading
    from autograder.term import collect, late, roster
    from autograder.term.settings import Term
    api = grading.make_api()
    Path(api.coursedir.root).mkdir(parents=True, exist_ok=True)
    if args.command == "sample-class":
        from autograder.grader.pipeline import assignment_ids
        from autograder.term import sample as sample_term
        a = _known(args.assignments[0]) if args.assignments else assignment_ids()[0]
        root = Path(api.coursedir.root)
        archive, roster_csv = sample_term.write(a, root / api.coursedir.release_directory,
                                            root / api.coursedir.source_directory, Path(args.term),
                                            lms=args.lms, students=args.students)
        print(f"{a}: a class of {args.students} ({args.lms}): {archive} and {roster_csv}; due "
              f"{sample_term.DUE:%Y-%m-%d %H:%M} UTC")
        return 0
    if args.command == "collect":
        a = _known(args.assignment)
        start = time.monotonic()
        report = collect.collect(api, a, Path(args.path), lms=args.lms, pattern=args.pattern)
        print(report.summary(a))
        print(f"({time.monotonic() - start:.1f} s) into {Path(api.coursedir.root) / api.coursedir.submitted_directory}/")
        return 0
    if args.command == "roster":
        n = roster.load_roster(api, Path(args.file))
        print(f"roster: {n} students in the gradebook ({api.coursedir.db_url})")
        return 0
    if args.command == "due":
        a = _known(args.assignment)
        if args.when is None:
            when = roster.due_date(api, a)
            print(f"{a}: due {when:%Y-%m-%d %H:%M} UTC" if when else f"{a}: no due date")
            return 0
        when = roster.set_due(api, a, None if args.when.lower() == "none" else args.when)
        print(f"{a}: due {when:%Y-%m-%d %H:%M} UTC" if when else f"{a}: due date cleared")
        return 0
    if args.command == "export":
        from autograder.term import lms
        chosen = grading.assignment_ids() if args.all or not args.assignments else \
            [_known(a) for a in args.assignments]
        graded = _graded(api)
        chosen = [a for a in chosen if a in graded]
        if not chosen:
            raise SystemExit("error: nothing graded yet: run `python -m autograder grade` first")
        out = Path(args.out) if args.out else Path(api.coursedir.root) / "export"
        start = time.monotonic()
        paths = lms.export(api, grading.load_config(), chosen, args.lms or Term(config=api.config).lms,
                           out, feedback=not args.no_feedback)
        for key, path in paths.items():
            print(f"{key:<24} {path}")
        waiting = sum(st.get("awaiting", 0) for a in chosen for st in late.standing(api, a).values())
        if waiting:
            print(f"note: {waiting} written answers still await a person (`python -m autograder "
                  f"formgrader`); they count 0 until graded. Export again afterwards.")
        print(f"({time.monotonic() - start:.1f} s)")
        return 0
    if args.command == "formgrader":
        return _formgrader(api, args)
    return 2


def _graded(api) -> set:
    from nbgrader.api import Gradebook
    with Gradebook(api.coursedir.db_url) as gb:
        return {a.name for a in gb.assignments if a.submissions}


def _formgrader(api, args) -> int:
    """nbgrader's formgrader is a Jupyter server extension; it reads nbgrader_config.py from the
    server's working directory (so the server runs in autograder/) and wants the course root
    inside the server's root."""
    import os

    from autograder.grader.feedback import TEMPLATES, mathjax_wheel
    here = Path(__file__).resolve().parents[1]  # autograder/, where nbgrader_config.py is
    cmd = [sys.executable, "-m", "jupyter", "server", f"--ip={args.ip}", f"--port={args.port}",
           "--no-browser", f"--ServerApp.root_dir={Path(api.coursedir.root).resolve()}",
           "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': True}",
           # the course's MathJax copy, at /static/mathjax/es5/
           f"--ServerApp.extra_static_paths=['{mathjax_wheel().parent.parent}']"]
    # nbconvert looks for templates in JUPYTER_PATH first: the course's MathJax macro
    # (grader/templates/nbconvert/templates/base/mathjax.html.j2) replaces nbconvert's, which
    # loads MathJax 2 from a CDN, on every page this server renders.
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(TEMPLATES), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter refuses root unless told; it listens on --ip only
    print(f"formgrader: http://{args.ip}:{args.port}/formgrader (the token is printed below; Ctrl-C stops it)",
          flush=True)
    # The server takes this process's place, so stopping this command (Ctrl-C, SIGTERM) stops
    # the server itself instead of leaving it behind.
    os.chdir(here)
    os.execv(sys.executable, cmd)
