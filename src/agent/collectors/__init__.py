"""Collectors, and the one table that lists them.

A collector converts one source's kernel units to base units and returns
metric families; descriptors are built once, at import.  It has `source`
(its name: the `source` label of the agent's own metrics), `relpath` (the
file under the procfs root) and `families(data: bytes) -> list[Family]`,
where `data` is the packed struct (or rows) that either backend's loader
produced.

TABLE is the registration: one line per collector, and everything that
names collectors is derived from it: the `--collector.NAME`,
`--no-collector.NAME` flags and `[collector.NAME]` config sections
(agent/config.py), the registry's sources, `/health`, the README's
collector table (tests/test_collectors_table.py checks it) and the tests
parametrised over collectors.
"""

from __future__ import annotations

from agent.collectors.base import Context, NoData, Option, boolean
from agent.collectors import cgroups
from agent.collectors.cgroups import CgroupsCollector
from agent.collectors.diskstats import DiskstatsCollector
from agent.collectors import filesystem
from agent.collectors.filesystem import FilesystemCollector
from agent.collectors.filters import NameFilter, regex
from agent.collectors.hwmon import HwmonCollector
from agent.collectors.loadavg import LoadavgCollector
from agent.collectors.meminfo import MeminfoCollector
from agent.collectors.netdev import NetdevCollector
from agent.collectors.pressure import PressureCollector
from agent.collectors import processes
from agent.collectors.processes import ProcessesCollector
from agent.collectors.stat import StatCollector
from agent.collectors import systemd
from agent.collectors.thermal_zone import ThermalZoneCollector
from agent.collectors.textfile import TextfileCollector, parse_directory
from agent.collectors.uptime import UptimeCollector
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable


@record
class Entry:
    name: str
    enabled_by_default: bool
    # What it exposes, from where: the README's table and --help.
    help: str
    # (config, cpu_window, options) -> the collector; options maps each of
    # its Option names to the value in force.
    build: Callable
    options: tuple = ()


TABLE = (
    Entry("stat", True, "CPU percentages over the CPU window, seconds per CPU and mode (node_exporter's cpu "
          "collector), interrupts, context switches, forks, boot time, processes running and blocked, "
          "online CPUs (/proc/stat, one read)",
          lambda config, cpu_window, options: StatCollector(cpu_window, options["per-cpu"]),
          (Option("per-cpu", boolean, True,
                  "node_cpu_seconds_total and node_cpu_guest_seconds_total, 10 series per CPU (default true; "
                  "false on hosts with too many CPUs: node_exporter's --no-collector.cpu)", "BOOL"),)),
    Entry("meminfo", True, "memory and swap (/proc/meminfo)",
          lambda config, cpu_window, options: MeminfoCollector()),
    Entry("diskstats", True, "per-disk I/O counters (/proc/diskstats)",
          lambda config, cpu_window, options: DiskstatsCollector(NameFilter(config.disk_include, config.disk_exclude))),
    Entry("netdev", True, "per-interface traffic counters (/proc/net/dev)",
          lambda config, cpu_window, options: NetdevCollector(NameFilter(config.net_include, config.net_exclude))),
    Entry("loadavg", True, "load averages (/proc/loadavg)",
          lambda config, cpu_window, options: LoadavgCollector()),
    Entry("uptime", True, "seconds since boot (/proc/uptime)",
          lambda config, cpu_window, options: UptimeCollector()),
    Entry("pressure", True, "pressure stall information: time waiting for and stalled on CPU, I/O, memory "
          "and IRQs (/proc/pressure, Linux 4.20+)",
          lambda config, cpu_window, options: PressureCollector()),
    Entry("thermal_zone", True, "thermal zone temperatures and cooling device states (/sys/class/thermal)",
          lambda config, cpu_window, options: ThermalZoneCollector()),
    Entry("textfile", True, "families other programs write to *.prom files in a directory "
          "(nothing until --collector.textfile.directory is set)",
          lambda config, cpu_window, options: TextfileCollector(options["directory"]),
          (Option("directory", parse_directory, "",
                  "read every *.prom file in this directory (an absolute path; empty: none)", "DIR"),)),
    Entry("hwmon", True, "temperatures, fans, voltages, currents and power of hardware-monitoring chips "
          "(/sys/class/hwmon)",
          lambda config, cpu_window, options: HwmonCollector(
              NameFilter(options["chip-include"], options["chip-exclude"])),
          (Option("chip-include", regex, "", "only chips whose chip label this regular expression finds "
                  "(node_exporter 1.7's flag)", "REGEX"),
           Option("chip-exclude", regex, "", "leave out chips whose chip label this regular expression finds",
                  "REGEX"))),
    Entry("filesystem", True, "size, free space and inodes of each mount (statvfs of the mounts in /proc/1/mountinfo "
          "under the rootfs; a mount whose statvfs hangs is reported with device_error 1)",
          lambda config, cpu_window, options: FilesystemCollector(options), filesystem.OPTIONS),
    Entry("processes", True, "processes and threads per state, PIDs and threads against their limits "
          "(node_exporter's processes collector), and the top processes by CPU over the CPU window and by "
          "resident memory (/proc/PID/stat of every process, one walk)",
          lambda config, cpu_window, options: ProcessesCollector(cpu_window, options), processes.OPTIONS),
    Entry("systemd", False, "unit states, their summary and the system state from systemd's Manager on the system "
          "bus, one D-Bus round trip per scrape (needs jeepney: the [systemd] extra)",
          lambda config, cpu_window, options: systemd.SystemdCollector(options), systemd.OPTIONS),
    Entry("cgroups", True, "containers (Docker, containerd, CRI-O, Podman, systemd-nspawn) under cAdvisor's "
          "container_* names: CPU, memory, I/O, pressure and network of each container cgroup (cgroup v2, "
          "one C walk of fs/cgroup or fs/cgroup/unified)",
          lambda config, cpu_window, options: CgroupsCollector(options), cgroups.OPTIONS),
)
BY_NAME = {entry.name: entry for entry in TABLE}


def _timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 300:  # NaN too
        raise ValueError(f"expected seconds between 0 (exclusive) and 300, got {text!r}")
    return seconds


# Options every collector has, before its own.
COMMON_OPTIONS = (
    Option("timeout", _timeout, None, "seconds this collector may take before a scrape leaves it out "
           "(default: --collector.timeout)", "SECONDS"),
)


def options_of(entry: Entry) -> tuple:
    return COMMON_OPTIONS + tuple(entry.options)
DEFAULT_ENABLED = tuple(entry.name for entry in TABLE if entry.enabled_by_default)


def default_options(entry: Entry) -> dict:
    return {option.name: option.default for option in options_of(entry)}


def build(names, config, cpu_window) -> list:
    """The collectors named, in the table's order, with their options from
    config.collector_options (the defaults where it has none)."""
    chosen = getattr(config, "collector_options", None) or {}
    return [entry.build(config, cpu_window, chosen.get(entry.name) or default_options(entry))
            for entry in TABLE if entry.name in names]


__all__ = [
    "BY_NAME", "COMMON_OPTIONS", "DEFAULT_ENABLED", "TABLE", "Entry", "build", "default_options", "options_of",
    "Context", "NoData", "Option",
    "CgroupsCollector", "DiskstatsCollector", "FilesystemCollector", "HwmonCollector", "LoadavgCollector",
    "MeminfoCollector", "NetdevCollector", "PressureCollector", "ProcessesCollector", "StatCollector",
    "TextfileCollector", "ThermalZoneCollector",
    "UptimeCollector",
]
