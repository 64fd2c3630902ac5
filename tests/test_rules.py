"""deploy/prometheus/: promtool checks the rules and the scrape config,
runs the rule unit tests (every alert fires and stays silent where it
should), and the unit tests catch a broken threshold; amtool checks the
Alertmanager routing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from promstack import PROMETHEUS_DIR, require

RULE_FILES = [PROMETHEUS_DIR / "recording_rules.yml", PROMETHEUS_DIR / "alert_rules.yml"]
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning", "info"}


def run(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL)


def alert_blocks(text: str) -> dict[str, str]:
    """Each `- alert: Name` rule's text, up to the next rule."""
    parts = re.split(r"^\s*- (?=alert:|record:)", text, flags=re.M)
    return {m.group(1): part for part in parts if (m := re.match(r"alert: (\w+)", part))}


ALERTS = alert_blocks((PROMETHEUS_DIR / "alert_rules.yml").read_text())
RECORDS = re.findall(r"^\s*- record: (\S+)", (PROMETHEUS_DIR / "recording_rules.yml").read_text(), re.M)


def test_promtool_check_rules():
    r = run(require("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(RECORDS)} rules found" in r.stdout
    assert f"SUCCESS: {len(ALERTS)} rules found" in r.stdout


def test_promtool_check_config_with_file_sd_targets():
    # Also checks the rule files it names and the file_sd target files.
    r = run(require("promtool"), "check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "SUCCESS: 2 rule files found" in r.stdout


def test_amtool_check_config():
    r = run(require("amtool"), "check-config", str(PROMETHEUS_DIR / "alertmanager.yml"))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_promtool_rule_unit_tests_pass():
    assert UNIT_TESTS
    r = run(require("promtool"), "test", "rules", *map(str, UNIT_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(UNIT_TESTS), r.stdout


def test_the_seed_scenarios_each_have_an_alert():
    assert set(ALERTS) == {"NodeHighCPU", "NodeLowMemory", "NodeSwapInUse", "NodeDiskBusy", "NodeNetworkErrors",
                           "NodeLoadAboveCPUCount", "MonitoringAgentTargetDown", "MonitoringAgentSourceFailing"}
    assert "for: 5m" in ALERTS["NodeHighCPU"] and "> 80" in ALERTS["NodeHighCPU"]
    assert "< 0.10" in ALERTS["NodeLowMemory"]
    assert "> 0.9" in ALERTS["NodeDiskBusy"] and "for: 10m" in ALERTS["NodeDiskBusy"]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_has_severity_summary_and_description(name):
    block = ALERTS[name]
    severity = re.search(r"^\s+severity: (\w+)$", block, re.M)
    assert severity and severity.group(1) in SEVERITIES, block
    assert re.search(r"^\s+for: \d+m$", block, re.M), block
    assert re.search(r"^\s+summary: ", block, re.M) and re.search(r"^\s+description: ", block, re.M), block


def unit_test_cases() -> tuple[set, set]:
    """(alerts with a case where they fire, alerts with a case where they
    do not), read from `alertname:` and the `exp_alerts:` line after it."""
    fires, silent = set(), set()
    for path in UNIT_TESTS:
        for name, rest in re.findall(r"alertname: (\w+)\n\s+exp_alerts:(.*)", path.read_text()):
            (silent if rest.strip() == "[]" else fires).add(name)
    return fires, silent


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    fires, silent = unit_test_cases()
    assert set(ALERTS) - fires == set(), "alerts never shown firing"
    assert set(ALERTS) - silent == set(), "alerts never shown silent"


def test_every_recording_rule_has_a_unit_test():
    tested = set()
    for path in UNIT_TESTS:
        tested |= set(re.findall(r"^\s+- expr: (\S+)$", path.read_text(), re.M))
    assert set(RECORDS) - tested == set()


# One change per alert that a careless edit could make; the unit tests must
# notice each one.
MUTATIONS = {
    "NodeHighCPU": ("> 80", "> 95"),
    "NodeLowMemory": ("< 0.10", "<= 0.10"),
    "NodeSwapInUse": ("for: 10m", "for: 15m"),
    "NodeDiskBusy": ("> 0.9", ">= 0.9"),
    "NodeNetworkErrors": ("for: 10m", "for: 5m"),
    "NodeLoadAboveCPUCount": ("> on(job, instance) node_cpus_online", ">= on(job, instance) node_cpus_online"),
    "MonitoringAgentTargetDown": ('up{job="monitoring-agent"}', "up"),
    "MonitoringAgentSourceFailing": ("== 0", "< 2"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_unit_tests_catch_a_broken_alert(tmp_path, name):
    promtool = require("promtool")
    text = (PROMETHEUS_DIR / "alert_rules.yml").read_text()
    old, new = MUTATIONS[name]
    block = ALERTS[name]
    assert block.count(old) == 1
    (tmp_path / "alert_rules.yml").write_text(text.replace(block, block.replace(old, new)))
    (tmp_path / "tests").mkdir()
    shutil.copy(PROMETHEUS_DIR / "tests" / "alert_rules_test.yml", tmp_path / "tests")
    r = run(promtool, "test", "rules", "tests/alert_rules_test.yml", cwd=tmp_path)
    assert r.returncode != 0, f"{name}: {old!r} -> {new!r} went unnoticed"
    assert name in r.stdout + r.stderr
