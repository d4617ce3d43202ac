"""Student-controlled text and outputs, made harmless wherever the grader shows them.

* :func:`safe_text`: control, bidi-override and other invisible format characters become visible
  ``\\uXXXX`` escapes (a ``\\r``, ``ESC[2K`` or U+202E in an exception message or a student id
  cannot redraw the instructor's terminal or reorder a line of the report);
* :func:`csv_cell`: a spreadsheet never reads a student-controlled cell as a formula;
* :func:`plain_outputs`: only allow-listed output types, fields and metadata survive, with types
  checked and sizes bounded, so nbconvert's templates get nothing they do not expect (an
  unquoted ``width`` attribute, a metadata value that is not a dict);
* :func:`bound_cells`: what nbconvert renders from a submission (feedback, formgrader) is
  bounded: highlighting a 10 MB code cell costs minutes and gigabytes.
"""
from __future__ import annotations

import copy
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

# C0 and C1 controls except tab and newline, DEL, and every "format" character (Cf: bidi
# overrides and isolates, zero-width joiners, ...), plus line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]|[^\x00-\x7f]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    if ch > "\x9f" and ch not in "\u2028\u2029" and unicodedata.category(ch) != "Cf":
        return ch
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def safe_text(text: object, *, newlines: bool = True) -> str:
    """``text`` with control and format characters escaped (newlines kept unless told)."""
    text = _UNSAFE.sub(_escape, str(text))
    return text if newlines else text.replace("\n", "\\n").replace("\t", " ")


# What starts a formula in Excel, LibreOffice or Google Sheets, full-width and small forms
# included (spreadsheets fold them to ASCII on input).
FORMULA_START = "=+-@\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u2212"


def csv_cell(value: object) -> str:
    """A CSV field a spreadsheet shows as text: escaped, and never read as a formula.

    The test is on the first character after any leading whitespace (a spreadsheet skips a tab,
    a space or a no-break space before ``=``), and on the text as written, after escaping: a tab
    that became a space still leads to the formula behind it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = safe_text("" if value is None else value, newlines=False)
    first = text.lstrip()[:1]  # str.lstrip: every Unicode whitespace (NBSP, U+2000-200A, U+3000 ...)
    return "'" + text if first and first in FORMULA_START else text


# ---- student ids ------------------------------------------------------------------------------

MAX_ID = 64
_SAFE_ID = re.compile(r"[A-Za-z0-9@_][A-Za-z0-9._@-]{0,%d}\Z" % (MAX_ID - 1))
SAFE_ID_RULE = f"letters, digits and . _ - @ only, not starting with . or -, at most {MAX_ID} characters"


def safe_id(student: object) -> bool:
    """Whether ``student`` may name a student: it becomes a folder name under ``submitted/``,
    a path part in nbgrader's commands (which reads ``*`` and ``?`` as globs), a file name in
    the LMS zips and a line of the table, so it is held to a small alphabet."""
    return isinstance(student, str) and _SAFE_ID.match(student) is not None


def refusal(student: str) -> str:
    """The one line that says why a folder under ``submitted/`` is not graded."""
    return (f"submitted/{safe_text(student, newlines=False)[:80]!r} is not a student id ({SAFE_ID_RULE}): "
            f"not graded; rename the folder to the student's id")


# ---- outputs copied from a student's run into the autograded notebook ------------------------

SAFE_MIME = ("text/plain", "image/png", "image/jpeg")
MAX_OUTPUTS_PER_CELL = 50
MAX_TEXT = 64 << 10            # characters of one output's text kept
MAX_IMAGE = 1 << 20            # characters of one base64 image
MAX_OUTPUT_TOTAL = 2 << 20     # characters of output kept per notebook
MAX_IMAGE_SIDE = 4000
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*\Z")


def _text(value, limit: int = MAX_TEXT) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    if not isinstance(value, str):
        return None
    if len(value) > limit:
        value = value[:limit] + f"\n[... {len(value) - limit} more characters not shown]\n"
    return safe_text(value)


def _image_metadata(meta, mime: str) -> dict:
    """Only positive integer width and height survive (nbconvert writes them unquoted)."""
    kept = {}
    sub = meta.get(mime) if isinstance(meta, dict) else None
    if isinstance(sub, dict):
        for key in ("width", "height"):
            value = sub.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_IMAGE_SIDE:
                kept[key] = value
    return {mime: kept} if kept else {}


def plain_output(out: dict, budget: list[int]) -> dict | None:
    """A fresh, allow-listed copy of one output, or None. ``budget`` is [characters left]."""
    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream":
        text = _text(out.get("text"))
        if text is None or out.get("name") not in ("stdout", "stderr"):
            return None
        made = {"output_type": "stream", "name": out["name"], "text": text}
    elif kind == "error":
        trace = out.get("traceback")
        trace = [t for t in (trace if isinstance(trace, list) else []) if isinstance(t, str)][-20:]
        made = {"output_type": "error", "ename": _text(out.get("ename"), 200) or "Error",
                "evalue": _text(out.get("evalue"), 2000) or "",
                "traceback": [_text(t, 4000) for t in trace]}
    elif kind in ("display_data", "execute_result"):
        data = out.get("data") if isinstance(out.get("data"), dict) else {}
        kept, meta = {}, {}
        for mime in SAFE_MIME:
            if mime not in data:
                continue
            if mime == "text/plain":
                value = _text(data[mime])
            else:
                value = data[mime] if isinstance(data[mime], str) else None
                if value is None or len(value) > MAX_IMAGE or not _BASE64.match(value):
                    continue
                meta.update(_image_metadata(out.get("metadata"), mime))
            if value is not None:
                kept[mime] = value
        if not kept:
            return None
        made = {"output_type": kind, "data": kept, "metadata": meta}
        if kind == "execute_result":
            count = out.get("execution_count")
            made["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
    else:
        return None
    size = len(str(made))
    if size > budget[0]:
        return None
    budget[0] -= size
    return made


def plain_outputs(outputs: list, budget: list[int]) -> list:
    import nbformat
    kept = []
    for out in (outputs if isinstance(outputs, list) else [])[:MAX_OUTPUTS_PER_CELL]:
        made = plain_output(out, budget)
        if made is not None:
            kept.append(nbformat.from_dict(made))
    return kept


# ---- what nbconvert renders: bounded ----------------------------------------------------------

MAX_CELL_CHARS = 64 << 10        # one cell's source
MAX_NOTEBOOK_CHARS = 512 << 10   # every cell's source together


def bound_cells(nb: NotebookNode) -> list[str]:
    """Cut sources past the bounds (the submitted file keeps them), escape control and bidi
    characters in them; returns what was cut."""
    notes, left = [], MAX_NOTEBOOK_CHARS
    for index, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        if not isinstance(source, str):
            source = "".join(source) if isinstance(source, list) else str(source)
        limit = max(0, min(MAX_CELL_CHARS, left))
        if len(source) > limit:
            cut = len(source) - limit
            note = (f"[the grader does not show the remaining {cut} characters of this cell "
                    f"({len(source)} in all); the submitted notebook holds them]")
            source = source[:limit] + ("\n# " + note if cell.get("cell_type") == "code" else "\n\n" + note)
            notes.append(f"cell {index}: {cut} characters not shown")
        cell["source"] = safe_text(source)  # bidi overrides cannot reorder code under review
        left -= min(len(source), left)
        if cell.get("cell_type") != "code":
            cell.pop("attachments", None)
    return notes


def without_excess(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` for the sandbox: markdown and raw cells emptied (they do not run, and a
    pasted 70 MB image would not fit the job's space), code kept whole."""
    slim = copy.copy(nb)
    slim.cells = []
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            slim.cells.append(cell)
        else:
            stub = copy.copy(cell)
            stub["source"] = ""
            stub.pop("attachments", None)
            slim.cells.append(stub)
    return slim
