"""The one piece of nbgrader we replace: executing the tests in the student's own kernel.

``SandboxedJudge`` takes the place of nbgrader's ``Execute`` preprocessor in ``nbgrader autograde``.
It runs the sanitized notebook in the sandbox (or takes the result of a run the parallel
pre-pass already made for exactly this notebook), copies back the plain outputs of ordinary
cells, and lets the trusted judge write every test cell's output.  nbgrader's own
``SaveAutoGrades`` then reads those outputs (an error output = no points) into the gradebook, so
the gradebook, ``generate_feedback``, ``export`` and formgrader keep working unchanged.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import hashlib
import html
import json
import os
import threading
from typing import TYPE_CHECKING

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    OverwriteCells,
    SaveAutoGrades,
)
from traitlets import Enum, Float, Instance, Integer

from autograder.grader import sandbox as sb
from autograder.grader.keys import notebook_digest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nbformat import NotebookNode

# Output types shown in feedback; anything else a student's code produced (HTML, JavaScript)
# is dropped so it cannot script the instructor's browser (see autograder.grader.safety).


class GraderError(RuntimeError):
    """The grader's own machinery failed on a submission (after retrying): it is marked "grader
    error" for the instructor, never scored."""


# Tests make the judge fail for some students ("a,b:once": always for a, the first time only for
# b), to show that a grader failure is retried and never becomes a 0.
FAULT_ENV = "BN_GRADER_TEST_FAULT"
ATTEMPTS = 2


class RunStore:
    """One grading run's state: its scratch space, the sandbox mode and limits, the runs the
    parallel pre-pass made ahead of nbgrader's ``autograde``, the outcomes the judge reached, and
    the pool of sandbox slots (one sandbox per slot, always: a slot's uid and process limit are
    its own). ``grading.grade`` makes one and hands it to ``SandboxedJudge`` through nbgrader's config."""

    def __init__(self, run_dir: sb.RunDir, mode: str, limits: sb.Limits, secret: bytes = b"",
                 workers: int = 1, first_slot: int = 0):
        import queue
        self.run_dir, self.mode, self.limits, self.secret = run_dir, mode, limits, secret
        self._runs: dict[str, sb.RunResult] = {}
        self._run_owner: dict[str, tuple[str, str]] = {}  # run key -> (assignment, student)
        self._sanitized: dict[tuple, NotebookNode] = {}  # the pre-pass's, until nbgrader asks (SanitizeOnce)
        # run key -> (digest of the notebook judged, its judged cells, the outcomes): ``prejudge``
        self._judged: dict[str, tuple[str, list, list]] = {}
        self.outcomes: dict[tuple, tuple] = {}
        self.grader_errors: dict[tuple, str] = {}   # (assignment, student, notebook) -> why
        self._faults: set[str] = set()
        self._lock = threading.Lock()
        self.slots: queue.Queue[int] = queue.Queue()
        for k in range(max(1, workers)):
            self.slots.put(first_slot + k)

    def __deepcopy__(self, memo):  # nbgrader copies its config; this is a handle, not a value
        return self

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        """A sandbox slot no other run holds, for as long as the block runs."""
        k = self.slots.get()
        try:
            yield k
        finally:
            self.slots.put(k)

    def injected_fault(self, student: str) -> bool:
        """A test's injected grader failure for ``student`` (see FAULT_ENV)."""
        wanted = dict(item.partition(":")[::2] for item in os.environ.get(FAULT_ENV, "").split(",") if item)
        if student not in wanted:
            return False
        once = wanted[student] == "once"
        with self._lock:
            if once and student in self._faults:
                return False
            self._faults.add(student)
        return True

    @staticmethod
    def key(nb: NotebookNode, assignment: str, student: str, notebook: str) -> str:
        cells = [(c.cell_type, c.source) for c in nb.cells]
        return hashlib.sha256(json.dumps([assignment, student, notebook, cells]).encode()).hexdigest()

    def submission_key(self, nb: NotebookNode) -> str:
        from autograder.grader.keys import submission_key
        return submission_key(self.secret, nb) if self.secret else ""

    def execute(self, nb: NotebookNode, slot: int | None = None) -> sb.RunResult:
        """Run ``nb`` in the sandbox (in ``slot``, or one taken from the pool for the run);
        any failure here is this notebook's alone."""
        from autograder.course import checks
        from autograder.grader import judge
        try:
            with checks.keyed(self.submission_key(nb)):
                request = judge.recording_request(nb)
        except Exception as exc:
            return sb.RunResult("grader-error", f"the grader could not prepare this notebook's cases "
                                                f"({type(exc).__name__})", None)
        if slot is None:
            with self.slot() as taken:
                return sb.run_notebook(nb, request, self.run_dir, mode=self.mode, slot=taken,
                                       limits=self.limits)
        return sb.run_notebook(nb, request, self.run_dir, mode=self.mode, slot=slot, limits=self.limits)

    def put(self, key: str, run: sb.RunResult, assignment: str = "", student: str = "") -> None:
        with self._lock:
            self._runs[key] = run
            self._run_owner[key] = (assignment, student)

    def take(self, key: str) -> sb.RunResult | None:
        with self._lock:
            self._run_owner.pop(key, None)
            return self._runs.pop(key, None)

    def hand_over(self, assignment: str, student: str) -> dict:
        """Everything kept for ``student``'s ``assignment`` (runs, verdicts, sanitized notebooks),
        taken out of this store, for another process's store (``receive``)."""
        with self._lock:
            keys = [k for k, owner in self._run_owner.items() if owner == (assignment, student)]
            runs = {k: self._runs.pop(k) for k in keys if k in self._runs}
            judged = {k: self._judged.pop(k) for k in keys if k in self._judged}
            for k in keys:
                del self._run_owner[k]
            sanitized = {k: self._sanitized.pop(k) for k in list(self._sanitized)
                         if k[1:3] == (assignment, student)}
        return {"runs": runs, "judged": judged, "sanitized": sanitized, "assignment": assignment,
                "student": student}

    def receive(self, entries: dict) -> None:
        """What another store handed over (``hand_over``)."""
        with self._lock:
            for key, run in entries["runs"].items():
                self._runs[key] = run
                self._run_owner[key] = (entries["assignment"], entries["student"])
            self._judged.update(entries["judged"])
            self._sanitized.update(entries["sanitized"])

    def prejudge(self, key: str, nb: NotebookNode, run: sb.RunResult) -> None:
        """Judge ``run`` of ``nb`` now, on the pre-pass's thread, beside the other sandboxes,
        instead of in nbgrader's sequential step. ``SandboxedJudge`` takes this verdict only for
        a notebook identical to ``nb`` (the digest of the whole notebook), which the judge would
        judge the same way (its only other inputs are the run and the course secret); for any
        other it judges again. A failure here is left for that step to meet and report."""
        if run.status == "grader-error":
            return
        try:
            digest = notebook_digest(nb)
            judged, outcomes = judge_run(self, nb, run)
        except Exception:  # noqa: S110 - the sequential step judges it again, and says why
            return
        with self._lock:
            if key in self._runs:
                self._judged[key] = (digest, judged.cells, outcomes)

    def take_judged(self, key: str, nb: NotebookNode) -> tuple[list, list] | None:
        """The pre-pass's judged cells and outcomes for ``nb`` (``prejudge``), or None."""
        with self._lock:
            kept = self._judged.pop(key, None)
        if kept is None or kept[0] != notebook_digest(nb):
            return None
        return kept[1], kept[2]

    def put_sanitized(self, key: tuple, nb: NotebookNode) -> None:
        with self._lock:
            self._sanitized[key] = nb

    def take_sanitized(self, key: tuple) -> NotebookNode | None:
        with self._lock:
            return self._sanitized.pop(key, None)

    def clear(self, assignment: str | None = None) -> None:
        """Forget the runs and sanitized notebooks kept for ``assignment`` (all, when None); the
        next assignment's, made ahead, stay."""
        with self._lock:
            if assignment is None:
                self._runs.clear()
                self._judged.clear()
                self._run_owner.clear()
                self._sanitized.clear()
                return
            for key in [k for k, (a, _) in self._run_owner.items() if a == assignment]:
                self._runs.pop(key, None)
                self._judged.pop(key, None)
                self._run_owner.pop(key)
            for key in [k for k in self._sanitized if k[1] == assignment]:
                self._sanitized.pop(key)


class SandboxedJudge(NbGraderPreprocessor):
    """Runs the notebook in the sandbox and lets the trusted judge write every test cell's output."""

    mode = Enum(["auto", "root", "user", "none"], "auto",
                help="How student code runs: 'auto' picks 'root' (per-worker uids) when the grader "
                     "is root, else 'user' (unprivileged user namespaces); 'none' runs it with NO "
                     "sandbox (unsafe).").tag(config=True)
    cell_timeout = Float(30.0, help="Seconds one cell may run").tag(config=True)
    notebook_timeout = Float(120.0, help="Seconds a whole notebook may run").tag(config=True)
    memory_bytes = Integer(3 << 30, help="Address space per sandboxed process").tag(config=True)
    processes = Integer(64, help="Processes per sandbox").tag(config=True)
    file_bytes = Integer(16 << 20, help="Largest file the notebook may write").tag(config=True)
    job_bytes = Integer(64 << 20, help="All the notebook may write where results go").tag(config=True)
    memory_total = Integer(4 << 30, help="All of a sandbox's processes together: cgroup v2 memory.max "
                                         "where available, else fewer processes with less address "
                                         "space each").tag(config=True)
    runs = Instance(RunStore, allow_none=True,
                    help="Set by `python -m autograder grade` (its parallel pre-pass); when unset, "
                         "each notebook is run here").tag(config=True)

    def limits(self) -> sb.Limits:
        return sb.Limits(cell_seconds=self.cell_timeout, notebook_seconds=self.notebook_timeout,
                         memory_bytes=self.memory_bytes, processes=self.processes,
                         file_bytes=self.file_bytes, job_bytes=self.job_bytes,
                         memory_total=self.memory_total)

    def resolved_mode(self) -> str:
        return sb.pick_mode(self.mode)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        ids = (info["assignment"], info["student"], info["notebook"])
        from autograder.grader.pyast import install
        install()
        if self.runs is not None:
            store = self.runs
            key = store.key(nb, *ids)
            run = store.take(key)
            self._judge(store, nb, ids, run, store.take_judged(key, nb) if run is not None else None)
        else:  # stock `nbgrader autograde`: a scratch space for this notebook alone
            from nbgrader.coursedir import CourseDirectory

            from autograder.grader.keys import course_secret
            with sb.RunDir() as run_dir:
                store = RunStore(run_dir, self.resolved_mode(), self.limits(),
                                 course_secret(CourseDirectory(config=self.config).root))
                self._judge(store, nb, ids, None)
        return nb, resources

    @staticmethod
    def _judge(store: RunStore, nb: NotebookNode, ids: tuple, run: sb.RunResult | None,
               prejudged: tuple[list, list] | None = None) -> None:
        """Judge ``nb`` from ``run`` (or a fresh run); a failure of the grader's own machinery is
        retried with a fresh run, and past ATTEMPTS raises GraderError (never a 0). ``prejudged``:
        the pre-pass's verdict on this very notebook and run (``RunStore.prejudge``)."""
        why = ""  # ``nb`` itself is only read (copied to run and to judge) until it is judged
        for attempt in range(ATTEMPTS):
            if run is None or run.status == "grader-error" or attempt:
                run = store.execute(copy.deepcopy(nb))
                prejudged = None
            if run.status == "grader-error":
                why = run.reason
                continue
            try:
                if store.injected_fault(ids[1]):
                    raise RuntimeError(f"a failure injected by the test ({FAULT_ENV})")
                if prejudged is not None:
                    cells, outcomes = prejudged
                else:
                    judged, outcomes = judge_run(store, nb, run)
                    cells = judged.cells
            except Exception as exc:
                why = f"the judge failed: {type(exc).__name__}: {exc}"
                continue
            nb.cells = cells
            store.outcomes[ids] = (run.status, run.reason, run.seconds, outcomes)
            store.grader_errors.pop(ids, None)
            return
        store.grader_errors[ids] = why[:300]
        raise GraderError(why[:300])


# ---- sanitizing: what honest editors do to a notebook ---------------------------------------

def judge_run(store: RunStore, nb: NotebookNode, run: sb.RunResult) -> tuple[NotebookNode, list]:
    """The trusted judge's verdict on ``run`` of ``nb``: a copy of ``nb`` with the plain outputs
    of ordinary cells and every test cell's output written, and the check outcomes."""
    from autograder.course import checks
    from autograder.grader import judge
    judged = copy.deepcopy(nb)
    _copy_plain_outputs(judged, run.executed)
    with checks.keyed(store.submission_key(judged)):
        outcomes = judge.judge_notebook(judged, run.results, run.executed, run.reason)
    return judged, outcomes


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


class DropDuplicateIds(NbGraderPreprocessor):
    """A cell split in JupyterLab, or copied and pasted, keeps its nbgrader metadata, so one
    grade_id appears twice. Keep the metadata on its first appearance and make every later copy a
    plain cell (its code still runs). nbgrader's own DeduplicateIds leaves an empty ``nbgrader``
    dict behind, which CheckCellMetadata then rejects: the student scored 0."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        seen, copies = set(), resources.setdefault("copies_of", {})
        for cell in nb.cells:
            gid = _grade_id(cell)
            if gid is None:
                continue
            if gid in seen:
                del cell.metadata["nbgrader"]
                copies[id(cell)] = gid  # RestoreCheckCells places checks after the last part
            else:
                seen.add(gid)
        return nb, resources


def _top_level_bindings(tree) -> tuple[set[str], set[str]]:
    """Names a cell binds at module level: (every binding, those not made by an import).
    Function and class bodies are not descended into; if/for/while/with/try blocks are."""
    names, imported = set(), set()

    def targets(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    imported.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    targets(target)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
            for field in ("body", "orelse", "finalbody"):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(getattr(node, field, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                visit(handler.body)
    visit(tree.body)
    return names | imported, names


def _free_names(tree, name: str) -> set[str]:
    """Names the last top-level definition of ``name`` in ``tree`` reads but does not bind
    itself (its arguments and locals): the module-level helpers it may need."""
    found = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
             and n.name == name]
    if not found:
        return set()
    loads, local = set(), set()
    for sub in ast.walk(found[-1]):
        if isinstance(sub, ast.Name):
            (loads if isinstance(sub.ctx, ast.Load) else local).add(sub.id)
        elif isinstance(sub, ast.arg):
            local.add(sub.arg)
    return loads - local


def _parse(source: str):
    from autograder.grader.pyast import parse
    try:
        return parse(source)
    except SyntaxError:
        return None


def _remembered(function):
    """``function`` of a cell's source, remembered for sources up to 64 KB (a class's cells are
    mostly the released ones, and sanitize runs twice per submission); bounded. ``function``
    returns what callers only read (tuples, frozensets)."""
    cache: dict = {}

    def wrapper(source: str):
        if len(source) > 65536:
            return function(source)
        found = cache.get(source)
        if found is None:
            if len(cache) >= 4096:
                cache.clear()
            found = cache[source] = function(source)
        return found
    wrapper.__doc__, wrapper.__wrapped__ = function.__doc__, function
    return wrapper


@_remembered
def _checked_names(source: str) -> tuple[str, ...]:
    """The student-side names a check cell evaluates: ``fn`` in ``check("name", fn)``."""
    names = []
    tree = _parse(source)
    for node in ast.walk(tree) if tree is not None else ():
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check"
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Name)):
            names.append(node.args[1].id)
    return tuple(names)


@_remembered
def _cell_bindings(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """``_top_level_bindings`` of a code cell's source (nothing for one that does not parse)."""
    tree = _parse(source)
    if tree is None:
        return frozenset(), frozenset()
    every, plain = _top_level_bindings(tree)
    return frozenset(every), frozenset(plain)


_SOURCES: dict = {}
_SOURCES_LOCK = threading.Lock()


def _source_notebook(path: str) -> NotebookNode:
    """The assignment's source notebook, read once while the file stays the same (its inode,
    size and modification time): every submission of a class is compared with it. Read-only:
    callers copy what they take from it."""
    import nbformat
    info = os.stat(path)
    key = (path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with _SOURCES_LOCK:
        found = _SOURCES.get(path)
    if found is not None and found[0] == key:
        return found[1]
    nb = nbformat.read(path, as_version=4)
    with _SOURCES_LOCK:
        _SOURCES[path] = (key, nb)
    return nb


class OverwriteCellsAtOnce(OverwriteCells):
    """nbgrader's ``OverwriteCells``, with the notebook's source and graded cells read from the
    gradebook in one go when its first cell is checked, instead of one or two queries per cell
    (a third of the sanitize step). What each cell is checked against is the same rows."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        self._rows = None
        try:
            return super().preprocess(nb, resources)
        finally:
            self._rows = None

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int) -> tuple[NotebookNode, dict]:
        if self._rows is None:
            self._rows = _NotebookRows(self.gradebook, self.notebook_id, self.assignment_id)
        gradebook, self.gradebook = self.gradebook, self._rows
        try:
            return super().preprocess_cell(cell, resources, cell_index)
        finally:
            self.gradebook = gradebook


class _NotebookRows:
    """One notebook's source and graded cells by name, answering as the gradebook does. Each kind
    is read with its own query: a cell read through ``Notebook.grade_cells`` is a ``BaseCell``
    row whose own columns (``max_score``, ``cell_type``) SQLAlchemy then loads one cell at a time."""

    def __init__(self, gradebook: object, notebook: str, assignment: str):
        from nbgrader.api import GradeCell, MissingEntry, SourceCell
        self._missing = MissingEntry
        try:
            found = gradebook.find_notebook(notebook, assignment)
        except MissingEntry:
            self.source, self.graded = {}, {}
            return
        db = gradebook.db
        self.source = {c.name: c for c in db.query(SourceCell).filter(SourceCell.notebook_id == found.id)}
        self.graded = {c.name: c for c in db.query(GradeCell).filter(GradeCell.notebook_id == found.id)}

    def find_source_cell(self, name: str, notebook: str, assignment: str):
        if name not in self.source:
            raise self._missing()
        return self.source[name]

    def find_graded_cell(self, name: str, notebook: str, assignment: str):
        if name not in self.graded:
            raise self._missing()
        return self.graded[name]


class _SubmissionRows:
    """One submitted notebook's grades and comments by cell name, read in two queries, answering
    ``find_grade`` and ``find_comment`` as the gradebook does (a grade cell's name before a task
    cell's, a solution cell's before a task cell's; ``MissingEntry`` for none); everything else
    is the gradebook's own."""

    def __init__(self, gradebook: object, notebook: str, assignment: str, student: str):
        from nbgrader.api import (
            Assignment,
            BaseCell,
            Comment,
            Grade,
            MissingEntry,
            Notebook,
            Student,
            SubmittedAssignment,
            SubmittedNotebook,
        )
        self._gradebook, self._missing = gradebook, MissingEntry

        def rows(kind):
            query = (gradebook.db.query(kind, BaseCell.name, BaseCell.type)
                     .join(BaseCell, BaseCell.id == kind.cell_id)
                     .join(SubmittedNotebook, SubmittedNotebook.id == kind.notebook_id)
                     .join(Notebook, Notebook.id == SubmittedNotebook.notebook_id)
                     .join(SubmittedAssignment, SubmittedAssignment.id == SubmittedNotebook.assignment_id)
                     .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
                     .join(Student, Student.id == SubmittedAssignment.student_id)
                     .filter(Notebook.name == notebook, Assignment.name == assignment, Student.id == student))
            found: dict = {}
            for row, name, cell_type in query:
                found.setdefault((name, cell_type), []).append(row)
            return found
        self._grades, self._comments = rows(Grade), rows(Comment)

    def __getattr__(self, name):
        return getattr(self._gradebook, name)

    def _one(self, rows: dict, name: str, kinds: tuple[str, str]):
        for kind in kinds:
            found = rows.get((name, kind), [])
            if len(found) == 1:
                return found[0]
            if found:  # as ``Query.one`` would: more than one is not an answer
                raise self._missing()
        raise self._missing()

    def find_grade(self, grade_cell: str, notebook: str, assignment: str, student: str):
        return self._one(self._grades, grade_cell, ("GradeCell", "TaskCell"))

    def find_comment(self, solution_cell: str, notebook: str, assignment: str, student: str):
        return self._one(self._comments, solution_cell, ("SolutionCell", "TaskCell"))


class RestoreCheckCells(NbGraderPreprocessor):
    """Check cells run where the student's own self-check ran them.

    A check cell still in the submission keeps its place (``OverwriteCells`` then restores its
    source from the gradebook as usual), so code the student put below the stub, and above the
    check, runs before it in grading as it did in the student's kernel. A check the student
    deleted comes back right after the last cell that defines or redefines the function it
    checks (a ``def``/``class``, an assignment or an import binding that name; a cell that is a
    part of the function's own cell, after a split) or a module-level helper that function reads
    (found with ``ast``, transitively). Where none does, it goes after the nearest cell that
    precedes it in the assignment's source and is still there. A check left ABOVE every
    definition of its function (dragged up by accident) could not pass there in any run from
    the top, so it is placed as a deleted one is."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        import nbformat
        from nbgrader.coursedir import CourseDirectory
        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        path = (coursedir.format_path(coursedir.source_directory, ".", info["assignment"])
                + f"/{info['notebook']}.ipynb")
        try:
            source = _source_notebook(path)
        except OSError:
            return nb, resources  # no source to compare with: leave the order alone
        trusted = {_grade_id(c): c.source for c in source.cells if _is_test(c)}
        copies = resources.get("copies_of", {})

        def bindings(cells):
            return [_cell_bindings(c.source) if c.cell_type == "code" else (frozenset(), frozenset())
                    for c in cells]

        def defines(i, cell, name, bound):
            return name in bound[i][0] or (_grade_id(cell) or copies.get(id(cell))) == name

        # a present check with no definition of its function above it, but one below: stranded
        bound = bindings(nb.cells)
        stranded = []
        for k, cell in enumerate(nb.cells):
            names = _checked_names(trusted.get(_grade_id(cell), cell.source)) if _is_test(cell) else []
            if names and all(not any(defines(i, c, n, bound) for i, c in enumerate(nb.cells[:k]))
                             and any(defines(i, c, n, bound) for i, c in enumerate(nb.cells) if i > k)
                             for n in names):
                stranded.append(cell)
        present = {_grade_id(c) for c in nb.cells if _is_test(c) and not any(c is s for s in stranded)}
        missing = [c for c in source.cells if _is_test(c) and _grade_id(c) not in present]
        if not missing:
            return nb, resources
        cells = [c for c in nb.cells if not any(c is s for s in stranded)]
        bound = bindings(cells)
        parsed = [_parse(c.source) if c.cell_type == "code" else None for c in cells]
        kept = {_grade_id(c): c for c in stranded}

        def last_binding(name: str, any_kind: bool = True) -> int | None:
            hits = [i for i, (all_names, plain) in enumerate(bound)
                    if name in (all_names if any_kind else plain)]
            hits += [i for i, c in enumerate(cells) if (_grade_id(c) or copies.get(id(c))) == name]
            return max(hits) if hits else None

        def position(name: str) -> int | None:
            at = last_binding(name)
            if at is None:
                return None
            seen, todo = {name}, [(name, at)]
            while todo:
                fn, where = todo.pop()
                helpers = _free_names(parsed[where], fn) if parsed[where] is not None else set()
                for helper in sorted(helpers - seen):
                    seen.add(helper)
                    h = last_binding(helper, any_kind=False)
                    if h is not None:
                        at = max(at, h)
                        todo.append((helper, h))
            return at

        placed: dict[int, list] = {}
        for cell in missing:
            restored = kept.get(_grade_id(cell))
            if restored is None:
                restored = nbformat.v4.new_code_cell(cell.source, metadata=copy.deepcopy(cell.metadata))
                if nb.get("nbformat_minor", 5) < 5:
                    del restored["id"]  # cell ids exist from nbformat 4.5 on
            spots = [p for p in map(position, _checked_names(cell.source)) if p is not None]
            if spots:
                at = max(spots)
            else:  # the old rule: after the nearest source cell before it that is still here
                at = -1
                have = {(_grade_id(c) or copies.get(id(c))): i for i, c in enumerate(cells)
                        if _grade_id(c) or copies.get(id(c))}
                for src in source.cells:
                    if src is cell:
                        break
                    if _grade_id(src) in have:
                        at = have[_grade_id(src)]
                at = at if at >= 0 else len(cells) - 1
            placed.setdefault(at, []).append(restored)
        out = []
        if -1 in placed:
            out.extend(placed[-1])
        for i, c in enumerate(cells):
            out.append(c)
            out.extend(placed.get(i, []))
        nb.cells = out
        return nb, resources


def _copy_plain_outputs(nb, executed) -> None:
    """Copy outputs of non-test cells whose source is unchanged: fresh, allow-listed copies
    (types, fields and metadata checked, sizes bounded: ``autograder.grader.safety.plain_outputs``)."""
    from autograder.grader.safety import MAX_OUTPUT_TOTAL, plain_outputs
    try:
        ran_cells = list(executed.cells)
    except Exception:
        return
    if len(ran_cells) != len(nb.cells):
        return
    budget = [MAX_OUTPUT_TOTAL]
    for cell, ran in zip(nb.cells, ran_cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        if not isinstance(ran, dict) or ran.get("cell_type") != "code" or ran.get("source") != cell.source:
            continue
        cell.outputs = plain_outputs(ran.get("outputs"), budget)
        count = ran.get("execution_count")
        cell.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None


class BoundForRendering(NbGraderPreprocessor):
    """What nbconvert renders from the autograded notebook (feedback, formgrader) is bounded:
    sources past ``autograder.grader.safety``'s limits are cut, with a note (the submitted file keeps
    them), and no cell keeps attachments. Runs after the judge: grading saw everything."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from autograder.grader.safety import bound_cells
        notes = bound_cells(nb)
        # The one notebook-level field ClearMetadataPreprocessor keeps, and templates print.
        nb.metadata["language_info"] = {"name": "python"}
        if notes:
            resources.setdefault("bn_notes", []).extend(notes)
        return nb, resources


class SanitizeMarkdown(NbGraderPreprocessor):
    """Markdown cells become clean HTML in the autograded notebook, which is what feedback and
    formgrader render. nbgrader's templates render markdown unsanitized (``sanitize_html`` does
    not reach them), and a student's markdown may hold ``<script>``, event handlers,
    ``javascript:`` links or SVG attachments."""

    # What rendered markdown uses; anything else is shown as text. Links only to these schemes.
    TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "b", "i", "code", "pre", "ul",
            "ol", "li", "blockquote", "a", "table", "thead", "tbody", "tr", "td", "th", "br", "hr",
            "span", "div", "sup", "sub", "del"}
    ATTRIBUTES = {"*": ["id", "class"], "a": ["href", "title"], "td": ["align"], "th": ["align"]}
    PROTOCOLS = {"http", "https", "mailto"}

    # Most markdown in a class is the released text, the same in every notebook: each source's
    # clean HTML is kept per process (bleach and markdown2html cost ~0.1 s per notebook), up to
    # KEPT_CHARS characters of sources and results together, behind a lock (grading threads).
    KEPT_CHARS = 8 << 20
    _kept: dict[str, str] = {}
    _kept_chars = 0
    _kept_lock = threading.Lock()

    @classmethod
    def clean(cls, source: str) -> str:
        """The HTML a markdown cell's source becomes: rendered, then only TAGS, ATTRIBUTES and
        PROTOCOLS kept, and brackets escaped so a second markdown pass makes no link."""
        with cls._kept_lock:
            kept = cls._kept.get(source)
        if kept is not None:
            return kept
        import bleach
        from nbconvert.filters import markdown2html
        try:
            clean = str(bleach.clean(markdown2html(source), tags=cls.TAGS, attributes=cls.ATTRIBUTES,
                                     protocols=cls.PROTOCOLS))
        except Exception:  # markdown the renderer cannot take (e.g. a lost attachment)
            clean = f"<pre>{html.escape(source)}</pre>"
        # The templates render this as markdown once more: text the first pass left alone (an
        # unsafe link it refused) must not become a link the second time.
        clean = clean.replace("[", "&#91;").replace("]", "&#93;")
        size = len(source) + len(clean)
        with cls._kept_lock:
            if source not in cls._kept and cls._kept_chars + size <= cls.KEPT_CHARS:
                cls._kept[source] = clean
                cls._kept_chars += size
        return clean

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.pop("attachments", None)
                cell.source = self.clean(cell.source)
            elif cell.cell_type == "raw":
                cell.pop("attachments", None)
                cell.source = html.escape(cell.source)
        return nb, resources


class DigestSubmission(NbGraderPreprocessor):
    """First of the sanitize steps: the digest of the whole submission as handed in, before any
    output or cell is cleared or restored, kept in the notebook's metadata for the submission's
    key (``autograder.grader.keys``)."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from autograder.grader.keys import DIGEST, submission_digest
        nb.metadata[DIGEST] = submission_digest(nb)
        return nb, resources


class SaveAutoGradesAtOnce(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades``, with one commit per notebook instead of one per graded
    cell and per comment (eight syncs to disk for a notebook with four graded cells): the cells'
    commits become flushes, so the queries that follow still see them, and the notebook's grades
    and comments are saved together or, if any cell fails (a grade id the gradebook lacks), not
    at all, where nbgrader's own keeps the cells before the failure. The notebook's grade and
    comment rows are read in two queries (``_SubmissionRows``), not two per cell."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from nbgrader.api import Gradebook
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.db_url = resources["nbgrader"]["db_url"]
        gradebook = Gradebook(self.db_url)
        with gradebook:
            db = gradebook.db
            self.gradebook = _SubmissionRows(gradebook, self.notebook_id, self.assignment_id, self.student_id)
            db.commit = db.flush  # on this session only; nbgrader's cells call db.commit()
            try:
                nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
            except BaseException:
                db.rollback()
                raise
            finally:
                del db.commit
                self.gradebook = gradebook
            db.commit()
        return nb, resources


class GetGradesAtOnce(GetGrades):
    """nbgrader's ``GetGrades`` (a feedback page's scores and comments, from the gradebook), with
    the notebook's grade and comment rows read in two queries (``_SubmissionRows``), not one per
    graded cell and per comment (a quarter of a feedback page's time). What each cell shows is
    the same rows."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int) -> tuple[NotebookNode, dict]:
        if not isinstance(self.gradebook, _SubmissionRows):  # a new Gradebook for each notebook
            self.gradebook = _SubmissionRows(self.gradebook, self.notebook_id, self.assignment_id,
                                             self.student_id)
        return super().preprocess_cell(cell, resources, cell_index)


KEEP_SANITIZED = "bn_keep_sanitized"  # in resources: the pre-pass's sanitize, kept for nbgrader's


class SanitizeOnce(NbGraderPreprocessor):
    """nbgrader's sanitize step (``sanitize_preprocessors``), done once per submission in a
    grading run. The parallel pre-pass sanitizes each notebook to run it (``pipeline.sanitize``)
    and leaves the result in the run's store, keyed by the digest of the whole notebook it was
    given and whose notebook it is; nbgrader's own sanitize phase, given the same notebook in
    the sequential step, takes that result instead of doing the same work again. The gradebook
    and the source notebooks it compares with do not change within a run, and an assignment's
    kept results are cleared when it ends. Any other notebook, or no store (stock ``nbgrader
    autograde``), is sanitized here."""

    runs = Instance(RunStore, allow_none=True,
                    help="Set by `python -m autograder grade`: the run whose pre-pass sanitized "
                         "the notebooks first").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from autograder.grader.keys import submission_digest
        key = None
        if self.runs is not None:
            info = resources["nbgrader"]
            key = (submission_digest(nb), info["assignment"], info["student"], info["notebook"],
                   info["db_url"])
            done = self.runs.take_sanitized(key)
            if done is not None:
                return done, resources
        keep = resources.pop(KEEP_SANITIZED, False)
        for cls in sanitize_preprocessors():
            nb, resources = cls(config=self.config)(nb, resources)
        if keep and key is not None:
            self.runs.put_sanitized(key, copy.deepcopy(nb))
        return nb, resources


def sanitize_preprocessors() -> list[type]:
    """nbgrader's sanitize step, with the two editor-accident repairs above, after the digest
    that keys the submission's hidden cases."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        OverwriteKernelspec,
    )
    return [DigestSubmission, ClearOutput, DropDuplicateIds, OverwriteKernelspec, RestoreCheckCells,
            OverwriteCellsAtOnce, CheckCellMetadata]


AUTOGRADE_PREPROCESSORS = [
    SandboxedJudge,
    BoundForRendering,
    SanitizeMarkdown,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGradesAtOnce,
    AssignLatePenalties,
    CheckCellMetadata,
]
