"""SIGTERM stops the agent within 5 s whatever a client or a collection is
doing (README, "Signals"; issue 12, defect 5: 8.1 s with a slow collection
in progress, and never with a read blocked in the kernel).

A FIFO in place of /proc/loadavg makes a collection block in the kernel, in
open(2), for as long as nobody writes to it: either for ever, or until the
test's writer gives it its content (a slow but ordinary collection)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from trees import PROCFS_TREES

STOP_LIMIT_SECONDS = 5.0


@pytest.fixture
def tree(tmp_path) -> Path:
    t = tmp_path / "procfs"
    shutil.copytree(PROCFS_TREES / "linux-5.15-ubuntu22", t)
    return t


def scrape_in_background(agent: AgentProcess) -> threading.Thread:
    """A scrape that will wait on the blocked collection (its outcome, a
    reset connection or a response, does not matter)."""
    def scrape():
        try:
            agent.request("/metrics", timeout=30)
        except OSError:
            pass
    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    return thread


def wait_until_blocked(pid: int, timeout: float = 20.0) -> bool:
    """True once a thread of `pid` sleeps in the FIFO's open: wchan
    wait_for_partner (fs/pipe.c)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                    if f.read() in ("wait_for_partner", "fifo_open"):
                        return True
            except OSError:
                continue
        time.sleep(0.05)
    return False


def sigterm_seconds(agent: AgentProcess) -> float:
    start = time.monotonic()
    agent.stop(signal.SIGTERM, timeout=STOP_LIMIT_SECONDS + 10)
    return time.monotonic() - start


def test_sigterm_with_a_collection_blocked_in_the_kernel(tree, tmp_path, backend_name):
    pidfile = tmp_path / "agent.pid"
    agent = AgentProcess("--procfs", str(tree), "--backend", backend_name, "--pidfile", str(pidfile))
    try:
        (tree / "loadavg").unlink()
        os.mkfifo(tree / "loadavg")  # nobody ever writes to it
        scrape_in_background(agent)
        assert wait_until_blocked(agent.proc.pid)
    finally:
        seconds = sigterm_seconds(agent)
    log = agent.log()
    assert agent.proc.returncode == 0 and seconds < STOP_LIMIT_SECONDS, (seconds, log)
    assert not pidfile.exists()
    assert "stopped on SIGTERM" in log and "blocked in the kernel (source loadavg)" in log, log
    assert "Traceback" not in log


def test_sigterm_during_a_slow_collection(tree, backend_name):
    """The collection would end 10 s later: the agent does not wait for it."""
    agent = AgentProcess("--procfs", str(tree), "--backend", backend_name)
    loadavg = (tree / "loadavg").read_bytes()
    (tree / "loadavg").unlink()
    os.mkfifo(tree / "loadavg")
    stop_writer = threading.Event()

    def slow_writer():
        if stop_writer.wait(10):
            return
        # O_NONBLOCK: with the agent gone there is no reader, and the open
        # fails instead of waiting for one.
        try:
            fd = os.open(tree / "loadavg", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.write(fd, loadavg)
        os.close(fd)

    writer = threading.Thread(target=slow_writer, daemon=True)
    writer.start()
    try:
        scrape_in_background(agent)
        assert wait_until_blocked(agent.proc.pid)
    finally:
        seconds = sigterm_seconds(agent)
        stop_writer.set()
    assert agent.proc.returncode == 0 and seconds < STOP_LIMIT_SECONDS, (seconds, agent.log())
    assert "stopped on SIGTERM" in agent.log()


def test_sigterm_with_a_silent_client(tree):
    """A client that sent half a request and went quiet is not waited for
    past the drain."""
    with AgentProcess("--procfs", str(tree)) as agent:
        client = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
        try:
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.3)  # accepted and waiting for the rest of the headers
            seconds = sigterm_seconds(agent)
        finally:
            client.close()
    assert agent.proc.returncode == 0 and seconds < STOP_LIMIT_SECONDS, (seconds, agent.log())
    assert "stopped on SIGTERM" in agent.log()
