"""The C backend: thin wrappers over the compiled module `agent._agent_c`.

C fills buffers that Python owns and returns a status code; Python raises.
Each function returns the same bytes as the pure-Python parser of the same
name (layouts in layout.py, grammar in docs/PARSERS.md), so one decoder
reads both backends' output.

AVAILABLE is False, and UNAVAILABLE_REASON says why in one line, when the
extension is missing or was built for another layout (ABI) version; BUILT
is False when there is no compiled extension at all (the install could not
compile one), as against one that is there but does not load.  The backend
selector decides what to do about it.  Importing this module has no other
side effect.
"""

from __future__ import annotations

import errno
import os
from array import array
from itertools import accumulate

from agent.procfs import layout
from agent.procfs.layout import ParseError
from agent.procfs.reader import ShrinkWatch

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable


def _compiled_files() -> list[str]:
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return sorted(name for name in os.listdir(package_dir)
                  if name.startswith("_agent_c.") and name.endswith(".so"))


try:
    import agent._agent_c as _agent_c
except ImportError as exc:
    _agent_c = None
    _missing = isinstance(exc, ModuleNotFoundError) and exc.name == "agent._agent_c"
    # Not found while a compiled file is there: built for another
    # interpreter, a broken install rather than a missing compiler.
    _found = _compiled_files() if _missing else []
    BUILT = not _missing or bool(_found)
    if not BUILT:
        _import_error = ("not built when monitoring-agent was installed "
                         "(no C compiler or no Python headers then)")
    elif _found:
        _import_error = (f"{', '.join('agent/' + name for name in _found)} is installed but this "
                         "Python cannot load it (built for another interpreter?): reinstall monitoring-agent")
    else:
        _import_error = f"cannot import agent._agent_c: {exc}"
else:
    BUILT = True
    _import_error = ""

if _agent_c is None:
    AVAILABLE = False
    UNAVAILABLE_REASON = _import_error
else:
    _abi = _agent_c.lib.agent_abi_version()
    AVAILABLE = _abi == layout.ABI_VERSION
    UNAVAILABLE_REASON = "" if AVAILABLE else (
        f"agent._agent_c has ABI version {_abi}, the package expects "
        f"{layout.ABI_VERSION}: rebuild the extension")

if AVAILABLE:
    ffi = _agent_c.ffi
    lib = _agent_c.lib
else:
    ffi = lib = None

# A file over this size is refused rather than read into an ever larger buffer.
MAX_FILE_BYTES = 64 << 20

_SCALAR = {
    # source: (struct, parse, load, initial read buffer)
    "meminfo": ("struct agent_meminfo", "agent_parse_meminfo", "agent_load_meminfo", 4 << 10),
    "loadavg": ("struct agent_loadavg", "agent_parse_loadavg", "agent_load_loadavg", 4 << 10),
    "uptime": ("struct agent_uptime", "agent_parse_uptime", "agent_load_uptime", 4 << 10),
}
_ROWS = {
    # source: (row struct, parse, load, initial read buffer, initial rows,
    #          the struct before the rows or None)
    "stat": ("struct agent_cpu", "agent_parse_stat", "agent_load_stat", 64 << 10, 64,
             "struct agent_stat"),
    "diskstats": ("struct agent_diskstats", "agent_parse_diskstats", "agent_load_diskstats",
                  64 << 10, 64, None),
    "netdev": ("struct agent_netdev", "agent_parse_netdev", "agent_load_netdev",
               64 << 10, 64, None),
}
SOURCES = tuple(_SCALAR) + tuple(_ROWS)


def _require():
    if not AVAILABLE:
        raise RuntimeError(f"the C backend is not available: {UNAVAILABLE_REASON}")


def _cdata(data):
    # bytes go to C without a copy; other buffers (bytearray, memoryview)
    # are wrapped, also without a copy.
    if type(data) is bytes:
        return data
    return ffi.from_buffer("char[]", data)


def _parse_scalar(source: str, data) -> bytes:
    _require()
    ctype, parse, _load, _buf = _SCALAR[source]
    out = ffi.new(ctype + " *")
    err_line = ffi.new("size_t *")
    rc = getattr(lib, parse)(_cdata(data), len(data), out, err_line)
    if rc != layout.OK:
        raise ParseError(rc, err_line[0])
    return bytes(ffi.buffer(out))


def _parse_rows(source: str, data) -> bytes:
    _require()
    ctype, parse, _load, _buf, _rows, head_ctype = _ROWS[source]
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    fn = getattr(lib, parse)
    cdata = _cdata(data)
    count = ffi.new("size_t *")
    err_line = ffi.new("size_t *")
    head = (ffi.new(head_ctype + " *"),) if head_ctype else ()
    # A row is a non-blank line, so rows never outnumber lines: the first
    # array is sized from the newline count, capped so that a file of empty
    # lines does not allocate megabytes; EROWS doubles it from there.
    max_rows = data.count(b"\n") + 1
    rows_cap = min(max_rows, 4096)
    while True:
        rows = ffi.new(f"{ctype}[{rows_cap}]")
        rc = fn(cdata, len(data), *head, rows, rows_cap, count, err_line)
        if rc == layout.EROWS and rows_cap < max_rows:
            rows_cap = min(rows_cap * 2, max_rows)
            continue
        if rc != layout.OK:
            raise ParseError(rc, err_line[0])
        out = bytes(ffi.buffer(rows, count[0] * ffi.sizeof(ctype)))
        return bytes(ffi.buffer(head[0])) + out if head else out


def parse_stat(data: bytes) -> bytes:
    return _parse_rows("stat", data)


def parse_meminfo(data: bytes) -> bytes:
    return _parse_scalar("meminfo", data)


def parse_loadavg(data: bytes) -> bytes:
    return _parse_scalar("loadavg", data)


def parse_uptime(data: bytes) -> bytes:
    return _parse_scalar("uptime", data)


def parse_diskstats(data: bytes) -> bytes:
    return _parse_rows("diskstats", data)


def parse_netdev(data: bytes) -> bytes:
    return _parse_rows("netdev", data)


def _raise_oserror():
    err = ffi.errno
    raise OSError(err, os.strerror(err))


class _ScalarLoader:
    """Reads and parses one source in one C call; owns a reusable buffer,
    grown for a large file and dropped once the file is normal again."""

    __slots__ = ("_load", "_initial_cap", "_cap", "_buf", "_len", "_out", "_err_line", "_watch")

    def __init__(self, source: str):
        ctype, _parse, load, cap = _SCALAR[source]
        self._load = getattr(lib, load)
        self._initial_cap = self._cap = cap
        self._buf = ffi.new("char[]", cap)
        self._len = ffi.new("size_t *")
        self._out = ffi.new(ctype + " *")
        self._err_line = ffi.new("size_t *")
        self._watch = ShrinkWatch(trim_malloc)

    def __call__(self, fd: int) -> bytes:
        try:
            while True:
                rc = self._load(fd, self._buf, self._cap, self._len, self._out, self._err_line)
                if rc == layout.OK:
                    return bytes(ffi.buffer(self._out))
                if rc == layout.ETRUNC:
                    self._grow_buffer()
                    continue
                if rc == layout.EIO:
                    _raise_oserror()
                raise ParseError(rc, self._err_line[0])
        finally:
            # Whatever the outcome: a file refused for its size grew the
            # buffer too.
            if self._watch.observe(self._len[0]):
                self._cap = self._initial_cap
                self._buf = ffi.new("char[]", self._cap)

    def _grow_buffer(self):
        if self._cap >= MAX_FILE_BYTES:
            raise ParseError(layout.ETRUNC, 0)
        self._cap = min(self._cap * 2, MAX_FILE_BYTES)
        self._buf = ffi.new("char[]", self._cap)


class _RowsLoader:
    """Reads and parses a per-device source in one C call in the common case.

    On EROWS the whole file is already in the buffer, so only the parse is
    repeated, on the same bytes, with a doubled row array: no second read.
    The buffer and the row array go back to their first sizes once the file
    is normal again after an oversized one.  A source with a struct before
    its rows (stat: the whole file's figures, then one row per CPU) returns
    that struct's bytes followed by the rows'.
    """

    __slots__ = ("_load", "_parse", "_ctype", "_row_size", "_initial_cap", "_cap", "_buf", "_len",
                 "_initial_rows", "_rows_cap", "_rows", "_count", "_err_line", "_watch", "_head")

    def __init__(self, source: str):
        ctype, parse, load, cap, rows_cap, head_ctype = _ROWS[source]
        self._head = (ffi.new(head_ctype + " *"),) if head_ctype else ()
        self._load = getattr(lib, load)
        self._parse = getattr(lib, parse)
        self._ctype = ctype
        self._row_size = ffi.sizeof(ctype)
        self._initial_cap = self._cap = cap
        self._buf = ffi.new("char[]", cap)
        self._len = ffi.new("size_t *")
        self._initial_rows = self._rows_cap = rows_cap
        self._rows = ffi.new(f"{ctype}[]", rows_cap)
        self._count = ffi.new("size_t *")
        self._err_line = ffi.new("size_t *")
        self._watch = ShrinkWatch(trim_malloc)

    def __call__(self, fd: int) -> bytes:
        try:
            while True:
                rc = self._load(fd, self._buf, self._cap, self._len, *self._head,
                                self._rows, self._rows_cap, self._count, self._err_line)
                if rc != layout.ETRUNC:
                    break
                self._grow_buffer()
            while rc == layout.EROWS:
                self._grow_rows(self._len[0])
                rc = self._parse(self._buf, self._len[0], *self._head, self._rows, self._rows_cap,
                                 self._count, self._err_line)
            if rc == layout.OK:
                rows = bytes(ffi.buffer(self._rows, self._count[0] * self._row_size))
                return bytes(ffi.buffer(self._head[0])) + rows if self._head else rows
            if rc == layout.EIO:
                _raise_oserror()
            raise ParseError(rc, self._err_line[0])
        finally:
            if self._watch.observe(self._len[0]):
                self._cap = self._initial_cap
                self._buf = ffi.new("char[]", self._cap)
                self._rows_cap = self._initial_rows
                self._rows = ffi.new(f"{self._ctype}[]", self._rows_cap)

    def _grow_buffer(self):
        if self._cap >= MAX_FILE_BYTES:
            raise ParseError(layout.ETRUNC, 0)
        self._cap = min(self._cap * 2, MAX_FILE_BYTES)
        self._buf = ffi.new("char[]", self._cap)

    def _grow_rows(self, length: int):
        # Rows are non-blank lines, so more than length + 1 of them means the
        # C parser is wrong: fail instead of growing forever.
        if self._rows_cap > length:
            raise RuntimeError(f"{self._ctype}: EROWS with {self._rows_cap} rows "
                               f"for {length} bytes")
        self._rows_cap *= 2
        self._rows = ffi.new(f"{self._ctype}[]", self._rows_cap)


def make_loader(source: str) -> Callable[[int], bytes]:
    """A function fd -> struct bytes for `source`, reusing its buffers.

    Not thread-safe: the caller serializes calls to one loader.
    """
    if source not in _SCALAR and source not in _ROWS:
        raise ValueError(f"unknown /proc source {source!r}; expected one of {SOURCES}")
    _require()
    if source in _SCALAR:
        return _ScalarLoader(source)
    return _RowsLoader(source)


# A directory whose names take more than this is refused rather than
# listed into an ever larger buffer.
MAX_LIST_BYTES = 64 << 20


def read_files(dirfd: int, names: list[bytes], file_cap: int, flags: int = 0) -> tuple[bytes, bytes]:
    """agent_read_files: the same (table, data) as read_files.read_files."""
    _require()
    count = len(names)
    table = array("Q", bytes(layout.FILE_ENTRY.size * count))
    lengths = [len(name) for name in names]
    width = layout.FILE_ENTRY.size // 8
    table[0::width] = array("Q", accumulate(lengths[:-1], initial=0)) if count else array("Q")
    table[1::width] = array("Q", lengths)
    # count * file_cap bytes always hold every file, so ETRUNC cannot come.
    data = ffi.new("char[]", max(count * file_cap, 1))
    done = ffi.new("size_t *")
    joined = b"".join(names)
    rc = lib.agent_read_files(dirfd, joined, len(joined),
                              ffi.from_buffer("struct agent_file_entry[]", table), count,
                              file_cap, flags, data, count * file_cap, done)
    if rc != layout.OK:
        raise ParseError(rc, 0)
    # The last row's data ends where the used part of data ends.
    used = table[-4] + table[-3] if count else 0
    return table.tobytes(), ffi.buffer(data, used)[:]


def list_dir(dirfd: int, path: bytes) -> tuple[bytes, bytes]:
    """agent_list_dir: the same (table, names) as read_files.list_dir."""
    _require()
    if b"\0" in path:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
    names_cap, entries_cap = 4096, 128
    count = ffi.new("size_t *")
    names_len = ffi.new("size_t *")
    while True:
        names = ffi.new("char[]", names_cap)
        entries = ffi.new("struct agent_dir_entry[]", entries_cap)
        rc = lib.agent_list_dir(dirfd, path, len(path), names, names_cap, entries, entries_cap,
                                count, names_len)
        if rc == layout.OK:
            return (ffi.buffer(entries, count[0] * layout.DIR_ENTRY.size)[:],
                    ffi.buffer(names, names_len[0])[:])
        if rc == layout.EIO:
            err = ffi.errno
            raise OSError(err, os.strerror(err), path)
        if names_cap >= MAX_LIST_BYTES:
            raise ParseError(rc, 0)
        # A name takes 1 to 255 bytes, so both grow by the same factor.
        names_cap *= 4
        entries_cap *= 4


def realpath(path: bytes) -> bytes:
    """agent_realpath: the same canonical path as read_files.realpath."""
    _require()
    out = ffi.new("char[]", 4096)
    length = ffi.new("size_t *")
    rc = lib.agent_realpath(path, len(path), out, 4096, length)
    if rc == layout.EIO:
        err = ffi.errno
        raise OSError(err, os.strerror(err), path)
    if rc != layout.OK:  # PATH_MAX is 4096 on Linux: cannot happen
        raise ParseError(rc, 0)
    return ffi.buffer(out, length[0])[:]


def walk_cgroups(dirfd: int, procfd: int, names_cap: int, rows_cap: int, io_cap: int, net_cap: int,
                 buf_cap: int):
    """agent_walk_cgroups: the same (status, names, rows, io, net, err_file)
    as cgroups.walk_cgroups."""
    _require()
    names = ffi.new("char[]", max(names_cap, 1))
    rows = ffi.new("struct agent_cgroup[]", max(rows_cap, 1))
    io = ffi.new("struct agent_cgroup_io[]", max(io_cap, 1))
    net = ffi.new("struct agent_netdev[]", max(net_cap, 1))
    buf = ffi.new("char[]", max(buf_cap, 1))
    names_len, count = ffi.new("size_t *"), ffi.new("size_t *")
    io_count, net_count = ffi.new("size_t *"), ffi.new("size_t *")
    err_file = ffi.new("uint64_t *")
    rc = lib.agent_walk_cgroups(dirfd, procfd, names, names_cap, names_len, rows, rows_cap, count,
                                io, io_cap, io_count, net, net_cap, net_count, buf, buf_cap, err_file)
    return (rc, ffi.buffer(names, names_len[0])[:], ffi.buffer(rows, count[0] * layout.CGROUP.size)[:],
            ffi.buffer(io, io_count[0] * layout.CGROUP_IO.size)[:],
            ffi.buffer(net, net_count[0] * layout.NETDEV.size)[:], err_file[0])


def parse_cgroup_file(which: int, data: bytes, io_cap: int = 1024):
    """agent_parse_cgroup_file: the same (status, row, io rows) as
    cgroups.parse_cgroup_file."""
    _require()
    row = ffi.new("struct agent_cgroup *")
    io = ffi.new("struct agent_cgroup_io[]", max(io_cap, 1))
    count = ffi.new("size_t *")
    rc = lib.agent_parse_cgroup_file(which, _cdata(data), len(data), row, io, io_cap, count)
    return rc, ffi.buffer(row, layout.CGROUP.size)[:], ffi.buffer(io, count[0] * layout.CGROUP_IO.size)[:]


# A scrape's largest buffers (a dense host's ~1 MB body, its encoding and
# gzip output) stay below this, so they come from the heap, whose top is
# trimmed only past the second figure (csrc/tune_malloc.c says why).
MALLOC_MMAP_THRESHOLD = 4 << 20
MALLOC_TRIM_THRESHOLD = 16 << 20
# One malloc arena for all the agent's threads (tune_malloc.c says why).
MALLOC_ARENA_MAX = 1


def trim_malloc() -> bool:
    """Give the heap's free memory back to the kernel; False where it cannot
    be (not glibc).  Without the extension, glibc's malloc_trim through
    ctypes: an install that could not compile still gets its memory back
    after an oversized file (ctypes is imported only then, ~1 MiB)."""
    if AVAILABLE:
        return lib.agent_trim_malloc(0) == lib.AGENT_OK
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: no malloc_trim
        return False
    return True


# glibc's <malloc.h> parameters, for mallopt through ctypes.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_malloc() -> bool:
    """Tune glibc's malloc for the scrape loop; False where it cannot be
    (not glibc).  Without the extension, the same mallopt calls through
    ctypes: with one arena per collecting thread, an oversized file's
    memory would stay behind in the workers' arenas."""
    if AVAILABLE:
        return lib.agent_tune_malloc(MALLOC_MMAP_THRESHOLD, MALLOC_TRIM_THRESHOLD,
                                      MALLOC_ARENA_MAX) == lib.AGENT_OK
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        return all(libc.mallopt(param, value) == 1 for param, value in (
            (_M_ARENA_MAX, MALLOC_ARENA_MAX), (_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)))
    except (OSError, AttributeError):  # not glibc: no mallopt
        return False


# Rows and comms a walk starts with when the caller has no better guess; a
# comm is at most 64 bytes on Linux (a kernel thread's), 15 for the rest.
_PROCS_ROWS = 512
_COMM_BYTES = 24
_WALK_ATTEMPTS = 4


def walk_procs(procfd: int, flags: int = 0, rows_hint: int = 0) -> tuple[bytes, bytes, bytes]:
    """agent_walk_procs: the same (walk, rows, comms) as procs.walk_procs.
    rows_hint (the last walk's count) sizes the first try."""
    _require()
    from agent.procfs.procs import ProcError  # the one error both backends raise
    rows_cap = max(_PROCS_ROWS, rows_hint + rows_hint // 8 + 64)
    comms_cap = rows_cap * _COMM_BYTES
    out = ffi.new("struct agent_proc_walk *")
    for _ in range(_WALK_ATTEMPTS):
        rows = ffi.new("struct agent_proc[]", rows_cap)
        comms = ffi.new("char[]", comms_cap)
        rc = lib.agent_walk_procs(procfd, flags, rows, rows_cap, comms, comms_cap, out)
        if rc == layout.OK:
            return (bytes(ffi.buffer(out)), ffi.buffer(rows, out.count * layout.PROC.size)[:],
                    ffi.buffer(comms, out.comms_len)[:])
        if rc in (layout.EROWS, layout.ETRUNC):
            # The walk counted what it needs; processes may start meanwhile.
            rows_cap = max(rows_cap, out.count + out.count // 8 + 64)
            comms_cap = max(comms_cap, out.comms_len + out.comms_len // 8 + 64 * _COMM_BYTES)
            continue
        if rc == layout.EIO:
            pid, tid = out.err_pid, out.err_tid
            where = f"{pid}/task/{tid}" if tid else str(pid) if pid else "."
            raise OSError(out.err, os.strerror(out.err), where)
        raise ProcError(rc, out.err_pid, out.err_tid)
    raise ParseError(rc, 0)
