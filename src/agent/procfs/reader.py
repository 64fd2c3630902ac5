"""The one place the pure-Python backend does file I/O for parsing.

/proc files report st_size 0 and are generated as they are read, so a file
is read with pread from offset 0 until a read returns nothing, never sized up
front.  pread leaves the file offset alone, so a collector can keep the fd
open and re-read it whole every scrape.  EINTR is retried by Python (PEP 475).
"""

from __future__ import annotations

import os

from .layout import ETRUNC, ParseError
from .mountinfo import MountinfoError, parse_mountinfo

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

# Most /proc files fit in the first read; a dense host's net/dev (2,000
# interfaces, ~250 KiB) takes a few, each twice as large as the last.
_FIRST_READ = 64 * 1024
_MAX_READ = 4 * 1024 * 1024
# As the C loader: no /proc file we read comes near this; a file that does
# is refused rather than allowed to take memory without bound.
MAX_FILE_BYTES = 64 * 1024 * 1024
# A file back to a quarter of its largest size, that size at least this
# much, was oversized: the memory it took is given back.  Below it, what a
# source keeps (a buffer, a row array) is not worth a trim, which costs the
# next scrape its page faults again; the factor of 4 keeps a file that
# merely varies (containers' veths coming and going) from doing it often.
RELEASE_MIN_BYTES = 1 << 20
RELEASE_FACTOR = 4


# Reads after a shrink at which the heap is trimmed: the oversized scrape's
# objects are freed by the collection after the shrink at the latest, but a
# worker thread may read before the collecting thread has dropped them.
TRIM_READS = 3


class ShrinkWatch:
    """Notices when a source's file is back to normal after an oversized
    read, so that the memory the oversized read took goes back to the
    kernel (RSS), not only to the allocator.

    `observe(length)` after every read says whether the file has just
    shrunk back: the caller then drops the buffers it grew for it.  The heap
    is trimmed (`trim`) at the read after that one: only then are the
    oversized scrape's families, kept until the next collection replaces
    them, and its response body freed too."""

    __slots__ = ("_trim", "_peak", "_trim_next")

    def __init__(self, trim: Callable[[], object]):
        self._trim = trim
        self._peak = 0
        self._trim_next = 0

    def observe(self, length: int) -> bool:
        if self._trim_next:
            self._trim_next -= 1
            self._trim()
        if length >= self._peak:
            self._peak = length
            return False
        if self._peak >= RELEASE_MIN_BYTES and length * RELEASE_FACTOR <= self._peak:
            self._peak = length
            self._trim_next = TRIM_READS
            return True
        return False


def open_source(procfs_root: str, relpath: str) -> int:
    """Open `relpath` (e.g. "stat", "net/dev") under the procfs root."""
    return os.open(os.path.join(procfs_root, relpath), os.O_RDONLY | os.O_CLOEXEC)


def read_fd(fd: int) -> bytes:
    """The whole content of the open file `fd`, from offset 0 to end of file."""
    chunk = os.pread(fd, _FIRST_READ, 0)
    if not chunk:
        return b""
    chunks = [chunk]
    offset = len(chunk)
    size = _FIRST_READ
    while True:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            return b"".join(chunks) if len(chunks) > 1 else chunks[0]
        chunks.append(chunk)
        offset += len(chunk)
        if offset > MAX_FILE_BYTES:
            raise ParseError(ETRUNC)
        if size < _MAX_READ:
            size *= 2


def is_proc_mount(path: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Whether `path` lies on a mount of type proc (a bind mount of the
    host's /proc at /host/proc counts).  Files there are generated afresh on
    every read from offset 0, so the agent keeps them open between scrapes;
    files anywhere else (fixture trees) are reopened each time, so that a
    file replaced by rename is seen."""
    try:
        target = os.fsencode(os.path.realpath(path))
        with open(mountinfo, "rb") as f:
            mounts = parse_mountinfo(f.read())
    except (OSError, MountinfoError):
        return False
    best, best_type = b"", ""
    for mount in mounts:
        point = mount.mount_point
        inside = target == point or target.startswith(point.rstrip(b"/") + b"/")
        # Later lines are later mounts: at an equal length they win.
        if inside and len(point) >= len(best):
            best, best_type = point, mount.fstype
    return best_type == "proc"
