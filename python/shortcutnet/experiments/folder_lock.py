"""One sweep per output folder: a lock file that names its holder.

The lock is an advisory ``flock`` on ``sweep.lock`` in the folder, which the kernel releases when
its holder exits in any way (kill -9 included), so a lock left behind can always be told from a
live one; the file's content (process id, host, start time) is only for the messages. Where the
file system has no ``flock``, a lock whose process id no longer exists on this host counts as stale.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from typing import Optional

from .errors import FolderInUse, WriteFailed

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_NAME = "sweep.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    host = holder.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"process {holder.get('pid', '?')}{where} since {when}"


def _read(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0)
        holder = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?"}
    return holder if isinstance(holder, dict) else {"pid": "?"}


class FolderLock:
    """``with FolderLock(folder):`` holds the folder for one sweep; raises :class:`FolderInUse` at once
    if another process holds it. ``note`` says whether a stale lock was taken over."""

    def __init__(self, folder):
        self.folder = os.path.abspath(os.fspath(folder))
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.note: Optional[str] = None
        self._fd: Optional[int] = None

    def acquire(self) -> "FolderLock":
        try:
            fd = self._open_locked()
        except OSError as exc:
            raise WriteFailed(self.folder, exc) from exc
        try:
            previous = _read(fd)
            if previous:
                self.note = (f"{self.folder}: took over the lock left by {_describe(previous)}, "
                             "which no longer runs")
            me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "command": " ".join(sys.argv)[:500]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)  # releases the lock
            raise WriteFailed(self.folder, exc) from exc
        self._fd = fd
        return self

    def _open_locked(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not self._try_lock(fd):
                    raise FolderInUse(f"{self.folder} is in use by {_describe(_read(fd))} (another sweep "
                                      "writes there): wait for it to finish, or give another --out")
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    return fd
                # the previous holder removed the file between our open and our lock: take the new one
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    @staticmethod
    def _try_lock(fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
        holder = _read(fd)  # no flock here: trust a live process id on this host
        pid = holder.get("pid")
        if holder.get("host") not in (None, socket.gethostname()):
            return False
        return not (isinstance(pid, int) and pid != os.getpid() and _alive(pid))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass  # the lock is released by closing; a file left behind reads as stale
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
