"""Every process's /proc/PID/stat: the pure-Python twin of
csrc/walk_procs.c (agent_api.h, agent_walk_procs, documents both).

Both backends return the same three byte strings for the same tree: the
walk's totals (layout.PROC_WALK: counts and the two state histograms), the
rows (layout.PROC) and the comms the rows point into; and raise the same
errors (ProcError, or OSError for a failed listing or read).
tests/test_processes_walk.py holds them to that, on the fixture trees and
on truncated and mutated stat files.
"""

from __future__ import annotations

import errno
import os

from .layout import EFORMAT, EIO, ERANGE, PROC, PROC_STAT_MAX, PROC_WALK, PROCS_THREADS, U64_MAX, ParseError

OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
# A process that exited between the listing and the read.
GONE = (errno.ENOENT, errno.ESRCH)

# Token positions after comm (stat(5) numbers them from 3).
STATE, UTIME, STIME, THREADS, STARTTIME, RSS = 0, 11, 12, 17, 19, 21
TOKENS = 22
_COUNTERS = (UTIME, STIME, THREADS, STARTTIME, RSS)


class ProcError(ParseError):
    """A stat file the walk cannot use: the process (and the thread, 0 for
    the process's own stat) and the ParseError code."""

    def __init__(self, code: int, pid: int, tid: int = 0):
        super().__init__(code)
        self.pid = pid
        self.tid = tid
        where = f"{pid}/task/{tid}/stat" if tid else f"{pid}/stat"
        self.path = where
        self.args = (f"{where}: {self.args[0]}",)

    def __eq__(self, other):
        return isinstance(other, ProcError) and (self.code, self.pid, self.tid) == (other.code, other.pid, other.tid)

    def __hash__(self):
        return hash((self.code, self.pid, self.tid))


def parse_pid(name: bytes) -> int | None:
    """A process directory's number: canonical decimal, as the kernel
    writes them (no sign, no leading zero, at most 19 digits); None for
    anything else."""
    if not 0 < len(name) <= 19 or not name.isdigit() or name[0] == 0x30:
        return None
    return int(name)


def parse_proc_stat(data: bytes) -> tuple[int, int, int, int, int, int, int, int]:
    """(state, threads, utime, stime, starttime, rss_pages, comm_off,
    comm_len) of a stat file, or ParseError.  comm runs from the first '('
    to the LAST ')': the kernel does not escape it."""
    left = data.find(b"(")
    right = data.rfind(b")", left + 1) if left >= 0 else -1
    if right < 0:
        raise ParseError(EFORMAT)
    tokens = data[right + 1:].split()
    values = [0] * TOKENS
    for i in range(TOKENS):
        if i >= len(tokens):
            raise ParseError(EFORMAT)
        token = tokens[i]
        if i == STATE:
            if len(token) != 1:
                raise ParseError(EFORMAT)
            values[i] = token[0]
        elif i in _COUNTERS:
            if not token.isdigit():
                raise ParseError(EFORMAT)
            value = int(token)
            if value > U64_MAX:
                raise ParseError(ERANGE)
            values[i] = value
    return (values[STATE], values[THREADS], values[UTIME], values[STIME], values[STARTTIME], values[RSS],
            left + 1, right - left - 1)


def _read_stat(dirfd: int, path: bytes) -> bytes | None:
    """The stat file's bytes; None when the process is gone."""
    try:
        fd = os.open(path, OPEN_FLAGS, dir_fd=dirfd)
    except OSError as exc:
        if exc.errno in GONE:
            return None
        raise
    try:
        chunks, n = [], 0
        while n < PROC_STAT_MAX:
            chunk = os.read(fd, PROC_STAT_MAX - n)
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
            # One line, formatted whole at the first read: a read ending at
            # its newline short of the buffer has the file (walk_procs.c
            # stops at the same byte).
            if n < PROC_STAT_MAX and chunk.endswith(b"\n"):
                break
    except OSError as exc:
        if exc.errno in GONE:
            return None
        raise
    finally:
        os.close(fd)
    if n == PROC_STAT_MAX:
        raise ParseError(EFORMAT)
    return b"".join(chunks)


def _io_error(exc: OSError, pid: int, tid: int = 0) -> OSError:
    """The OSError both backends raise: errno and where (".", the process,
    or the process's thread)."""
    where = f"{pid}/task/{tid}" if tid else str(pid) if pid else "."
    return OSError(exc.errno, os.strerror(exc.errno), where)


def _count_tasks(procfd: int, name: bytes, pid: int, state: int, thread_states: list[int]) -> None:
    try:
        task_fd = os.open(name + b"/task", DIR_FLAGS, dir_fd=procfd)
    except OSError as exc:
        if exc.errno in GONE:
            return
        raise _io_error(exc, pid) from None
    try:
        try:
            # os.listdir of a descriptor reads it from the start, in the kernel's order.
            tasks = os.listdir(task_fd)
        except OSError as exc:
            if exc.errno in GONE:  # the process exited while its tasks were listed
                return
            raise _io_error(exc, pid) from None
        for task in tasks:
            tid = parse_pid(os.fsencode(task))
            if tid is None:
                continue
            if tid == pid:
                thread_states[state] += 1
                continue
            try:
                data = _read_stat(task_fd, os.fsencode(task) + b"/stat")
                if data is None:
                    continue
                thread_states[parse_proc_stat(data)[0]] += 1
            except ParseError as exc:
                raise ProcError(exc.code, pid, tid) from None
            except OSError as exc:
                raise _io_error(exc, pid, tid) from None
    finally:
        os.close(task_fd)


def walk_procs(procfd: int, flags: int = 0) -> tuple[bytes, bytes, bytes]:
    """(walk, rows, comms) for the processes under procfd, as
    agent_walk_procs fills them when its buffers are large enough."""
    try:
        fd = os.open(".", DIR_FLAGS, dir_fd=procfd)
        try:
            names = [os.fsencode(name) for name in os.listdir(fd)]
        finally:
            os.close(fd)
    except OSError as exc:
        raise _io_error(exc, 0) from None
    states = [0] * 256
    thread_states = [0] * 256
    rows, comms, comms_len = [], [], 0
    for name in names:
        pid = parse_pid(name)
        if pid is None:
            continue
        try:
            data = _read_stat(procfd, name + b"/stat")
            if data is None:
                continue
            state, threads, utime, stime, starttime, rss, comm_off, comm_len = parse_proc_stat(data)
        except ParseError as exc:
            raise ProcError(exc.code, pid) from None
        except OSError as exc:
            raise _io_error(exc, pid) from None
        states[state] += 1
        if flags & PROCS_THREADS:
            if threads == 1:
                thread_states[state] += 1
            else:
                _count_tasks(procfd, name, pid, state, thread_states)
        rows.append(PROC.pack(pid, state, threads, utime, stime, starttime, rss, comms_len, comm_len))
        comms.append(data[comm_off:comm_off + comm_len])
        comms_len += comm_len
    walk = PROC_WALK.pack(len(rows), comms_len, 0, 0, 0, *states, *thread_states)
    return walk, b"".join(rows), b"".join(comms)
