"""Start-up errors as a user meets them: the real command, one line on
stderr naming what to fix in the words the user wrote it (a flag as a flag,
a file's key with the file and line), exit code 2, no traceback, nothing
started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

PREFIX = "monitoring-agent: error: "


def run_agent(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          cwd=cwd, env=env)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), r.stderr
    assert r.stdout == ""
    return lines[0][len(PREFIX):]


@pytest.mark.parametrize("args, expected", [
    (["--tls-cert", "/etc/ssl/agent.pem"], "--tls-key: required with --tls-cert"),
    (["--tls-key", "/etc/ssl/agent.key"], "--tls-cert: required with --tls-key"),
    (["--tls-client-ca", "/etc/ssl/ca.pem"], "--tls-cert: required with --tls-client-ca (mutual TLS needs TLS)"),
    (["--format", "openmetrics"], "--format: only with --once"),
    (["--daemon", "--once"], "--daemon: cannot be combined with --once"),
    (["--listen", "127.0.0.1:99999"], "--listen: port 99999 out of range (0 to 65535"),
    (["--listen", "127.0.0.1:http"], "--listen: expected HOST:PORT"),
    (["--push-buffer-limit", "0"], "--push-buffer-limit: expected an integer from 1 to 1000000, got '0'"),
    (["--push-buffer-limit", "5000000"], "--push-buffer-limit: expected an integer from 1 to 1000000"),
    (["--daemon", "--log-target", "stderr"], "--log-target stderr: --daemon sends stderr to /dev/null"),
])
def test_bad_flags(args, expected, tmp_path):
    assert one_error_line(run_agent(*args, "--pidfile", str(tmp_path / "p.pid"))).startswith(expected)
    assert not (tmp_path / "p.pid").exists()


@pytest.mark.parametrize("text, expected", [
    ("[agent]\ntls-cert = /etc/ssl/agent.pem\n", "config file {path}: tls_key: required with tls_cert"),
    ("[agent]\nlisten = 127.0.0.1:70000\n", "config file {path}: listen: port 70000 out of range"),
    ("[agent]\nlog-level = info\nlisten = 127.0.0.1:0\n\nlisten = 127.0.0.1:9100\n",
     "config file {path}: line 5: key 'listen' given twice in [agent]"),
    # configparser takes dashes and underscores as different keys; the agent does not.
    ("[agent]\nnet_exclude = ^lo$\nnet-exclude = ^eth\n", "config file {path}: line 3: key 'net_exclude' given twice"),
    ("[agent]\nlisten = 127.0.0.1:0\n[agent]\n", "config file {path}: line 3: section [agent] given twice"),
    ("[agent]\npush-buffer-limit = many\n", "config file {path}: push_buffer_limit: expected an integer"),
    ("[agent]\nlog-target = stderr\n", "config file {path}: log_target stderr: --daemon sends stderr"),
])
def test_bad_config_files(text, expected, tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text(text)
    args = ["--config", str(conf)] + (["--daemon"] if "daemon" in expected else [])
    assert one_error_line(run_agent(*args)).startswith(expected.format(path=conf))


def test_a_daemon_with_nowhere_to_log_is_refused(tmp_path):
    """--daemon points stderr at /dev/null: with no log target given and
    neither a syslog nor a journald socket, the log would be lost."""
    env = dict(os.environ, MONITORING_AGENT_SYSLOG_SOCKET=str(tmp_path / "no-syslog"),
               MONITORING_AGENT_JOURNAL_SOCKET=str(tmp_path / "no-journal"))
    line = one_error_line(run_agent("--daemon", "--pidfile", str(tmp_path / "p.pid"), env=env))
    assert line.startswith("--daemon: its log would be lost: no syslog") and str(tmp_path / "no-syslog") in line
    assert not (tmp_path / "p.pid").exists()


def test_port_in_use_is_exit_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # --backend python: without the extension, auto's one line of advice would come first.
        r = subprocess.run([sys.executable, "-m", "agent", "--backend", "python", "--listen", f"127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert one_error_line(r) == f"--listen 127.0.0.1:{port}: Address already in use"
