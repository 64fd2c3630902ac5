"""What a scrape may ask for: node_exporter's collect[] and exclude[]
parameters (one Prometheus job for the cheap collectors every second,
another for the rest every minute) and Prometheus's
X-Prometheus-Scrape-Timeout-Seconds, through the real agent over HTTP."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from exposition_parse import parse_samples
from test_deadlines import release
from test_e2e import copy_tree


def sources(samples: dict) -> set[str]:
    return {dict(labels)["source"] for name, labels in samples if name == "agent_source_success"}


def families(samples: dict) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture
def agent(tmp_path, backend_name):
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    with AgentProcess("--procfs", str(tree), "--backend", backend_name) as running:
        yield running


def get(agent, path, headers=None):
    status, _, body = agent.request(path, headers=headers)
    return status, body.decode("utf-8", "replace")


def test_collect_picks_collectors(agent):
    status, text = get(agent, "/metrics?collect[]=loadavg&collect%5B%5D=meminfo")
    assert status == 200
    samples = parse_samples(text)
    assert sources(samples) == {"loadavg", "meminfo"}
    assert ("node_load1", ()) in samples and ("node_memory_total_bytes", ()) in samples
    assert not any(name.startswith(("node_disk_", "node_network_", "node_cpu_")) for name in families(samples))
    # An unfiltered scrape right after still has everything.
    assert {"stat", "diskstats", "netdev"} <= sources(parse_samples(agent.metrics_text()))


def test_exclude_leaves_collectors_out(agent):
    status, text = get(agent, "/metrics?exclude[]=diskstats&exclude[]=netdev")
    assert status == 200
    samples = parse_samples(text)
    assert not {"diskstats", "netdev"} & sources(samples) and {"stat", "loadavg"} <= sources(samples)
    assert not any(name.startswith(("node_disk_", "node_network_")) for name in families(samples))


@pytest.mark.parametrize("query, line", [
    ("collect[]=nope", "400 Bad Request: no collector 'nope' is running (running: stat, "),
    ("exclude[]=loadavg&exclude[]=nope", "400 Bad Request: no collector 'nope' is running"),
    ("collect[]=loadavg&exclude[]=meminfo", "400 Bad Request: collect[] and exclude[] cannot be used together"),
])
def test_a_bad_selection_is_a_400_in_one_line(agent, query, line):
    status, text = get(agent, "/metrics?" + query)
    assert status == 400 and text.startswith(line) and text.count("\n") == 1, text


def test_a_collector_switched_off_cannot_be_collected(tmp_path):
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    with AgentProcess("--procfs", str(tree), "--no-collector.loadavg") as agent:
        status, text = get(agent, "/metrics?collect[]=loadavg")
    assert status == 400 and "no collector 'loadavg' is running" in text


def test_the_scrape_timeout_header_bounds_the_collection(tmp_path, backend_name):
    """A source blocked in the kernel, with a collector timeout longer than
    the scraper waits: the answer comes within the scraper's limit."""
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    (tree / "loadavg").unlink()
    os.mkfifo(tree / "loadavg")
    try:
        with AgentProcess("--procfs", str(tree), "--backend", backend_name, "--collector.timeout", "30") as agent:
            # The first collection (in the background since start-up) holds
            # the blocked source; every scrape meets it running or overdue.
            start = time.monotonic()
            status, text = get(agent, "/metrics", {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
            took = time.monotonic() - start
            assert status == 200 and took < 1.5, took
            samples = parse_samples(text)
            assert ("node_memory_total_bytes", ()) in samples and ("node_load1", ()) not in samples
            # A header that is no number is ignored, not an error.
            status, _ = get(agent, "/metrics?collect[]=meminfo", {"X-Prometheus-Scrape-Timeout-Seconds": "soon"})
            assert status == 200
    finally:
        release(tree / "loadavg")
