"""Hidden inputs handed to the sandbox one case at a time, to the one process that may have them.

The grader listens on a unix socket in a folder of its own, bound read-only into the sandbox
(``/grader``); no descriptor of it is passed in, so the notebook's process holds no channel.
The kernel names the process at the other end of each connection (``SO_PEERCRED``, in the
grader's own pid namespace), and the server answers only:

* ``runner`` — once, from the first connection: the runner says who it is before any student
  code runs, so the server knows the notebook's process;
* ``case <function>\\t<k>`` — from a *child* of the notebook's process (a recorder fork), never
  from the notebook's process itself; the first child that asks for a function owns it, and each
  (function, case) is served once.  Anything else is answered "no inputs".

Just before the first case leaves, ``on_first_serve`` runs (the run takes its snapshot of the
executed notebook then: what the notebook printed before any hidden input existed in the sandbox).
"""
from __future__ import annotations

import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from autograder.student import recording

SOCKET_NAME = "inputs.sock"
_CRED = struct.Struct("3i")  # pid, uid, gid


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(4096)
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class _InputServer(threading.Thread):
    """Serves one run's hidden inputs (see the module's docstring). Never blocks for long on the
    sandbox: it ends when the run ends."""

    def __init__(self, request: dict, folder: Path, on_first_serve: Callable[[], None] | None = None):
        super().__init__(daemon=True)
        self.request = request
        self.on_first_serve = on_first_serve
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        self.stop = threading.Event()
        self.served: set[tuple[str, int]] = set()
        self.owner: dict[str, int] = {}
        self.runner_pid: int | None = None
        self.refused: list[str] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bound through the folder's descriptor: a deep scratch path may pass sun_path's 108 bytes.
        dirfd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            where = f"/proc/self/fd/{dirfd}/{SOCKET_NAME}"
            self.listener.bind(where)
            os.chmod(where, 0o666)  # root mode: the student's uid connects (the server decides)
        finally:
            os.close(dirfd)
        self.listener.listen(64)
        self.listener.setblocking(False)
        # ``close`` writes here to end the loop at once (a timeout alone cost each run 0.1 s of wall).
        self._wake_read, self._wake_write = os.pipe()

    def env(self, inside: str | None = None) -> dict:
        """Where the runner finds the socket's folder (``/grader`` inside a sandbox)."""
        return {recording.INPUTS_ENV: inside or str(self.folder)}

    # ---- who asks ---------------------------------------------------------------------------------

    def _allowed(self, pid: int, function: str, k: int) -> str:
        """"" when ``pid`` may have case ``k`` of ``function``, else why not."""
        if self.runner_pid is None:
            return "the runner never said who it is"
        if pid == self.runner_pid:
            return "asked by the notebook's own process"
        if _ppid(pid) != self.runner_pid:
            return "asked by a process that is not a recorder"
        if function not in self.request:
            return "no such function"
        entry, _ = self.request[function]
        if not 0 <= k < len(entry["cases"]):
            return "no such case"
        if self.owner.setdefault(function, pid) != pid:
            return "another process already holds this function's cases"
        if (function, k) in self.served:
            return "already served"
        return ""

    def _answer(self, pid: int, line: bytes) -> bytes:
        try:
            text = line.decode()
            if text == "runner":
                if self.runner_pid is None:
                    self.runner_pid = pid
                    return b"ok\n"
                self.refused.append("a second runner")
                return b"no\n"
            verb, rest = text.split(" ", 1)
            function, k = rest.split("\t")
            if verb != "case":
                raise ValueError(verb)
            k = int(k)
            why = self._allowed(pid, function, k)
            if why:
                self.refused.append(f"{function} {k}: {why}")
                return recording.HEADER.pack(0, 0)
            entry, inputs = self.request[function]
            message = recording.input_message(inputs[entry["cases"][k]])
            if not self.served and self.on_first_serve is not None:
                self.on_first_serve()
            self.served.add((function, k))
            return message
        except Exception:
            return recording.HEADER.pack(0, 0)

    # ---- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        conns: dict[socket.socket, list] = {}  # conn -> [peer pid, pending bytes]
        try:
            while not self.stop.is_set():
                ready, _, _ = select.select([self.listener, self._wake_read, *conns], [], [], 0.2)
                for sock in ready:
                    if sock == self._wake_read:
                        continue  # ``close``: the loop's test ends it
                    if sock is self.listener:
                        try:
                            conn, _ = self.listener.accept()
                        except OSError:
                            continue
                        pid = _CRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                           _CRED.size))[0]
                        if len(conns) >= 32:
                            conn.close()
                            continue
                        conns[conn] = [pid, b""]
                        continue
                    state = conns[sock]
                    try:
                        chunk = sock.recv(4096)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        conns.pop(sock)
                        sock.close()
                        continue
                    state[1] += chunk
                    while b"\n" in state[1] and sock in conns:
                        line, state[1] = state[1].split(b"\n", 1)
                        if not self._send(sock, self._answer(state[0], line[:512])):
                            conns.pop(sock)
                            sock.close()
                    state[1] = state[1][-512:]
        finally:
            for conn in conns:
                conn.close()

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        conn.setblocking(False)
        while view and not self.stop.is_set():
            try:
                view = view[conn.send(view):]
            except BlockingIOError:
                select.select([], [conn], [], 0.2)
            except OSError:
                return False
        return not view

    def close(self) -> None:
        self.stop.set()
        if self._wake_write >= 0:
            try:
                os.write(self._wake_write, b"x")
            except OSError:
                pass
        if self.is_alive():
            self.join(timeout=2)
        for fd in (self._wake_read, self._wake_write):
            if fd >= 0:
                os.close(fd)
        self._wake_read = self._wake_write = -1
        self.listener.close()
        try:
            (self.folder / SOCKET_NAME).unlink()
            self.folder.rmdir()
        except OSError:
            pass
