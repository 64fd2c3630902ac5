"""The systemd collector where there is no systemd to ask: no bus socket, a
real dbus-daemon with no systemd on it, a bus that stops answering, a
socket that never answers, no jeepney.  None of them may cost more than
the collector's timeout, fail the agent, or log more than one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from agent.collectors.systemd import version_value
from agent.dbus import socket_address
from agentproc import AgentProcess
from oracle import Exposition, agent_once
from test_start_up_errors import one_error_line, run_agent

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>agent-test</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def bus(tmp_path):
    """A real dbus-daemon, with nothing on it but itself."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dbus-daemon is required in CI (scripts/install-test-packages.sh)")
        pytest.skip("dbus-daemon not installed (apt-get install dbus-daemon)")
    path = tmp_path / "bus"
    config = tmp_path / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=path))
    proc = subprocess.Popen([daemon, f"--config-file={config}", "--nofork", "--nopidfile"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    yield proc, f"unix:path={path}"
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    proc.wait(10)
    proc.stderr.close()


def systemd_args(address: str, *extra: str) -> tuple:
    return ("--config", "/dev/null", "--collector.systemd", f"--collector.systemd.address={address}", *extra)


def systemd_families(exposition: Exposition) -> set:
    return exposition.families("node_systemd_")


def health_of(agent) -> dict:
    status, _, body = agent.request("/health")
    assert status == 200
    return json.loads(body)


def test_no_bus_socket_is_no_data(tmp_path, backend_name):
    with AgentProcess(*systemd_args(f"unix:path={tmp_path}/none"), "--backend", backend_name) as agent:
        seen = Exposition(agent.metrics_text())
        health = health_of(agent)
    assert systemd_families(seen) == set()
    assert seen.family("agent_source_success")[(("source", "systemd"),)] == "1"
    assert health["status"] == "ok"
    assert health["sources"]["systemd"]["no_data"].startswith(f"no D-Bus socket at unix:path={tmp_path}/none")


def test_a_bus_without_systemd_is_no_data(bus, backend_name):
    _, address = bus
    with AgentProcess(*systemd_args(address), "--backend", backend_name) as agent:
        seen = Exposition(agent.metrics_text())
        health = health_of(agent)
    assert systemd_families(seen) == set()
    assert health["status"] == "ok"
    assert health["sources"]["systemd"]["no_data"] == f"no systemd on the bus {address}"


def test_a_bus_that_stops_answering_costs_one_timeout_then_recovers(bus):
    proc, address = bus
    with AgentProcess(*systemd_args(address, "--collector.systemd.timeout", "0.5")) as agent:
        agent.metrics_text()
        assert health_of(agent)["sources"]["systemd"]["no_data"]  # connected, asked, no systemd
        proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            seen = Exposition(agent.metrics_text())
            took = time.monotonic() - started
            health = health_of(agent)
        finally:
            proc.send_signal(signal.SIGCONT)
        assert took < 3, took
        assert seen.family("agent_source_success")[(("source", "systemd"),)] == "0"
        assert health["status"] == "degraded" and not health["sources"]["systemd"]["ok"]
        # Running again: the next scrape connects afresh.
        Exposition(agent.metrics_text())
        assert health_of(agent)["status"] == "ok"
    failures = [line for line in agent.stderr_lines if "source systemd failed" in line]
    assert len(failures) == 1, agent.log()


def test_a_socket_that_never_answers_is_cut_at_the_timeout(tmp_path):
    path = tmp_path / "silent"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen(8)  # connects succeed; nobody ever reads or writes
        with AgentProcess(*systemd_args(f"unix:path={path}", "--collector.systemd.timeout", "0.5")) as agent:
            for _ in range(2):
                started = time.monotonic()
                seen = Exposition(agent.metrics_text())
                assert time.monotonic() - started < 3
                assert seen.family("agent_source_success")[(("source", "systemd"),)] == "0"
            health = health_of(agent)
            # Given up at the deadline, not left hanging in recv().
            assert health["status"] == "degraded" and "stuck" not in health["sources"]["systemd"], health
    failures = [line for line in agent.stderr_lines if "source systemd failed" in line]
    assert len(failures) == 1, agent.log()
    assert "Traceback" not in agent.log()


def test_without_jeepney_no_data_and_one_log_line(tmp_path, backend_name):
    # An installed jeepney that cannot be imported, ahead of the real one.
    shadow = tmp_path / "shadow" / "jeepney"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('jeepney hidden by the test')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"))
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--backend", backend_name,
                        *systemd_args(f"unix:path={tmp_path}/none"), "--log-level", "info"],
                       capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    seen = Exposition(r.stdout)
    assert systemd_families(seen) == set()
    assert seen.family("agent_source_success")[(("source", "systemd"),)] == "1"
    lines = [line for line in r.stderr.splitlines() if "jeepney" in line]
    assert len(lines) == 1 and "pip install 'monitoring-agent[systemd]'" in lines[0], r.stderr


def test_jeepney_is_not_imported_unless_the_collector_runs(tmp_path):
    # The default collectors: an agent on a host without jeepney pays nothing.
    probe = ("import sys, runpy; sys.argv = ['agent', '--config', '/dev/null', '--once']; "
             "import agent.cli\n"
             "try:\n    agent.cli.run()\nexcept SystemExit:\n    pass\n"
             "print('JEEPNEY' if 'jeepney' in sys.modules else 'NONE', file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.stderr.strip().splitlines()[-1] == "NONE", r.stderr


@pytest.mark.parametrize("address, expected", [
    ("tcp:host=127.0.0.1,port=4000",
     "--collector.systemd.address: expected a unix:path= or unix:abstract= D-Bus address, "
     "got 'tcp:host=127.0.0.1,port=4000'"),
    ("/run/dbus/system_bus_socket",
     "--collector.systemd.address: expected a unix:path= or unix:abstract= D-Bus address, "
     "got '/run/dbus/system_bus_socket'"),
])
def test_a_bad_address_is_one_line_and_exit_2(address, expected):
    r = run_agent("--config", "/dev/null", "--collector.systemd", f"--collector.systemd.address={address}")
    assert expected in one_error_line(r)


def test_a_bad_unit_regex_is_one_line_and_exit_2():
    r = run_agent("--config", "/dev/null", "--collector.systemd", "--collector.systemd.unit-include=(")
    assert one_error_line(r).startswith("--collector.systemd.unit-include: not a regular expression")


@pytest.mark.parametrize("address, expected", [
    ("unix:path=/run/dbus/system_bus_socket", "/run/dbus/system_bus_socket"),
    ("unix:abstract=/tmp/dbus-x,guid=0123", "\0/tmp/dbus-x"),
    ("tcp:host=localhost,port=1;unix:path=/run/a%20b", "/run/a b"),
])
def test_socket_address(address, expected):
    assert socket_address(address) == expected


@pytest.mark.parametrize("version, expected", [
    ("252.39-1~deb12u2", (252.39, "252.39-1~deb12u2")),  # Debian bookworm's
    ("255", (255.0, "255")),
    ("v256.1-arch", (256.1, "v256.1-arch")),
    ("42", (0.0, "")),  # node_exporter wants three digits, or reports 0 and no version
])
def test_version_as_node_exporter_reads_it(version, expected):
    assert version_value(version) == expected
