"""/proc/loadavg: the 1, 5 and 15 minute load averages."""

from __future__ import annotations

from agent import metrics
from agent.metrics import Family
from agent.procfs import layout

LOAD1 = metrics.gauge("node_load1", "1-minute load average.")
LOAD5 = metrics.gauge("node_load5", "5-minute load average.")
LOAD15 = metrics.gauge("node_load15", "15-minute load average.")
NO_LABELS = ()


class LoadavgCollector:
    source = "loadavg"
    relpath = "loadavg"

    def families(self, data: bytes) -> list[Family]:
        load = layout.decode_loadavg(data)
        return [
            Family(LOAD1, [(NO_LABELS, load.load1)]),
            Family(LOAD5, [(NO_LABELS, load.load5)]),
            Family(LOAD15, [(NO_LABELS, load.load15)]),
        ]
