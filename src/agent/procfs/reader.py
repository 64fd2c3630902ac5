"""The one place the pure-Python backend does file I/O for parsing.

/proc files report st_size 0 and are generated as they are read, so a file
is read with pread from offset 0 until a read returns nothing, never sized up
front.  pread leaves the file offset alone, so a collector can keep the fd
open and re-read it whole every scrape.  EINTR is retried by Python (PEP 475).
"""

from __future__ import annotations

import os

from .layout import ETRUNC, ParseError

# Most /proc files fit in the first read; a dense host's net/dev (2,000
# interfaces, ~250 KiB) takes a few, each twice as large as the last.
_FIRST_READ = 64 * 1024
_MAX_READ = 4 * 1024 * 1024
# As the C loader: no /proc file we read comes near this; a file that does
# is refused rather than allowed to take memory without bound.
MAX_FILE_BYTES = 64 * 1024 * 1024


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
        target = os.path.realpath(path)
        with open(mountinfo, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return False
    best, best_type = "", ""
    for line in lines:
        # "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw"
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) <= sep + 1 or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        # Later lines are later mounts: at an equal length they win.
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[sep + 1]
    return best_type == "proc"
