"""Collectors: one per /proc source.  Each converts the kernel's units to base
units and returns metric families; descriptors are built once, at import.

A collector has `source` (its name, the `source` label of the agent's own
metrics), `relpath` (the file under the procfs root), and
`families(data: bytes) -> list[Family]`, where `data` is the packed struct
(or rows) that either backend's loader produced.
"""

from __future__ import annotations

from agent.collectors.diskstats import DiskstatsCollector
from agent.collectors.loadavg import LoadavgCollector
from agent.collectors.meminfo import MeminfoCollector
from agent.collectors.netdev import NetdevCollector
from agent.collectors.stat import StatCollector
from agent.collectors.uptime import UptimeCollector

__all__ = [
    "DiskstatsCollector", "LoadavgCollector", "MeminfoCollector",
    "NetdevCollector", "StatCollector", "UptimeCollector",
]
