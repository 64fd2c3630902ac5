"""A PID file written atomically and held with an exclusive lock for the
life of the process.

The lock, not the file's existence, says whether an instance runs: a PID
file left by a killed process holds no lock, so it never blocks a start.
The pid is written to a locked temporary file renamed over the path, so a
reader sees either the old content or the whole new pid, and the lock moves
with the new inode; the old inode stays locked until then, so there is no
moment at which a second instance could take over.
"""

from __future__ import annotations

import fcntl
import os


class PidFileError(Exception):
    """One line: another instance runs, or the file cannot be written."""


class PidFile:
    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self._inode: int | None = None

    def acquire(self) -> None:
        """Lock the PID file or raise PidFileError (before detaching, so the
        error still reaches the terminal)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise PidFileError(f"--pidfile {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise PidFileError(f"--pidfile {self.path}: another instance is running (pid {other})") from None
        self._fd = fd
        self._inode = os.fstat(fd).st_ino

    def write(self, pid: int) -> None:
        """Put `pid` in the file atomically, keeping the lock."""
        tmp = f"{self.path}.{pid}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{pid}\n".encode())
            os.rename(tmp, self.path)
        except OSError as exc:
            raise PidFileError(f"--pidfile {self.path}: {exc.strerror}") from None
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._inode = os.fstat(fd).st_ino

    def release(self) -> None:
        """Remove the file if it is still ours, and drop the lock."""
        if self._fd is None:
            return
        try:
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass  # removed by hand: nothing left to clean
        os.close(self._fd)
        self._fd = None
