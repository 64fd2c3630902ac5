"""A real Prometheus server (Debian's package) scrapes the agent over
127.0.0.1 and answers the seed's PromQL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from agentproc import AgentProcess
from reference import expected_samples
from test_e2e import NETDEV_HEADER, copy_tree, netdev_line, write_in_place

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None and os.environ.get("CI") != "true",
                                reason="prometheus server not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port: int, promql: str):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_the_agent_and_answers_the_seed_queries(tmp_path, backend_name):
    assert PROMETHEUS, "prometheus is required in CI"
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    dev = tree / "net" / "dev"
    write_in_place(dev, NETDEV_HEADER + netdev_line("eth0", 0, 0) + netdev_line("eth1", 0, 0))
    expected_usage = expected_samples(tree)[("node_cpu_usage_percent", ())]
    stop = threading.Event()
    bytes_per_second = 4000  # per interface, transmitted

    def traffic():
        # Both interfaces transmit 4,000 B/s, in steps of 0.05 s: 8,000 B/s in all.
        start = time.monotonic()
        while not stop.wait(0.05) and time.monotonic() - start < 120:
            tx = int((time.monotonic() - start) * bytes_per_second)
            write_in_place(dev, NETDEV_HEADER + netdev_line("eth0", 0, tx) + netdev_line("eth1", 0, tx))

    with AgentProcess("--procfs", str(tree), "--backend", backend_name) as agent:
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: agent\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{agent.port}']\n")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prom.log", "wb"))
        feeder = threading.Thread(target=traffic, daemon=True)
        feeder.start()
        try:
            deadline = time.monotonic() + 60
            usage = rate = None
            while time.monotonic() < deadline:
                time.sleep(1)
                try:
                    usage = query(prom_port, "avg(node_cpu_usage_percent)")
                    rate = query(prom_port, "sum(rate(node_network_transmit_bytes_total[1m]))")
                    irate = query(prom_port, "sum(irate(node_network_transmit_bytes_total[1m]))")
                    up = query(prom_port, 'up{job="agent"}')
                except OSError:
                    continue  # not listening yet
                if usage and rate and irate and up and float(rate[0]["value"][1]) > 0:
                    break
            assert up and up[0]["value"][1] == "1", (tmp_path / "prom.log").read_text()
            assert usage, "no node_cpu_usage_percent in Prometheus"
            # The stat file never changes: the since-boot value stays.
            assert float(usage[0]["value"][1]) == pytest.approx(expected_usage)
            # rate() divides by the whole minute while the series is younger
            # than that, so its value only has to be positive here; irate(),
            # over the last two scrapes, shows the counters are right.
            assert len(rate) == 1 and float(rate[0]["value"][1]) > 0
            assert float(irate[0]["value"][1]) == pytest.approx(2 * bytes_per_second, rel=0.25)
        finally:
            stop.set()
            prom.terminate()
            prom.wait(20)
