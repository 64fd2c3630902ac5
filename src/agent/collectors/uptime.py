"""/proc/uptime: seconds since boot."""

from __future__ import annotations

from agent import metrics
from agent.metrics import Family
from agent.procfs import layout

# A gauge, although it only grows between boots: a counter must end in
# _total (promtool's lint, OpenMetrics), and this name is the contract.
UPTIME = metrics.gauge("node_uptime_seconds", "Seconds since boot, from /proc/uptime.")
NO_LABELS = ()


class UptimeCollector:
    source = "uptime"
    relpath = "uptime"

    def families(self, data: bytes) -> list[Family]:
        return [Family(UPTIME, [(NO_LABELS, layout.decode_uptime(data).uptime_seconds)])]
