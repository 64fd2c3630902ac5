"""The agent end to end: the real process, real HTTP over 127.0.0.1, fixture
procfs trees, and an independent reading of the same files (reference.py)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.collectors import DEFAULT_ENABLED
from agentproc import AgentProcess
from trees import procfs_trees
from exposition_parse import parse_samples
from reference import expected_samples

SOURCES = ("stat", "meminfo", "diskstats", "net/dev", "loadavg", "uptime")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def copy_tree(src: Path, dst: Path) -> Path:
    for rel in SOURCES:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes((src / rel).read_bytes())
    return dst


@pytest.fixture
def live_tree(tmp_path):
    """A snapshot of this machine's /proc: real files from a real kernel."""
    return copy_tree(Path("/proc"), tmp_path / "proc")


def run_once(tree: Path, backend: str, *extra: str) -> str:
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", str(tree),
                        "--backend", backend, *extra],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    return r.stdout.decode("utf-8")


def check_against_reference(text: str, tree: Path):
    got = parse_samples(text)
    want = expected_samples(tree)
    node = {k: v for k, v in got.items() if k[0].startswith("node_")}
    assert set(node) == set(want)
    for key, expected in want.items():
        if isinstance(expected, int):
            assert node[key] == str(expected), key  # exact, never via a float
        else:
            assert float(node[key]) == pytest.approx(expected, rel=1e-12, abs=1e-12), key


ALL_TREES = procfs_trees()


@pytest.mark.parametrize("tree", ALL_TREES, ids=[t.name for t in ALL_TREES])
def test_once_matches_an_independent_reading_of_every_fixture_tree(tree, backend_name):
    check_against_reference(run_once(tree, backend_name), tree)


def test_once_matches_an_independent_reading_of_this_machine(live_tree, backend_name):
    check_against_reference(run_once(live_tree, backend_name), live_tree)


def without_self_metrics(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if "agent_" not in line)


@pytest.mark.parametrize("tree", ALL_TREES, ids=[t.name for t in ALL_TREES])
@pytest.mark.parametrize("fmt", ["prometheus", "openmetrics"])
def test_both_backends_render_the_same_bytes(tree, fmt):
    from backends import load_backend
    load_backend("c")
    c = run_once(tree, "c", "--format", fmt)
    py = run_once(tree, "python", "--format", fmt)
    assert without_self_metrics(c) == without_self_metrics(py)
    if fmt == "openmetrics":
        assert c.endswith("# EOF\n")


def promtool_check(text: str):
    promtool = shutil.which("promtool")
    if promtool is None:
        if __import__("os").environ.get("CI") == "true":
            pytest.fail("promtool is required in CI")
        pytest.skip("promtool not installed")
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout, r.stderr)


@pytest.mark.parametrize("tree", ALL_TREES, ids=[t.name for t in ALL_TREES])
def test_promtool_lint_is_clean_on_every_tree(tree):
    promtool_check(run_once(tree, "python"))


def test_promtool_lint_is_clean_on_a_live_scrape(live_tree, backend_name):
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name) as agent:
        promtool_check(agent.metrics_text())


def test_scrape_over_http(live_tree, backend_name):
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name) as agent:
        status, headers, body = agent.request("/metrics")
        assert status == 200 and headers["Content-Type"] == TEXT
        check_against_reference(body.decode(), live_tree)
        samples = parse_samples(body.decode())
        assert samples[("agent_build_info", (("version", __import__("agent").__version__),
                                             ("backend", backend_name)))] == "1"
        for source in ("stat", "meminfo", "diskstats", "netdev", "loadavg", "uptime"):
            assert samples[("agent_source_success", (("source", source),))] == "1"
        assert int(samples[("agent_process_resident_memory_bytes", ())]) > 1 << 20
        assert int(samples[("agent_process_open_fds", ())]) >= 3

        status, headers, body = agent.request("/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            "Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Type"] == OPENMETRICS
        assert headers.get("Content-Encoding") == "gzip"
        text = gzip.decompress(body).decode()
        assert text.endswith("# EOF\n")
        assert "# TYPE node_network_receive_bytes counter" in text

        status, headers, body = agent.request("/health")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok" and health["backend"] == backend_name
        assert set(health["sources"]) == set(DEFAULT_ENABLED)

        status, _, body = agent.request("/")
        assert status == 200 and b'href="/metrics"' in body
        status, headers, body = agent.request("/metrics", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        status, headers, _ = agent.request("/metrics", method="POST")
        assert status == 405 and "GET" in headers["Allow"]
        assert agent.request("/nope")[0] == 404
        assert agent.stop() == 0


def netdev_line(name: str, rx: int, tx: int) -> str:
    return f"{name:>6}: {rx} 10 0 0 0 0 0 0 {tx} 20 0 0 0 0 0 0\n"


NETDEV_HEADER = ("Inter-|   Receive                                                |  Transmit\n"
                 " face |bytes    packets errs drop fifo frame compressed multicast|"
                 "bytes    packets errs drop fifo colls carrier compressed\n")


def write_in_place(path: Path, text: str):
    with open(path, "r+b") as f:  # same inode, as a kernel file is
        f.truncate(0)
        f.write(text.encode())


def test_devices_appear_and_vanish_without_stale_series(live_tree, backend_name):
    dev = live_tree / "net" / "dev"
    write_in_place(dev, NETDEV_HEADER + netdev_line("eth0", 100, 200) + netdev_line("eth1", 5, 6))
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name) as agent:
        s = parse_samples(agent.metrics_text())
        assert s[("node_network_receive_bytes_total", (("interface", "eth1"),))] == "5"
        write_in_place(dev, NETDEV_HEADER + netdev_line("eth0", 150, 250) + netdev_line("veth9", 1, 2))
        s = parse_samples(agent.metrics_text())
        names = {dict(k[1]).get("interface") for k in s if k[0] == "node_network_receive_bytes_total"}
        assert names == {"eth0", "veth9"}
        assert s[("node_network_transmit_bytes_total", (("interface", "eth0"),))] == "250"


def test_a_missing_source_fails_alone_and_is_logged_once(live_tree, backend_name):
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name) as agent:
        saved = (live_tree / "diskstats").read_bytes()
        (live_tree / "diskstats").unlink()
        for _ in range(3):
            s = parse_samples(agent.metrics_text())
        assert s[("agent_source_success", (("source", "diskstats"),))] == "0"
        assert s[("agent_source_success", (("source", "meminfo"),))] == "1"
        assert not any(k[0].startswith("node_disk_") for k in s)
        assert ("node_memory_total_bytes", ()) in s
        status, _, body = agent.request("/health")
        assert json.loads(body)["status"] == "degraded"
        (live_tree / "diskstats").write_bytes(saved)
        s = parse_samples(agent.metrics_text())
        assert s[("agent_source_success", (("source", "diskstats"),))] == "1"
    log = agent.log()  # complete once the process has exited
    assert log.count("source diskstats failed") == 1, log
    assert "source diskstats recovered" in log
    assert "Traceback" not in log


def test_a_malformed_source_fails_alone(live_tree, backend_name):
    write_in_place(live_tree / "meminfo", "MemTotal: lots kB\n")
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name) as agent:
        s = parse_samples(agent.metrics_text())
        assert s[("agent_source_success", (("source", "meminfo"),))] == "0"
        assert not any(k[0].startswith("node_memory_") for k in s)
        assert ("node_load1", ()) in s
    assert "source meminfo failed" in agent.log() and "line 1" in agent.log()


def stat_text(user, system, idle, iowait):
    return (f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0\n"
            f"cpu0 {user} 0 {system} {idle} {iowait} 0 0 0 0 0\n"
            "ctxt 1\nbtime 1\nprocesses 1\nprocs_running 2\nprocs_blocked 1\n")


def test_cpu_percentages_over_the_window(live_tree, backend_name):
    stat = live_tree / "stat"
    write_in_place(stat, stat_text(user=100, system=100, idle=700, iowait=100))
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name, "--cpu-window", "0.3") as agent:
        s = parse_samples(agent.metrics_text())
        # Since boot: 1000 ticks, 800 idle+iowait.
        assert float(s[("node_cpu_usage_percent", ())]) == pytest.approx(20.0)
        time.sleep(0.35)
        write_in_place(stat, stat_text(user=400, system=200, idle=800, iowait=100))
        time.sleep(0.35)
        s = parse_samples(agent.metrics_text())
        # Over the window: user +300, system +100, idle +100 -> 500 ticks.
        assert float(s[("node_cpu_user_percent", ())]) == pytest.approx(60.0)
        assert float(s[("node_cpu_system_percent", ())]) == pytest.approx(20.0)
        assert float(s[("node_cpu_idle_percent", ())]) == pytest.approx(20.0)
        assert float(s[("node_cpu_usage_percent", ())]) == pytest.approx(80.0)
        # No tick since: the previous values stay, never NaN.
        time.sleep(0.35)
        s2 = parse_samples(agent.metrics_text())
        assert s2[("node_cpu_usage_percent", ())] == s[("node_cpu_usage_percent", ())]


def test_filters(live_tree, backend_name):
    write_in_place(live_tree / "net" / "dev", NETDEV_HEADER + netdev_line("lo", 1, 1) + netdev_line("eth0", 2, 2)
                   + netdev_line("veth1", 3, 3))
    write_in_place(live_tree / "diskstats",
                   "   8       0 sda 1 0 8 0 1 0 8 0 0 10 10 0 0 0 0 0 0\n"
                   "   8       1 sda1 1 0 8 0 1 0 8 0 0 10 10 0 0 0 0 0 0\n"
                   "   7       0 loop0 1 0 8 0 1 0 8 0 0 10 10 0 0 0 0 0 0\n")
    text = run_once(live_tree, backend_name, "--net-exclude", "^(lo|veth.*)$")
    s = parse_samples(text)
    assert {dict(k[1])["interface"] for k in s if k[0] == "node_network_receive_bytes_total"} == {"eth0"}
    # The default disk exclusion drops partitions and loop devices.
    assert {dict(k[1])["device"] for k in s if k[0] == "node_disk_read_bytes_total"} == {"sda"}
    text = run_once(live_tree, backend_name, "--disk-include", "^sda", "--net-include", "^veth")
    s = parse_samples(text)
    assert {dict(k[1])["device"] for k in s if k[0] == "node_disk_read_bytes_total"} == {"sda", "sda1"}
    assert {dict(k[1])["interface"] for k in s if k[0] == "node_network_receive_bytes_total"} == {"veth1"}


def test_concurrent_scrapes_are_all_served(live_tree, backend_name):
    with AgentProcess("--procfs", str(live_tree), "--backend", backend_name) as agent:
        results = []

        def scrape():
            for _ in range(5):
                results.append(agent.request("/metrics")[0])

        threads = [threading.Thread(target=scrape) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [200] * 40


def test_sigterm_exits_zero(live_tree):
    agent = AgentProcess("--procfs", str(live_tree))
    assert agent.request("/health")[0] == 200
    assert agent.stop() == 0
    assert "stopped" in agent.log()


def test_busy_port_is_one_line_and_exit_2(live_tree):
    with AgentProcess("--procfs", str(live_tree)) as agent:
        # --backend python: without the extension, auto's one line of advice would come first.
        r = subprocess.run([sys.executable, "-m", "agent", "--procfs", str(live_tree), "--backend", "python",
                            "--listen", f"127.0.0.1:{agent.port}"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("monitoring-agent: error: --listen") and "Address already in use" in r.stderr
