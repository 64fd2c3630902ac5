"""Containers, from the cgroup v2 hierarchy, under cAdvisor's metric names.

One backend call walks the hierarchy and reads each container cgroup's
files (csrc/walk_cgroups.c, or its Python twin agent.procfs.cgroups); the
layouts it recognises, with their sources, are in
tests/fixtures/cgroups/README.md.  Names, types, help texts, units and
label names are cAdvisor's (lib/metrics/prometheus.go): ids are cgroup
paths from the mount, `name`, `image`, `container`, `pod` and `namespace`
come from what the host already has, without any runtime's API: Docker's
containers/<id>/config.v2.json under its data root, and the kubelet's
/var/log/containers/<pod>_<namespace>_<container>-<id>.log links and
/var/log/pods/<namespace>_<pod>_<uid> directories.  Otherwise the id alone
(`name` is the id, as cAdvisor's containerd handler names it).

Network counters come from /proc/PID/net/dev of the first process of the
container, as cAdvisor reads them; containers that share a network
namespace (the containers of one pod) each report the namespace's figures,
as cAdvisor's do: sum them by pod and the pod's traffic is counted once per
container.

The deadline: a walk is all or nothing, because a partial set of
containers would read as containers gone.  So the collector does not stop
at context.deadline between containers; the walk is one C call (3,000
containers in the time docs/BENCHMARKS.md, "cgroups", shows), and a
scrape's deadline is the registry's to enforce, leaving the source out.
"""

from __future__ import annotations

import errno
from functools import reduce
from operator import and_
import json
import logging
import os
import re
import sys

from agent import metrics
from agent.collectors.base import NoData, Option
from agent.collectors.filters import NameFilter, regex
from agent.metrics import Family, Series
from agent.procfs import cgroups
from agent.procfs.layout import NetDev

log = logging.getLogger("agent.cgroups")

LABELS = ("container", "id", "image", "name", "namespace", "pod")


def _counter(name, help_text, extra=()):
    return metrics.counter(name, help_text, LABELS + extra)


def _gauge(name, help_text, extra=()):
    return metrics.gauge(name, help_text, LABELS + extra)


CPU_USAGE = _counter("container_cpu_usage_seconds", "Cumulative cpu time consumed in seconds.", ("cpu",))
CPU_USER = _counter("container_cpu_user_seconds", "Cumulative user cpu time consumed in seconds.")
CPU_SYSTEM = _counter("container_cpu_system_seconds", "Cumulative system cpu time consumed in seconds.")
CFS_PERIODS = _counter("container_cpu_cfs_periods", "Number of elapsed enforcement period intervals.")
CFS_THROTTLED_PERIODS = _counter("container_cpu_cfs_throttled_periods", "Number of throttled period intervals.")
CFS_THROTTLED_SECONDS = _counter("container_cpu_cfs_throttled_seconds",
                                 "Total time duration the container has been throttled.")
MEMORY_USAGE = _gauge("container_memory_usage_bytes",
                      "Current memory usage in bytes, including all memory regardless of when it was accessed")
MEMORY_WORKING_SET = _gauge("container_memory_working_set_bytes", "Current working set in bytes.")
MEMORY_RSS = _gauge("container_memory_rss", "Size of RSS in bytes.")
MEMORY_CACHE = _gauge("container_memory_cache", "Number of bytes of page cache memory.")
MEMORY_LIMIT = _gauge("container_spec_memory_limit_bytes", "Memory limit for the container.")
OOM_EVENTS = _counter("container_oom_events", "Count of out of memory events observed for the container")
FS_READS = _counter("container_fs_reads_bytes", "Cumulative count of bytes read", ("device",))
FS_WRITES = _counter("container_fs_writes_bytes", "Cumulative count of bytes written", ("device",))
PRESSURE = {
    ("cpu", "some"): _counter("container_pressure_cpu_waiting_seconds",
                              "Total time duration tasks in the container have waited due to CPU congestion."),
    ("cpu", "full"): _counter("container_pressure_cpu_stalled_seconds",
                              "Total time duration no tasks in the container could make progress due to CPU "
                              "congestion."),
    ("memory", "some"): _counter("container_pressure_memory_waiting_seconds",
                                 "Total time duration tasks in the container have waited due to memory "
                                 "congestion."),
    ("memory", "full"): _counter("container_pressure_memory_stalled_seconds",
                                 "Total time duration no tasks in the container could make progress due to "
                                 "memory congestion."),
    ("io", "some"): _counter("container_pressure_io_waiting_seconds",
                             "Total time duration tasks in the container have waited due to IO congestion."),
    ("io", "full"): _counter("container_pressure_io_stalled_seconds",
                             "Total time duration no tasks in the container could make progress due to IO "
                             "congestion."),
}
_IFACE = ("interface",)
# (field index in a packed struct agent_netdev row, Desc)
_NETDEV_FIELDS = NetDev._fields
NETWORK = tuple((_NETDEV_FIELDS.index(field), desc) for field, desc in (
    ("rx_bytes", _counter("container_network_receive_bytes", "Cumulative count of bytes received", _IFACE)),
    ("rx_packets", _counter("container_network_receive_packets", "Cumulative count of packets received", _IFACE)),
    ("rx_errs", _counter("container_network_receive_errors",
                         "Cumulative count of errors encountered while receiving", _IFACE)),
    ("tx_bytes", _counter("container_network_transmit_bytes", "Cumulative count of bytes transmitted", _IFACE)),
    ("tx_packets", _counter("container_network_transmit_packets", "Cumulative count of packets transmitted",
                            _IFACE)),
    ("tx_errs", _counter("container_network_transmit_errors",
                         "Cumulative count of errors encountered while transmitting", _IFACE)),
))
_NAME_LEN = _NETDEV_FIELDS.index("name_len")  # the word before the name's 64 bytes
_NET_STRIDE = cgroups.NETDEV.size // 8
_IO_STRIDE = cgroups.CGROUP_IO.size // 8
# The words of a packed struct agent_cgroup row: present, the fields, then these.
_STRIDE = cgroups.CGROUP.size // 8
_ROW = {name: 1 + len(cgroups.CGROUP_FIELDS) + i for i, name in enumerate(
    ("runtime", "path_off", "path_len", "id_off", "id_len", "pod_off", "pod_len", "io_first", "io_count",
     "net_first", "net_count"))}
_RANGES = ("io_first", "io_count", "net_first", "net_count")
_DOCKER_RUNTIMES = (cgroups.DOCKER, cgroups.CGROUPFS)
_FIELD = {name: i for i, name in enumerate(cgroups.CGROUP_FIELDS)}
_FIELD_BIT = {name: 1 << i for name, i in _FIELD.items()}
_BIT_USAGE, _BIT_USER, _BIT_SYSTEM, _BIT_QUOTA, _BIT_PERIODS, _BIT_CURRENT, _BIT_INACTIVE, _BIT_PID = (
    1 << _FIELD[name] for name in ("usage_usec", "user_usec", "system_usec", "cpu_quota_usec", "nr_periods",
                                   "memory_current", "memory_inactive_file", "pid"))


ALL = (CPU_USAGE, CPU_USER, CPU_SYSTEM, CFS_PERIODS, CFS_THROTTLED_PERIODS, CFS_THROTTLED_SECONDS, MEMORY_USAGE,
       MEMORY_WORKING_SET, MEMORY_RSS, MEMORY_CACHE, MEMORY_LIMIT, OOM_EVENTS, FS_READS, FS_WRITES,
       *PRESSURE.values(), *(desc for _, desc in NETWORK))

LEFT_OUT = metrics.gauge("agent_cgroups_containers_left_out",
                         "Containers found at this scrape but not exported: more than "
                         "--collector.cgroups.max-containers passed the include/exclude filter")

# cAdvisor leaves out a container's loopback and the host ends of veth
# pairs and bridges (isIgnoredDevice in container/libcontainer/handler.go).
_IGNORED_INTERFACES = (b"lo", b"veth", b"docker", b"nerdctl")
# A config.v2.json is a few kB; one larger than this is not Docker's.
CONFIG_MAX_BYTES = 1 << 20
_LOG_LINK = re.compile(r"^([^_]+)_([^_]+)_(.+)-([0-9a-f]{64})\.log$")
_NSPAWN_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")

DEFAULT_MAX_CONTAINERS = 5000


def _max_containers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 1_000_000:
        raise ValueError(f"expected a number of containers from 1 to 1000000, got {text!r}")
    return value


def _data_root(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"expected an absolute path, got {text!r}")
    return text


OPTIONS = (
    Option("include", regex, "", "only containers whose name (or id where it has none) this regular "
           "expression finds", "REGEX"),
    Option("exclude", regex, "", "leave out containers whose name (or id) this regular expression finds", "REGEX"),
    Option("max-containers", _max_containers, DEFAULT_MAX_CONTAINERS,
           "export at most this many containers, the first by cgroup path; "
           "agent_cgroups_containers_left_out counts the others", "N"),
    Option("docker-data-root", _data_root, "/var/lib/docker", "Docker's data root under --path.rootfs, "
           "for each container's name, image and Kubernetes labels (containers/<id>/config.v2.json)", "DIR"),
)


def cgroup2_root(sysfs: str) -> str | None:
    """The cgroup2 mount under sysfs: fs/cgroup on a unified host,
    fs/cgroup/unified on a hybrid one; None on a v1-only host."""
    for rel in ("fs/cgroup", "fs/cgroup/unified"):
        path = os.path.join(sysfs, rel)
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return None


def _text(raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw if isinstance(raw, str) else ""


class Metadata:
    """name, image, container, pod, namespace per container id, from the
    files runtimes and the kubelet leave on the host.  Docker's file is read
    again only when it has been replaced; the kubelet's log directories are
    listed again only when they change."""

    def __init__(self, data_root: str):
        self.data_root = data_root
        self._docker: dict[bytes, tuple] = {}  # id -> (config.v2.json's (inode, mtime, size), its labels)
        self._open_errors: set[int] = set()
        # (inode, mtime) of the kubelet's two directories when last listed.
        self.logs_key = None
        self._by_id: dict[str, tuple] = {}
        self._by_uid: dict[str, tuple] = {}

    def containers_dir(self, rootfs: str) -> str:
        """Docker's containers/ directory under rootfs, for docker()."""
        return os.path.join(rootfs, self.data_root.lstrip("/"), "containers")

    def docker(self, containers_dir: str, cid: bytes):
        """(name, image, container, pod, namespace) from config.v2.json, or
        None.  The file is read again only when it is another file than
        last scrape's (inode, mtime, size): Docker rewrites it whole, by a
        rename, when a container is renamed; a container's id is never
        reused, so a new container can never be given an old one's labels."""
        path = f"{containers_dir}/{os.fsdecode(cid)}/config.v2.json"
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        cached = self._docker.get(cid)
        if cached is not None and cached[0] == key:
            return cached[1]
        found = None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            # Once per kind: an unreadable data root (the agent not root)
            # would otherwise say the same for every container.
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) and exc.errno not in self._open_errors:
                self._open_errors.add(exc.errno)
                log.warning("%s: %s: containers are labelled by their ids alone (said once)", path, exc.strerror)
        else:
            try:
                found = self._read_config(fd, path)
            finally:
                os.close(fd)
        self._docker[cid] = (key, found)
        return found

    @staticmethod
    def _read_config(fd: int, path: str):
        try:
            data = os.read(fd, CONFIG_MAX_BYTES + 1)
            if len(data) > CONFIG_MAX_BYTES:
                raise ValueError(f"larger than {CONFIG_MAX_BYTES} bytes")
            doc = json.loads(data)
            config = doc.get("Config") or {}
            labels = config.get("Labels") or {}
            name = doc.get("Name", "")
            fields = (name, config.get("Image", ""), labels.get("io.kubernetes.container.name", ""),
                      labels.get("io.kubernetes.pod.name", ""), labels.get("io.kubernetes.pod.namespace", ""))
            if not all(isinstance(f, str) for f in fields):
                raise ValueError("Name, Config.Image or a Kubernetes label is not a string")
            return (fields[0].lstrip("/"),) + fields[1:]
        except (OSError, ValueError, AttributeError, RecursionError) as exc:
            log.warning("%s: not a Docker container config (%s): the container is labelled by its id alone",
                        path, exc)
            return None

    def kubelet(self, rootfs: str):
        """({container id: (pod, namespace, container)}, {pod uid: (pod, namespace)})."""
        containers = os.path.join(rootfs, "var/log/containers")
        pods = os.path.join(rootfs, "var/log/pods")
        key = []
        for path in (containers, pods):
            try:
                st = os.stat(path)
                key.append((st.st_ino, st.st_mtime_ns))
            except OSError:
                key.append(None)
        if key == self.logs_key:
            return self._by_id, self._by_uid
        by_id, by_uid = {}, {}
        if key[0] is not None:
            for entry in _listdir(containers):
                m = _LOG_LINK.match(entry)
                if m:
                    by_id[m.group(4)] = (m.group(1), m.group(2), m.group(3))
        if key[1] is not None:
            for entry in _listdir(pods):
                parts = entry.split("_")
                if len(parts) == 3:
                    by_uid[parts[2]] = (parts[1], parts[0])
        self.logs_key, self._by_id, self._by_uid = key, by_id, by_uid
        return by_id, by_uid

    def forget(self, present: set) -> None:
        for cid in [c for c in self._docker if c not in present]:
            del self._docker[cid]


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        log.warning("%s: %s", path, exc.strerror)
        return []


def _nspawn_name(raw: bytes) -> str:
    # systemd escapes a unit name's "-" and other bytes as \xNN.
    return _text(_NSPAWN_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw))


class CgroupsCollector:
    source = "cgroups"

    def __init__(self, options: dict):
        self.filter = NameFilter(options["include"], options["exclude"])
        self.max_containers = options["max-containers"]
        self.metadata = Metadata(options["docker-data-root"])
        self._walkers: dict[str, cgroups.Walker] = {}
        self._label_memo: dict = {}  # cgroup path -> (labels, labels + ("total",), kept by the filter)
        self._labelled_with = None  # the kubelet directories' state the memo was made with
        self._label_sets: dict[str, tuple] = {}  # family name -> last scrape's label sets
        self._plan = None  # (shape, [...]): _devices_and_interfaces
        self._said_v1 = False

    def collect(self, context) -> list[Family]:
        root = cgroup2_root(context.sysfs)
        if root is None:
            why = (f"containers need cgroup v2: no cgroup2 hierarchy at {context.sysfs}/fs/cgroup "
                   f"or {context.sysfs}/fs/cgroup/unified")
            if not self._said_v1:
                log.warning("%s", why)
                self._said_v1 = True
            raise NoData(why)
        walker = self._walkers.get(context.backend.__name__)
        if walker is None:
            walker = self._walkers[context.backend.__name__] = cgroups.Walker(context.backend)
        dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            procfd = os.open(context.procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            log.warning("%s: %s: no container network counters", context.procfs, exc.strerror)
            procfd = -1
        try:
            packed = walker.packed(dirfd, procfd)
        finally:
            os.close(dirfd)
            if procfd >= 0:
                os.close(procfd)
        return self._families(context, *packed)

    def _labels(self, context, names: bytes, words):
        """(row indices, label memos) of the containers kept, by cgroup
        path; a memo is (labels, labels + ("total",), kept by the filter,
        the Docker metadata it was made with).  A container's memo is the
        same object scrape after scrape while its labels do not change, so
        the families' label sets compare by identity and the renderer
        keeps their formatted text; it is made again when the kubelet's
        directories or the container's config.v2.json change."""
        by_id, by_uid = self.metadata.kubelet(context.rootfs)
        same_sources = self.metadata.logs_key == self._labelled_with
        previous, current = self._label_memo, {}
        containers_dir, docker = self.metadata.containers_dir(context.rootfs), self.metadata.docker
        path_off, path_len = words[_ROW["path_off"]::_STRIDE], words[_ROW["path_len"]::_STRIDE]
        runtimes = words[_ROW["runtime"]::_STRIDE]
        id_off, id_len = words[_ROW["id_off"]::_STRIDE], words[_ROW["id_len"]::_STRIDE]
        paths = [names[o:o + n] for o, n in zip(path_off, path_len)]
        kept_rows, kept_memos, ids = [], [], []
        for index in sorted(range(len(paths)), key=paths.__getitem__):
            path, runtime = paths[index], runtimes[index]
            cid = names[id_off[index]:id_off[index] + id_len[index]]
            ids.append(cid)
            meta = docker(containers_dir, cid) if runtime in _DOCKER_RUNTIMES else None
            memo = previous.get(path)
            if memo is None or not same_sources or memo[3] is not meta:
                pod_off, pod_len = words[index * _STRIDE + _ROW["pod_off"]], words[index * _STRIDE + _ROW["pod_len"]]
                memo = self._label(path, runtime, cid, names[pod_off:pod_off + pod_len], meta, by_id, by_uid,
                                   memo)
            current[path] = memo
            if memo[2]:
                kept_rows.append(index)
                kept_memos.append(memo)
        # Only the containers present: no label set outlives its container.
        self._label_memo = current
        self._labelled_with = self.metadata.logs_key
        self.metadata.forget(set(ids))
        return kept_rows, kept_memos

    def _label(self, path: bytes, runtime: int, raw_id: bytes, pod_uid: bytes, docker, by_id, by_uid, old):
        """The memo of one container (_labels says what it holds); old's
        tuples where they are equal."""
        cid = _text(raw_id)
        name = image = container = pod = namespace = ""
        if runtime == cgroups.NSPAWN:
            name = _nspawn_name(raw_id)
        else:
            if docker is not None:
                name, image, container, pod, namespace = docker
            kube = by_id.get(cid)
            if kube is not None:
                pod, namespace, container = kube
            elif pod_uid and not pod:
                owner = by_uid.get(_text(pod_uid).replace("_", "-"))
                if owner is not None:
                    pod, namespace = owner
            if not name:
                name = cid
        labels = (container, "/" + _text(path), image, name, namespace, pod)
        if old is not None and old[0] == labels:
            return old if old[3] is docker else old[:3] + (docker,)
        return (labels, labels + ("total",), self.filter(name), docker)

    def _series(self, desc, labels, values: list) -> Series:
        """A Series whose label sets are last scrape's tuple when they are
        equal, so that the renderer's formatted text for it is reused."""
        labels_tuple = labels if labels.__class__ is tuple else tuple(labels)
        last = self._label_sets.get(desc.name)
        if last is not None and last is not labels_tuple and last == labels_tuple:
            labels_tuple = last
        self._label_sets[desc.name] = labels_tuple
        return Series(desc, labels_tuple, values)

    def _families(self, context, names: bytes, rows: bytes, io: bytes, net: bytes) -> list:
        words = memoryview(rows).cast("Q")
        order, memos = self._labels(context, names, words)
        left_out = max(0, len(order) - self.max_containers)
        del order[self.max_containers:], memos[self.max_containers:]
        cols = {desc: ([], []) for desc in ALL}
        # The figures by column (one list per field over the containers
        # kept, in their order) straight from the packed rows: per family a
        # list comprehension, not a Python loop over the containers.
        presents = words[0::_STRIDE]
        present = [presents[i] for i in order]
        common = reduce(and_, present, -1) if present else 0
        labels_all = [memo[0] for memo in memos]

        def column(field: str) -> list:
            values = words[1 + _FIELD[field]::_STRIDE]
            return [values[i] for i in order]

        def add(desc, bit: int, values: list, labels: list = labels_all) -> None:
            if common & bit == bit:  # every container has it: the common case
                col = cols[desc]
                col[0].extend(labels)
                col[1].extend(values)
                return
            col = cols[desc]
            for p, label, value in zip(present, labels, values):
                if p & bit == bit:
                    col[0].append(label)
                    col[1].append(value)

        # libcontainer keeps cpu.stat's microseconds as nanoseconds (x 1000)
        # and cAdvisor divides those by 1e9: the same float64s.
        usage = column("usage_usec")
        if common & _BIT_USAGE and all(usage):
            add(CPU_USAGE, _BIT_USAGE, [float(u * 1000) / 1e9 for u in usage], [memo[1] for memo in memos])
        else:
            # cAdvisor has no "total" sample for a container that has used no CPU yet.
            col = cols[CPU_USAGE]
            for p, memo, u in zip(present, memos, usage):
                if p & _BIT_USAGE and u > 0:
                    col[0].append(memo[1])
                    col[1].append(float(u * 1000) / 1e9)
        add(CPU_USER, _BIT_USER, [float(u * 1000) / 1e9 for u in column("user_usec")])
        add(CPU_SYSTEM, _BIT_SYSTEM, [float(u * 1000) / 1e9 for u in column("system_usec")])
        # cAdvisor exports the CFS counters of a container with a quota only.
        quota = _BIT_QUOTA | _BIT_PERIODS
        add(CFS_PERIODS, quota, column("nr_periods"))
        add(CFS_THROTTLED_PERIODS, quota, column("nr_throttled"))
        add(CFS_THROTTLED_SECONDS, quota, [float(u * 1000) / 1e9 for u in column("throttled_usec")])
        current = column("memory_current")
        add(MEMORY_USAGE, _BIT_CURRENT, current)
        # Working set: usage less inactive_file, floored at 0 (usage where
        # memory.stat has no inactive_file, as cAdvisor leaves it).
        inactive = [i if p & _BIT_INACTIVE else 0 for p, i in zip(present, column("memory_inactive_file"))]
        add(MEMORY_WORKING_SET, _BIT_CURRENT, [u - i if u > i else 0 for u, i in zip(current, inactive)])
        add(MEMORY_RSS, _FIELD_BIT["memory_anon"], column("memory_anon"))
        add(MEMORY_CACHE, _FIELD_BIT["memory_file"], column("memory_file"))
        # cAdvisor's specMemoryValue: a limit above 2^62 is "none", exported as 0.
        add(MEMORY_LIMIT, _FIELD_BIT["memory_max"], [0 if m > 1 << 62 else m for m in column("memory_max")])
        add(OOM_EVENTS, _FIELD_BIT["oom_kill"], column("oom_kill"))
        for (resource, kind), desc in PRESSURE.items():
            field = f"{resource}_{kind}_usec"
            # cAdvisor's asMicrosecondsToSeconds: PSI totals are microseconds.
            add(desc, _FIELD_BIT[field], [u / 1e6 for u in column(field)])
        planned = self._devices_and_interfaces(context, words, order, memos, io, net)
        families = [planned[desc] if desc in planned else self._series(desc, labels, values)
                    for desc, (labels, values) in cols.items() if values or desc in planned]
        families.append(Family(LEFT_OUT, [((), left_out)]))
        return families

    def _devices_and_interfaces(self, context, words, order: list, memos: list, io: bytes, net: bytes) -> dict:
        """The io.stat and net/dev families, by Desc.  Which rows of io and net make
        which series, with which labels (the plan), depends only on the
        containers kept, their devices and their interfaces' names: made
        again when any of those differs from the last scrape's, else the
        last plan's label tuples with this scrape's figures."""
        io_words = memoryview(io).cast("Q")
        net_words = memoryview(net).cast("Q")
        devices = _DeviceNames(context.sysfs)
        device_names = {key: devices(*key) for key in set(zip(io_words[0::_IO_STRIDE], io_words[1::_IO_STRIDE]))}
        shape = (memos, order, device_names,
                 *(words[_ROW[field]::_STRIDE].tobytes() for field in _RANGES),
                 *(io_words[k::_IO_STRIDE].tobytes() for k in range(3)),
                 *(net_words[k::_NET_STRIDE].tobytes() for k in range(_NAME_LEN, _NET_STRIDE)))
        plan = self._plan
        if plan is None or plan[0] != shape:
            plan = self._plan = (shape, self._make_plan(words, order, memos, device_names, io_words, net))
        families = {}
        for source, desc, index, rows, labels in plan[1]:
            column = io_words[index::_IO_STRIDE] if source == "io" else net_words[index::_NET_STRIDE]
            families[desc] = self._series(desc, labels, [column[r] for r in rows])
        return families

    @staticmethod
    def _make_plan(words, order: list, memos: list, device_names: dict, io_words, net: bytes) -> list:
        """[(buffer, Desc, word of the figure in a row, rows, label sets)]
        for the io.stat and net/dev families that have samples."""
        reads, writes = ([], []), ([], [])
        ifaces, iface_rows = [], []
        io_first, io_count = words[_ROW["io_first"]::_STRIDE], words[_ROW["io_count"]::_STRIDE]
        net_first, net_count = words[_ROW["net_first"]::_STRIDE], words[_ROW["net_count"]::_STRIDE]
        for index, memo in zip(order, memos):
            labels = memo[0]
            seen = set()
            for r in range(io_first[index], io_first[index] + io_count[index]):
                major, minor, io_present = io_words[r * _IO_STRIDE:r * _IO_STRIDE + 3]
                if (major, minor) in seen:
                    continue  # a device twice in one io.stat: the first line, as for interfaces
                seen.add((major, minor))
                device_labels = labels + (device_names[major, minor],)
                if io_present & 1 << cgroups.IO_RBYTES:
                    reads[0].append(r)
                    reads[1].append(device_labels)
                if io_present & 1 << cgroups.IO_WBYTES:
                    writes[0].append(r)
                    writes[1].append(device_labels)
            names = set()
            for r in range(net_first[index], net_first[index] + net_count[index]):
                at = r * cgroups.NETDEV.size
                length = int.from_bytes(net[at + 8 * _NAME_LEN:at + 8 * _NAME_LEN + 8], sys.byteorder)
                raw = net[at + 8 * (_NAME_LEN + 1):at + 8 * (_NAME_LEN + 1) + length]
                if raw.lower().startswith(_IGNORED_INTERFACES) or raw in names:
                    continue  # a name twice in one file: the first row, not the same series twice
                names.add(raw)
                iface_rows.append(r)
                ifaces.append(labels + (_text(raw),))
        plan = []
        for (rows, labels), index, desc in ((reads, 3, FS_READS), (writes, 4, FS_WRITES)):
            if rows:
                plan.append(("io", desc, index, rows, tuple(labels)))
        if iface_rows:
            labels = tuple(ifaces)
            plan.extend(("net", desc, index, iface_rows, labels) for index, desc in NETWORK)
        return plan


class _DeviceNames:
    """/dev/<name> of a block device by major:minor, from sysfs's
    dev/block links, as cAdvisor names io.stat's devices from its disk map.
    Where sysfs does not know the device, "MAJ:MIN": cAdvisor gives "" there,
    and two such devices of one container would make the same series twice."""

    def __init__(self, sysfs: str):
        self.sysfs = sysfs
        self._names: dict[tuple, str] = {}

    def __call__(self, major: int, minor: int) -> str:
        key = (major, minor)
        name = self._names.get(key)
        if name is None:
            try:
                target = os.readlink(os.path.join(self.sysfs, "dev/block", f"{major}:{minor}"))
                name = "/dev/" + os.path.basename(target)
            except OSError:
                name = f"{major}:{minor}"
            self._names[key] = name
        return name
