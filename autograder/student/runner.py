"""Runs INSIDE the sandbox: execute one notebook's cells in an IPython shell, in this process.

Usage (by autograder.grader.sandbox only):
    python -m autograder.student.runner JOB_DIR CELL_TIMEOUT NOTEBOOK_TIMEOUT [SKIP]

SKIP lists (comma-separated) the cells an earlier attempt was stopped in: the grader resumes a run
that a cell stuck beyond any signal made it kill, with those cells skipped.

No Jupyter kernel is started: the sandbox is the isolation boundary, so the cells run in an
``InteractiveShell`` here (same IPython semantics: magics, ``get_ipython()``, display), which
saves a kernel start-up and the messaging per notebook.

* The notebook's check cells record the student's outputs under JOB_DIR/record
  (``autograder.student.selfcheck.record``).
* Output past MAX_CELL_OUTPUT characters in one cell is dropped, with one note; the cell keeps
  running, so the graded state is the one the student saw.
* After every cell this writes JOB_DIR/result/executed.ipynb (plain JSON) and, before every cell,
  JOB_DIR/result/progress.json with the cell's deadline, which the parent enforces from outside
  even if the student's code defeats the SIGALRM clock used here.
* At the end it writes JOB_DIR/result/status.json and exits at once: a thread the notebook left
  running does not keep the run alive.
Everything written here is untrusted by the judge; nothing here decides a grade.
"""
import io
import json
import os
import signal
import sys
import time

MAX_CELL_OUTPUT = 1 << 20   # characters of output kept per cell


class CellTimeout(BaseException):
    """Raised by SIGALRM when a cell runs past its limit."""


class Cell:
    """The outputs of the cell being run, bounded in size."""

    def __init__(self):
        self.outputs, self.spent, self.dropped = [], 0, False

    def add(self, output: dict, size: int) -> None:
        if self.dropped:
            return
        self.spent += size
        if self.spent > MAX_CELL_OUTPUT:
            self.dropped = True
            self.outputs.append({"output_type": "stream", "name": "stderr",
                                 "text": f"\n[the grader dropped this cell's output past {MAX_CELL_OUTPUT} "
                                         f"characters; the cell kept running]\n"})
            return
        last = self.outputs[-1] if self.outputs else None
        if output["output_type"] == "stream" and last and last.get("name") == output["name"] \
                and last["output_type"] == "stream":
            last["text"] += output["text"]
        else:
            self.outputs.append(output)


CURRENT = Cell()


class Stream(io.TextIOBase):
    def __init__(self, name):
        self.name = name

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        CURRENT.add({"output_type": "stream", "name": self.name, "text": text}, len(text))
        return len(text)


def make_shell():
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            size = sum(len(str(v)) for v in data.values())
            CURRENT.add({"output_type": "display_data", "data": dict(data),
                         "metadata": dict(metadata or {})}, size)

        def clear_output(self, wait=False):
            CURRENT.outputs.clear()

    from traitlets.config import Config
    config = Config()
    # No history database: it needs a thread per cell, and a fork storm may have used up every
    # process slot the sandbox's uid has; nothing here should need one.
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config, colors="NoColor", display_pub_class=Publisher)
    shell.displayhook.write_output_prompt = lambda: None
    shell.displayhook.write_format_data = lambda data, md=None: None

    def show_traceback(etype, evalue, stb):  # what ipykernel does: an error output, not text
        CURRENT.outputs.append({"output_type": "error", "ename": getattr(etype, "__name__", str(etype)),
                                "evalue": str(evalue)[:2000], "traceback": [str(t)[:4000] for t in stb[-20:]]})
    shell._showtraceback = show_traceback
    return shell


def run_cell(shell, source: str):
    """Run one cell; return (outputs, execution_count)."""
    global CURRENT
    CURRENT = Cell()
    result = None
    try:
        result = shell.run_cell(source, store_history=True)  # numbers the cells
    except CellTimeout:
        raise
    if result is not None and result.result is not None:
        data, metadata = shell.display_formatter.format(result.result)
        CURRENT.add({"output_type": "execute_result", "data": data, "metadata": metadata,
                     "execution_count": shell.execution_count - 1},
                    sum(len(str(v)) for v in data.values()))
    return CURRENT.outputs, shell.execution_count - 1


def main(job: str, cell_timeout: float, notebook_timeout: float, skip=()) -> None:
    result_dir = os.path.join(job, "result")
    os.makedirs(result_dir, exist_ok=True)
    status = {"status": "ok", "cell": None, "reason": ""}

    def write_json(name, obj):
        tmp = os.path.join(result_dir, name + ".tmp")
        with open(tmp, "w") as f:  # dumps: json.dump streams through the pure-Python encoder
            f.write(json.dumps(obj))
        os.replace(tmp, os.path.join(result_dir, name))

    from autograder.student import recording
    if os.environ.get(recording.INPUTS_ENV):
        try:  # before any student code runs: the grader then knows the notebook's process
            recording.announce_runner()
        except Exception:
            pass  # no case will be served: every check says so
    try:
        with open(os.path.join(job, "notebook.ipynb")) as f:
            nb = json.load(f)
        cells = nb["cells"]
        recording.GRADED_CELLS.update(
            i for i, c in enumerate(cells) if isinstance(c, dict) and c.get("cell_type") == "code"
            and (c.get("metadata") or {}).get("nbgrader", {}).get("grade")
            and not (c.get("metadata") or {}).get("nbgrader", {}).get("solution"))
    except Exception as exc:
        status.update(status="unreadable", reason=f"{type(exc).__name__}: {exc}"[:300])
        write_json("status.json", status)
        return

    def on_alarm(signum, frame):
        raise CellTimeout()

    sys.stdout, sys.stderr = Stream("stdout"), Stream("stderr")
    shell = make_shell()
    # What the notebook's locked setup cell imports, in case an editor lost that cell.
    import numpy

    from autograder.student import check
    shell.user_ns.update(np=numpy, check=check)
    signal.signal(signal.SIGALRM, on_alarm)
    deadline = time.monotonic() + notebook_timeout
    late = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            status.update(status="notebook-timeout", cell=index,
                          reason=f"stopped before cell {index}: the notebook ran out of its "
                                 f"{notebook_timeout:g} s")
            break
        limit = min(cell_timeout, left)
        if index in skip:
            why = (f"stopped by the grader: this cell ran past its {cell_timeout:g} s limit and could "
                   f"not be interrupted; the run resumed after it")
            cell["outputs"] = [{"output_type": "error", "ename": "CellTimeout", "evalue": why,
                                "traceback": [f"CellTimeout: {why}"]}]
            late.append(index)
            continue
        write_json("progress.json", {"cell": index, "deadline": time.time() + limit})
        recording.CURRENT_CELL[0] = index
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            cell["outputs"], cell["execution_count"] = run_cell(shell, source)
        except CellTimeout:
            # The shell is intact: stop this cell only, say so, and go on with the next.
            why = f"stopped by the grader: cell ran past its {limit:g} s limit"
            cell["outputs"] = CURRENT.outputs + [{
                "output_type": "error", "ename": "CellTimeout", "traceback": [f"CellTimeout: {why}"],
                "evalue": why}]
            late.append(index)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            write_json("executed.ipynb", nb)
    if late and status["status"] == "ok":
        status.update(status="cell-timeout", cell=late[0],
                      reason=f"cell {late[0]} ran past its {cell_timeout:g} s limit and was stopped")
    write_json("status.json", status)


if __name__ == "__main__":
    _exit = os._exit  # taken before the notebook runs
    skipped = {int(k) for k in sys.argv[4].split(",") if k} if len(sys.argv) > 4 else set()
    try:
        main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), skipped)
    except BaseException:
        import traceback
        traceback.print_exc(file=sys.__stderr__)
        sys.__stderr__.flush()
        _exit(1)
    _exit(0)
