"""cgroup v2 containers: the pure-Python twin of csrc/walk_cgroups.c, and
the loop both backends share.

`walk_cgroups(dirfd, names_cap, rows_cap, io_cap, buf_cap)` returns what
agent_walk_cgroups fills, as bytes: (status, names, rows, io, err_file),
rows packed as layout.CGROUP and io as layout.CGROUP_IO, in the same order
(the kernel's listing order) and with the same offsets, so one decoder reads
both; tests/test_cgroups_parity.py holds them to it, on every fixture tree,
with small buffers and on damaged files.  agent_api.h documents the
contract; docs/PARSERS.md, "cgroup v2", the grammar of each file.

`Walker` is what a collector calls: it keeps the buffer sizes of the last
scrape and grows them, bounded, when the tree has grown.
"""

from __future__ import annotations

import errno
import os

from .layout import (CGROUP, CGROUP_FIELDS, CGROUP_FILES, CGROUP_IO, EFORMAT, EIO, ERANGE, EROWS, ETRUNC, NETDEV,
                     OK, ParseError, U64_MAX)
from .netdev import parse_netdev
from agent.records import record

# agent_api.h's AGENT_CGROUP_* runtimes.
DOCKER, CONTAINERD, CRIO, PODMAN, CGROUPFS, NSPAWN = 1, 2, 3, 4, 5, 6
RUNTIME_NAMES = {DOCKER: "docker", CONTAINERD: "containerd", CRIO: "crio", PODMAN: "podman",
                 CGROUPFS: "cgroupfs", NSPAWN: "nspawn"}
DEPTH_MAX = 16
PATH_MAX = 4096
ID_HEX = 64
IO_RBYTES, IO_WBYTES = 0, 1
# Where a container's processes are when its own cgroup.procs is empty
# (walk_cgroups.c says whose).
PAYLOADS = (b"container/cgroup.procs", b"payload/cgroup.procs")

_BIT = {name: i for i, name in enumerate(CGROUP_FIELDS)}
_WS = b" \t\n\v\f\r"
_HEX = frozenset(b"0123456789abcdef")
_UID = frozenset(b"0123456789abcdef-_")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class CgroupFileError(ParseError):
    """A container's file that does not have its documented shape."""

    def __init__(self, code: int, path: bytes, file: bytes):
        super().__init__(code)
        self.path = path
        self.file = file
        self.args = (f"{os.fsdecode(path)}/{os.fsdecode(file)}: {self.args[0]}",)

    def __str__(self) -> str:
        return self.args[0]

    def __eq__(self, other):
        return (isinstance(other, CgroupFileError)
                and (self.code, self.path, self.file) == (other.code, other.path, other.file))

    def __hash__(self):
        return hash((self.code, self.path, self.file))


class _Stop(Exception):
    """A status code that ends the walk (the C side's early return)."""

    def __init__(self, code: int):
        self.code = code


# --- the names the runtimes give their cgroups ------------------------------

def _id_between(name: bytes, prefix: bytes, suffix: bytes) -> bool:
    return (len(name) == len(prefix) + ID_HEX + len(suffix) and name.startswith(prefix)
            and name.endswith(suffix) and _HEX.issuperset(name[len(prefix):len(prefix) + ID_HEX]))


def classify(name: bytes):
    """(runtime, id offset, id length) for a container cgroup's directory
    name, or None: agent_cgroup_classify."""
    if _id_between(name, b"docker-", b".scope"):
        return DOCKER, 7, ID_HEX
    if _id_between(name, b"cri-containerd-", b".scope"):
        return CONTAINERD, 15, ID_HEX
    if _id_between(name, b"crio-", b".scope"):
        return CRIO, 5, ID_HEX
    if _id_between(name, b"libpod-", b".scope") or _id_between(name, b"libpod-", b""):
        return PODMAN, 7, ID_HEX
    if _id_between(name, b"", b""):
        return CGROUPFS, 0, ID_HEX
    if len(name) > len(b"machine-.scope") and name.startswith(b"machine-") and name.endswith(b".scope"):
        return NSPAWN, 8, len(name) - len(b"machine-.scope")
    return None


def _uid_ok(uid: bytes) -> bool:
    return 0 < len(uid) <= ID_HEX and _UID.issuperset(uid)


def pod_uid(name: bytes):
    """(offset, length) of the pod uid in a kubelet pod cgroup's name, or None."""
    if name.startswith(b"kubepods") and name.endswith(b".slice"):
        end = len(name) - len(b".slice")
        at = name.rfind(b"-pod", 0, end)
        if at < 0:
            return None
        off = at + 4
        return (off, end - off) if _uid_ok(name[off:end]) else None
    if name.startswith(b"pod"):
        return (3, len(name) - 3) if _uid_ok(name[3:]) else None
    return None


# --- one file each -----------------------------------------------------------

def _lines(data: bytes) -> list[bytes]:
    if not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def _field_end(data: bytes, start: int = 0) -> int:
    i, n = start, len(data)
    while i < n and data[i] not in _WS:
        i += 1
    return i


def number(text: bytes) -> int:
    """The digits `text` exactly, as the C side's number(): EFORMAT for
    anything that is not digits up to its first white space, ERANGE above
    2^64 - 1, EFORMAT for anything after it."""
    end = _field_end(text)
    field = text[:end]
    if not field or not field.isdigit():
        raise ParseError(EFORMAT)
    value = int(field)
    if value > U64_MAX:
        raise ParseError(ERANGE)
    if end != len(text):
        raise ParseError(EFORMAT)
    return value


def _one_line(data: bytes) -> bytes:
    nl = data.find(b"\n")
    if nl >= 0 and nl != len(data) - 1:
        raise ParseError(EFORMAT)
    return data if nl < 0 else data[:nl]


_CPU_KEYS = {b"usage_usec": "usage_usec", b"user_usec": "user_usec", b"system_usec": "system_usec",
             b"nr_periods": "nr_periods", b"nr_throttled": "nr_throttled", b"throttled_usec": "throttled_usec"}
_MEMORY_KEYS = {b"anon": "memory_anon", b"file": "memory_file", b"inactive_file": "memory_inactive_file"}
_EVENT_KEYS = {b"oom_kill": "oom_kill"}


def _flat_keyed(data: bytes, keys: dict, values: dict) -> None:
    for line in _lines(data):
        sp = line.find(b" ")
        if sp <= 0:
            raise ParseError(EFORMAT)
        value = number(line[sp + 1:])
        field = keys.get(line[:sp])
        if field is not None:
            values[field] = value


def _pressure(data: bytes, prefix: str, values: dict) -> None:
    for line in _lines(data):
        end = _field_end(line)
        kind = line[:end]
        if kind == b"some":
            field = prefix + "_some_usec"
        elif kind == b"full":
            field = prefix + "_full_usec"
        else:
            raise ParseError(EFORMAT)
        for word in line[end:].split():
            if len(word) > 6 and word.startswith(b"total="):
                values[field] = number(word[6:])


def _io_stat(data: bytes, io: list, io_cap: int) -> int:
    count = 0
    for line in _lines(data):
        end = _field_end(line)
        colon = line.find(b":", 0, end)
        if end == 0 or colon < 0:
            raise ParseError(EFORMAT)
        major = number(line[:colon])
        minor = number(line[colon + 1:end])
        present, rbytes, wbytes = 0, 0, 0
        for word in line[end:].split():
            eq = word.find(b"=")
            if eq <= 0:
                raise ParseError(EFORMAT)
            value = number(word[eq + 1:])
            if word[:eq] == b"rbytes":
                rbytes, present = value, present | 1 << IO_RBYTES
            elif word[:eq] == b"wbytes":
                wbytes, present = value, present | 1 << IO_WBYTES
        if len(io) == io_cap:
            raise _Stop(EROWS)
        io.append(CGROUP_IO.pack(major, minor, present, rbytes, wbytes))
        count += 1
    return count


def _limit(data: bytes, is_cpu: bool, field: str, values: dict) -> None:
    line = _one_line(data)
    if is_cpu:
        sp = line.find(b" ")
        if sp < 0:
            raise ParseError(EFORMAT)
        number(line[sp + 1:])  # the period: checked, not kept
        quota = line[:sp]
    else:
        quota = line
    if quota == b"max":
        if not is_cpu:
            values[field] = U64_MAX
        return
    values[field] = number(quota)


def first_pid(data: bytes) -> int:
    if not data:
        return 0
    nl = data.find(b"\n")
    return number(data if nl < 0 else data[:nl])


def parse_file(which: int, data: bytes, values: dict, io: list, io_cap: int) -> int:
    """File `which` (layout.CGROUP_FILES index) into values; the number of
    io.stat devices appended to io."""
    name = CGROUP_FILES[which]
    if name == b"cpu.stat":
        _flat_keyed(data, _CPU_KEYS, values)
    elif name == b"cpu.max":
        _limit(data, True, "cpu_quota_usec", values)
    elif name == b"memory.current":
        values["memory_current"] = number(_one_line(data))
    elif name == b"memory.max":
        _limit(data, False, "memory_max", values)
    elif name == b"memory.stat":
        _flat_keyed(data, _MEMORY_KEYS, values)
    elif name == b"memory.events":
        _flat_keyed(data, _EVENT_KEYS, values)
    elif name == b"io.stat":
        return _io_stat(data, io, io_cap)
    elif name.endswith(b".pressure"):
        _pressure(data, name[:-len(b".pressure")].decode(), values)
    else:  # cgroup.procs
        pid = first_pid(data)
        if pid:
            values["pid"] = pid
    return 0


def pack_row(values: dict, runtime=0, path_off=0, path_len=0, id_off=0, id_len=0, pod_off=0, pod_len=0,
             io_first=0, io_count=0, net_first=0, net_count=0) -> bytes:
    present = 0
    for field in values:
        present |= 1 << _BIT[field]
    return CGROUP.pack(present, *(values.get(field, 0) for field in CGROUP_FIELDS),
                       runtime, path_off, path_len, id_off, id_len, pod_off, pod_len, io_first, io_count,
                       net_first, net_count)


def parse_cgroup_file(which: int, data: bytes, io_cap: int = 1024) -> tuple[int, bytes, bytes]:
    """agent_parse_cgroup_file: (status, row, io rows)."""
    values: dict = {}
    io: list = []
    try:
        count = parse_file(which, data, values, io, io_cap)
        rc = OK
    except ParseError as exc:
        rc, count = exc.code, len(io)
    except _Stop as stop:
        rc, count = stop.code, len(io)
    return rc, pack_row(values, io_count=count), b"".join(io)


# --- the walk ------------------------------------------------------------------

class _Walk:
    def __init__(self, procfd: int, names_cap: int, rows_cap: int, io_cap: int, net_cap: int, buf_cap: int):
        self.procfd = procfd
        self.names_cap, self.rows_cap, self.io_cap, self.buf_cap = names_cap, rows_cap, io_cap, buf_cap
        self.net_cap = net_cap
        self.net: list[bytes] = []  # one packed chunk per container
        self.net_rows = 0
        self.names: list[bytes] = []
        self.names_len = 0
        self.rows: list[bytes] = []
        self.io: list[bytes] = []
        self.err_file = 0

    def slurp(self, dirfd: int, name: bytes):
        """A file's bytes, None when it cannot be opened or read; _Stop(ETRUNC)
        when it fills the buffer."""
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dirfd)
        except OSError:
            return None
        try:
            chunks, n = [], 0
            while True:
                if n == self.buf_cap:
                    raise _Stop(ETRUNC)
                try:
                    chunk = os.read(fd, self.buf_cap - n)
                except OSError:
                    return None
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                n += len(chunk)
        finally:
            os.close(fd)

    @staticmethod
    def subdirs(fd: int):
        """The subdirectories of fd, in the kernel's order; a cgroup removed
        while listed has none."""
        try:
            with os.scandir(fd) as it:
                entries = [os.fsencode(e.name) for e in it if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []
        except OSError:
            raise _Stop(EIO) from None
        return entries

    @staticmethod
    def open_dir(dirfd: int, name: bytes):
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dirfd)
        except OSError:
            return None

    def each_dir(self, fd: int, depth: int, path: bytes, pod) -> None:
        for name in self.subdirs(fd):
            found = classify(name)
            if found is not None:
                self.container(fd, name, path, pod, *found)
            else:
                self.descend(fd, name, depth + 1, path, pod)

    def descend(self, dirfd: int, name: bytes, depth: int, path: bytes, pod) -> None:
        if depth >= DEPTH_MAX or len(path) + 1 + len(name) >= PATH_MAX:
            return
        fd = self.open_dir(dirfd, name)
        if fd is None:
            return
        try:
            sub = path + b"/" + name if path else name
            found = pod_uid(name)
            if found is not None:
                pod = (len(sub) - len(name) + found[0], found[1])
            self.each_dir(fd, depth, sub, pod)
        finally:
            os.close(fd)

    def container(self, dirfd: int, name: bytes, path: bytes, pod, runtime: int, id_off: int, id_len: int):
        full = path + b"/" + name if path else name
        fd = self.open_dir(dirfd, name)
        if fd is None:
            return
        try:
            cpu_stat = self.slurp(fd, CGROUP_FILES[0])
            if cpu_stat is None:
                return  # gone since the listing: no room taken
            if len(self.rows) == self.rows_cap:
                raise _Stop(EROWS)
            if self.names_cap - self.names_len < len(full):
                raise _Stop(ETRUNC)
            base = self.names_len
            values: dict = {}
            io_first = len(self.io)
            io_count = 0

            net_first = self.net_rows
            net_count = 0

            def row() -> bytes:
                return pack_row(values, runtime, base, len(full), base + len(full) - len(name) + id_off, id_len,
                                base + pod[0] if pod else 0, pod[1] if pod else 0, io_first, io_count,
                                net_first, net_count)

            for which, file in enumerate(CGROUP_FILES):
                data = cpu_stat if which == 0 else self.slurp(fd, file)
                if data is None:
                    continue
                try:
                    io_count += parse_file(which, data, values, self.io, self.io_cap)
                except ParseError as exc:
                    self.err_file = which
                    values.clear()
                    del self.io[io_first:]
                    io_count = 0
                    self.names.append(full)  # the caller reports the row's path
                    self.rows.append(row())
                    raise _Stop(exc.code) from None
            if "pid" not in values:
                self.child_pid(fd, values)
            if self.procfd >= 0 and "pid" in values:
                net_count = self.network(values["pid"])
            self.names.append(full)
            self.names_len += len(full)
            self.rows.append(row())
        finally:
            os.close(fd)

    def network(self, pid: int) -> int:
        """The interfaces of <pid>/net/dev appended to self.net: how many."""
        data = self.slurp(self.procfd, b"%d/net/dev" % pid)
        if data is None:
            return 0
        room = self.net_cap - self.net_rows
        try:
            rows = parse_netdev(data)
        except ParseError as exc:
            # Malformed: no interfaces, as on the C side, which finds the
            # bad line only with room for the rows before it (its parser
            # checks the room before each row).
            before = sum(1 for line in _lines(data)[2:max(exc.line - 1, 2)] if line.strip(_WS))
            if before >= room:
                raise _Stop(EROWS) from None
            return 0
        count = len(rows) // NETDEV.size
        if count > room:
            raise _Stop(EROWS)
        self.net.append(rows)
        self.net_rows += count
        return count

    def child_pid(self, fd: int, values: dict) -> None:
        for path in PAYLOADS:
            data = self.slurp(fd, path)
            if data is None:
                continue
            try:
                pid = first_pid(data)
            except ParseError:
                continue
            if pid:
                values["pid"] = pid
                return


def walk_cgroups(dirfd: int, procfd: int, names_cap: int, rows_cap: int, io_cap: int, net_cap: int, buf_cap: int):
    """(status, names, rows, io, net, err_file), as agent_walk_cgroups fills them."""
    walk = _Walk(procfd, names_cap, rows_cap, io_cap, net_cap, buf_cap)
    rc = OK
    try:
        fd = os.dup(dirfd)
    except OSError:
        return EIO, b"", b"", b"", b"", 0
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        walk.each_dir(fd, 0, b"", None)
    except _Stop as stop:
        rc = stop.code
    except OSError:
        rc = EIO
    finally:
        os.close(fd)
    return rc, b"".join(walk.names), b"".join(walk.rows), b"".join(walk.io), b"".join(walk.net), walk.err_file


# --- decoded ---------------------------------------------------------------------

@record
class Container:
    path: bytes       # relative to the cgroup2 mount, no leading "/"
    runtime: int
    id: bytes
    pod_uid: bytes    # as the kubelet wrote it in the cgroup name ("_" in the systemd form), or b""
    present: int
    values: tuple     # CGROUP_FIELDS order
    io: list          # (major, minor, present, rbytes, wbytes)
    net: list         # layout.NETDEV tuples of the interfaces of its process's network namespace

    def has(self, field: str) -> bool:
        return bool(self.present >> _BIT[field] & 1)

    def get(self, field: str):
        return self.values[_BIT[field]] if self.has(field) else None


def decode(names: bytes, rows: bytes, io: bytes, net: bytes = b"") -> list[Container]:
    devices = list(CGROUP_IO.iter_unpack(io))
    interfaces = list(NETDEV.iter_unpack(net))
    out = []
    n = len(CGROUP_FIELDS)
    for t in CGROUP.iter_unpack(rows):
        present, values = t[0], t[1:1 + n]
        (runtime, path_off, path_len, id_off, id_len, pod_off, pod_len, io_first, io_count,
         net_first, net_count) = t[1 + n:]
        out.append(Container(names[path_off:path_off + path_len], runtime, names[id_off:id_off + id_len],
                             names[pod_off:pod_off + pod_len], present, values,
                             devices[io_first:io_first + io_count], interfaces[net_first:net_first + net_count]))
    return out


# Past these the walk is refused rather than given ever larger buffers.
MAX_ROWS = 1 << 20
MAX_NAMES = 256 << 20
MAX_BUF = 1 << 20
START_NAMES, START_ROWS = 64 << 10, 256


class Walker:
    """One backend's walk of a cgroup2 tree, with buffers sized by the last
    scrape (a re-walk after a too-small guess costs a whole walk)."""

    def __init__(self, backend):
        self.walk = backend.walk_cgroups
        self.names_cap, self.rows_cap, self.io_cap, self.net_cap = START_NAMES, START_ROWS, START_ROWS, START_ROWS
        self.buf_cap = 64 << 10
        self.rows = b""

    def _fit(self, names: bytes, rows: bytes, io: bytes, net: bytes) -> None:
        """The next walk's room: this one's use and half again (a tree that
        stays or grows a little is walked once), never below the starting
        sizes.  Not the sizes the retries left (x4 a step, up to 4x the
        use: 12 MB at 3,000 containers, allocated, zeroed and kept by the
        allocator each scrape)."""
        def room(used: int, start: int) -> int:
            return max(start, used + used // 2)
        self.names_cap = room(len(names), START_NAMES)
        self.rows_cap = room(len(rows) // CGROUP.size, START_ROWS)
        self.io_cap = room(len(io) // CGROUP_IO.size, START_ROWS)
        self.net_cap = room(len(net) // NETDEV.size, START_ROWS)

    def __call__(self, dirfd: int, procfd: int = -1) -> list[Container]:
        """The containers under dirfd; with procfd >= 0, each with its
        process's interfaces."""
        return decode(*self.packed(dirfd, procfd))

    def packed(self, dirfd: int, procfd: int = -1) -> tuple[bytes, bytes, bytes, bytes]:
        """(names, rows, io, net) as the backend fills them, undecoded: for
        a collector that reads them by column."""
        while True:
            rc, names, rows, io, net, err_file = self.walk(dirfd, procfd, self.names_cap, self.rows_cap,
                                                           self.io_cap, self.net_cap, self.buf_cap)
            if rc == OK:
                self.rows = rows
                self._fit(names, rows, io, net)
                return names, rows, io, net
            if rc == EIO:
                raise OSError(errno.EIO, "cannot list the cgroup hierarchy")
            if rc in (ETRUNC, EROWS):
                if self.rows_cap >= MAX_ROWS or self.names_cap >= MAX_NAMES:
                    raise ParseError(rc)
                # Both kinds grow together: one more container needs a row, its path and its devices.
                self.rows_cap *= 4
                self.io_cap *= 4
                self.net_cap *= 4
                self.names_cap *= 4
                if rc == ETRUNC and self.buf_cap < MAX_BUF:
                    self.buf_cap *= 4
                continue
            last = decode(names, rows, io, net)[-1]
            raise CgroupFileError(rc, b"/" + last.path, CGROUP_FILES[err_file])
