"""The collector table (agent.collectors.TABLE) and what is derived from it:
node_exporter's --collector.NAME / --no-collector.NAME /
--collector.disable-defaults flags, [collector.NAME] config sections, a
reload that changes the set, /health, and the README's table.  Run through
the real command on a fixture tree, on both backends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent import __version__, collectors
from agentproc import AgentProcess
from exposition_parse import parse_samples
from test_service import wait_for
from trees import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
# Trees on which every collector has something to show: the seed's six
# /proc files, /proc/pressure, and /sys/class/thermal.
TREE = FIXTURES / "procfs-host" / "linux-6.8-host"
SYSFS = FIXTURES / "sysfs" / "desktop"
NAMES = [entry.name for entry in collectors.TABLE]
# What runs without a --collector.NAME flag.  The ones off by default (systemd:
# node_exporter's default, and it needs a live bus) are tested in their own
# files against their real source.
DEFAULT = [entry.name for entry in collectors.TABLE if entry.enabled_by_default]
# Options that give each collector something to expose on TREE (the
# textfile collector reads nothing until it is given a directory).
OPTIONS = ("--collector.textfile.directory", str(ROOT / "tests" / "fixtures" / "textfile" / "good"))


def once(*args: str, backend: str = "python") -> dict:
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", str(TREE), "--sysfs", str(SYSFS),
                        "--backend", backend, *OPTIONS, *args],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return parse_samples(r.stdout)


def host_families(samples: dict) -> set[str]:
    return {name for name, _ in samples if not name.startswith("agent_")}


def sources(samples: dict) -> set[str]:
    return {dict(labels)["source"] for name, labels in samples if name == "agent_source_success"}


@pytest.fixture(scope="module")
def everything() -> dict:
    return once()


def test_each_entry_builds_the_collector_of_its_name():
    from agent.cpu import CpuWindow
    from agent.config import Config
    built = collectors.build(NAMES, Config(), CpuWindow(1.0))
    assert [c.source for c in built] == NAMES


@pytest.mark.parametrize("name", DEFAULT)
def test_no_collector_flag_leaves_out_exactly_that_collector(name, backend_name, everything):
    alone = once("--collector.disable-defaults", f"--collector.{name}", backend=backend_name)
    without = once(f"--no-collector.{name}", backend=backend_name)
    assert sources(alone) == {name}
    assert sources(without) == set(DEFAULT) - {name}
    mine = host_families(alone)
    assert mine, f"{name} exposes nothing on {TREE.name}"
    # Together they are the whole exposition, and they share no family.
    assert host_families(without) | mine == host_families(everything)
    assert not host_families(without) & mine


def test_disable_defaults_alone_serves_only_the_agents_own_metrics():
    samples = once("--collector.disable-defaults")
    assert host_families(samples) == set() and sources(samples) == set()
    assert ("agent_build_info", (("version", __version__), ("backend", "python"))) in samples


def test_flags_win_over_config_sections(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\n\n[collector.loadavg]\nenabled = false\n\n[collector.uptime]\nenabled = no\n")
    assert sources(once("--config", str(conf))) == set(DEFAULT) - {"loadavg", "uptime"}
    assert sources(once("--config", str(conf), "--collector.uptime")) == set(DEFAULT) - {"loadavg"}
    conf.write_text("[collector.meminfo]\nenabled = true\n")
    assert sources(once("--config", str(conf), "--collector.disable-defaults")) == {"meminfo"}


@pytest.mark.parametrize("text, expected", [
    ("[collector.nope]\nenabled = true\n", "[collector.nope]: unknown collector 'nope' (known: stat, meminfo"),
    ("[collector.stat]\nenabled = maybe\n", "[collector.stat] enabled: expected true or false, got 'maybe'"),
    ("[collector.loadavg]\ntimout = 1\n", "[collector.loadavg]: unknown key 'timout' (expected enabled, timeout)"),
    ("[collector.stat]\ntimout = 1\n", "[collector.stat]: unknown key 'timout' (expected enabled, timeout, per-cpu)"),
    ("[collector.stat]\ntimeout = 0\n",
     "[collector.stat] timeout: expected seconds between 0 (exclusive) and 300, got '0'"),
    ("[collector.stat]\nper_cpu = 2\n", "[collector.stat] per_cpu: expected true or false, got '2'"),
    ("[collectors]\nstat = true\n", "unknown section [collectors] (expected [agent], [collector.NAME] or [alert.NAME])"),
])
def test_bad_collector_sections_are_one_line_and_exit_2(text, expected, tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text(text)
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--config", str(conf)], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"monitoring-agent: error: config file {conf}: {expected}")


def test_unknown_collector_flag_is_one_line_and_exit_2():
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--collector.nope"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr == "monitoring-agent: error: unrecognized arguments: --collector.nope\n"


def test_a_reload_switches_collectors_and_health_follows(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nprocfs = {TREE}\nsysfs = {SYSFS}\n")
    with AgentProcess("--config", str(conf)) as agent:
        assert sources(parse_samples(agent.metrics_text())) == set(DEFAULT)
        conf.write_text(f"[agent]\nprocfs = {TREE}\nsysfs = {SYSFS}\n[collector.diskstats]\nenabled = false\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded configuration" in agent.log())
        samples = parse_samples(agent.metrics_text())
        assert sources(samples) == set(DEFAULT) - {"diskstats"}
        assert not any(name.startswith("node_disk_") for name, _ in samples)
        health = json.loads(agent.request("/health")[2])
        assert set(health["sources"]) == set(DEFAULT) - {"diskstats"} and health["status"] == "ok"
        conf.write_text(f"[agent]\nprocfs = {TREE}\nsysfs = {SYSFS}\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: agent.log().count("reloaded configuration") == 2)
        assert sources(parse_samples(agent.metrics_text())) == set(DEFAULT)


def test_readme_collector_table_is_derived_from_the_table():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    readme = (ROOT / "README.md").read_text()
    for entry in collectors.TABLE:
        assert f"| `{entry.name}` | {'on' if entry.enabled_by_default else 'off'} | {entry.help} |" in readme


def test_promtool_is_clean_with_every_collector_on(backend_name, tmp_path):
    from test_e2e import promtool_check
    # Textfiles whose own names pass promtool's lint too (the `good` set has
    # a counter without _total on purpose: the agent serves what it is given).
    for name in ("apt.prom", "backup.prom"):
        (tmp_path / name).write_bytes((FIXTURES / "textfile" / "good" / name).read_bytes())
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", str(TREE), "--sysfs", str(SYSFS),
                        "--backend", backend_name, "--collector.textfile.directory", str(tmp_path),
                        *(f"--collector.{name}" for name in NAMES)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    samples = parse_samples(r.stdout)
    assert sources(samples) == set(NAMES)
    assert all(samples[("agent_source_success", (("source", name),))] == "1" for name in NAMES)
    promtool_check(r.stdout)
