"""Collectors under deadlines: a source blocked in the kernel (a FIFO
nobody writes, where a /proc file should be) is left out of the scrape on
time, is not started again while it is blocked, holds one thread, shows in
/health, and comes back once the file does."""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
from pathlib import Path

import pytest

from agent.config import Config
from agentproc import AgentProcess
from exposition_parse import parse_samples
from test_e2e import copy_tree
from test_service import wait_for


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


@pytest.fixture
def fifo_tree(tmp_path):
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    loadavg = tree / "loadavg"
    normal = loadavg.read_bytes()
    loadavg.unlink()
    os.mkfifo(loadavg)
    yield tree, normal
    release(loadavg)


def release(fifo: Path) -> None:
    """Open the FIFO for writing and close it: a reader blocked in open()
    returns (and then reads end of file)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader blocked on it (ENXIO), or no longer a FIFO
        return
    os.close(fd)


def test_a_blocked_source_is_left_out_on_time_and_comes_back(fifo_tree, backend_name):
    tree, normal = fifo_tree
    with AgentProcess("--procfs", str(tree), "--backend", backend_name,
                      "--collector.loadavg.timeout", "0.3") as agent:
        counts, walls = [], []
        # One keep-alive connection: the server's thread for it is there
        # throughout, so the count moves only if collection threads do.
        conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
        for _ in range(30):
            start = time.monotonic()
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            samples = parse_samples(response.read().decode())
            walls.append(time.monotonic() - start)
            counts.append(threads(agent.proc.pid))
            assert samples[("agent_source_success", (("source", "loadavg"),))] == "0"
            assert samples[("agent_source_success", (("source", "meminfo"),))] == "1"
            assert ("node_load1", ()) not in samples and ("node_memory_total_bytes", ()) in samples
        # The first scrape waits the 0.3 s once; after it the blocked source is
        # skipped, not waited for again.
        assert max(walls) < 1.5 and sorted(walls)[len(walls) // 2] < 0.2, walls
        # One thread stays blocked; no scrape adds another (one may end: the
        # start-up's first collection, which a loaded host finishes late).
        assert all(later <= earlier for earlier, later in zip(counts[1:], counts[2:])), counts
        conn.close()
        health = json.loads(agent.request("/health")[2])
        assert health["status"] == "degraded"
        assert health["sources"]["loadavg"]["stuck"] is True
        assert "did not return within 0.3 s" in health["sources"]["loadavg"]["error"]
        assert "stuck" not in health["sources"]["meminfo"]

        # The file comes back: the blocked read returns, the source recovers.
        release(tree / "loadavg")
        (tree / "loadavg.new").write_bytes(normal)
        os.replace(tree / "loadavg.new", tree / "loadavg")
        assert wait_for(lambda: ("node_load1", ()) in parse_samples(agent.metrics_text()))
        assert json.loads(agent.request("/health")[2])["status"] == "ok"
    log = agent.log()
    assert log.count("source loadavg failed: did not return within 0.3 s") == 1, log
    assert "source loadavg recovered" in log and "Traceback" not in log


def test_a_scrape_time_limit_bounds_the_whole_collection(fifo_tree, backend_name):
    """Registry.collect(timeout): what a scrape's own limit passes down (the
    X-Prometheus-Scrape-Timeout-Seconds header)."""
    from cli_helpers import registry_for
    tree, _ = fifo_tree
    registry = registry_for(Config(procfs=str(tree), backend=backend_name, collector_timeout=30.0))
    try:
        start = time.monotonic()
        names = {f.desc.name for f in registry.collect(timeout=0.4)}
        assert time.monotonic() - start < 1.0
        assert "node_memory_total_bytes" in names and "node_load1" not in names
    finally:
        release(tree / "loadavg")
        assert registry.close(5.0)


def test_a_file_mounted_over_the_real_proc_is_not_trusted_to_return(tmp_path):
    """On a real proc mount the kernel's own files are read in the
    collecting thread; a file bound over one of them (lxcfs binds FUSE files
    over /proc/meminfo, /proc/loadavg ... in containers) is not the
    kernel's, and goes to a worker under its deadline.  Here a FIFO nobody
    writes is bound over /proc/loadavg in a mount namespace of the test's."""
    from mountns import MountNamespace
    fifo = tmp_path / "loadavg"
    os.mkfifo(fifo)
    with MountNamespace() as ns:
        ns.run("mount", "--bind", str(fifo), "/proc/loadavg")
        agent = AgentProcess("--procfs", "/proc", "--collector.loadavg.timeout", "0.3",
                             "--collector.disable-defaults", "--collector.loadavg", "--collector.meminfo",
                             wrapper=ns.enter)
        try:
            for _ in range(3):
                start = time.monotonic()
                samples = parse_samples(agent.metrics_text())
                assert time.monotonic() - start < 2
                assert ("node_memory_total_bytes", ()) in samples and ("node_load1", ()) not in samples
                assert samples[("agent_source_success", (("source", "loadavg"),))] == "0"
        finally:
            release(fifo)
            agent.stop()
