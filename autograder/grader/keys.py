"""The per-course secret and the submission key that hidden cases are drawn from.

The secret is instance data, like the gradebook: ``<course root>/.case_secret`` (mode 600,
git-ignored), created on first use. It never goes into a kit or a sandbox: the sandbox stages the
student side only, and hidden inputs reach it one case at a time (``autograder.grader.sandbox``).

A submission's key is a digest of the secret and the student's own code cells after sanitizing
(check cells are restored from the gradebook, so they do not count): a resubmission that changes
any code meets new hidden inputs, and grading the same file again meets the same ones.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

SECRET_NAME = ".case_secret"


def course_secret(root: str | Path) -> bytes:
    path = Path(root) / SECRET_NAME
    try:
        data = path.read_bytes().strip()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32).encode()
    tmp = path.with_name(f"{SECRET_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(token + b"\n")
    try:
        os.link(tmp, path)  # the first writer wins; a concurrent one reads the winner's secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


def _student_cells(nb) -> list[str]:
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and not (meta.get("grade") and not meta.get("solution")):
            out.append(str(cell.get("source", "")))
    return out


def submission_key(secret: bytes, nb: NotebookNode) -> str:
    return hmac.new(secret, json.dumps(_student_cells(nb)).encode(), hashlib.sha256).hexdigest()
