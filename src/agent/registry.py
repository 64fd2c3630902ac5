"""Runs the collectors for a scrape: reads each source through the chosen
backend, times it, records its success, and adds the agent's own metrics.

One source failing (missing file, unreadable, malformed) never fails the
scrape: its families are left out, agent_source_success{source} is 0, and
one log line says why when it starts failing (and one when it recovers).
Concurrent scrapes share one collection instead of each reading /proc.
"""

from __future__ import annotations

import logging
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
# The time a tree collector is given (Context.deadline).
COLLECT_SECONDS = 5.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class SourceState:
    __slots__ = ("collector", "labels", "path", "loader", "fd", "ok", "error", "duration", "last_success",
                 "no_data")

    def __init__(self, collector, path: str | None, loader: Callable[[int], bytes] | None):
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
                    self._fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
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


def source_state(collector, procfs_root: str, backend) -> SourceState:
    if hasattr(collector, "relpath"):  # a file collector: the registry reads its file
        return SourceState(collector, os.path.join(procfs_root, collector.relpath),
                           backend.make_loader(collector.source))
    return SourceState(collector, None, None)


class Registry:
    def __init__(self, procfs_root: str, backend_name: str, backend, collectors,
                 log: logging.Logger | None = None, sysfs_root: str = "/sys", rootfs_root: str = "/"):
        self.procfs_root = procfs_root
        self.sysfs_root = sysfs_root
        self.rootfs_root = rootfs_root
        self.backend = backend
        self.backend_name = backend_name
        self.log = log or logging.getLogger("agent")
        self.started = time.time()
        self.keep_open = is_proc_mount(procfs_root)
        self._sources = [source_state(c, procfs_root, backend) for c in collectors]
        # Every source is listed at every scrape, failed or not: one tuple
        # of label sets for the life of the registry.
        self._source_labels = tuple(s.labels for s in self._sources)
        self._build_info = Family(BUILD_INFO, [((__version__, backend_name), 1)])
        self._cond = threading.Condition()
        self._collecting = False
        self._generation = 0
        self._result: list[Family] = []
        self._error: BaseException | None = None
        self.last_collection: float | None = None
        self._statm = SelfStatm()
        # The source a collection is reading now, for the log line of a stop
        # that finds it blocked in the kernel.
        self.collecting_source: str | None = None
        self._close_pending = False  # close() gave up waiting: the collection closes

    @property
    def sources(self):
        return list(self._sources)

    def replace_collectors(self, collectors) -> None:
        """Swap collectors (new filters), keeping loaders and state (reload)."""
        by_source = {c.source: c for c in collectors}
        with self._cond:
            for s in self._sources:
                s.collector = by_source.get(s.collector.source, s.collector)

    def collect(self) -> list[Family]:
        """Collect every source; a scrape arriving during a collection
        waits for it and shares its result."""
        with self._cond:
            if self._collecting:
                generation = self._generation
                while self._generation == generation:
                    self._cond.wait()
                if self._error is not None:  # the shared collection failed
                    raise self._error
                return self._result
            self._collecting = True
        result: list[Family] = []
        error: BaseException | None = None
        try:
            result = self._collect()
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._cond:
                self._result, self._error = result, error
                self._generation += 1
                self._collecting = False
                self.collecting_source = None
                if self._close_pending:
                    self._close_files()
                self._cond.notify_all()
        return result

    def _collect(self) -> list[Family]:
        out: list[Family] = []
        durations, successes = [], []
        # Nanoseconds, as the clock counts them: a duration is then exact
        # to the nanosecond (a difference of two float seconds carries
        # binary noise in its last digits) and its shortest repr is a few
        # digits, not 17, which the renderer formats ~3x faster.
        clock = time.perf_counter_ns
        now = time.time()  # the collection's start: last_success of each source it reads
        for s in self._sources:
            self.collecting_source = s.collector.source
            start = clock()
            try:
                families = self._collect_source(s)
            except NoData as exc:
                # Not a failure: the host has no such source (success 1,
                # /health says so, the agent is not degraded).
                if s.no_data is None:
                    self.log.debug("source %s: no data on this host: %s", s.collector.source, exc)
                s.ok, s.error, s.no_data = True, None, str(exc) or "no data"
                s.last_success = now
            except Exception as exc:  # noqa: BLE001 -- one source fails, never the scrape
                families = None
                where = s.path or s.collector.source
                if isinstance(exc, (OSError, ParseError)):
                    error = f"{where}: {exc}"
                else:  # a surprise (a collector's bug): name it
                    error = f"{where}: {type(exc).__name__}: {exc}"
                if s.ok is not False or s.error != error:
                    self.log.error("source %s failed: %s", s.collector.source, error)
                s.ok, s.error = False, error
            else:
                if s.ok is False:
                    self.log.info("source %s recovered", s.collector.source)
                s.ok, s.error, s.no_data = True, None, None
                s.last_success = now
                out += families
            s.duration = (clock() - start) / 1e9
            durations.append(s.duration)
            successes.append(1 if s.ok else 0)
        out.append(Series(SOURCE_DURATION, self._source_labels, durations))
        out.append(Series(SOURCE_SUCCESS, self._source_labels, successes))
        out.append(self._build_info)
        out.extend(self._process_families())
        self.last_collection = time.time()
        return out

    def _collect_source(self, s: SourceState) -> list[Family]:
        if s.loader is None:  # a tree collector reads for itself
            return s.collector.collect(Context(self.procfs_root, self.sysfs_root, self.rootfs_root,
                                               self.backend, time.monotonic() + COLLECT_SECONDS))
        # s.fd, the kept descriptor, changes only here and in close(): a
        # registry being closed (keep_open False) reads with a descriptor of
        # its own and leaves s.fd for close() to release.
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
        """Close the files kept open.  A collection in progress (a scrape
        racing a reload that replaced this registry) is waited for, up to
        `timeout` seconds; any collection after this one opens and closes
        its files itself, so no descriptor is closed under a reader or left
        behind.  False when the collection in progress has not ended in
        time (blocked in the kernel): it closes the files when it ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            # Under the lock that starts collections: one started after this
            # sees keep_open False and leaves the kept descriptors alone; the
            # one in progress, if any, is waited for (only that one: scrapes
            # may keep coming).
            self.keep_open = False
            if self._collecting:
                generation = self._generation
                while self._generation == generation:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        self._close_pending = True
                        return False
                    self._cond.wait(remaining)
            self._close_files()
        return True

    def _close_files(self) -> None:
        # Under self._cond, with no collection in progress.
        for s in self._sources:
            if s.fd is not None:
                os.close(s.fd)
                s.fd = None
        self._statm.close()
        self._close_pending = False

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
