"""Reading what the sandbox left: every file in a job directory is hostile (regular files only,
never through a symlink, size-bounded, never blocking, no directory listing)."""
from __future__ import annotations

import json
import os
import stat

from autograder.student import recording
from autograder.student.verdict import Result


class Unsafe(Exception):
    """A file in the job directory that the grader will not read (and why)."""


class JobReader:
    """Reads files below a trusted directory whose contents the student's code controlled.

    Each path component is opened relative to its parent with O_NOFOLLOW (a symlink anywhere
    is refused), the last one with O_PATH first so that nothing but a regular file is ever
    opened for reading (a FIFO, a socket or a device is refused before it can block), and at
    most ``limit`` bytes are read.
    """

    def __init__(self, root: str):
        self.root = root

    def read(self, relpath: str, limit: int) -> bytes:
        parts = [p for p in relpath.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise Unsafe(f"bad path {relpath!r}")
        dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                try:
                    fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=dir_fd)
                except FileNotFoundError:
                    raise
                except OSError as exc:
                    raise Unsafe(f"{relpath}: {part} is not a plain directory") from exc
                os.close(dir_fd)
                dir_fd = fd
            try:
                path_fd = os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                raise
            try:
                info = os.fstat(path_fd)
                if not stat.S_ISREG(info.st_mode):
                    raise Unsafe(f"{relpath} is not a regular file")
                if info.st_size > limit:
                    raise Unsafe(f"{relpath} is larger than {limit} bytes")
                fd = os.open(f"/proc/self/fd/{path_fd}",
                             os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            finally:
                os.close(path_fd)
            try:
                chunks, left = [], limit + 1
                while left > 0:
                    chunk = os.read(fd, min(left, 1 << 20))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
                data = b"".join(chunks)
            finally:
                os.close(fd)
            if len(data) > limit:
                raise Unsafe(f"{relpath} is larger than {limit} bytes")
            return data
        finally:
            os.close(dir_fd)

    def read_json(self, relpath: str, limit: int) -> object:
        return json.loads(self.read(relpath, limit))


def read_results(reader: JobReader, manifest: dict) -> dict:
    """Each requested function's recorded cases, as Results (status "missing" where absent)."""
    out = {}
    for function, wanted in manifest.items():
        results = []
        for k in range(len(wanted["cases"])):
            rel = recording.output_relpath(function, k)
            try:
                meta = reader.read("record/" + rel + ".json", recording.MAX_META_BYTES)
                packed = reader.read("record/" + rel + recording.ARRAYS,
                                     recording.MAX_ARRAY_BYTES + recording.MAX_META_BYTES)
                doc = recording.loads(meta, packed, untrusted=True)
                status = str(doc.get("status"))
                values = doc.get("value")
                if status == "ok" and not isinstance(values, tuple):
                    raise recording.BadRecording("values are not a tuple")
                results.append(Result(status if status in ("ok", "error", "shape", "not-implemented", "modified")
                                      else "error",
                                      tuple(values or ())[:recording.MAX_VALUES],
                                      str(doc.get("error", ""))[:500]))
            except FileNotFoundError:
                results.append(Result("missing"))
            except Unsafe as exc:
                results.append(Result("error", error=f"its recording was refused ({exc})"))
            except Exception as exc:
                results.append(Result("error", error=f"its recording could not be read "
                                                     f"({type(exc).__name__})"))
        out[function] = results
    return out
