"""nbgrader's sequential step in a child process, and the pre-pass's verdicts it takes (issue 26)."""
import copy
import pickle

import nbformat

from autograder.course import samples
from autograder.grader import plugins
from autograder.grader import sandbox as sb
from autograder.grader.keys import notebook_digest

from conftest import REPO, graded_points

A = "ch2_forward"


def _honest():
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    return samples.honest(release, nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))


def test_a_students_runs_verdicts_and_sanitized_notebooks_move_between_stores_whole():
    """``hand_over`` takes out exactly one student's entries of one assignment, which survive
    pickling (the child's connection) and come back whole with ``receive``."""
    nb = _honest()
    store = plugins.RunStore(None, "none", sb.Limits(), workers=2)
    for assignment, student in ((A, "s1"), (A, "s2"), ("ch3_backward", "s1")):
        key = f"{assignment}/{student}"
        store.put(key, sb.RunResult("ok", "", nb, {"f": []}, 1.5), assignment, student)
        store._judged[key] = (notebook_digest(nb), list(nb.cells), [student])
        store.put_sanitized(("digest", assignment, student, A, "db"), nb)
    handed = pickle.loads(pickle.dumps(store.hand_over(A, "s1")))
    assert set(handed["runs"]) == set(handed["judged"]) == {f"{A}/s1"}
    assert list(handed["sanitized"]) == [("digest", A, "s1", A, "db")]
    assert store.take(f"{A}/s1") is None and store.take_sanitized(("digest", A, "s1", A, "db")) is None
    assert store.take(f"{A}/s2") is not None and store.take("ch3_backward/s1") is not None  # others stay
    other = plugins.RunStore(None, "none", sb.Limits(), first_slot=5)
    assert other.slots.get() == 5
    other.receive(handed)
    assert other.take_judged(f"{A}/s1", nb) == (list(nb.cells), ["s1"])
    assert other.take(f"{A}/s1").executed == nb
    assert other.take_sanitized(("digest", A, "s1", A, "db")) == nb
    other.receive(handed)
    other.clear(A)
    assert other._runs == other._judged == other._run_owner == {}


def test_the_pre_passs_verdict_is_taken_only_for_the_very_notebook_it_judged():
    nb = _honest()
    store = plugins.RunStore(None, "none", sb.Limits())
    run = sb.RunResult("ok", "", None)
    store.put("k", run, A, "s1")
    store._judged["k"] = (notebook_digest(nb), ["cells"], ["outcomes"])
    changed = copy.deepcopy(nb)
    changed.cells[0].metadata["nbgrader"] = {"grade": True, "points": 100}  # anything at all
    assert store.take_judged("k", changed) is None  # judged again, from the run
    store._judged["k"] = (notebook_digest(nb), ["cells"], ["outcomes"])
    assert store.take_judged("k", copy.deepcopy(nb)) == (["cells"], ["outcomes"])
    assert store.take_judged("k", nb) is None  # taken once
    store.prejudge("k", nb, sb.RunResult("grader-error", "no", None))  # never kept
    assert "k" not in store._judged


def test_nbgraders_step_runs_in_a_child_and_falls_back_here_when_it_dies(tmp_path, monkeypatch):
    """Each student is handed to the child; when it dies (killed, as by the OOM killer), the
    student in hand and the rest are graded in this process, with the same points."""
    from autograder.grader import pipeline, serial
    nb = _honest()
    for student in ("s1", "s2", "s3"):
        (tmp_path / "submitted" / student / A).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "submitted" / student / A / f"{A}.ipynb")
    monkeypatch.setenv("BN_GRADER_ROOT", str(tmp_path))
    monkeypatch.delenv(serial.SERIAL_ENV, raising=False)
    steps = []

    class Watched(serial.SerialStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.graded, self.child = [], self.proc
            steps.append(self)

        def autograde(self, api, store, assignment, student, notebooks, start, **kw):
            if student == "s2":
                self.proc.kill()
                self.proc.wait()
            in_child = self.conn is not None
            row = super().autograde(api, store, assignment, student, notebooks, start, **kw)
            self.graded.append((student, in_child, self.conn is not None))
            return row
    monkeypatch.setattr(pipeline, "SerialStep", Watched)
    rows = pipeline.grade([A], workers=1, progress=False, feedback=False, say=lambda line: None)
    full = sum(graded_points(A, "code").values())
    assert [(r.student, r.status, r.score) for r in rows] == [(s, "graded", full) for s in ("s1", "s2", "s3")]
    (step,) = steps
    assert step.child is not None and step.proc is None  # it was started, and is gone
    assert step.graded == [("s1", True, True), ("s2", True, False), ("s3", False, False)]


def test_a_student_who_cannot_be_handed_over_is_graded_here_and_the_child_stays(tmp_path, monkeypatch):
    """What cannot be pickled never leaves: that student is graded in this process, with what
    was kept for them, and the next student goes to the child again."""
    from autograder.grader import serial
    from autograder.grader.grades import Row
    monkeypatch.setenv("BN_GRADER_ROOT", str(tmp_path))
    monkeypatch.delenv(serial.SERIAL_ENV, raising=False)
    store = plugins.RunStore(None, "none", sb.Limits())
    store.put("k", sb.RunResult("ok", "", None, {"f": [lambda: 0]}), A, "s1")  # not picklable
    graded = []

    def here(api, store, assignment, student, notebooks, start):
        graded.append((student, store.take("k") is not None))
        return Row(student, assignment, 1, 1)
    step = serial.SerialStep("none", sb.Limits(), slot=1)
    try:
        assert step.conn is not None
        assert step.autograde(None, store, A, "s1", [A], 0.0, here=here) == Row("s1", A, 1, 1)
        assert graded == [("s1", True)] and step.conn is not None and step.proc.poll() is None
    finally:
        step.close()
    assert step.proc is None and step.conn is None
