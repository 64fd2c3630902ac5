"""Opening the files an operator names: the configuration, the TLS
certificate, key and client CA, the token file.

They are read at start-up and again on every SIGHUP, by the main thread,
which is also the one that acts on SIGTERM; so each must be a regular file.
A FIFO would block the open (or the read) until someone writes to it, and
the agent would then ignore SIGTERM; a device may never end.  The path is
checked with stat() before it is opened, so that no device is ever opened
(opening one can have effects of its own), then opened with O_NONBLOCK, which
makes the open of a FIFO swapped in meanwhile return at once, and checked
again with fstat() on what was opened.
"""

from __future__ import annotations

import errno
import os
import stat

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """The path names something other than a regular file; `strerror` says
    what, in the words of an error message ("not a regular file (a FIFO)")."""


# The null device (Linux's 1:3, devices.txt) is let through as an empty
# file: `--config /dev/null` is the usual way to say "no configuration
# file" (the Dockerfile's check does it), and it never blocks.
_NULL_DEVICE = os.makedev(1, 3)


def _check(st: os.stat_result, path: str) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and st.st_rdev == _NULL_DEVICE):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    raise NotRegularFileError(errno.EINVAL, f"not a regular file ({kind})", path)


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file `path` (the caller closes
    it); OSError otherwise, NotRegularFileError for anything but a regular
    file (or the null device).  Neither the open nor a read of the
    descriptor can block."""
    _check(os.stat(path), path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _check(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str, max_bytes: int) -> bytes:
    """The content of the regular file `path`, refused (OSError EFBIG) past
    `max_bytes`."""
    with open(open_regular(path), "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", path)
    return data
