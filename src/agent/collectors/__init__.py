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

from agent.collectors.base import Context, NoData, Option
from agent.collectors.diskstats import DiskstatsCollector
from agent.collectors import filesystem
from agent.collectors.filesystem import FilesystemCollector
from agent.collectors.filters import NameFilter
from agent.collectors.loadavg import LoadavgCollector
from agent.collectors.meminfo import MeminfoCollector
from agent.collectors.netdev import NetdevCollector
from agent.collectors.stat import StatCollector
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
    Entry("stat", True, "CPU percentages over the CPU window, processes running and blocked, "
          "online CPUs (/proc/stat)",
          lambda config, cpu_window, options: StatCollector(cpu_window)),
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
    Entry("filesystem", True, "size, free space and inodes of each mount (statvfs of the mounts in /proc/1/mountinfo "
          "under the rootfs; a mount whose statvfs hangs is reported with device_error 1)",
          lambda config, cpu_window, options: FilesystemCollector(options), filesystem.OPTIONS),
)
BY_NAME = {entry.name: entry for entry in TABLE}
DEFAULT_ENABLED = tuple(entry.name for entry in TABLE if entry.enabled_by_default)


def default_options(entry: Entry) -> dict:
    return {option.name: option.default for option in entry.options}


def build(names, config, cpu_window) -> list:
    """The collectors named, in the table's order, with their options from
    config.collector_options (the defaults where it has none)."""
    chosen = getattr(config, "collector_options", None) or {}
    return [entry.build(config, cpu_window, chosen.get(entry.name) or default_options(entry))
            for entry in TABLE if entry.name in names]


__all__ = [
    "BY_NAME", "DEFAULT_ENABLED", "TABLE", "Entry", "build", "default_options",
    "Context", "NoData", "Option",
    "DiskstatsCollector", "FilesystemCollector", "LoadavgCollector", "MeminfoCollector",
    "NetdevCollector", "StatCollector", "UptimeCollector",
]
