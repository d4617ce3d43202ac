"""Python's ``ast``, one thread at a time.

CPython 3.11's ``ast.parse`` is not safe across threads (CPython gh-106905: two threads turning
trees into Python objects at once share a recursion counter, and one of them fails with
"SystemError: AST constructor recursion depth mismatch"). The grader parses in parallel threads
(the pre-pass's sanitizing, nbgrader's autograde, the judge), so every parse it makes goes through
:func:`parse`, and :func:`install` makes ``ast.parse`` itself take the same lock, for the
libraries that parse in those threads. A grader failure must never become a student's 0.
"""
from __future__ import annotations

import ast
import threading

LOCK = threading.RLock()
_ORIGINAL = ast.parse


def parse(source: str | bytes, *args, **kwargs) -> ast.AST:
    with LOCK:
        return _ORIGINAL(source, *args, **kwargs)


parse.__doc__ = _ORIGINAL.__doc__
parse.serialized = True


def install() -> None:
    """``ast.parse`` serialized in this process (idempotent)."""
    if not getattr(ast.parse, "serialized", False):
        ast.parse = parse
