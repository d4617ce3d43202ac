"""The per-course secret and the submission key that hidden cases are drawn from.

The secret is instance data, like the gradebook: ``<course root>/.case_secret`` (mode 600,
git-ignored), created on first use. It never goes into a kit or a sandbox: the sandbox stages the
student side only, and hidden inputs reach it one case at a time (``autograder.grader.sandbox``).

A submission's key is a digest of the secret and the WHOLE submission as it was handed in (every
cell, markdown included, outputs, attachments, cell and notebook metadata): a resubmission that
changes anything at all, a table tucked into the metadata included, meets new hidden inputs, and
grading the same file again meets the same ones. The digest is taken by the first sanitize step
(``plugins.DigestSubmission``), before anything is cleared, and kept in the notebook's metadata,
so the pre-pass and nbgrader's own autograde derive the same key.
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


DIGEST = "bn_submission_digest"   # notebook metadata field the first sanitize step writes


def notebook_digest(nb: NotebookNode | dict) -> str:
    """sha256 of the whole notebook as JSON, keys sorted."""
    return hashlib.sha256(json.dumps(nb, sort_keys=True, default=str).encode()).hexdigest()


def submission_digest(nb: NotebookNode) -> str:
    """``notebook_digest`` of the notebook but for the digest field itself."""
    meta = {k: v for k, v in dict(nb.get("metadata", {})).items() if k != DIGEST}
    return notebook_digest({**dict(nb), "metadata": meta})


def submission_key(secret: bytes, nb: NotebookNode) -> str:
    digest = nb.get("metadata", {}).get(DIGEST)
    if not isinstance(digest, str) or len(digest) != 64:  # not sanitized (the solution's health check)
        digest = submission_digest(nb)
    return hmac.new(secret, b"whole submission " + digest.encode(), hashlib.sha256).hexdigest()
