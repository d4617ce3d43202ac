"""Runs INSIDE the sandbox: execute one notebook with nbclient, cell by cell.

Usage (by autograder.sandbox only): python sandbox_runner.py JOB_DIR CELL_TIMEOUT NOTEBOOK_TIMEOUT

The notebook's check cells record the student's outputs under JOB_DIR/record (see
autograder.checks.record).  This runner writes JOB_DIR/result/executed.ipynb after every cell and
JOB_DIR/result/status.json at the end.  Nothing here decides a grade; everything it writes is
treated as untrusted by the judge.
"""
import json
import os
import sys
import time


def main(job: str, cell_timeout: float, notebook_timeout: float) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    result = os.path.join(job, "result")
    os.makedirs(result, exist_ok=True)
    status = {"status": "ok", "cell": None, "reason": ""}

    def save(nb):
        tmp = os.path.join(result, "executed.ipynb.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, os.path.join(result, "executed.ipynb"))

    try:
        nb = nbformat.read(os.path.join(job, "notebook.ipynb"), as_version=4)
    except Exception as exc:
        status.update(status="unreadable", reason=f"{type(exc).__name__}: {exc}"[:300])
        nb = None
    if nb is not None:
        deadline = time.monotonic() + notebook_timeout
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                                startup_timeout=60, resources={"metadata": {"path": os.getcwd()}})
        try:
            with client.setup_kernel():
                for index, cell in enumerate(nb.cells):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        status.update(status="notebook-timeout", cell=index,
                                      reason=f"stopped before cell {index}: the notebook ran out "
                                             f"of its {notebook_timeout:g} s")
                        break
                    client.timeout = max(1, int(min(cell_timeout, left)))
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        status.update(status="cell-timeout", cell=index,
                                      reason=f"cell {index} ran past its {client.timeout} s limit")
                        break
                    except DeadKernelError:
                        status.update(status="kernel-died", cell=index,
                                      reason=f"the kernel died in cell {index}")
                        break
                    finally:
                        save(nb)
        except Exception as exc:  # kernel start-up failures and the like
            status.update(status="runner-error", reason=f"{type(exc).__name__}: {exc}"[:300])
    with open(os.path.join(result, "status.json"), "w") as f:
        json.dump(status, f)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
