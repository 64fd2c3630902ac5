"""Mounted file systems: size, free space and inodes from statvfs of each
mount in the mount table, as node_exporter's filesystem collector.

The table is `<procfs>/1/mountinfo` (the host's mounts when the agent runs
in a container with the host's /proc), else `<procfs>/self/mountinfo`
(hidepid hides PID 1).  Each mount point is statvfs'ed under the rootfs
(`/host/root` in a container).

A statvfs can block for as long as a file system's server wants: a dead NFS
server, a FUSE daemon that does not answer (the caller then waits in the
kernel, unkillable, until the daemon answers or dies).  So the calls run in
a worker thread, one after another; the collector waits for each at most
`mount-timeout` seconds and never past the scrape's deadline.  A call that
has not returned by then is left to its thread, its path goes into STUCK
and is reported with device_error 1, without a call, until the thread's
call returns and takes it out.  So at most one thread is ever blocked per
stuck path, however long it stays stuck and however many scrapes come.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

from agent import metrics
from agent.collectors.base import Context, NoData, Option
from agent.metrics import Series
from agent.procfs.mountinfo import parse_mountinfo
from agent.procfs.reader import open_source, read_fd

# node_exporter 1.5.0's upstream defaults (Debian's build excludes all of
# /run, /mnt and /media instead; docs/NODE_EXPORTER_COMPAT.md).
DEFAULT_MOUNT_POINTS_EXCLUDE = \
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
DEFAULT_FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs"
    r"|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$")
DEFAULT_MOUNT_TIMEOUT = 5.0  # node_exporter's --collector.filesystem.mount-timeout

LABELS = ("device", "mountpoint", "fstype")
SIZE = metrics.gauge("node_filesystem_size_bytes", "Filesystem size in bytes.", LABELS)
FREE = metrics.gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.", LABELS)
AVAIL = metrics.gauge("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.",
                      LABELS)
FILES = metrics.gauge("node_filesystem_files", "Filesystem total file nodes.", LABELS)
FILES_FREE = metrics.gauge("node_filesystem_files_free", "Filesystem total free file nodes.", LABELS)
READONLY = metrics.gauge("node_filesystem_readonly", "Filesystem read-only status.", LABELS)
DEVICE_ERROR = metrics.gauge("node_filesystem_device_error",
                             "Whether an error occurred while getting statistics for the given device.", LABELS)

log = logging.getLogger("agent.filesystem")

# Paths whose statvfs has not returned yet.  Process-wide, not per
# collector: the blocked call belongs to the process, and a collector
# rebuilt by a reload must not start a second call on the same path.
STUCK: set[bytes] = set()
# A call the collector gave up on (the mount is reported as stuck).
GAVE_UP = object()


def _regex(text: str):
    """An option's pattern, compiled, or None for the empty text (none)."""
    try:
        return re.compile(text) if text else None
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(f"expected a number of seconds above 0, got {text!r}")
    return value


OPTIONS = (
    Option("mount-points-exclude", _regex, re.compile(DEFAULT_MOUNT_POINTS_EXCLUDE),
           "mount points to leave out (regex, searched)", "REGEX"),
    Option("mount-points-include", _regex, None, "only these mount points (regex, searched; empty: all)", "REGEX"),
    Option("fs-types-exclude", _regex, re.compile(DEFAULT_FS_TYPES_EXCLUDE),
           "file system types to leave out (regex, searched)", "REGEX"),
    Option("fs-types-include", _regex, None, "only these file system types (regex, searched; empty: all)",
           "REGEX"),
    Option("mount-timeout", _seconds, DEFAULT_MOUNT_TIMEOUT,
           "seconds to wait for a mount's statvfs before reporting it with device_error 1", "SECONDS"),
)


def _keep(pattern_in, pattern_out, text: str) -> bool:
    if pattern_in is not None and pattern_in.search(text) is None:
        return False
    return pattern_out is None or pattern_out.search(text) is None


def _label(raw: bytes) -> str:
    # One byte that is not UTF-8 makes Prometheus reject the whole scrape.
    return raw.decode("utf-8", "replace")


class _Batch:
    """One scrape's statvfs calls, made one after another by a worker
    thread.  `current` is the call in progress (always set while calls
    remain: a worker stores a result and claims the next path in one
    step), `generation` the worker allowed to store results: a worker whose
    call the collector gave up on finds it changed and leaves."""

    def __init__(self, paths: list[bytes]):
        self.paths = paths
        self.results: list = [None] * len(paths)  # None: no call made before the deadline
        self.next = 0
        self.current: tuple[int, float] | None = None  # (index, time.monotonic() of the call)
        self.generation = 0
        self.cond = threading.Condition()

    def claim(self) -> int | None:
        """Under `cond`: the index of the next path to call, or None when
        none is left.  Paths already stuck are given up on the way."""
        while self.next < len(self.paths):
            index = self.next
            self.next += 1
            if self.paths[index] in STUCK:  # an earlier call on it is still blocked
                self.results[index] = GAVE_UP
                continue
            self.current = (index, time.monotonic())
            return index
        self.current = None
        self.cond.notify_all()
        return None

    def work(self, generation: int, index: int | None) -> None:
        while index is not None:
            path = self.paths[index]
            started = time.monotonic()
            try:
                result = os.statvfs(path)
            except OSError as exc:
                result = exc
            with self.cond:
                if generation != self.generation:  # given up on: the path may be asked again
                    STUCK.discard(path)
                    log.info("statvfs of %s returned after %.1f s", os.fsdecode(path), time.monotonic() - started)
                    return
                self.results[index] = result
                index = self.claim()


def statvfs_all(paths: list[bytes], timeout: float, deadline: float) -> list:
    """statvfs of each path (distinct paths): an os.statvfs_result, the
    OSError, GAVE_UP (stuck: this call or an earlier one has not returned),
    or None (not called before `deadline`)."""
    batch = _Batch(paths)
    if time.monotonic() >= deadline:  # none would have a moment: none is called, none marked stuck
        return batch.results
    with batch.cond:
        index = batch.claim()
        if index is None:
            return batch.results
        _start(batch, index)
        while batch.current is not None:
            index, started = batch.current
            now = time.monotonic()
            give_up = min(started + timeout, deadline)
            if now < give_up:
                batch.cond.wait(give_up - now)
                continue
            path = paths[index]
            STUCK.add(path)
            batch.results[index] = GAVE_UP
            batch.generation += 1
            log.warning("statvfs of %s has not returned after %.1f s: reported with device_error 1, "
                        "not called again until it returns", os.fsdecode(path), now - started)
            if now >= deadline:
                batch.current = None
                break
            index = batch.claim()
            if index is not None:
                _start(batch, index)
    return batch.results


class _Worker:
    """A thread that makes batches' statvfs calls.  One waits between
    scrapes for the next batch: a thread started per scrape cost 0.095 ms
    of CPU a scrape on this machine's few mounts (docs/BENCHMARKS.md).  A
    worker given up on comes back when its call returns, and leaves if
    another is already waiting, so the threads are the one waiting, the
    one working and one per stuck path."""

    def __init__(self):
        self.pid = os.getpid()
        self.cond = threading.Condition(threading.Lock())
        self.job: tuple | None = None
        threading.Thread(target=self._run, name="agent-statvfs",
                         daemon=True).start()  # a thread blocked in the kernel must not hold up the exit

    def give(self, batch: _Batch, index: int) -> None:
        with self.cond:
            self.job = (batch, batch.generation, index)
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while self.job is None:
                    self.cond.wait()
                batch, generation, index = self.job
                self.job = None
            batch.work(generation, index)
            with _IDLE_LOCK:
                if _idle:
                    return
                _idle.append(self)


# The worker waiting for a batch (at most one), process-wide like STUCK.
_IDLE_LOCK = threading.Lock()
_idle: list[_Worker] = []


def _start(batch: _Batch, index: int) -> None:
    with _IDLE_LOCK:
        worker = _idle.pop() if _idle else None
    if worker is None or worker.pid != os.getpid():  # a fork (--daemon) leaves the parent's threads behind
        worker = _Worker()
    worker.give(batch, index)


class FilesystemCollector:
    source = "filesystem"

    def __init__(self, options: dict):
        self.mount_points_exclude = options["mount-points-exclude"]
        self.mount_points_include = options["mount-points-include"]
        self.fs_types_exclude = options["fs-types-exclude"]
        self.fs_types_include = options["fs-types-include"]
        self.timeout = options["mount-timeout"]
        # The table rarely changes between scrapes: its rows are kept, and
        # parsed and filtered again only when its bytes differ.
        self._last_table: tuple[bytes, str] | None = None
        self._last_rows: tuple[list, list[bytes]] = ([], [])
        self._all_labels: tuple = ()

    def rows(self, table: bytes, rootfs: str) -> list[tuple[tuple[str, str, str], bytes, bool]]:
        """(labels, the path to statvfs, read-only) of each mount the
        filters keep, the first of each label set."""
        prefix = os.fsencode(rootfs).rstrip(b"/")  # b"" for "/"
        rows = []
        seen = set()
        for mount in parse_mountinfo(table):
            mount_point = mount.mount_point
            # A mount table that shows the host's mounts under the rootfs
            # (node_exporter does the same: its labels are the host's paths).
            if prefix and (mount_point == prefix or mount_point.startswith(prefix + b"/")):
                mount_point = mount_point[len(prefix):] or b"/"
            labels = (_label(mount.source), _label(mount_point), mount.fstype)
            if labels in seen:  # a mount stacked on an identical one, or a bind over a bind
                continue
            if not (_keep(self.mount_points_include, self.mount_points_exclude, labels[1]) and
                    _keep(self.fs_types_include, self.fs_types_exclude, mount.fstype)):
                continue
            seen.add(labels)
            # /proc/mounts says `ro` when the mount or its superblock is
            # read-only: node_exporter 1.5.0 reads that file.
            readonly = "ro" in mount.mount_options.split(",") or "ro" in mount.super_options.split(",")
            rows.append((labels, prefix + b"/" + mount_point.lstrip(b"/"), readonly))
        return rows

    def collect(self, context: Context) -> list[Series]:
        table = read_mount_table(context.procfs)
        if (table, context.rootfs) != self._last_table:
            rows = self.rows(table, context.rootfs)
            paths = list(dict.fromkeys(path for _, path, _ in rows))  # over-mounts: one call per path
            self._last_rows = rows, paths
            self._all_labels = tuple(labels for labels, _, _ in rows)
            self._last_table = (table, context.rootfs)
        rows, paths = self._last_rows
        stats = dict(zip(paths, statvfs_all(paths, self.timeout, context.deadline)))
        late = sum(1 for st in stats.values() if st is None)
        if late:
            log.warning("%d of %d mounts not statvfs'ed before the scrape's deadline: reported with "
                        "device_error 1", late, len(paths))
        ok, size, free, avail, files, files_free, readonly, device_error = [], [], [], [], [], [], [], []
        for labels, path, ro in rows:
            st = stats[path]
            if not isinstance(st, os.statvfs_result):
                device_error.append(1)
                continue
            bsize = float(st.f_bsize)  # as node_exporter: float64(blocks) * float64(bsize)
            ok.append(labels)
            size.append(float(st.f_blocks) * bsize)
            free.append(float(st.f_bfree) * bsize)
            avail.append(float(st.f_bavail) * bsize)
            files.append(st.f_files)
            files_free.append(st.f_ffree)
            readonly.append(1 if ro else 0)
            device_error.append(0)
        # Series over the same label tuple, scrape after scrape, while the
        # table and the mounts' health do not change: the renderer keeps
        # each family's formatted lines and fills in only the values (a
        # Family of three-label samples cost 0.9 us a sample to render,
        # 7 of the dense host's 49 ms a scrape; docs/BENCHMARKS.md).
        all_labels = self._all_labels
        ok_labels = all_labels if len(ok) == len(all_labels) else tuple(ok)
        return [Series(SIZE, ok_labels, size), Series(FREE, ok_labels, free), Series(AVAIL, ok_labels, avail),
                Series(FILES, ok_labels, files), Series(FILES_FREE, ok_labels, files_free),
                Series(READONLY, ok_labels, readonly), Series(DEVICE_ERROR, all_labels, device_error)]


def read_mount_table(procfs: str) -> bytes:
    """PID 1's mountinfo (the host's mounts, seen from a container given the
    host's /proc), else our own (hidepid hides PID 1 from other users)."""
    for relpath in ("1/mountinfo", "self/mountinfo"):
        try:
            fd = open_source(procfs, relpath)
        except (FileNotFoundError, PermissionError):
            continue
        try:
            return read_fd(fd)
        finally:
            os.close(fd)
    raise NoData(f"no 1/mountinfo or self/mountinfo under {procfs}")
