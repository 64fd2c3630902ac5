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
import json
import logging
import os
import re

from agent import metrics
from agent.collectors.base import NoData, Option
from agent.collectors.filters import NameFilter, regex
from agent.metrics import Family
from agent.procfs import cgroups
from agent.procfs.layout import FILE_ENTRY, NETDEV, OK, decode_netdev

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
NETWORK = (
    ("rx_bytes", _counter("container_network_receive_bytes", "Cumulative count of bytes received", _IFACE)),
    ("rx_packets", _counter("container_network_receive_packets", "Cumulative count of packets received", _IFACE)),
    ("rx_errs", _counter("container_network_receive_errors",
                         "Cumulative count of errors encountered while receiving", _IFACE)),
    ("tx_bytes", _counter("container_network_transmit_bytes", "Cumulative count of bytes transmitted", _IFACE)),
    ("tx_packets", _counter("container_network_transmit_packets", "Cumulative count of packets transmitted",
                            _IFACE)),
    ("tx_errs", _counter("container_network_transmit_errors",
                         "Cumulative count of errors encountered while transmitting", _IFACE)),
)
LEFT_OUT = metrics.gauge("agent_cgroups_containers_left_out",
                         "Containers found at this scrape but not exported: more than "
                         "--collector.cgroups.max-containers passed the include/exclude filter")

# cAdvisor leaves out a container's loopback and the host ends of veth
# pairs and bridges (isIgnoredDevice in container/libcontainer/handler.go).
_IGNORED_INTERFACES = (b"lo", b"veth", b"docker", b"nerdctl")
# cAdvisor's specMemoryValue: a limit above 2^62 is "none", exported as 0.
_MAX_MEMORY = 1 << 62
# A config.v2.json is a few kB; one larger than this is not Docker's.
CONFIG_MAX_BYTES = 1 << 20
# /proc/PID/net/dev of a container: a few interfaces, 128 bytes each.
NETDEV_BYTES = 16 << 10
NETDEV_BATCH = 128
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
    once per container; the kubelet's log directories are listed again only
    when they change."""

    def __init__(self, data_root: str):
        self.data_root = data_root
        self._docker: dict[bytes, tuple] = {}
        self._logs_key = None
        self._by_id: dict[str, tuple] = {}
        self._by_uid: dict[str, tuple] = {}

    def docker(self, rootfs: str, cid: bytes):
        """(name, image, container, pod, namespace) from config.v2.json, or None."""
        if cid in self._docker:
            return self._docker[cid]
        path = os.path.join(rootfs, self.data_root.lstrip("/"), "containers", os.fsdecode(cid), "config.v2.json")
        found = None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                log.warning("%s: %s: the container is labelled by its id alone", path, exc.strerror)
        else:
            try:
                found = self._read_config(fd, path)
            finally:
                os.close(fd)
        self._docker[cid] = found
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
        if key == self._logs_key:
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
        self._logs_key, self._by_id, self._by_uid = key, by_id, by_uid
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
            found = walker(dirfd)
        finally:
            os.close(dirfd)
        return self._families(context, found)

    def _labels(self, context, found):
        """(labels tuple, container) for the containers kept, by cgroup path."""
        by_id, by_uid = self.metadata.kubelet(context.rootfs)
        kept = []
        for c in sorted(found, key=lambda c: c.path):
            cid = _text(c.id)
            name = image = container = pod = namespace = ""
            if c.runtime == cgroups.NSPAWN:
                name = _nspawn_name(c.id)
            else:
                docker = (self.metadata.docker(context.rootfs, c.id)
                          if c.runtime in (cgroups.DOCKER, cgroups.CGROUPFS) else None)
                if docker is not None:
                    name, image, container, pod, namespace = docker
                kube = by_id.get(cid)
                if kube is not None:
                    pod, namespace, container = kube
                elif c.pod_uid and not pod:
                    owner = by_uid.get(_text(c.pod_uid).replace("_", "-"))
                    if owner is not None:
                        pod, namespace = owner
                if not name:
                    name = cid
            if not self.filter(name):
                continue
            kept.append(((container, "/" + _text(c.path), image, name, namespace, pod), c))
        self.metadata.forget({c.id for c in found})
        return kept

    def _families(self, context, found) -> list[Family]:
        kept = self._labels(context, found)
        left_out = max(0, len(kept) - self.max_containers)
        kept = kept[:self.max_containers]
        fam = {}

        def add(desc, labels, value):
            family = fam.get(desc.name)
            if family is None:
                family = fam[desc.name] = Family(desc, [])
            family.samples.append((labels, value))

        devices = _DeviceNames(context.sysfs)
        for labels, c in kept:
            v = dict(zip(cgroups.CGROUP_FIELDS, c.values))
            has = c.has
            # libcontainer keeps cpu.stat's microseconds as nanoseconds
            # (x 1000) and cAdvisor divides those by 1e9: the same float64s.
            if has("usage_usec") and v["usage_usec"] > 0:
                add(CPU_USAGE, labels + ("total",), float(v["usage_usec"] * 1000) / 1e9)
            if has("user_usec"):
                add(CPU_USER, labels, float(v["user_usec"] * 1000) / 1e9)
            if has("system_usec"):
                add(CPU_SYSTEM, labels, float(v["system_usec"] * 1000) / 1e9)
            # cAdvisor exports the CFS counters of a container with a quota only.
            if has("cpu_quota_usec") and has("nr_periods"):
                add(CFS_PERIODS, labels, v["nr_periods"])
                add(CFS_THROTTLED_PERIODS, labels, v["nr_throttled"])
                add(CFS_THROTTLED_SECONDS, labels, float(v["throttled_usec"] * 1000) / 1e9)
            if has("memory_current"):
                usage = v["memory_current"]
                add(MEMORY_USAGE, labels, usage)
                inactive = v["memory_inactive_file"] if has("memory_inactive_file") else 0
                add(MEMORY_WORKING_SET, labels, max(usage - inactive, 0))
            if has("memory_anon"):
                add(MEMORY_RSS, labels, v["memory_anon"])
            if has("memory_file"):
                add(MEMORY_CACHE, labels, v["memory_file"])
            if has("memory_max"):
                limit = v["memory_max"]
                add(MEMORY_LIMIT, labels, 0 if limit > _MAX_MEMORY else limit)
            if has("oom_kill"):
                add(OOM_EVENTS, labels, v["oom_kill"])
            for major, minor, present, rbytes, wbytes in c.io:
                device = devices(major, minor)
                if present & 1 << cgroups.IO_RBYTES:
                    add(FS_READS, labels + (device,), rbytes)
                if present & 1 << cgroups.IO_WBYTES:
                    add(FS_WRITES, labels + (device,), wbytes)
            for (resource, kind), desc in PRESSURE.items():
                field = f"{resource}_{kind}_usec"
                if has(field):
                    add(desc, labels, v[field] / 1e6)
        self._network(context, kept, add)
        families = list(fam.values())
        families.append(Family(LEFT_OUT, [((), left_out)]))
        return families

    def _network(self, context, kept, add) -> None:
        with_pid = [(labels, c.get("pid")) for labels, c in kept if c.has("pid")]
        if not with_pid:
            return
        try:
            procfd = os.open(context.procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("%s: %s: no container network counters", context.procfs, exc.strerror)
            return
        backend = context.backend
        try:
            for start in range(0, len(with_pid), NETDEV_BATCH):
                batch = with_pid[start:start + NETDEV_BATCH]
                table, data = backend.read_files(procfd, [b"%d/net/dev" % pid for _, pid in batch], NETDEV_BYTES)
                for (labels, _), row in zip(batch, FILE_ENTRY.iter_unpack(table)):
                    _, _, data_off, length, status, _ = row
                    if status != OK:
                        continue  # the process has exited, or too many interfaces: no counters this scrape
                    rows = backend.parse_netdev(data[data_off:data_off + length])
                    for dev in decode_netdev(rows, len(rows) // NETDEV.size):
                        iface = dev.name_raw[:dev.name_len]
                        if iface.lower().startswith(_IGNORED_INTERFACES):
                            continue
                        iface_labels = labels + (_text(iface),)
                        for field, desc in NETWORK:
                            add(desc, iface_labels, getattr(dev, field))
        finally:
            os.close(procfd)


class _DeviceNames:
    """/dev/<name> of a block device by major:minor, from sysfs's
    dev/block links, as cAdvisor names io.stat's devices from its disk map
    ("" for a device it does not know)."""

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
                name = ""
            self._names[key] = name
        return name
