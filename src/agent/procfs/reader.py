"""The one place the pure-Python backend does file I/O for parsing.

/proc files report st_size 0 and are generated as they are read, so a file
is read with pread from offset 0 until a read returns nothing, never sized up
front.  pread leaves the file offset alone, so a collector can keep the fd
open and re-read it whole every scrape.  EINTR is retried by Python (PEP 475).
"""

from __future__ import annotations

import os

# Most /proc files fit in the first read; a dense host's net/dev (2,000
# interfaces, ~250 KiB) takes a few, each twice as large as the last.
_FIRST_READ = 64 * 1024
_MAX_READ = 4 * 1024 * 1024


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
        if size < _MAX_READ:
            size *= 2
