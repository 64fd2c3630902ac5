"""Many small files under a directory descriptor, and a directory listing:
the pure-Python twin of csrc/read_files.c (agent_api.h documents both).

Both backends return the same two byte strings for the same tree: a packed
table (layout.FILE_ENTRY or layout.DIR_ENTRY rows) and a buffer the table's
offsets point into; `file_results` and `dir_entries` decode either.
tests/test_read_files.py holds them to that, FIFOs, vanished and
unreadable files, long names and oversized files included.
"""

from __future__ import annotations

import errno
import os
import stat

from .layout import DIR_ENTRY, EIO, ETRUNC, FILE_ENTRY, OK, READ_ONCE

# A FIFO's open returns at once with O_NONBLOCK (and its read is never
# reached: only regular files are read); O_NOCTTY in case a terminal sits
# where a sysfs file should be.
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK

# <dirent.h>'s d_type values (Linux, and every libc on it).
DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12
_DT_BY_FORMAT = {
    stat.S_IFREG: DT_REG, stat.S_IFDIR: DT_DIR, stat.S_IFLNK: DT_LNK, stat.S_IFIFO: DT_FIFO,
    stat.S_IFSOCK: DT_SOCK, stat.S_IFCHR: DT_CHR, stat.S_IFBLK: DT_BLK,
}


def _check_path(path: bytes) -> None:
    # The C side refuses a NUL inside rather than let openat() cut the name
    # at it; os.open would raise ValueError instead of an OSError.
    if b"\0" in path:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)


def _read_one(dirfd: int, name: bytes, cap: int, once: bool) -> tuple[int, int, bytes]:
    """(status, errno, content) of one file, as read_one in read_files.c."""
    try:
        _check_path(name)
        fd = os.open(name, OPEN_FLAGS, dir_fd=dirfd)
    except OSError as exc:
        return EIO, exc.errno, b""
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            return EIO, code, b""
        if once:
            return OK, 0, os.read(fd, cap)
        chunks, n = [], 0
        while n < cap:
            chunk = os.read(fd, cap - n)
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
        status = ETRUNC if n == cap and os.read(fd, 1) else OK
        return status, 0, b"".join(chunks)
    except OSError as exc:
        return EIO, exc.errno, b""
    finally:
        os.close(fd)


def read_files(dirfd: int, names: list[bytes], file_cap: int, flags: int = 0) -> tuple[bytes, bytes]:
    """(table, data): one FILE_ENTRY row per name (offsets into b"".join(names)
    and into data), and the files' contents, each at most file_cap bytes."""
    once = bool(flags & READ_ONCE)
    rows, data, name_off, data_off = [], [], 0, 0
    for name in names:
        status, err, content = _read_one(dirfd, name, file_cap, once)
        rows.append(FILE_ENTRY.pack(name_off, len(name), data_off, len(content), status, err))
        data.append(content)
        name_off += len(name)
        data_off += len(content)
    return b"".join(rows), b"".join(data)


def _d_type(entry: os.DirEntry) -> int:
    # DirEntry answers from the dirent's d_type and calls lstat only where
    # the file system said DT_UNKNOWN, as the C side does with fstatat.
    if entry.is_symlink():
        return DT_LNK
    if entry.is_dir(follow_symlinks=False):
        return DT_DIR
    if entry.is_file(follow_symlinks=False):
        return DT_REG
    try:
        return _DT_BY_FORMAT.get(stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode), DT_UNKNOWN)
    except FileNotFoundError:  # gone since the listing: the C side keeps DT_UNKNOWN too
        return DT_UNKNOWN


def list_dir(dirfd: int, path: bytes) -> tuple[bytes, bytes]:
    """(table, names): one DIR_ENTRY row per entry of the directory `path`
    under dirfd ("." and ".." left out, in the kernel's order) and the names
    they point into.  OSError when the directory cannot be opened or read."""
    _check_path(path)
    fd = os.open(path, DIR_FLAGS, dir_fd=dirfd)
    try:
        rows, names, off = [], [], 0
        with os.scandir(fd) as it:
            for entry in it:
                name = os.fsencode(entry.name)
                rows.append(DIR_ENTRY.pack(off, len(name), _d_type(entry)))
                names.append(name)
                off += len(name)
        return b"".join(rows), b"".join(names)
    finally:
        os.close(fd)


def realpath(path: bytes) -> bytes:
    """The canonical path of `path` (every symlink resolved), or OSError
    when a component is missing, not a directory, or loops; agent_realpath,
    the C library's realpath(3), does the same with fewer syscalls."""
    _check_path(path)
    return os.path.realpath(path, strict=True)


def file_results(table: bytes, data: bytes) -> list[tuple[int, int, bytes]]:
    """(status, errno, content) per file of a read_files result."""
    return [(status, err, data[off:off + length])
            for _, _, off, length, status, err in FILE_ENTRY.iter_unpack(table)]


def dir_entries(table: bytes, names: bytes) -> list[tuple[bytes, int]]:
    """(name, d_type) per entry of a list_dir result."""
    return [(names[off:off + length], d_type) for off, length, d_type in DIR_ENTRY.iter_unpack(table)]
