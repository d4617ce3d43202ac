"""The one definition of the files that cross the trust line, and how values are written in them.

Values (a case's inputs, a function's returned values, the precomputed visible cases of a kit)
are written as two files with the same stem: ``<stem>.json``, the structure, and
``<stem>.arrays``, the arrays it refers to (:func:`pack_arrays`: a table of name, dtype, shape
and place, then the raw bytes; numbers only).  Nothing is pickled, so a hostile recording can at
worst be wrong data, never code.

A recording directory (``RECORD_ENV`` names it inside the grading sandbox) holds:

    manifest.json                     {function: {"spec", "cases": [names]}}
    outputs/<function>/<k>.json|.arrays  what case k returned        (written by the student's run)

A case's inputs are never on disk: the recorder asks the grader for them, one case at a time,
when that case runs (:func:`case_input`, over a socket in the folder ``INPUTS_ENV`` names; the
grader answers only the recorder process of a graded check cell, once per case).

where k is the case's position in the manifest (case names are free text, not file names), and
``<k>.json`` is {"status": "ok"|"error"|"shape", "error": str, "values": [encoded values]}.
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import numpy as np

RECORD_ENV = "BN_AUTOGRADER_RECORD"
INPUTS_ENV = "BN_AUTOGRADER_INPUTS"   # the folder of the grader's input socket ("/grader" in a sandbox)

# Set by the runner: the cell running now and the notebook's graded check cells. Only a check
# called from a graded check cell records (a student's own extra ``check`` call would otherwise
# take the cases, each of which the grader serves once).
CURRENT_CELL: list = [None]
GRADED_CELLS: set = set()

# Bounds the judge applies to everything read back from a run (see autograder.grader.sandbox).
MAX_META_BYTES = 64 << 10          # one <k>.json
MAX_ARRAY_BYTES = 32 << 20         # one <k>.arrays, on disk and unpacked
MAX_VALUES = 64                    # values in one recording
MAX_DEPTH = 8                      # nesting of lists/dicts


class BadRecording(ValueError):
    """A recording that is not what this module writes."""


# ---- values <-> (json structure, arrays) ----------------------------------------------------

def encode(value: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """A JSON-able description of ``value``; its arrays are added to ``arrays``."""
    if depth > MAX_DEPTH:
        raise BadRecording("nested too deeply")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            return {"kind": type(value).__name__ + " " + str(value.dtype)}
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"array": key}
    if isinstance(value, Described):
        return {"kind": value.kind}
    if isinstance(value, (bool, np.bool_)):
        return {"bool": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"float": float(value)}  # json writes nan/inf as NaN/Infinity and reads them back
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple":
                [encode(v, arrays, depth + 1) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": [[k, encode(v, arrays, depth + 1)] for k, v in value.items()]}
    return {"kind": type(value).__name__}  # something a check cannot compare: named only


class Described:
    """A returned value that was not a number or an array, known only by the name of its type."""

    def __init__(self, kind: str):
        self.kind = kind


def decode(obj: Any, arrays, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise BadRecording("nested too deeply")
    if obj is None or isinstance(obj, str):
        return obj
    if not isinstance(obj, dict) or len(obj) != 1:
        raise BadRecording("not an encoded value")
    (tag, body), = obj.items()
    if tag == "array":
        return arrays[str(body)]
    if tag == "bool":
        return bool(body)
    if tag == "int":
        return int(body)
    if tag == "float":
        return float(body)
    if tag in ("list", "tuple"):
        items = [decode(v, arrays, depth + 1) for v in list(body)[:100_000]]
        return items if tag == "list" else tuple(items)
    if tag == "dict":
        return {str(k): decode(v, arrays, depth + 1) for k, v in body}
    if tag == "kind":
        return Described(str(body)[:80])
    raise BadRecording(f"unknown tag {tag!r}")


# ---- arrays <-> bytes ------------------------------------------------------------------------
# A zip (np.savez) costs 50 us per array to read and 17 us to write, and a notebook's cases pass
# some 300 arrays four times (inputs out and in, results out and in): this table and raw bytes
# cost about 5 us per array.

ARRAYS = ".arrays"
ARRAYS_MAGIC = b"\x93BN-ARRAYS-1\n"
_TABLE_LENGTH = struct.Struct("<I")
_ALIGN = 16
MAX_DIMS = 32


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """The named arrays as one blob: ``ARRAYS_MAGIC``, the length of a JSON table of
    [name, dtype, shape, Fortran order, offset, length] per array, the table, then each array's
    bytes as it is laid out (C or Fortran order). Numbers only (NumPy kinds b, i, u, f, c)."""
    table, chunks, at = [], [], 0
    for name, value in arrays.items():
        a = np.asarray(value)
        if a.dtype.kind not in "biufc" or a.dtype.fields is not None:
            raise BadRecording(f"only arrays of numbers are written, not {a.dtype}")
        if a.ndim > MAX_DIMS:  # what unpack_arrays would refuse
            raise BadRecording(f"an array of more than {MAX_DIMS} dimensions is not written")
        fortran = bool(a.flags.f_contiguous and not a.flags.c_contiguous)
        data = a.tobytes(order="F" if fortran else "C")
        pad = -at % _ALIGN
        chunks.append(b"\0" * pad)
        at += pad
        table.append([str(name), a.dtype.str, list(a.shape), fortran, at, len(data)])
        chunks.append(data)
        at += len(data)
    header = json.dumps(table).encode()
    return ARRAYS_MAGIC + _TABLE_LENGTH.pack(len(header)) + header + b"".join(chunks)


def _natural(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def unpack_arrays(blob: bytes, untrusted: bool = False) -> dict[str, np.ndarray]:
    """The arrays :func:`pack_arrays` wrote, each a fresh writable copy. Anything else is a
    BadRecording; an ``untrusted`` blob is held to ``MAX_META_BYTES`` of table, ``MAX_VALUES``
    x 4 arrays and ``MAX_ARRAY_BYTES`` unpacked (summed over the entries, so entries that name
    the same bytes cannot multiply what is unpacked)."""
    view = memoryview(blob)
    start = len(ARRAYS_MAGIC)
    if bytes(view[:start]) != ARRAYS_MAGIC or len(view) < start + _TABLE_LENGTH.size:
        raise BadRecording("not an arrays file")
    (n,) = _TABLE_LENGTH.unpack_from(view, start)
    start += _TABLE_LENGTH.size
    if start + n > len(view) or (untrusted and n > MAX_META_BYTES):
        raise BadRecording("the arrays' table is cut short or too large")
    try:
        table = json.loads(bytes(view[start:start + n]))
    except ValueError:
        raise BadRecording("the arrays' table is not JSON") from None
    if not isinstance(table, list) or (untrusted and len(table) > MAX_VALUES * 4):
        raise BadRecording("the arrays' table is not a list of at most its bound")
    payload = view[start + n:]
    arrays, total = {}, 0
    for entry in table:
        if not (isinstance(entry, list) and len(entry) == 6):
            raise BadRecording("an entry of the arrays' table is malformed")
        name, dtype, shape, fortran, offset, nbytes = entry
        if not (isinstance(name, str) and isinstance(dtype, str) and isinstance(fortran, bool)
                and isinstance(shape, list) and len(shape) <= MAX_DIMS and all(map(_natural, shape))
                and _natural(offset) and _natural(nbytes)):
            raise BadRecording("an entry of the arrays' table is malformed")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise BadRecording("an array's dtype is not one NumPy knows") from None
        if dt.kind not in "biufc" or dt.fields is not None or dt.subdtype is not None:
            raise BadRecording("an array is not of numbers")
        count = math.prod(shape)
        total += nbytes
        if count * dt.itemsize != nbytes or offset + nbytes > len(payload):
            raise BadRecording("an array's size does not match its place")
        if untrusted and total > MAX_ARRAY_BYTES:
            raise BadRecording("arrays too large")
        order = "F" if fortran else "C"
        if count == 0:
            arrays[name] = np.empty(shape, dtype=dt, order=order)
        else:
            flat = np.frombuffer(payload, dtype=dt, count=count, offset=offset)
            arrays[name] = flat.reshape(shape, order=order).copy(order=order)
    return arrays


def dumps(value: Any, extra: dict | None = None) -> tuple[bytes, bytes]:
    """(json bytes, arrays bytes) for ``value`` (stored under "value") and ``extra`` fields."""
    arrays: dict[str, np.ndarray] = {}
    doc = dict(extra or {})
    doc["value"] = encode(value, arrays)
    return json.dumps(doc).encode(), pack_arrays(arrays)


def loads(meta: bytes, packed: bytes | None, untrusted: bool = False) -> dict:
    """The document written by :func:`dumps`, its "value" decoded. Never unpickles. An
    ``untrusted`` recording (from a student's run) is held to the size bounds above."""
    doc = json.loads(meta)
    if not isinstance(doc, dict):
        raise BadRecording("not a recording")
    arrays = unpack_arrays(packed, untrusted) if packed else {}
    doc["value"] = decode(doc.get("value"), arrays)
    return doc


def save(stem: str, value: Any, extra: dict | None = None) -> None:
    meta, packed = dumps(value, extra)
    with open(stem + ARRAYS, "wb") as f:
        f.write(packed)
    with open(stem + ".json", "wb") as f:
        f.write(meta)


def load(stem: str) -> dict:
    """Read a trusted pair of files (the kit's data, the judge's inputs)."""
    with open(stem + ".json", "rb") as f:
        meta = f.read()
    with open(stem + ARRAYS, "rb") as f:
        packed = f.read()
    return loads(meta, packed)


# ---- the recording directory ------------------------------------------------------------------

def manifest_path(record_dir: str) -> str:
    return os.path.join(record_dir, "manifest.json")


def inputs_stem(record_dir: str, function: str) -> str:
    return os.path.join(record_dir, "inputs", function)


def output_stem(record_dir: str, function: str, k: int) -> str:
    return os.path.join(record_dir, "outputs", function, str(k))


def output_relpath(function: str, k: int) -> str:
    return f"outputs/{function}/{k}"


# ---- what is recorded of a function's returned values -------------------------------------------

def _kind(value) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype} {value.shape}"
    if isinstance(value, (list, tuple, dict)):
        return f"{type(value).__name__} of {len(value)} items"
    return type(value).__name__


def recordable(values: tuple, returns, compared) -> tuple:
    """The values as the judge will see them: ungraded ones (a cache) dropped, so they can never
    cost a graded one its recording; each graded one round-tripped through this module's
    encoding, or, where it cannot be recorded (too large, too deep), described by its kind.
    The self-check applies the same, so a student sees locally the verdict the grader reaches."""
    values = tuple(values)[:MAX_VALUES]
    graded = set(compared) if len(values) == len(returns) else set(returns)
    names = list(returns) if len(values) == len(returns) else [f"value {k}" for k in range(len(values))]
    budget = MAX_META_BYTES // 2
    out = []
    for name, value in zip(names, values):
        if name not in graded and len(values) == len(returns):
            out.append(None)
            continue
        try:
            arrays: dict[str, np.ndarray] = {}
            meta = json.dumps(encode(value, arrays)).encode()
            if len(meta) > budget or sum(a.nbytes for a in arrays.values()) > MAX_ARRAY_BYTES // 2:
                raise BadRecording("too large")
            budget -= len(meta)
            out.append(decode(json.loads(meta), arrays))
        except (BadRecording, ValueError, TypeError, OverflowError, RecursionError) as exc:
            why = "too large" if "large" in str(exc) else "nested too deeply" if "deep" in str(exc) \
                else "not recordable"
            kind = f"{_kind(value)} ({why} to record)" if why != "not recordable" else \
                f"{_kind(value)} (not recordable)"
            out.append(Described(kind[:80]))  # what decode() keeps of a kind
    return tuple(out)


# ---- a case's inputs, handed over when the case runs ---------------------------------------------

HEADER = struct.Struct("<QQ")
MAX_INPUT_BYTES = 256 << 20


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise BadRecording("the grader closed the inputs channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def connect_inputs():
    """A connection to the grader's input server (inside the grading sandbox only). Whoever
    connects, the server decides by the kernel's word on who it is (see
    ``autograder.grader.sandbox.inputs``): the notebook's own process never gets a case."""
    import socket
    folder = os.open(os.environ[INPUTS_ENV], os.O_RDONLY | os.O_DIRECTORY)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(f"/proc/self/fd/{folder}/inputs.sock")  # any folder path, however deep
    except OSError:
        conn.close()
        raise
    finally:
        os.close(folder)
    return conn


def announce_runner() -> bool:
    """The runner says who it is, before any student code runs."""
    conn = connect_inputs()
    try:
        conn.sendall(b"runner\n")
        return conn.recv(8) == b"ok\n"
    finally:
        conn.close()


def case_input(conn, function: str, k: int):
    """Ask the grader for case ``k``'s inputs over ``conn`` (from :func:`connect_inputs`)."""
    fd = conn.fileno()
    os.write(fd, f"case {function}\t{k}\n".encode())
    n_meta, n_npz = HEADER.unpack(_read_exact(fd, HEADER.size))
    if n_meta == 0 or n_meta + n_npz > MAX_INPUT_BYTES:
        raise BadRecording(f"the grader has no inputs for {function} case {k}")
    meta = _read_exact(fd, n_meta)
    return loads(meta, _read_exact(fd, n_npz))["value"]


def input_message(value) -> bytes:
    """What the grader sends for one case: header, structure, arrays."""
    meta, npz = dumps(value)
    return HEADER.pack(len(meta), len(npz)) + meta + npz
