"""Alerts without Prometheus ([alert.NAME] rules, docs/STANDALONE_ALERTS.md): the agent
process on a fixture tree whose /proc/stat a thread drives busy or idle,
notifying Debian's real Alertmanager (API v2, its webhook receiver behind
it) and a webhook of its own with Alertmanager's payload."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.alerts import parse_matchers, parse_rule
from agentproc import AgentProcess
from test_push import wait_for
from trees import PROCFS_TREES

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TREE = PROCFS_TREES / "linux-5.15-ubuntu22"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hook:
    """A webhook receiver on 127.0.0.1 recording each JSON body; answers
    with the next of `statuses` (200 once they run out)."""

    def __init__(self, statuses=()):
        self.bodies: list[dict] = []
        self.statuses = list(statuses)
        self.attempts = 0
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str, alertname: str) -> list[dict]:
        return [a for b in self.bodies for a in b["alerts"]
                if a["status"] == status and a["labels"].get("alertname") == alertname]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    made = []

    def make(statuses=()):
        made.append(Hook(statuses))
        return made[-1]

    yield make
    for h in made:
        h.close()


class CpuDriver:
    """Rewrites the tree's /proc/stat every 20 ms: the aggregate cpu line
    gains `busy` user ticks and `idle` idle ticks each time (so the CPU is
    busy/(busy+idle) used), in place, as the kernel's file changes."""

    def __init__(self, tree: Path):
        self.path = tree / "stat"
        self.lines = self.path.read_text().splitlines(keepends=True)
        self.user, self.idle = 48952541, 749017626
        self.busy_step, self.idle_step = 0, 10
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def set(self, busy: int, idle: int):
        self.busy_step, self.idle_step = busy, idle

    def _run(self):
        while not self.stop.wait(0.02):
            self.user += self.busy_step
            self.idle += self.idle_step
            first = f"cpu  {self.user} 1671091 15799156 {self.idle} 3272437 0 1017808 0 4895248 0\n"
            # Whole, by rename: a reader never sees a half-written file,
            # which a kernel's never is either.
            new = self.path.with_name("stat.new")
            new.write_text(first + "".join(self.lines[1:]))
            os.rename(new, self.path)

    def close(self):
        self.stop.set()
        self.thread.join(2)


@pytest.fixture
def cpu_tree(tmp_path):
    tree = tmp_path / "proc"
    shutil.copytree(TREE, tree)
    driver = CpuDriver(tree)
    yield tree, driver
    driver.close()


def replace(path: Path, text: str) -> None:
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    os.rename(new, path)


def agent_config(tmp_path: Path, agent: str, rules: str) -> Path:
    path = tmp_path / "agent.conf"
    path.write_text("[agent]\ncpu-window = 0.2\nalert-interval = 0.1\n" + agent + "\n" + rules)
    return path


HIGH_CPU = """
[alert.high_cpu]
metric = node_cpu_usage_percent
condition = > 80
clear = 50
for = 0.5s
label.severity = critical
annotation.summary = CPU at {{ $value }} % on {{ $labels.instance }}
"""


def metric_value(agent: AgentProcess, line_start: str) -> float:
    for line in agent.metrics_text().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start}")


def health_alerts(agent: AgentProcess) -> dict:
    status, _, body = agent.request("/health")
    return json.loads(body)["alerts"]


class Alertmanager:
    def __init__(self, tmp_path: Path, webhook: str):
        self.port = free_port()
        config = tmp_path / "alertmanager.yml"
        config.write_text(f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 300ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook}
        send_resolved: true
""")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_for(self._ready, 20):
            self.close()
            raise RuntimeError("alertmanager did not start: " + self.proc.stderr.read().decode()[-2000:])

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    def alerts(self) -> list[dict]:
        import urllib.request
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as resp:
            return json.loads(resp.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- the rules' syntax -----------------------------------------------------------

def test_rule_parsing_and_matchers():
    where = lambda **kw: {k.replace("_", "-"): (v, f"config file f: [alert.x] {k}") for k, v in kw.items()}
    rule = parse_rule("low_memory", where(metric="node_memory_available_bytes",
                                          divided_by="node_memory_total_bytes", condition="< 0.1",
                                          clear="0.15", **{"for": "2m"}))
    assert (rule.op, rule.threshold, rule.clear, rule.for_seconds, rule.divided_by) == (
        "<", 0.1, 0.15, 120.0, "node_memory_total_bytes")
    assert rule.holds(0.05) and not rule.holds(0.12) and rule.still_holds(0.12) and not rule.still_holds(0.2)
    matchers = parse_matchers('device="sda", mountpoint=~"/(home|var)", fstype!="tmpfs", x!~"a.*"')
    labels = {"device": "sda", "mountpoint": "/home", "fstype": "ext4", "x": "b"}
    assert all(m.matches(labels) for m in matchers)
    assert not parse_matchers('mountpoint=~"/(home|var)"')[0].matches({"mountpoint": "/home/x"})  # anchored


@pytest.mark.parametrize("section, message", [
    ("[alert.x]\nmetric = node_load1\n", "[alert.x]: condition: required"),
    ("[alert.x]\nmetric = node_load1\ncondition = 80\n", "[alert.x] condition: expected an operator"),
    ("[alert.x]\nmetric = node_load1\ncondition = > 8\nclear = 9\n", "[alert.x] clear: must be at or under"),
    ("[alert.x]\nmetric = node_load1\ncondition = > 8\nfor = soon\n", "[alert.x] for: 'soon' is not a duration"),
    ("[alert.x]\nmetric = node_load1\ncondition = > 8\nmatch = a=b\n", "[alert.x] match: cannot parse"),
    ("[alert.x]\nmetric = node_load1\ncondition = > 8\nlabel.alertname = y\n", "not a label name one may set"),
    ("[alert.x]\nmetric = node_load1\ncondition = > 8\nthreshold = 8\n", "[alert.x] threshold: unknown key"),
    ("[alert.x-y]\nmetric = node_load1\ncondition = > 8\n", "an alert name is a metric-style name"),
])
def test_a_bad_rule_stops_start_up_with_one_line(tmp_path, section, message):
    config = tmp_path / "agent.conf"
    config.write_text(section)
    run = subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "--once"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert f"config file {config}" in run.stderr


# --- end to end ------------------------------------------------------------------------

@pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager not installed "
                                                  "(scripts/install-test-packages.sh)")
def test_cpu_alert_reaches_alertmanager_and_its_webhook_then_resolves(tmp_path, hooks, cpu_tree):
    tree, driver = cpu_tree
    behind_alertmanager, direct = hooks(), hooks()
    alertmanager = Alertmanager(tmp_path, behind_alertmanager.url)
    config = agent_config(tmp_path, f"alertmanager = {alertmanager.url}\nalert-webhook = {direct.url}\n"
                                    "alert-resend = 1", HIGH_CPU)
    try:
        with AgentProcess("--config", str(config), "--procfs", str(tree), "--collector.disable-defaults",
                          "--collector.stat") as agent:
            time.sleep(1.0)  # idle: nothing fires
            assert metric_value(agent, 'agent_alert_state{alert="high_cpu"}') == 0
            assert not direct.bodies and not alertmanager.alerts()

            driver.set(busy=10, idle=0)  # 100 % busy
            assert wait_for(lambda: health_alerts(agent)["high_cpu"]["state"] == "pending", 5)
            assert wait_for(lambda: behind_alertmanager.alerts("firing", "high_cpu"), 15), \
                behind_alertmanager.bodies
            assert metric_value(agent, 'agent_alert_state{alert="high_cpu"}') == 2
            assert health_alerts(agent)["high_cpu"] == {"state": "firing", "series": 1, "pending": 0, "firing": 1}
            hostname = socket.gethostname()
            (active,) = alertmanager.alerts()
            assert active["labels"] == {"alertname": "high_cpu", "severity": "critical", "instance": hostname}
            assert active["status"]["state"] == "active"
            assert active["annotations"]["summary"] == f"CPU at 100 % on {hostname}"
            assert active["generatorURL"] == f"http://{hostname}:{agent.port}/health"
            # The agent's own webhook: Alertmanager's payload, the same fields.
            assert wait_for(lambda: direct.alerts("firing", "high_cpu"), 5)
            theirs, ours = behind_alertmanager.bodies[0], direct.bodies[0]
            assert set(ours) == set(theirs)
            assert set(ours["alerts"][0]) == set(theirs["alerts"][0])
            assert ours["alerts"][0]["labels"] == theirs["alerts"][0]["labels"]
            assert ours["alerts"][0]["fingerprint"] == theirs["alerts"][0]["fingerprint"]
            assert (ours["status"], ours["groupLabels"]) == ("firing", {"alertname": "high_cpu"})

            # 65 % busy: between clear (50) and the threshold (80): still firing.
            driver.set(busy=13, idle=7)
            time.sleep(1.5)
            assert health_alerts(agent)["high_cpu"]["state"] == "firing"
            assert not direct.alerts("resolved", "high_cpu")

            driver.set(busy=0, idle=10)  # idle: resolved, at Alertmanager and its receiver too
            assert wait_for(lambda: behind_alertmanager.alerts("resolved", "high_cpu"), 15), \
                behind_alertmanager.bodies
            assert direct.alerts("resolved", "high_cpu")
            resolved = direct.alerts("resolved", "high_cpu")[0]
            assert resolved["endsAt"] > resolved["startsAt"]
            assert metric_value(agent, 'agent_alert_state{alert="high_cpu"}') == 0
            assert metric_value(agent, f'agent_alert_notifications_sent_total{{receiver="{alertmanager.url}"}}') >= 2
    finally:
        alertmanager.close()


def test_a_receiver_that_fails_is_retried(tmp_path, hooks, cpu_tree):
    tree, driver = cpu_tree
    hook = hooks(statuses=[503, 503])
    config = agent_config(tmp_path, f"alert-webhook = {hook.url}", HIGH_CPU.replace("for = 0.5s", "for = 0s"))
    driver.set(busy=10, idle=0)
    with AgentProcess("--config", str(config), "--procfs", str(tree), "--collector.disable-defaults",
                      "--collector.stat") as agent:
        assert wait_for(lambda: hook.alerts("firing", "high_cpu"), 20)
        assert hook.attempts >= 3
        label = f'{{receiver="{hook.url}"}}'
        assert metric_value(agent, "agent_alert_notifications_failed_total" + label) == 2
        assert metric_value(agent, "agent_alert_notifications_sent_total" + label) >= 1
        assert metric_value(agent, "agent_alert_notifications_dropped_total" + label) == 0
        assert sum("failing" in line for line in agent.stderr_lines) == 1


def test_available_memory_ratio_rule(tmp_path, hooks):
    tree = tmp_path / "proc"
    shutil.copytree(TREE, tree)
    hook = hooks()
    rules = """
[alert.low_memory]
metric = node_memory_available_bytes
divided-by = node_memory_total_bytes
condition = < 0.10
label.severity = warning
annotation.summary = {{ $value }} of the memory available
"""
    config = agent_config(tmp_path, f"alert-webhook = {hook.url}", rules)
    meminfo = tree / "meminfo"
    normal = meminfo.read_text()
    with AgentProcess("--config", str(config), "--procfs", str(tree), "--collector.disable-defaults",
                      "--collector.meminfo") as agent:
        time.sleep(0.8)
        assert health_alerts(agent)["low_memory"] == {"state": "inactive", "series": 1, "pending": 0, "firing": 0}
        lines = [line if not line.startswith("MemAvailable:") else "MemAvailable:    3289088 kB"
                 for line in normal.splitlines()]  # 5 % of MemTotal (65787004 kB)
        replace(meminfo, "\n".join(lines) + "\n")
        assert wait_for(lambda: hook.alerts("firing", "low_memory"), 10)
        (alert,) = hook.alerts("firing", "low_memory")
        ratio = 3289088 / 65787004
        assert alert["annotations"]["summary"] == f"{ratio:g} of the memory available"
        replace(meminfo, normal)
        assert wait_for(lambda: hook.alerts("resolved", "low_memory"), 10)


def test_a_failed_source_neither_resolves_nor_refires(tmp_path, hooks, cpu_tree):
    tree, driver = cpu_tree
    hook = hooks()
    config = agent_config(tmp_path, f"alert-webhook = {hook.url}", HIGH_CPU.replace("for = 0.5s", "for = 0s"))
    driver.set(busy=10, idle=0)
    with AgentProcess("--config", str(config), "--procfs", str(tree), "--collector.disable-defaults",
                      "--collector.stat") as agent:
        assert wait_for(lambda: hook.alerts("firing", "high_cpu"), 20)
        driver.close()
        replace(tree / "stat", "not the kernel's stat\n")  # the stat source fails
        assert wait_for(lambda: 'agent_source_success{source="stat"} 0' in agent.metrics_text(), 5)
        time.sleep(1.0)
        assert health_alerts(agent)["high_cpu"]["state"] == "firing"
        assert not hook.alerts("resolved", "high_cpu")
        assert len(hook.alerts("firing", "high_cpu")) == 1  # no second notice of the same alert


def test_the_sample_configs_example_rules_load(tmp_path):
    sample = (Path(__file__).parent.parent / "config" / "monitoring-agent.conf").read_text()
    examples = sample[sample.index("# Alert rules"):]
    rules = "\n".join(line[2:] for line in examples.splitlines()
                      if line.startswith("# [alert.") or (line.startswith("# ") and " = " in line))
    assert rules.count("[alert.") == 2
    config = tmp_path / "rules.conf"
    config.write_text(rules + "\n")
    run = subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "--once",
                          "--procfs", str(TREE)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_a_reload_keeps_the_alerts_of_unchanged_rules(tmp_path, hooks, cpu_tree):
    import signal
    tree, driver = cpu_tree
    hook = hooks()
    config = agent_config(tmp_path, f"alert-webhook = {hook.url}", HIGH_CPU.replace("for = 0.5s", "for = 0s"))
    driver.set(busy=10, idle=0)
    with AgentProcess("--config", str(config), "--procfs", str(tree), "--collector.disable-defaults",
                      "--collector.stat") as agent:
        assert wait_for(lambda: hook.alerts("firing", "high_cpu"), 20)
        # A second rule added; high_cpu left as it was.
        config.write_text(config.read_text() + "\n[alert.load]\nmetric = node_procs_running\ncondition = >= 0\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "load" in health_alerts(agent), 10)
        assert wait_for(lambda: hook.alerts("firing", "load"), 10)
        assert health_alerts(agent)["high_cpu"]["state"] == "firing"
        assert len(hook.alerts("firing", "high_cpu")) == 1  # not notified again
