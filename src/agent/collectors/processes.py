"""/proc/PID/stat of every process, in one walk per scrape: node_exporter's
processes collector (same names, help texts and values: docs/NODE_EXPORTER_COMPAT.md,
"processes") and the top processes by CPU over the CPU window and by
resident memory.

The walk (csrc/walk_procs.c, or its twin agent.procfs.procs) is one call
across the backend; everything here works on its columns.  CPU percentages
follow the CPU window's rules (agent/cpu.py): the rate covers the newest
sample at least a window old up to this scrape, so no scraper sees a
shorter window, and samples are kept at most SAMPLES_PER_WINDOW per window.
A process is one (pid, start time): a pid reused by a new process never
inherits the old one's ticks; a process not in the window's first sample
has no rate yet.
"""

from __future__ import annotations

import errno
import heapq
import os
import threading
import time
from array import array
from collections import deque
from itertools import repeat
from operator import add, lshift

from agent import metrics
from agent.collectors.base import BadFile, NoData, Option, boolean
from agent.collectors.filters import NameFilter, label_value, regex
from agent.cpu import SAMPLES_PER_WINDOW
from agent.metrics import Family
from agent.procfs import layout
from agent.procfs.layout import U64_MAX
from agent.procfs.procs import ProcError

# node_exporter 1.5.0's names and help texts, word for word.
STATE = metrics.gauge("node_processes_state", "Number of processes in each state.", ("state",))
THREADS_STATE = metrics.gauge("node_processes_threads_state", "Number of threads in each state.",
                              ("thread_state",))
PIDS = metrics.gauge("node_processes_pids", "Number of PIDs")
THREADS = metrics.gauge("node_processes_threads", "Allocated threads in system")
MAX_PROCESSES = metrics.gauge("node_processes_max_processes", "Number of max PIDs limit")
MAX_THREADS = metrics.gauge("node_processes_max_threads", "Limit of threads in the system")
TOP_LABELS = ("pid", "comm")
TOP_CPU = metrics.gauge(
    "node_top_process_cpu_percent",
    "CPU time (user and system) of the processes that used the most over the CPU window, percent of one CPU "
    "as top shows it.", TOP_LABELS)
TOP_RSS = metrics.gauge(
    "node_top_process_resident_memory_bytes", "Resident memory of the processes with the most, in bytes.",
    TOP_LABELS)

# The kernel's USER_HZ: stat's utime and stime are in these ticks on every
# architecture.
USER_HZ = 100
PAGE_BYTES = os.sysconf("SC_PAGESIZE")
# Limits, under the procfs root.
PID_MAX = os.path.join("sys", "kernel", "pid_max")
THREADS_MAX = os.path.join("sys", "kernel", "threads-max")
NO_LABELS = ()
MAX_TOP = 1000

# Word positions in a struct agent_proc row, and in struct agent_proc_walk.
_F = layout.Proc._fields
_ROW_WORDS = layout.PROC.size // 8
PID_W, THREADS_W, UTIME_W, STIME_W, START_W, RSS_W, COMM_OFF_W, COMM_LEN_W = (
    _F.index(name) for name in ("pid", "threads", "utime", "stime", "starttime", "rss_pages", "comm_off",
                                "comm_len"))
_HEAD = layout.PROC_WALK_HEAD.size // 8
# The state labels, one per byte: a state is one byte of stat; one that is
# not ASCII becomes U+FFFD, as any label the agent takes from bytes.
_STATE_LABELS = tuple((label_value(bytes([b])),) for b in range(256))


def top_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_TOP:
        raise ValueError(f"expected a whole number from 0 to {MAX_TOP}, got {text!r}")
    return n


OPTIONS = (
    Option("top", top_count, 10, "how many processes node_top_process_cpu_percent and "
           f"node_top_process_resident_memory_bytes show each (0 to {MAX_TOP}; 0: neither)", "N"),
    Option("comm-include", regex, "", "only processes whose comm (the name in /proc/PID/stat) this regular "
           "expression finds are candidates for the top lists", "REGEX"),
    Option("comm-exclude", regex, "", "leave out of the top lists processes whose comm this regular "
           "expression finds", "REGEX"),
    Option("threads", boolean, True, "node_processes_threads_state: reads the stat file of every thread of "
           "each multi-threaded process, as node_exporter does (false to skip those reads)", "BOOL"),
)


def _keys(pids, starts):
    """One int per process from its start time and pid (both below 2**64),
    not a (pid, start) tuple: 2 MiB less at the peak of a 30,000-process
    scrape."""
    return map(add, map(lshift, starts, repeat(64)), pids)


def _read_limit(path: str) -> int | None:
    """A /proc/sys/kernel number; None where the file is missing or not one
    (a container's /proc may hide sys)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
            return None
        raise
    try:
        text = os.read(fd, 64).strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


class CpuHistory:
    """Per-process CPU ticks at past scrapes, kept as the CPU window keeps
    its samples (agent/cpu.py): the newest sample at least a window old is
    the base of this scrape's rates.  A sample is three arrays (pid, start
    time, ticks): 24 bytes a process."""

    def __init__(self, window_seconds):
        self._window_seconds = window_seconds  # a callable: a reload may change it
        self._history: deque[tuple[float, array, array, array]] = deque()
        self._lock = threading.Lock()

    def update(self, now: float, pids: list[int], starts: list[int], ticks: list[int]):
        """(base pids, base starts, base ticks, seconds) for a rate, or None;
        and this sample kept as the window needs."""
        with self._lock:
            window = self._window_seconds()
            history = self._history
            while len(history) >= 2 and now - history[1][0] >= window:
                history.popleft()
            base = None
            if history and now - history[0][0] >= window:
                then, base_pids, base_starts, base_ticks = history[0]
                base = (base_pids, base_starts, base_ticks, now - then)
            if not history or now - history[-1][0] >= window / SAMPLES_PER_WINDOW:
                try:
                    kept = array("Q", ticks)
                except OverflowError:  # utime + stime past 2**64 - 1: only a made-up stat file does that
                    kept = array("Q", [min(t, U64_MAX) for t in ticks])
                history.append((now, array("Q", pids), array("Q", starts), kept))
            return base

    def samples(self) -> int:
        return len(self._history)


class ProcessesCollector:
    source = "processes"

    def __init__(self, cpu_window, options: dict, clock=time.monotonic):
        self._clock = clock
        self.top = options["top"]
        include, exclude = options["comm-include"], options["comm-exclude"]
        self.comm_filter = NameFilter(include, exclude) if include or exclude else None
        self.flags = layout.PROCS_THREADS if options["threads"] else 0
        self.cpu = CpuHistory(lambda: cpu_window.window_seconds)
        self._rows_hint = 0
        # comm bytes -> kept by the filter; dropped when it outgrows the processes.
        self._memo: dict[bytes, bool] = {}

    def collect(self, context) -> list[Family]:
        try:
            procfd = os.open(context.procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise BadFile(context.procfs, os.strerror(exc.errno)) from None
        try:
            now = self._clock()
            try:
                walk, rows, comms = context.backend.walk_procs(procfd, self.flags, self._rows_hint)
            except ProcError as exc:
                raise BadFile(os.path.join(context.procfs, exc.path), layout.ERROR_TEXT[exc.code]) from None
            except OSError as exc:
                raise BadFile(os.path.join(context.procfs, exc.filename), os.strerror(exc.errno)) from None
        finally:
            os.close(procfd)
        if not rows:
            # Every kernel shows at least the reader itself: a procfs root
            # without a process is not a host's /proc (a container's bind
            # of a few files, a fixture tree).
            raise NoData(f"no process in {context.procfs}")
        return self.families(now, walk, rows, comms, context.procfs)

    def families(self, now: float, walk: bytes, rows: bytes, comms: bytes, procfs: str) -> list[Family]:
        totals = memoryview(walk).cast("Q")
        count = totals[0]
        self._rows_hint = count
        words = memoryview(rows).cast("Q")
        out = [Family(STATE, [(_STATE_LABELS[b], n) for b, n in enumerate(totals[_HEAD:_HEAD + 256]) if n])]
        if self.flags:
            out.append(Family(THREADS_STATE, [(_STATE_LABELS[b], n)
                                              for b, n in enumerate(totals[_HEAD + 256:_HEAD + 512]) if n]))
        out.append(Family(PIDS, [(NO_LABELS, count)]))
        # Columns are read through the memoryview where one pass or a few
        # rows need them: a list of 30,000 ints is a MiB more at the peak.
        out.append(Family(THREADS, [(NO_LABELS, sum(words[THREADS_W::_ROW_WORDS]))]))
        for desc, relpath in ((MAX_PROCESSES, PID_MAX), (MAX_THREADS, THREADS_MAX)):
            limit = _read_limit(os.path.join(procfs, relpath))
            if limit is not None:
                out.append(Family(desc, [(NO_LABELS, limit)]))

        pids = words[PID_W::_ROW_WORDS].tolist()
        starts = words[START_W::_ROW_WORDS].tolist()
        ticks = list(map(add, words[UTIME_W::_ROW_WORDS].tolist(), words[STIME_W::_ROW_WORDS].tolist()))
        base = self.cpu.update(now, pids, starts, ticks)
        if self.top == 0:
            return out
        comm_offs = words[COMM_OFF_W::_ROW_WORDS]
        comm_lens = words[COMM_LEN_W::_ROW_WORDS]
        allowed = self._allowed(comms, comm_offs, comm_lens)

        def labels(i: int) -> tuple[str, str]:
            off = comm_offs[i]
            return (str(pids[i]), label_value(comms[off:off + comm_lens[i]]))

        def top(values) -> list[int]:
            """The rows of the `top` largest non-zero values, largest first;
            equal values in the walk's order (the kernel's: by pid)."""
            if allowed is not None:
                values = [v if keep else 0 for v, keep in zip(values, allowed)]
            rows = heapq.nlargest(self.top, range(count), key=values.__getitem__)
            return [i for i in rows if values[i]]

        cpu_samples = []
        if base is not None:
            base_pids, base_starts, base_ticks, seconds = base
            # One key per process: its pid and its start time, so a reused
            # pid is a new process, and one not in the base has no rate.
            get = dict(zip(_keys(base_pids, base_starts), base_ticks)).get
            deltas = [t - old if old is not None and t > old else 0
                      for t, old in zip(ticks, map(get, _keys(pids, starts)))]
            cpu_samples = [(labels(i), 100.0 * (deltas[i] / USER_HZ) / seconds) for i in top(deltas)]
        if cpu_samples:
            out.append(Family(TOP_CPU, cpu_samples))

        rss = words[RSS_W::_ROW_WORDS]
        rss_samples = [(labels(i), rss[i] * PAGE_BYTES) for i in top(rss)]
        if rss_samples:
            out.append(Family(TOP_RSS, rss_samples))
        return out

    def _allowed(self, comms: bytes, offs, lens) -> list[bool] | None:
        """Per row, whether the comm filter keeps the process; None with no filter."""
        if self.comm_filter is None:
            return None
        memo = self._memo
        keep = []
        for off, n in zip(offs, lens):
            comm = comms[off:off + n]
            kept = memo.get(comm)
            if kept is None:
                kept = memo[comm] = self.comm_filter(label_value(comm))
            keep.append(kept)
        if len(memo) > len(offs) + 1024:
            memo.clear()
        return keep
