"""The alert path end to end: a real Prometheus (Debian's package) scrapes
two agents on fixture trees, one of them driven to high CPU, plus a target
where nothing listens; the deploy rules load (with every `for:` cut to a
few seconds), NodeHighCPU fires for the busy host only, and Debian's
prometheus-alertmanager routes it to a webhook receiver run by the test."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path

from agentproc import AgentProcess
from promstack import (PROMETHEUS_DIR, Alertmanager, Prometheus, WebhookReceiver, free_port, get_json, require,
                       wait_until)
from test_e2e import copy_tree, stat_text, write_in_place

FIXTURE = Path(__file__).parent / "fixtures" / "procfs" / "linux-5.15-ubuntu22"
SHORT_FOR = "3s"


def render_alert_rules(dst: Path) -> Path:
    """alert_rules.yml with every `for:` shortened, and nothing else changed."""
    text = (PROMETHEUS_DIR / "alert_rules.yml").read_text()
    rendered, n = re.subn(r"^(\s+for: )\d+[smh]$", rf"\g<1>{SHORT_FOR}", text, flags=re.M)
    assert n == len(re.findall(r"^\s+- alert: ", text, re.M))
    dst.write_text(rendered)
    return dst


class CpuFeeder:
    """Rewrites each tree's stat in place every 0.5 s, as the kernel's
    counters would move: ticks (busy, idle) per step.  Bounded in time."""

    def __init__(self, trees: dict[Path, tuple[int, int]], limit: float = 120.0):
        self.trees = trees
        self.stop_event = threading.Event()
        self.limit = limit
        self.counters = {}
        for tree, (busy, idle) in trees.items():
            # Since boot already at the same share, so even the agent's first
            # (since-boot) value shows it.
            self.counters[tree] = [busy * 100, idle * 100]
            self._write(tree)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _write(self, tree: Path):
        busy, idle = self.counters[tree]
        write_in_place(tree / "stat", stat_text(user=busy * 4 // 5, system=busy - busy * 4 // 5, idle=idle, iowait=0))

    def _run(self):
        start = time.monotonic()
        while not self.stop_event.wait(0.5) and time.monotonic() - start < self.limit:
            for tree, (busy, idle) in self.trees.items():
                self.counters[tree][0] += busy
                self.counters[tree][1] += idle
                self._write(tree)

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)


def alerts_named(prom: Prometheus, name: str) -> list[dict]:
    return [a for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


def test_high_cpu_fires_for_the_busy_host_only_and_reaches_the_webhook(tmp_path):
    require("prometheus")
    require("prometheus-alertmanager")
    started = time.monotonic()
    hot = copy_tree(FIXTURE, tmp_path / "hot")
    cold = copy_tree(FIXTURE, tmp_path / "cold")
    with contextlib.ExitStack() as stack:
        # 95 of 100 ticks busy on one host, 15 on the other.
        feeder = CpuFeeder({hot: (95, 5), cold: (15, 85)})
        stack.callback(feeder.stop)
        hot_agent = stack.enter_context(AgentProcess("--procfs", str(hot)))
        cold_agent = stack.enter_context(AgentProcess("--procfs", str(cold)))
        hot_target, cold_target = f"127.0.0.1:{hot_agent.port}", f"127.0.0.1:{cold_agent.port}"
        dead_target = f"127.0.0.1:{free_port()}"  # nothing listens there

        webhook = stack.enter_context(WebhookReceiver())
        alertmanager = stack.enter_context(Alertmanager(tmp_path, {
            "route": {"receiver": "test", "group_by": ["alertname", "instance"],
                      "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test", "webhook_configs": [{"url": webhook.url, "send_resolved": False}]}],
        }))

        # The fleet config's shape: one job, static targets and file_sd.
        targets_file = tmp_path / "targets.json"
        targets_file.write_text(f'[{{"targets": ["{cold_target}"], "labels": {{"role": "web"}}}}]')
        prom = stack.enter_context(Prometheus(tmp_path, {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(PROMETHEUS_DIR / "recording_rules.yml"),
                           str(render_alert_rules(tmp_path / "alert_rules.yml"))],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            "scrape_configs": [{"job_name": "monitoring-agent",
                                "static_configs": [{"targets": [hot_target, dead_target], "labels": {"role": "web"}}],
                                "file_sd_configs": [{"files": [str(targets_file)]}]}],
        }))

        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        assert {r["name"] for r in rules} >= {"NodeHighCPU", "MonitoringAgentTargetDown"}
        assert all(r["health"] in ("ok", "unknown") for r in rules), rules  # unknown: not evaluated yet

        def firing():
            got = {a["labels"]["instance"] for a in alerts_named(prom, "NodeHighCPU") if a["state"] == "firing"}
            return got if hot_target in got else None
        try:
            assert wait_until(firing, 45, what="NodeHighCPU firing") == {hot_target}
        except AssertionError:
            raise AssertionError(f"{prom.api('alerts')}\n{prom.log()}") from None

        # The quiet host is scraped, and its CPU is what the feeder makes it.
        def usage():
            # Both hosts' last scrapes (one that ran past the 1 s scrape
            # timeout on a loaded host leaves its series out for a moment).
            got = {s["metric"]["instance"]: float(s["value"][1]) for s in prom.query("node_cpu_usage_percent")}
            return got if hot_target in got and cold_target in got else None
        got = wait_until(usage, 15, what="both hosts' node_cpu_usage_percent")
        assert got[hot_target] > 90 and got[cold_target] < 20, got
        assert [a["labels"]["instance"] for a in alerts_named(prom, "NodeHighCPU")] == [hot_target]
        hot_alert = alerts_named(prom, "NodeHighCPU")[0]
        assert hot_alert["labels"]["severity"] == "warning" and hot_alert["labels"]["role"] == "web"
        assert hot_alert["annotations"]["summary"] == f"CPU above 80 % on {hot_target}"
        # The target that answers nobody is down, the two agents are not.
        wait_until(lambda: {a["labels"]["instance"] for a in alerts_named(prom, "MonitoringAgentTargetDown")
                            if a["state"] == "firing"} == {dead_target}, 20, what="MonitoringAgentTargetDown")
        assert all(r["health"] == "ok" for g in prom.api("rules")["groups"] for r in g["rules"])

        def delivered():
            return [a for a in webhook.alerts() if a["labels"]["alertname"] == "NodeHighCPU"]
        try:
            received = wait_until(delivered, 30, what="NodeHighCPU at the webhook")
        except AssertionError:
            raise AssertionError(f"{webhook.payloads}\n{alertmanager.log()}") from None
        assert {a["labels"]["instance"] for a in received} == {hot_target}
        assert all(a["status"] == "firing" for a in received)
        assert received[0]["annotations"]["summary"] == f"CPU above 80 % on {hot_target}"
        # And Alertmanager itself holds it.
        held = get_json(f"http://127.0.0.1:{alertmanager.port}/api/v2/alerts?filter=alertname%3D%22NodeHighCPU%22")
        assert [a["labels"]["instance"] for a in held] == [hot_target]
    print(f"end to end in {time.monotonic() - started:.1f} s")
