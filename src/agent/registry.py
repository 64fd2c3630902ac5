"""Runs the collectors for a scrape: reads each source through the chosen
backend, times it, records its success, and adds the agent's own metrics.

One source failing (missing file, unreadable, malformed) never fails the
scrape: its families are left out, agent_source_success{source} is 0, and
one log line says why when it starts failing (and one when it recovers).
Concurrent scrapes share one collection instead of each reading /proc.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time

from agent import __version__, metrics
from agent.collectors.base import Context, NoData
from agent.metrics import Family, Series
from agent.procfs.layout import ParseError
from agent.procfs.reader import is_proc_mount

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

SOURCE_DURATION = metrics.gauge(
    "agent_source_duration_seconds", "Time the last collection of this /proc source took.", ("source",))
SOURCE_SUCCESS = metrics.gauge(
    "agent_source_success", "1 if the last collection of this /proc source succeeded, else 0.", ("source",))
BUILD_INFO = metrics.gauge(
    "agent_build_info", "Always 1; the labels say the agent's version and parser backend.", ("version", "backend"))
PROCESS_CPU = metrics.counter("agent_process_cpu_seconds", "User and system CPU time the agent has used.")
PROCESS_RSS = metrics.gauge("agent_process_resident_memory_bytes", "The agent's resident memory.")
PROCESS_FDS = metrics.gauge("agent_process_open_fds", "File descriptors the agent has open.")
NO_LABELS = ()
# A source's time to return, unless --collector.timeout or its own timeout
# key says otherwise.
DEFAULT_TIMEOUT = 5.0
# Worker threads that collect, apart from those blocked in overdue sources.
WORKERS = 4
# A second worker joins a collection when a source has run this long with
# others waiting (a slow hwmon chip, statvfs of a network mount); below it,
# one worker runs the sources back to back.
JOIN_AFTER = 0.010
# The part of its remaining time a tree collector is told it has
# (Context.deadline); the rest is for building its families.
COLLECTOR_SHARE = 0.9
# A scrape with a time limit that finds a collection in progress ends it
# this long before its limit, and waits this much past it for the result.
CUT_MARGIN = 0.05
CUT_GRACE = 0.5
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class SourceState:
    __slots__ = ("collector", "labels", "path", "loader", "fd", "ok", "error", "duration", "last_success",
                 "no_data", "timeout", "running", "started", "deadline", "done", "outcome", "close_fd", "inline",
                 "submitted")

    def __init__(self, collector, path: str | None, loader: Callable[[int], bytes] | None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.collector = collector
        # The label set of this source's samples, one tuple for every
        # scrape: the renderer's plan then matches it by identity.
        self.labels = (collector.source,)
        self.path = path
        self.loader = loader
        self.fd: int | None = None  # kept open between scrapes on a proc mount
        self.ok: bool | None = None  # None: not collected yet
        self.error: str | None = None
        self.duration = 0.0
        self.last_success: float | None = None
        self.no_data: str | None = None  # why, while the host has no such source
        self.timeout = timeout
        # The task in a worker: running from submission until it returns,
        # however late; a running source is never submitted again.
        self.running = False
        self.started: float | None = None  # monotonic, when a worker took it
        self.deadline = 0.0
        self.done = False
        self.submitted = False  # by the collection in progress (not one still running from before)
        self.outcome: tuple = ()  # (families, None, ns) or (None, exception, ns)
        self.close_fd = False  # the registry closed while this task ran: it closes its fd
        # Read in the collecting thread: the kernel's own text, on a proc
        # mount (set by the registry).
        self.inline = False


class SelfStatm:
    """The agent's own resident memory, from the real /proc whatever
    --procfs says; the file stays open (one pread a scrape) and is reopened
    in a forked child, where the inherited descriptor names the parent."""

    def __init__(self):
        self._fd: int | None = None
        self._pid = 0
        self.keep = True  # False once closed: read without keeping the file
        # Scrapes may still collect through a registry that a reload is
        # closing: the descriptor is never closed under a reader's pread
        # (EBADF, or another file's bytes once the number is reused).
        self._lock = threading.Lock()

    def rss_bytes(self) -> int:
        with self._lock:
            if self.keep:
                pid = os.getpid()
                if self._fd is None or self._pid != pid:
                    if self._fd is not None:
                        os.close(self._fd)
                    # /proc/self, not /proc/PID: in a PID namespace of its own
                    # over the host's /proc, PID names another process or none.
                    self._fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
                    self._pid = pid
                return int(os.pread(self._fd, 256, 0).split()[1]) * PAGE_SIZE
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE

    def close(self) -> None:
        with self._lock:
            self.keep = False
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def count_self_fds() -> int:
    # Since Linux 6.2, stat() of /proc/PID/fd reports the number of open
    # descriptors as its size: one syscall instead of reading the directory.
    # Older kernels report 0 (and a process always has some open).
    size = os.stat("/proc/self/fd").st_size
    if size > 0:
        return size
    # listdir holds one descriptor on the directory while it lists it.
    return len(os.listdir("/proc/self/fd")) - 1


def source_state(collector, procfs_root: str, backend, timeout: float) -> SourceState:
    if hasattr(collector, "relpath"):  # a file collector: the registry reads its file
        state = SourceState(collector, os.path.join(procfs_root, collector.relpath),
                            backend.make_loader(collector.source), timeout)
        under = state.path
    else:
        state = SourceState(collector, None, None, timeout)
        under = getattr(collector, "procfs_only", None)  # the part of /proc it reads
        under = os.path.join(procfs_root, under) if under else None
    # The kernel's own text never blocks; but where a file of a proc mount
    # is itself a mount of another kind (lxcfs binds FUSE files over
    # /proc/meminfo, /proc/stat ... in a container), it goes to the workers
    # under its deadline like everything else.
    state.inline = under is not None and is_proc_mount(under)
    return state


class Registry:
    """The sources of one configuration, collected on a small pool of
    worker threads, each under its deadline.

    A collection hands its sources to the workers as one queue: in the
    common case one worker runs them all, one after the other (two thread
    hand-offs a collection, not two a source), and a second worker joins
    only while a source has run for JOIN_AFTER with others waiting.  The
    scraping thread waits for each source until its deadline (the source's
    timeout, within the scrape's own); a source past it is left out of that
    collection (success 0, one log line) and is not submitted again until
    its task returns, so a read blocked in the kernel (a hung FUSE or NFS
    mount, a FIFO) holds one thread, never more, however long it lasts.
    """

    def __init__(self, procfs_root: str, backend_name: str, backend, collectors,
                 log: logging.Logger | None = None, sysfs_root: str = "/sys", rootfs_root: str = "/",
                 timeouts: dict[str, float] | None = None, workers: int = WORKERS):
        self.procfs_root = procfs_root
        self.sysfs_root = sysfs_root
        self.rootfs_root = rootfs_root
        self.backend = backend
        self.backend_name = backend_name
        self.log = log or logging.getLogger("agent")
        self.started = time.time()
        self.keep_open = is_proc_mount(procfs_root)
        timeouts = timeouts or {}
        self._sources = [source_state(c, procfs_root, backend, timeouts.get(c.source, DEFAULT_TIMEOUT))
                         for c in collectors]
        # Every source is listed at every scrape, failed or not: one tuple
        # of label sets for the life of the registry.
        self._source_labels = tuple(s.labels for s in self._sources)
        self._build_info = Family(BUILD_INFO, [((__version__, backend_name), 1)])
        # _cond: collections (one at a time, shared by concurrent scrapes);
        # _work: the workers' queue and every SourceState's task fields.
        # Plain locks, taken directly where nobody waits: a Condition's
        # `with` is a Python-level call, ten of them a collection.
        self._collection_lock = threading.Lock()
        self._cond = threading.Condition(self._collection_lock)
        self._waiting = 0  # scrapes waiting on _cond for a collection to end
        self._collecting = False
        self._collecting_only: frozenset | None = None
        self._generation = 0
        self._result: list[Family] = []
        self._result_only: frozenset | None = None
        self._error: BaseException | None = None
        self.last_collection: float | None = None
        self._statm = SelfStatm()
        # One lock, two conditions: workers wait for tasks on _work, the
        # collecting thread for results on _done.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: collections.deque[SourceState] = collections.deque()
        self._workers = 0
        self._idle = 0
        self._worker_limit = max(1, workers)
        self._closed = False
        self._closing = False  # close() is waiting for running sources
        self._pid = os.getpid()
        self._cut_at = math.inf  # the collection in progress ends by then (a scrape's limit)

    @property
    def sources(self):
        return list(self._sources)

    @property
    def collecting_source(self) -> str | None:
        """The sources still running in a worker (blocked in the kernel, as
        a stop finds them), for its log line."""
        with self._lock:
            names = [s.collector.source for s in self._sources if s.running]
        return ", ".join(names) or None

    def replace_collectors(self, collectors, timeouts: dict[str, float] | None = None) -> None:
        """Swap collectors (new filters), keeping loaders and state (reload)."""
        by_source = {c.source: c for c in collectors}
        with self._collection_lock:
            for s in self._sources:
                s.collector = by_source.get(s.collector.source, s.collector)
                if timeouts is not None:
                    s.timeout = timeouts.get(s.collector.source, DEFAULT_TIMEOUT)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.collector.source for s in self._sources)

    def collect(self, timeout: float | None = None, only: frozenset | None = None) -> list[Family]:
        """Collect every source, or those named in `only` (a scrape's
        collect[] and exclude[]), within `timeout` seconds when given (a
        scrape's own time limit).  One collection runs at a time: a scrape
        arriving during one of the same sources shares its result, one of
        other sources waits for it to end; either waits only as long as its
        own limit allows (then it gets the previous result of its sources,
        or nothing)."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        with self._collection_lock:
            while self._collecting:
                sharing = self._collecting_only == only
                generation = self._generation
                if deadline is not None and sharing:
                    # The collection this scrape shares ends by its limit:
                    # what has returned by then is served, the rest is late.
                    # (Another selection's collection is left alone: its
                    # result is not this scrape's.)
                    with self._lock:
                        if deadline - CUT_MARGIN < self._cut_at:
                            self._cut_at = deadline - CUT_MARGIN
                            self._done.notify_all()
                while self._generation == generation:
                    # However long: a collection's sources all have deadlines.
                    remaining = None if deadline is None else deadline + CUT_GRACE - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return self._result if self._result_only == only else []
                    self._waiting += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._waiting -= 1
                # Whatever collection ended last, if it was of these sources
                # (not necessarily the one waited for: another may have run
                # in between).
                if self._result_only == only:
                    if self._error is not None:  # the shared collection failed
                        raise self._error
                    return self._result
            self._collecting, self._collecting_only = True, only
            with self._lock:  # before any waiter can bring it forward
                self._cut_at = deadline if deadline is not None else math.inf
        result: list[Family] = []
        error: BaseException | None = None
        try:
            result = self._collect(deadline, only)
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._collection_lock:
                self._result, self._result_only, self._error = result, only, error
                self._generation += 1
                self._collecting = False
                if self._waiting:
                    self._cond.notify_all()
        return result

    def _collect(self, deadline: float | None, only: frozenset | None = None) -> list[Family]:
        now = time.time()  # the collection's start: last_success of each source it reads
        start = time.monotonic()
        sources = self._sources if only is None else [s for s in self._sources if s.collector.source in only]
        batch, inline = [], []
        with self._lock:
            for s in sources:
                if s.running:  # still in a worker since an earlier collection
                    s.submitted = False
                    continue
                s.deadline = start + s.timeout if deadline is None else min(start + s.timeout, deadline)
                # Running inline too: close() leaves its descriptor alone.
                s.running, s.done, s.started, s.submitted = True, False, None, True
                (inline if s.inline and self.keep_open else batch).append(s)
            if batch or self._queue:
                self._queue.extend(batch)
                # Also for tasks queued earlier that no worker has taken yet.
                self._wake_worker()
        # Files that are the kernel's own text on a proc mount (stat,
        # meminfo, loadavg ...: no FIFO, FUSE daemon or network behind them,
        # checked file by file) are read here, meanwhile, and a collection of
        # them alone costs no thread hand-off (15 % of a scrape's
        # instructions on this machine's /proc, docs/BENCHMARKS.md).
        # Anything else (a copy, lxcfs's FUSE files, sysfs, statvfs) runs on
        # the workers under its deadline.
        clock = time.perf_counter_ns
        try:
            for s in inline:
                begin = clock()
                try:
                    s.outcome = (self._collect_source(s), None, clock() - begin)
                except Exception as exc:  # noqa: BLE001 -- reported below, as a worker's would be
                    s.outcome = (None, exc, clock() - begin)
        finally:
            # One hand-back for them all: they ran in this thread, and no
            # worker or collection waits on one of them meanwhile.
            with self._lock:
                self._tasks_returned(inline)
        if batch:
            self._wait(batch)
            with self._lock:  # what the workers have handed back, as of now
                finished = [s.outcome if s.submitted and s.done else None for s in sources]
        else:
            finished = [s.outcome if s.submitted else None for s in sources]
        out: list[Family] = []
        durations, successes = [], []
        for s, outcome in zip(sources, finished):
            if outcome is not None:
                families = self._record(s, outcome, now)
                if families:
                    out += families
            else:
                self._record_overdue(s, start, s in batch)
            durations.append(s.duration)
            successes.append(1 if s.ok else 0)
        labels = self._source_labels if only is None else tuple(s.labels for s in sources)
        out.append(Series(SOURCE_DURATION, labels, durations))
        out.append(Series(SOURCE_SUCCESS, labels, successes))
        out.append(self._build_info)
        out.extend(self._process_families())
        self.last_collection = time.time()
        return out

    def _wait(self, batch: list[SourceState]) -> None:
        """Until every source of the batch has returned or passed its deadline."""
        pending = list(batch)
        with self._lock:
            while True:
                pending = [s for s in pending if not s.done]
                now = time.monotonic()
                cut = self._cut_at  # a waiting scrape's limit may bring it forward
                pending = [s for s in pending if min(s.deadline, cut) > now]
                if not pending:
                    return
                if self._queue and self._idle == 0 and any(
                        s.started is not None and now - s.started >= JOIN_AFTER for s in pending):
                    self._wake_worker()
                wait = min(min(s.deadline for s in pending), cut) - now
                if self._queue:
                    wait = min(wait, JOIN_AFTER)
                self._done.wait(wait)

    def _wake_worker(self) -> None:
        # Under the lock.  An idle worker if there is one; else a new
        # thread while under the limit, counting those blocked in overdue
        # tasks apart (at most one per source: a running source is never
        # submitted again).
        if not self._queue:
            return
        if self._pid != os.getpid():
            # Forked (--daemon) after a collection: the workers stayed in
            # the parent.
            self._pid, self._workers, self._idle = os.getpid(), 0, 0
        if self._idle:
            self._work.notify()
            return
        overdue = sum(1 for s in self._sources if s.running and s.started is not None
                      and time.monotonic() > s.deadline)
        if self._workers < self._worker_limit + overdue:
            threading.Thread(target=self._worker, name="collector", daemon=True).start()
            self._workers += 1  # after start(): a thread that could not start is not counted

    def _worker(self) -> None:
        clock = time.perf_counter_ns
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._work.wait()
                    self._idle -= 1
                if not self._queue:  # closed
                    self._workers -= 1
                    return
                s = self._queue.popleft()
                s.started = time.monotonic()
            begin = clock()
            try:
                outcome = (self._collect_source(s), None, clock() - begin)
            except BaseException as exc:  # noqa: BLE001 -- reported by the collecting thread
                outcome = (None, exc, clock() - begin)
            with self._lock:
                s.outcome = outcome
                self._tasks_returned((s,))
                if not self._queue or time.monotonic() >= s.deadline or self._closed:
                    # The batch is through (or this one was awaited past its
                    # deadline): one wake-up of the collecting thread, not one
                    # per source.
                    self._done.notify_all()

    def _tasks_returned(self, sources) -> None:
        # Under the lock: the sources may run again, and a close() that came
        # meanwhile left their kept descriptors to them.
        for s in sources:
            s.running, s.done = False, True
            if s.close_fd and s.fd is not None:
                os.close(s.fd)
                s.fd = None
        if self._closing:
            self._done.notify_all()

    def _record(self, s: SourceState, outcome: tuple, now: float) -> list[Family] | None:
        families, exc, ns = outcome
        # Nanoseconds, as the clock counts them: a duration is then exact
        # to the nanosecond (a difference of two float seconds carries
        # binary noise in its last digits) and its shortest repr is a few
        # digits, not 17, which the renderer formats ~3x faster.
        s.duration = ns / 1e9
        if exc is None:
            if s.ok is False:
                self.log.info("source %s recovered", s.collector.source)
            s.ok, s.error, s.no_data = True, None, None
            s.last_success = now
            return families
        if isinstance(exc, NoData):
            # Not a failure: the host has no such source (success 1,
            # /health says so, the agent is not degraded).
            if s.no_data is None:
                self.log.debug("source %s: no data on this host: %s", s.collector.source, exc)
            s.ok, s.error, s.no_data = True, None, str(exc) or "no data"
            s.last_success = now
            return None
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not a source's failure
            raise exc
        where = s.path or s.collector.source
        if isinstance(exc, (OSError, ParseError)):
            error = f"{where}: {exc}"
        else:  # a surprise (a collector's bug): name it
            error = f"{where}: {type(exc).__name__}: {exc}"
        self._fail(s, error)
        return None

    def _record_overdue(self, s: SourceState, start: float, awaited: bool) -> None:
        """A source that did not return in time: awaited in this collection
        until its deadline, or still running since an earlier one (its
        error stays as it was first said, and is logged once)."""
        with self._lock:
            began = s.started
        s.duration = 0.0 if began is None else max(0.0, time.monotonic() - max(began, start))
        if awaited or s.ok is not False:
            waited = min(s.deadline, self._cut_at) - start
            self._fail(s, f"did not return within {round(waited, 3):g} s; not started again until it does")

    def _fail(self, s: SourceState, error: str) -> None:
        if s.ok is not False or s.error != error:
            self.log.error("source %s failed: %s", s.collector.source, error)
        s.ok, s.error = False, error

    def _collect_source(self, s: SourceState) -> list[Family]:
        if s.loader is None:  # a tree collector reads for itself
            # The collector's own deadline comes a little before the one the
            # collecting thread waits for: one that gives up on a hung mount
            # at its deadline still has time to hand back what it has.
            now = time.monotonic()
            return s.collector.collect(Context(self.procfs_root, self.sysfs_root, self.rootfs_root, self.backend,
                                               now + max(0.0, s.deadline - now) * COLLECTOR_SHARE))
        # s.fd, the kept descriptor, is used by this source's one task at a
        # time; close() leaves it to a running task (close_fd).  A registry
        # being closed (keep_open False) reads with a descriptor of its own.
        kept = s.fd if self.keep_open else None
        fd = kept
        if fd is None:
            fd = os.open(s.path, os.O_RDONLY | os.O_CLOEXEC)
            if self.keep_open and s.fd is None:
                s.fd = kept = fd
        try:
            data = s.loader(fd)
        except OSError:
            if kept is not None:  # a kept file that failed to read is reopened next time
                s.fd = None
                kept = None
            raise
        finally:
            if kept is None:
                os.close(fd)
        return s.collector.families(data)

    def close(self, timeout: float | None = None) -> bool:
        """Close the files kept open and let the workers go, waiting up to
        `timeout` seconds for a collection in progress.  A source still
        running (blocked in the kernel) closes its own file when it
        returns, if ever.  False when one is still running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._collection_lock:
            self.keep_open = False
            if self._collecting:
                generation = self._generation
                while self._generation == generation:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
        with self._lock:
            self._closing = True
            # Sources still running get what is left of the time to return.
            while any(s.running for s in self._sources):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._done.wait(remaining)
            # Workers drain what is queued (scrapes racing a reload may still
            # collect through this registry), then leave.
            self._closed = True
            for s in self._sources:
                if s.running:
                    s.close_fd = True
                elif s.fd is not None:
                    os.close(s.fd)
                    s.fd = None
            self._work.notify_all()
            running = any(s.running for s in self._sources)
        self._statm.close()
        return not running

    def _process_families(self) -> list[Family]:
        times = os.times()
        return [
            Family(PROCESS_CPU, [(NO_LABELS, times.user + times.system)]),
            Family(PROCESS_RSS, [(NO_LABELS, self._statm.rss_bytes())]),
            Family(PROCESS_FDS, [(NO_LABELS, count_self_fds())]),
        ]

    def health(self) -> dict:
        sources = {
            s.collector.source: {
                "ok": s.ok,
                "error": s.error,
                "duration_seconds": round(s.duration, 6),
                "last_success": s.last_success,
                **({"no_data": s.no_data} if s.no_data is not None else {}),
                **({"stuck": True} if s.ok is False and s.running else {}),
            }
            for s in self._sources
        }
        all_ok = all(s.ok for s in self._sources)
        return {
            "status": "ok" if all_ok else "degraded",
            "version": __version__,
            "backend": self.backend_name,
            "uptime_seconds": round(time.time() - self.started, 3),
            "last_collection": self.last_collection,
            "sources": sources,
        }
