"""deploy/grafana/monitoring-agent.json: a dashboard Grafana imports (current
schema, a data source variable and an instance variable), built on the
seed's PromQL; every query in it parses and returns data from a real
Prometheus that scrapes two agents on fixture trees, with the deploy
recording rules loaded and healthy."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from promstack import GRAFANA_DIR, PROMETHEUS_DIR, Prometheus, wait_until
from test_e2e import copy_tree

DASHBOARD = json.loads((GRAFANA_DIR / "monitoring-agent.json").read_text())
FIXTURES = Path(__file__).parent / "fixtures" / "procfs"
SEED_QUERIES = ["avg(node_cpu_usage_percent)",
                "topk(5, node_memory_used_bytes / node_memory_total_bytes * 100)",
                "sum(rate(node_network_transmit_bytes_total[5m]))"]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panels(dashboard=DASHBOARD):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside collapsed rows


def targets():
    return [(panel["title"], target) for panel in panels() for target in panel.get("targets", [])]


def variables() -> dict:
    return {v["name"]: v for v in DASHBOARD["templating"]["list"]}


def test_dashboard_has_the_current_schema_and_the_variables():
    assert DASHBOARD["schemaVersion"] >= 36  # Grafana 9.0 and later import it unchanged
    assert DASHBOARD["uid"] and DASHBOARD["title"] and DASHBOARD["id"] is None
    v = variables()
    assert v["datasource"]["type"] == "datasource" and v["datasource"]["query"] == "prometheus"
    assert v["instance"]["type"] == "query" and v["instance"]["datasource"] == DATASOURCE
    assert v["instance"]["multi"] and v["instance"]["includeAll"]
    assert v["instance"]["query"]["query"] == v["instance"]["definition"]


def test_panels_are_laid_out_on_the_grid_and_use_the_datasource_variable():
    ids, cells = set(), set()
    for panel in panels():
        assert panel["id"] not in ids, panel["title"]
        ids.add(panel["id"])
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
            assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_dashboard_uses_the_seed_queries_and_covers_every_area():
    exprs = [t["expr"] for _, t in targets()]
    for seed in SEED_QUERIES:
        assert seed in exprs
    text = "\n".join(exprs)
    for metric in ("node_cpu_usage_percent", "node_memory_available_bytes", "node_swap_used_bytes",
                   "node_disk_io_time_seconds_total", "node_disk_read_bytes_total", "node_load15",
                   "node_network_receive_errors_total", "agent_source_success", "agent_build_info", "up{"):
        assert metric in text, metric


def grafana_regex_escape(value: str) -> str:
    # What Grafana's Prometheus data source does to each value of a
    # multi-value variable used in a regex matcher: a backslash (doubled for
    # the PromQL string) before every regex metacharacter.
    return re.sub(r"([\\^$*+?.()|{}\[\]'])", r"\\\\\1", value)


def substitute(expr: str, values: dict[str, list[str]]) -> str:
    def one(m):
        return "(" + "|".join(grafana_regex_escape(v) for v in values[m.group(1) or m.group(2)]) + ")"
    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)
    assert "$" not in out, out
    return out


def test_every_dashboard_query_returns_data_from_prometheus(tmp_path):
    trees = [copy_tree(FIXTURES / name, tmp_path / name) for name in ("linux-5.15-ubuntu22", "linux-4.19-debian10")]
    with AgentProcess("--procfs", str(trees[0])) as a, AgentProcess("--procfs", str(trees[1])) as b:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(PROMETHEUS_DIR / "recording_rules.yml"), str(PROMETHEUS_DIR / "alert_rules.yml")],
            "scrape_configs": [{"job_name": "monitoring-agent", "static_configs": [
                {"targets": [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]}]}],
        }
        with Prometheus(tmp_path, config) as prom:
            started = time.monotonic()
            # The instance variable, as Grafana resolves label_values(metric, label).
            m = re.fullmatch(r"label_values\((\w+), (\w+)\)", variables()["instance"]["definition"])
            label_values = lambda: prom.api(f"label/{m.group(2)}/values", **{"match[]": m.group(1)})  # noqa: E731
            instances = wait_until(lambda: len(label_values()) == 2 and label_values(), 30, what="both agents")
            assert set(instances) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}
            queries = {(title, t["expr"]): (substitute(t["expr"], {"instance": instances}), t.get("instant", False))
                       for title, t in targets()}

            def run(promql: str, instant: bool) -> list:
                if instant:
                    return prom.query(promql)
                now = time.time()
                return prom.api("query_range", query=promql, start=now - 60, end=now, step=1)["result"]

            # Every query parses at once (a parse error fails here, with
            # Prometheus's message); rates need two samples, the recording
            # rules an evaluation after them: wait for data, at most 60 s.
            for promql, instant in queries.values():
                run(promql, instant)
            missing = dict(queries)

            def all_have_data():
                for key in list(missing):
                    if run(*missing[key]):
                        del missing[key]
                return not missing
            try:
                wait_until(all_have_data, 60, interval=1, what="data for every query")
            except AssertionError:
                raise AssertionError(f"no data for {sorted(missing)}\n{prom.log()}") from None

            groups = prom.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            assert len(rules) == sum(len(re.findall(r"^\s*- (?:alert|record): ", f.read_text(), re.M))
                                     for f in map(Path, config["rule_files"]))
            assert all(r["health"] == "ok" for r in rules), rules
            records = [r["name"] for r in rules if r["type"] == "recording"]
            wait_until(lambda: all(prom.query(name) for name in records), 30, what="every recorded series")
            assert prom.query('up{job="monitoring-agent"} == 0') == []
            print(f"all {len(queries)} queries had data after {time.monotonic() - started:.1f} s")
