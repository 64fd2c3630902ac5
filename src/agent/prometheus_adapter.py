"""Register the agent's collectors in an application's own prometheus_client
registry:

    from prometheus_client import REGISTRY
    from agent.prometheus_adapter import AgentCollector
    REGISTRY.register(AgentCollector(procfs="/proc"))

prometheus_client is imported only when this adapter collects: the agent's
own serving path never loads it (it costs ~14 MiB of RSS).
"""

from __future__ import annotations

import logging

from agent.config import Config
from agent.metrics import COUNTER


class AgentCollector:
    def __init__(self, procfs: str = "/proc", backend: str = "auto", cpu_window: float = 1.0,
                 log: logging.Logger | None = None, **filters: str):
        from agent.cli import build_registry
        config = Config(procfs=procfs, backend=backend, cpu_window=cpu_window, **filters)
        self._registry = build_registry(config, log or logging.getLogger("agent"))

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        for family in self._registry.collect():
            desc = family.desc
            cls = CounterMetricFamily if desc.type == COUNTER else GaugeMetricFamily
            out = cls(desc.name, desc.help, labels=desc.label_names)
            for label_values, value in family.samples:
                out.add_metric(label_values, value)
            yield out
