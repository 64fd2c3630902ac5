"""The agent as a service: --daemon and the PID file, SIGHUP reloads,
SIGTERM, the systemd notify protocol on a real Unix socket, log targets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from exposition_parse import parse_samples
from test_e2e import NETDEV_HEADER, copy_tree, netdev_line, stat_text, write_in_place
from test_prometheus import free_port


def wait_for(predicate, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def interfaces(port: int) -> set[str]:
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return {dict(k[1])["interface"] for k in parse_samples(text) if k[0] == "node_network_receive_bytes_total"}


@pytest.fixture
def tree(tmp_path):
    t = copy_tree(Path("/proc"), tmp_path / "proc")
    write_in_place(t / "net" / "dev", NETDEV_HEADER + netdev_line("lo", 1, 1) + netdev_line("eth0", 2, 2))
    return t


def agent_cmd(*args):
    return [sys.executable, "-m", "agent", *args]


@pytest.fixture
def syslog(tmp_path):
    """A syslog socket of the test's, which a daemon logs to by default."""
    sock = NotifySocket(tmp_path / "log.sock")
    sock.env = dict(os.environ, MONITORING_AGENT_SYSLOG_SOCKET=str(sock.path))
    yield sock
    sock.close()


def test_daemon_pidfile_reload_and_stop(tmp_path, tree, backend_name, syslog):
    port = free_port()
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nlisten = 127.0.0.1:{port}\nprocfs = {tree}\nnet-exclude = ^lo$\n"
                    f"backend = {backend_name}\n")
    pidfile = tmp_path / "agent.pid"
    start = subprocess.run(agent_cmd("--config", str(conf), "--daemon", "--pidfile", str(pidfile)),
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=syslog.env)
    assert start.returncode == 0, start.stderr
    assert start.stderr == ""
    pid = int(pidfile.read_text())
    try:
        assert alive(pid) and pid != os.getpid()
        # With stderr on /dev/null, the daemon's log goes to syslog by default.
        message = syslog.next()
        assert message.startswith(f"<30>monitoring-agent[{pid}]: serving on 127.0.0.1:{port}"), message
        assert interfaces(port) == {"eth0"}

        second = subprocess.run(agent_cmd("--config", str(conf), "--daemon", "--pidfile", str(pidfile),
                                          "--listen", f"127.0.0.1:{free_port()}"),
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                                env=syslog.env)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another instance is running" in lines[0] and str(pid) in lines[0]

        conf.write_text(conf.read_text().replace("net-exclude = ^lo$", "net-exclude = ^eth"))
        os.kill(pid, signal.SIGHUP)
        assert wait_for(lambda: interfaces(port) == {"lo"})
        assert int(pidfile.read_text()) == pid
        assert "reloaded configuration" in syslog.next()
        # A refused reload is told too, not lost in /dev/null.
        conf.write_text(conf.read_text().replace("net-exclude = ^eth", "net-exclude = ("))
        os.kill(pid, signal.SIGHUP)
        message = syslog.next()
        assert message.startswith("<27>") and "reload refused" in message and "net_exclude" in message
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not alive(pid))
    assert not pidfile.exists()
    assert syslog.next() == f"<30>monitoring-agent[{pid}]: stopped on SIGTERM\0"  # syslog(3)'s NUL


def test_start_errors_reach_the_terminal_before_detaching(tmp_path, tree, syslog):
    r = subprocess.run(agent_cmd("--daemon", "--pidfile", str(tmp_path / "p.pid"), "--procfs", str(tree),
                                 "--cpu-window", "-1"),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=syslog.env)
    assert r.returncode == 2 and "--cpu-window" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = subprocess.run(agent_cmd("--daemon", "--pidfile", str(tmp_path / "p.pid"), "--procfs", str(tree),
                                     "--listen", f"127.0.0.1:{busy.getsockname()[1]}"),
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=syslog.env)
    assert r.returncode == 2 and "--listen" in r.stderr
    assert not (tmp_path / "p.pid").exists()


def test_stale_pidfile_after_kill_9_does_not_block(tmp_path, tree):
    pidfile = tmp_path / "agent.pid"
    first = AgentProcess("--procfs", str(tree), "--pidfile", str(pidfile))
    pid = int(pidfile.read_text())
    assert pid == first.proc.pid
    first.stop(signal.SIGKILL)
    assert pidfile.exists()  # left behind, unlocked
    with AgentProcess("--procfs", str(tree), "--pidfile", str(pidfile)) as second:
        assert int(pidfile.read_text()) == second.proc.pid
        assert second.request("/health")[0] == 200
        assert second.stop() == 0
    assert not pidfile.exists()


class NotifySocket:
    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(10)
        self.path = path

    def next(self, skip_watchdog=True) -> str:
        while True:
            message = self.sock.recv(4096).decode()
            if not (skip_watchdog and message == "WATCHDOG=1"):
                return message

    def close(self):
        self.sock.close()


def test_systemd_notify_protocol(tmp_path, tree):
    notify = NotifySocket(tmp_path / "notify.sock")
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nprocfs = {tree}\n")
    try:
        agent = AgentProcess("--config", str(conf), env={"NOTIFY_SOCKET": str(notify.path)})
        assert notify.next().startswith("READY=1")
        agent.proc.send_signal(signal.SIGHUP)
        assert notify.next() == "RELOADING=1"
        assert notify.next().startswith("READY=1")
        assert agent.stop() == 0
        assert notify.next() == "STOPPING=1"
    finally:
        notify.close()


def test_watchdog_pings(tmp_path, tree):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        with AgentProcess("--procfs", str(tree), env={"NOTIFY_SOCKET": str(notify.path),
                                                      "WATCHDOG_USEC": "200000"}):
            assert notify.next().startswith("READY=1")
            pings = [notify.next(skip_watchdog=False) for _ in range(3)]
            assert pings == ["WATCHDOG=1"] * 3
    finally:
        notify.close()


def test_invalid_reload_keeps_the_running_configuration(tmp_path, tree):
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nprocfs = {tree}\nnet-exclude = ^lo$\n")
    with AgentProcess("--config", str(conf)) as agent:
        conf.write_text(f"[agent]\nprocfs = {tree}\nnet-exclude = (\n")
        agent.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert interfaces(agent.port) == {"eth0"}
        assert agent.request("/health")[0] == 200
    log = agent.log()
    assert log.count("reload refused") == 1 and "net_exclude" in log
    assert "Traceback" not in log


def test_reload_moves_the_listen_address(tmp_path, tree):
    conf = tmp_path / "agent.conf"
    # In the file, not a flag: a flag would override the file on reload too.
    conf.write_text(f"[agent]\nprocfs = {tree}\nlisten = 127.0.0.1:{free_port()}\n")
    with AgentProcess("--config", str(conf), listen=None) as agent:
        old = agent.port
        new = free_port()
        conf.write_text(f"[agent]\nprocfs = {tree}\nlisten = 127.0.0.1:{new}\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded configuration" in agent.log())
        assert interfaces(new) == {"lo", "eth0"}
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", old), timeout=5).close()


def test_reload_keeps_cpu_baselines(tmp_path, tree):
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nprocfs = {tree}\ncpu-window = 0.3\n")
    write_in_place(tree / "stat", stat_text(user=100, system=100, idle=700, iowait=100))
    with AgentProcess("--config", str(conf)) as agent:
        time.sleep(0.4)
        write_in_place(tree / "stat", stat_text(user=400, system=200, idle=800, iowait=100))
        conf.write_text(f"[agent]\nprocfs = {tree}\ncpu-window = 0.2\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded configuration" in agent.log())
        samples = parse_samples(agent.metrics_text())
        # Over the window from the start-up sample, not since boot (which would be 700/1500).
        assert float(samples[("node_cpu_user_percent", ())]) == pytest.approx(60.0)


def start_logging_agent(tree, target: str, env_key: str, sock: NotifySocket) -> subprocess.Popen:
    """The agent logging to a socket of the test's: its stderr gets no
    "serving on" line, so it is started bare on a port chosen here."""
    env = dict(os.environ, **{env_key: str(sock.path)})
    return subprocess.Popen(agent_cmd("--procfs", str(tree), "--log-target", target,
                                      "--listen", f"127.0.0.1:{free_port()}"),
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def stop_logging_agent(proc: subprocess.Popen) -> bytes:
    proc.terminate()
    proc.wait(10)
    stderr = proc.stderr.read()
    proc.stderr.close()
    return stderr


def test_journald_target_speaks_the_native_protocol(tmp_path, tree):
    journal = NotifySocket(tmp_path / "journal.sock")
    proc = start_logging_agent(tree, "journald", "MONITORING_AGENT_JOURNAL_SOCKET", journal)
    try:
        fields = {}
        while "serving on" not in fields.get("MESSAGE", ""):
            fields = dict(line.split("=", 1) for line in journal.next().strip().split("\n"))
        assert fields["PRIORITY"] == "6" and fields["SYSLOG_IDENTIFIER"] == "monitoring-agent"
        assert fields["SYSLOG_PID"] == str(proc.pid)
    finally:
        stderr = stop_logging_agent(proc)
        journal.close()
    assert stderr == b""  # every line went to the journal


def test_syslog_target(tmp_path, tree):
    sock = NotifySocket(tmp_path / "log.sock")
    proc = start_logging_agent(tree, "syslog", "MONITORING_AGENT_SYSLOG_SOCKET", sock)
    try:
        message = ""
        while "serving on" not in message:
            message = sock.next()
        # <30> is facility daemon (3 * 8) + priority info (6).
        assert message.startswith("<30>monitoring-agent[") and f"[{proc.pid}]:" in message
    finally:
        stderr = stop_logging_agent(proc)
        sock.close()
    assert stderr == b""


def test_missing_log_socket_is_a_start_up_error(tmp_path, tree):
    env = dict(os.environ, MONITORING_AGENT_JOURNAL_SOCKET=str(tmp_path / "absent.sock"))
    r = subprocess.run(agent_cmd("--procfs", str(tree), "--log-target", "journald"), env=env,
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "--log-target journald" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_daemon_keeps_relative_paths_working(tmp_path, tree, syslog):
    """--daemon changes to /: relative --config, --pidfile and --procfs still
    name the files they named at start, on reload too."""
    port = free_port()
    (tmp_path / "agent.conf").write_text(f"[agent]\nlisten = 127.0.0.1:{port}\nnet-exclude = ^lo$\n")
    rel_tree = os.path.relpath(tree, tmp_path)
    start = subprocess.run(agent_cmd("--config", "agent.conf", "--daemon", "--pidfile", "agent.pid",
                                     "--procfs", rel_tree),
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, cwd=tmp_path,
                           env=syslog.env)
    assert start.returncode == 0, start.stderr
    pid = int((tmp_path / "agent.pid").read_text())
    try:
        assert interfaces(port) == {"eth0"}
        (tmp_path / "agent.conf").write_text(f"[agent]\nlisten = 127.0.0.1:{port}\nnet-exclude = ^eth\n")
        os.kill(pid, signal.SIGHUP)
        assert wait_for(lambda: interfaces(port) == {"lo"})
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not alive(pid))
    assert not (tmp_path / "agent.pid").exists()


def test_reload_to_another_host_on_the_same_port_keeps_serving(tmp_path, tree):
    port = free_port()
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nprocfs = {tree}\nlisten = 127.0.0.1:{port}\nnet-exclude = ^lo$\n")
    with AgentProcess("--config", str(conf), listen=None) as agent:
        # Another host on the same port, and a filter change in the same reload.
        conf.write_text(f"[agent]\nprocfs = {tree}\nlisten = localhost:{port}\nnet-exclude = ^eth\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded configuration" in agent.log())
        assert interfaces(port) == {"lo"}  # the rest of the reload applied
        assert "reload refused" not in agent.log()
        assert "needs a restart" in agent.log()
