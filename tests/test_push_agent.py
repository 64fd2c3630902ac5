"""Push mode through the real agent process: --push and push-interval from
flags and the config file, a StatsD receiver that is a UDP socket of the
test, the pusher's counters in /metrics, and a reload that moves it."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from agentproc import AgentProcess
from exposition_parse import parse_samples
from test_e2e import copy_tree


def receiver() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(10)
    return s


def lines_until(sock: socket.socket, needle: bytes, limit: int = 200) -> bytes:
    for _ in range(limit):
        data = sock.recv(65536)
        if needle in data:
            return data
    raise AssertionError(f"{needle!r} never arrived")


def test_agent_pushes_statsd_and_counts_it(tmp_path):
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    first, second = receiver(), receiver()
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nprocfs = {tree}\npush = statsd://127.0.0.1:{first.getsockname()[1]}\n"
                    "push-interval = 0.2\n")
    try:
        with AgentProcess("--config", str(conf)) as agent:
            data = lines_until(first, b"node_memory_total_bytes")
            mem_total = int(next(line for line in data.split(b"\n")
                                 if line.startswith(b"node_memory_total_bytes:")).split(b":")[1].split(b"|")[0])
            meminfo = (tree / "meminfo").read_text().split("\n")[0].split()
            assert mem_total == int(meminfo[1]) * 1024
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                samples = parse_samples(agent.metrics_text())
                sent = [v for k, v in samples.items() if k[0] == "agent_push_sent_total"]
                if sent and int(float(sent[0])) > 0:
                    break
                time.sleep(0.2)
            assert sent and int(float(sent[0])) > 0
            # A reload moves the pusher to the second receiver.
            conf.write_text(conf.read_text().replace(str(first.getsockname()[1]), str(second.getsockname()[1])))
            agent.proc.send_signal(signal.SIGHUP)
            lines_until(second, b"node_load1")
        assert "Traceback" not in agent.log()
    finally:
        first.close()
        second.close()


def test_bad_push_url_is_a_one_line_start_up_error(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "agent", "--push", "ftp://x:1", "--once"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--push" in lines[0] and "ftp" in lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_counters(agent: AgentProcess) -> tuple[int, int]:
    samples = parse_samples(agent.metrics_text())
    queue = [v for k, v in samples.items() if k[0] == "agent_push_queue_length"]
    dropped = [v for k, v in samples.items() if k[0] == "agent_push_dropped_total"]
    # Absent for a moment while a reload starts the pusher anew.
    return (int(float(queue[0])), int(float(dropped[0]))) if queue and dropped else (0, 0)


def test_push_buffer_limit_bounds_what_an_outage_keeps(tmp_path):
    """docs/PUSH.md tells the user to size the buffer for the outage to
    bridge: push-buffer-limit in the file caps the points kept for a dead
    receiver, the oldest dropped and counted past it; a reload resizes it."""
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    conf = tmp_path / "agent.conf"
    target = f"graphite://127.0.0.1:{closed_port()}"
    conf.write_text(f"[agent]\nprocfs = {tree}\npush = {target}\npush-interval = 0.1\npush-buffer-limit = 150\n")
    with AgentProcess("--config", str(conf)) as agent:
        deadline = time.monotonic() + 15
        while (counters := push_counters(agent))[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        queue, dropped = counters
        # Each collection is about 60 points: the third is past 150.
        assert dropped > 0 and queue == 150
        conf.write_text(conf.read_text().replace("push-buffer-limit = 150", "push-buffer-limit = 400"))
        agent.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while (counters := push_counters(agent))[0] <= 150 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 150 < counters[0] <= 400
    assert "Traceback" not in agent.log()
