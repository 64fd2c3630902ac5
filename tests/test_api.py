"""The REST configuration API (/api/v1, docs/API.md), against the agent's
own process over loopback: what it shows and where each value came from,
changes applied as a reload applies a file (all or nothing, the command
line's one-line message on a bad value), write tokens, the allowlist, the
state file across restarts and reloads; and schemathesis run on the live
agent in a network namespace of the test's own (a generated push or
webhook URL then reaches nothing)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from trees import PROCFS_TREES

TREE = str(PROCFS_TREES / "linux-5.15-ubuntu22")
TOKEN = "write-token-3f9a"
READ_TOKEN = "read-token-77c1"


def request(agent: AgentProcess, method: str, path: str, body=None, token: str | None = TOKEN):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def doc(agent: AgentProcess) -> dict:
    status, _, body = request(agent, "GET", "/api/v1/config", token=None)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def files(tmp_path):
    token_file = tmp_path / "write-tokens"
    token_file.write_text(f"# the API's writers\n{TOKEN}\n")
    token_file.chmod(0o600)
    config = tmp_path / "agent.conf"
    config.write_text("[agent]\ncpu-window = 3\nnet-exclude = ^veth\n[collector.hwmon]\nenabled = false\n")
    return tmp_path, token_file, config


def test_the_configuration_with_where_each_value_came_from(files):
    tmp_path, token_file, config = files
    read_tokens = tmp_path / "read-tokens"
    read_tokens.write_text(READ_TOKEN + "\n")
    read_tokens.chmod(0o600)
    with AgentProcess("--config", str(config), "--procfs", TREE, "--net-exclude", "^docker",
                      "--auth-token-file", str(read_tokens), "--api-write-token-file", str(token_file)) as agent:
        status, headers, body = request(agent, "GET", "/api/v1/config", token=READ_TOKEN)
        assert status == 200 and headers["Content-Type"] == "application/json"
        document = json.loads(body)
        options = document["options"]
        assert options["cpu-window"] == {"value": 3.0, "source": "file", "changeable": True, "reload": True}
        # The flag over the file's ^veth.
        assert options["net-exclude"] == {"value": "^docker", "source": "flag", "changeable": True, "reload": True}
        assert options["max-connections"] == {"value": 64, "source": "default", "changeable": False,
                                              "reload": True}
        assert options["pidfile"]["reload"] is False
        assert document["collectors"]["hwmon"]["enabled"] is False
        assert document["collectors"]["hwmon"]["source"] == "file"
        assert document["collectors"]["filesystem"]["options"]["mount-timeout"] == {"value": 5.0,
                                                                                    "source": "default"}
        # Secrets never: the files' paths, not their tokens.
        assert options["auth-token-file"]["value"] == str(read_tokens)
        assert READ_TOKEN.encode() not in body and TOKEN.encode() not in body
        # Reads need the read token like everything else.
        assert request(agent, "GET", "/api/v1/config", token=None)[0] == 401


def test_collectors_show_their_state(files):
    tmp_path, token_file, config = files
    with AgentProcess("--config", str(config), "--procfs", TREE) as agent:
        agent.metrics_text()  # one collection
        status, _, body = request(agent, "GET", "/api/v1/collectors", token=None)
        states = {c["name"]: c for c in json.loads(body)["collectors"]}
        assert states["stat"]["enabled"] and states["stat"]["outcome"] == "ok"
        assert states["stat"]["duration_seconds"] > 0 and not states["stat"]["stuck"]
        assert states["hwmon"] == {"name": "hwmon", "enabled": False, "outcome": "disabled",
                                   "duration_seconds": None, "error": None, "stuck": False, "last_success": None}
        status, _, body = request(agent, "GET", "/api/v1/collectors/meminfo", token=None)
        assert status == 200 and json.loads(body)["name"] == "meminfo"
        status, _, body = request(agent, "GET", "/api/v1/collectors/nope", token=None)
        assert status == 404 and "no collector 'nope'" in json.loads(body)["error"]


def test_a_change_applies_at_once_and_is_logged_with_the_peer(files):
    tmp_path, token_file, config = files
    with AgentProcess("--config", str(config), "--procfs", TREE, "--api-write-token-file", str(token_file)) as agent:
        assert "node_network_receive_bytes_total" in agent.metrics_text()
        status, _, body = request(agent, "PUT", "/api/v1/collectors/netdev", {"enabled": False})
        assert status == 200 and json.loads(body)["enabled"] is False
        text = agent.metrics_text()
        assert "node_network_receive_bytes_total" not in text
        assert 'agent_source_success{source="netdev"}' not in text
        status, _, body = request(agent, "PATCH", "/api/v1/config",
                                  {"options": {"cpu-window": 2, "log-level": "debug"},
                                   "collectors": {"netdev": {"enabled": True, "options": {"timeout": 2}}}})
        assert status == 200, body
        document = json.loads(body)
        assert document["options"]["cpu-window"] == {"value": 2.0, "source": "api", "changeable": True,
                                                     "reload": True}
        assert document["collectors"]["netdev"]["enabled"] and document["collectors"]["netdev"]["source"] == "api"
        assert "node_network_receive_bytes_total" in agent.metrics_text()
        # null takes the API's word back: the file's value holds again.
        status, _, body = request(agent, "PATCH", "/api/v1/config", {"options": {"cpu-window": None}})
        assert json.loads(body)["options"]["cpu-window"] == {"value": 3.0, "source": "file", "changeable": True,
                                                             "reload": True}
        assert wait_for_line(agent, "cpu-window back to the file's")
        logged = [line for line in agent.stderr_lines if "changed through the API" in line]
        assert len(logged) == 3 and all("by 127.0.0.1:" in line for line in logged), logged
        assert "collector netdev off" in logged[0] and "cpu-window='2'" in logged[1]


def test_a_bad_change_is_refused_whole_with_the_command_lines_message(files):
    tmp_path, token_file, config = files
    cli = subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", TREE, "--cpu-window", "-1"],
                         capture_output=True, text=True, timeout=60)
    cli_reason = cli.stderr.strip().split(": ", 3)[-1]  # after "monitoring-agent: error: --cpu-window:"
    with AgentProcess("--config", str(config), "--procfs", TREE, "--api-write-token-file", str(token_file)) as agent:
        before = doc(agent)
        status, headers, body = request(agent, "PATCH", "/api/v1/config",
                                        {"options": {"log-level": "debug", "cpu-window": -1}})
        assert status == 400 and headers["Content-Type"] == "application/json"
        error = json.loads(body)["error"]
        assert error == f"API: cpu-window: {cli_reason}" and "\n" not in error
        assert doc(agent) == before  # the valid half was not applied either
        for change, reason in [
            ({"options": {"listen": "127.0.0.1:1"}}, "API: listen: not an option the API may change"),
            ({"options": {"bogus": "1"}}, "API: bogus: unknown option"),
            ({"options": {"push-interval": "soon"}}, "options.push-interval: expected a number or null"),
            ({"options": {"log-level": 3}}, "options.log-level: expected a string or null"),
            ({"collectors": {"nope": {"enabled": False}}}, "API: collector 'nope': unknown collector"),
            ({"collectors": {"stat": {"options": {"per-cpu": "maybe"}}}}, "collectors.stat.options.per-cpu"),
            ({"everything": 1}, 'expected a JSON object with "options" and/or "collectors"'),
        ]:
            status, _, body = request(agent, "PATCH", "/api/v1/config", change)
            assert status == 400 and reason in json.loads(body)["error"], (change, body)
        status, _, body = request(agent, "PUT", "/api/v1/collectors/stat", {"options": {}})
        assert status == 400 and '"enabled" (true or false) is required' in json.loads(body)["error"]
        assert doc(agent) == before
        assert not any("changed through the API" in line for line in agent.stderr_lines)


def test_writes_need_the_write_token_and_are_off_without_one(files):
    tmp_path, token_file, config = files
    read_tokens = tmp_path / "read-tokens"
    read_tokens.write_text(READ_TOKEN + "\n")
    with AgentProcess("--procfs", TREE, "--auth-token-file", str(read_tokens)) as agent:
        status, headers, body = request(agent, "PATCH", "/api/v1/config", {"options": {"cpu-window": 2}},
                                        token=READ_TOKEN)
        assert status == 405 and headers["Allow"] == "GET, HEAD" and b"--api-write-token-file" in body
        assert request(agent, "PUT", "/api/v1/collectors/stat", {"enabled": False}, token=READ_TOKEN)[0] == 405
        assert request(agent, "PATCH", "/api/v1/config", {}, token=None)[0] == 401  # nothing learnt without one
    with AgentProcess("--procfs", TREE, "--auth-token-file", str(read_tokens),
                      "--api-write-token-file", str(token_file)) as agent:
        change = {"options": {"cpu-window": 2}}
        assert request(agent, "PATCH", "/api/v1/config", change, token=READ_TOKEN)[0] == 401
        assert request(agent, "PATCH", "/api/v1/config", change, token="wrong")[0] == 401
        assert request(agent, "PATCH", "/api/v1/config", change, token=TOKEN)[0] == 200
        assert request(agent, "DELETE", "/api/v1/config", token=TOKEN)[0] == 405


def test_peers_outside_the_allowlist_cannot_write(files):
    tmp_path, token_file, config = files
    with AgentProcess("--procfs", TREE, "--allow", "127.0.0.2", "--api-write-token-file", str(token_file),
                      listen="127.0.0.2:0") as agent:
        import socket
        with socket.create_connection(("127.0.0.2", agent.port), timeout=5, source_address=("127.0.0.3", 0)) as s:
            body = json.dumps({"options": {"cpu-window": 2}}).encode()
            try:
                s.sendall(b"PATCH /api/v1/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                          + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                answer = s.recv(100)
            except ConnectionResetError:
                answer = b""
            assert answer == b""  # closed without an answer
        assert not any("changed through the API" in line for line in agent.stderr_lines)


def test_the_state_file_keeps_changes_across_restarts_and_reloads(files):
    tmp_path, token_file, config = files
    state = tmp_path / "api-state.json"
    args = ("--config", str(config), "--procfs", TREE, "--api-write-token-file", str(token_file),
            "--api-state-file", str(state))
    with AgentProcess(*args) as agent:
        assert request(agent, "PATCH", "/api/v1/config", {"options": {"cpu-window": 2},
                                                          "collectors": {"uptime": {"enabled": False}}})[0] == 200
    assert json.loads(state.read_text()) == {"options": {"cpu-window": "2"}, "collectors": {"uptime": {"enabled": False}}}
    assert state.stat().st_mode & 0o777 == 0o600
    with AgentProcess(*args) as agent:  # restarted: the changes hold
        document = doc(agent)
        assert document["options"]["cpu-window"]["value"] == 2.0 and document["options"]["cpu-window"]["source"] == "api"
        assert document["collectors"]["uptime"]["enabled"] is False
        agent.proc.send_signal(signal.SIGHUP)  # a reload keeps them too
        assert wait_for_line(agent, "reloaded configuration")
        assert doc(agent)["options"]["cpu-window"]["value"] == 2.0


def test_without_a_state_file_a_reload_drops_the_changes(files):
    tmp_path, token_file, config = files
    with AgentProcess("--config", str(config), "--procfs", TREE, "--api-write-token-file", str(token_file)) as agent:
        assert request(agent, "PATCH", "/api/v1/config", {"options": {"cpu-window": 2}})[0] == 200
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for_line(agent, "reloaded configuration")
        assert doc(agent)["options"]["cpu-window"] == {"value": 3.0, "source": "file", "changeable": True,
                                                       "reload": True}


def test_a_bad_state_file_stops_start_up_with_one_line(tmp_path):
    state = tmp_path / "state.json"
    state.write_text('{"options": {"cpu-window": 2}}')  # a number, where the file keeps texts
    run = subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", TREE, "--api-state-file", str(state)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert f"api-state-file {state}: not the agent's state" in run.stderr
    state.write_text('{"options": {"listen": "1.2.3.4:5"}}')
    run = subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", TREE, "--api-state-file", str(state)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "API: listen: not an option the API may change" in run.stderr


def wait_for_line(agent: AgentProcess, text: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in agent.stderr_lines):
            return True
        time.sleep(0.05)
    return False


SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
UNSHARE = shutil.which("unshare")


@pytest.mark.slow
@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis not installed (pip install -e '.[test]')")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(files):
    tmp_path, token_file, config = files
    if UNSHARE is None or subprocess.run([UNSHARE, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("no network namespace here (unshare -n): needs root and util-linux")
    state = tmp_path / "state.json"
    script = f"""
set -e
ip link set lo up
{sys.executable} -m agent --listen 127.0.0.1:18080 --procfs {TREE} --api-write-token-file {token_file} \\
    --api-state-file {state} --log-level warning 2> {tmp_path}/agent.log &
agent=$!
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
set +e
{SCHEMATHESIS} run http://127.0.0.1:18080/api/v1/openapi.json --checks all \\
    --exclude-checks positive_data_acceptance -H 'Authorization: Bearer {TOKEN}' \\
    --max-examples 20 --seed 7 --max-time 60 --request-timeout 10
status=$?
kill -0 $agent || status=99  # the agent must still run
kill $agent; wait $agent
exit $status
"""
    run = subprocess.run([UNSHARE, "-n", "bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
    assert "Traceback" not in (tmp_path / "agent.log").read_text()
