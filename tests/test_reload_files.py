"""The files an operator names (configuration, certificate, key, client CA,
tokens) must be regular files: a FIFO in their place used to block start-up
forever, or a SIGHUP reload forever, after which SIGTERM was ignored (issue
12, defect 4).  Now: one line and exit 2 at start-up, one log line and the
running configuration kept on a reload, and SIGTERM still obeyed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from trees import PROCFS_TREES
from test_tls import make_ca, make_leaf

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None and os.environ.get("CI") != "true",
                                reason="needs the openssl command (CI installs it)")

TREE = PROCFS_TREES / "linux-5.15-ubuntu22"
# The flag each file is given by, as the error line names it.
FILES = {
    "config": "config file",
    "server.pem": "--tls-cert",
    "server.key": "--tls-key",
    "ca.pem": "--tls-client-ca",
    "tokens": "--auth-token-file",
}
STOP_LIMIT_SECONDS = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_leaf(d, "server", "ca", "serverAuth")
    return d


@pytest.fixture
def files(tmp_path, pki) -> Path:
    """A directory with every file the agent is told to read, regular."""
    for name in ("server.pem", "server.key", "ca.pem"):
        shutil.copy(pki / name, tmp_path / name)
    (tmp_path / "tokens").write_text("s3cret-token\n")
    os.chmod(tmp_path / "tokens", 0o600)
    (tmp_path / "config").write_text(
        f"[agent]\nprocfs = {TREE}\ntls-cert = {tmp_path / 'server.pem'}\n"
        f"tls-key = {tmp_path / 'server.key'}\ntls-client-ca = {tmp_path / 'ca.pem'}\n"
        f"auth-token-file = {tmp_path / 'tokens'}\n")
    return tmp_path


def make_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def stop_seconds(agent: AgentProcess) -> float:
    start = time.monotonic()
    agent.stop(signal.SIGTERM, timeout=STOP_LIMIT_SECONDS + 5)
    return time.monotonic() - start


@pytest.mark.parametrize("name", FILES)
def test_a_fifo_is_refused_at_start_up(files, name):
    make_fifo(files / name)
    r = subprocess.run([sys.executable, "-m", "agent", "--listen", "127.0.0.1:0",
                        "--config", str(files / "config")],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1, r.stderr
    assert FILES[name] in lines[0] and "not a regular file (a FIFO)" in lines[0], lines[0]


@pytest.mark.parametrize("name", FILES)
def test_a_fifo_is_refused_on_reload_and_sigterm_still_stops(files, name):
    agent = AgentProcess("--config", str(files / "config"))
    try:
        make_fifo(files / name)
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload refused" in agent.log(), timeout=5), agent.log()
    finally:
        seconds = stop_seconds(agent)
    refused = [line for line in agent.log().splitlines() if "reload refused" in line]
    assert len(refused) == 1, agent.log()
    assert FILES[name] in refused[0] and "not a regular file (a FIFO)" in refused[0], refused[0]
    assert agent.proc.returncode == 0 and seconds < STOP_LIMIT_SECONDS, (seconds, agent.log())
    assert "Traceback" not in agent.log()


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/tty", "DIR"])
def test_devices_and_directories_are_refused(tmp_path, path):
    path = str(tmp_path) if path == "DIR" else path
    r = subprocess.run([sys.executable, "-m", "agent", "--listen", "127.0.0.1:0", "--config", path],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "not a regular file" in lines[0], r.stderr


def test_the_refused_reload_keeps_serving(tmp_path):
    # Plain HTTP, so that a scrape shows the running configuration at work.
    conf = tmp_path / "config"
    conf.write_text(f"[agent]\nprocfs = {TREE}\nnet-exclude = ^lo$\n")
    with AgentProcess("--config", str(conf)) as agent:
        make_fifo(conf)
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload refused" in agent.log(), timeout=5), agent.log()
        body = agent.metrics_text()
    assert 'interface="lo"' not in body and "node_network_receive_bytes_total{" in body
