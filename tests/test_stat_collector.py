"""The stat collector's node_exporter families (cpu: seconds per CPU and
mode; stat: interrupts, context switches, forks, boot time, processes)
against node_exporter 1.5.0 on the same files, on both backends: every
fixture tree, a generated 256-CPU tree, and the /proc/stat sequences of
tests/fixtures/cpu-sequences/ fed to a running agent and a running
node_exporter, scrape by scrape.  Then the per-cpu option."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentproc import AgentProcess
from exposition_parse import parse_samples
from oracle import Exposition, NodeExporter, agent_once, assert_same_families, node_exporter_on
from test_e2e import write_in_place
from test_service import wait_for
from trees import FIXTURES, procfs_trees

CPU_FAMILIES = ("node_cpu_seconds_total", "node_cpu_guest_seconds_total")
# (node_procs_running and node_procs_blocked, the seed's, agree too; they are
# not what this file tests.)
STAT_FAMILIES = ("node_intr_total", "node_context_switches_total", "node_forks_total", "node_boot_time_seconds")
SEQUENCES = FIXTURES / "cpu-sequences"
CASES = sorted(p.name for p in SEQUENCES.iterdir() if p.is_dir())

_SPEC = importlib.util.spec_from_file_location(
    "gen_procfs", Path(__file__).parent.parent / "benchmarks" / "gen_procfs.py")
gen = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gen)


def trees() -> list:
    # odd: node_exporter 1.5.0 fails both collectors on its softirq line of
    # words (it parses every softirq and intr column; the agent reads only
    # intr's total and skips softirq): no oracle there.
    return ([t for t in procfs_trees() if t.name != "odd"]
            + sorted(p for p in (FIXTURES / "procfs-host").iterdir() if p.is_dir())
            + ["dense-256"])


@pytest.fixture(scope="module")
def empty_sysfs(tmp_path_factory) -> Path:
    # node_exporter's cpu collector needs --path.sysfs to exist; the agent's
    # families come from /proc/stat only.
    return tmp_path_factory.mktemp("sysfs")


@pytest.fixture(scope="module", params=trees(), ids=lambda t: t if isinstance(t, str) else t.name)
def oracle(request, tmp_path_factory, empty_sysfs):
    tree = request.param
    if tree == "dense-256":
        tree = gen.generate(tmp_path_factory.mktemp("dense") / "proc", cpus=256, interfaces=0, disks=0)
    return tree, node_exporter_on(["cpu", "stat"], procfs=tree, sysfs=empty_sysfs)


@pytest.mark.parametrize("family", CPU_FAMILIES + STAT_FAMILIES)
def test_families_agree_with_node_exporter(oracle, backend_name, family):
    tree, theirs = oracle
    mine = agent_once("--procfs", str(tree), "--collector.disable-defaults", "--collector.stat", backend=backend_name)
    assert_same_families(mine, theirs, family, expect={family})


def test_an_offline_cpu_below_the_highest_shows_zeros(backend_name):
    """linux-6.8-host has no cpu5 line: 1.5.0 shows cpu5 with 0 in every mode."""
    mine = agent_once("--procfs", str(FIXTURES / "procfs-host" / "linux-6.8-host"), backend=backend_name)
    seconds = mine.family("node_cpu_seconds_total")
    assert {dict(labels)["cpu"] for labels in seconds} == {str(n) for n in range(8)}
    assert [float(v) for labels, v in seconds.items() if dict(labels)["cpu"] == "5"] == [0.0] * 8
    assert float(seconds[(("cpu", "4"), ("mode", "idle"))]) > 0


def test_ticks_past_2_to_the_53_are_divided_as_float64(tmp_path, empty_sysfs, backend_name):
    """node_exporter parses ticks as float64 and divides by 100: for 2**53+1
    ticks that is not the exact quotient rounded (90071992547409.92, not
    .94), and the agent must print what node_exporter prints."""
    ticks = 2**53 + 1
    assert float(ticks) / 100.0 != ticks / 100
    (tmp_path / "stat").write_text(f"cpu  {ticks} 0 0 0\ncpu0 {ticks} 0 0 0\nctxt {ticks}\n")
    mine = agent_once("--procfs", str(tmp_path), backend=backend_name)
    theirs = node_exporter_on(["cpu", "stat"], procfs=tmp_path, sysfs=empty_sysfs)
    assert_same_families(mine, theirs, "node_cpu_seconds_total")
    assert_same_families(mine, theirs, "node_context_switches_total")
    assert float(mine.family("node_cpu_seconds_total")[(("cpu", "0"), ("mode", "user"))]) == float(ticks) / 100.0


@pytest.mark.parametrize("case", CASES)
def test_sequences_agree_with_node_exporter_scrape_by_scrape(tmp_path, empty_sysfs, backend_name, case):
    """Counters that go backwards and CPUs that go offline and come back:
    both programs run on one tree whose stat is rewritten between scrapes
    (tests/fixtures/cpu-sequences/README.md)."""
    steps = sorted((SEQUENCES / case).iterdir(), key=lambda p: int(p.name))
    assert len(steps) >= 3
    stat = tmp_path / "stat"
    stat.write_bytes((steps[0] / "stat").read_bytes())
    with NodeExporter(["cpu"], procfs=tmp_path, sysfs=empty_sysfs) as theirs, \
            AgentProcess("--procfs", str(tmp_path), "--backend", backend_name,
                         "--collector.disable-defaults", "--collector.stat") as agent:
        for step in steps:
            write_in_place(stat, (step / "stat").read_text())
            mine, oracle = Exposition(agent.metrics_text()), theirs.scrape()
            for family in CPU_FAMILIES:
                assert_same_families(mine, oracle, family, expect={family})


def test_sequence_shows_kept_values_not_the_file(tmp_path, backend_name):
    """backwards-small without an oracle: at step 2 cpu0's idle and iowait
    in the file are lower than at step 1, and the step-1 values are shown
    (ticks copied from the files: idle 3123312, iowait 41233 at step 1)."""
    stat = tmp_path / "stat"
    case = SEQUENCES / "backwards-small"
    stat.write_bytes((case / "1" / "stat").read_bytes())
    with AgentProcess("--procfs", str(tmp_path), "--backend", backend_name) as agent:
        first = parse_samples(agent.metrics_text())
        write_in_place(stat, (case / "2" / "stat").read_text())
        second = parse_samples(agent.metrics_text())
    for mode, ticks in (("idle", 3123312), ("iowait", 41233)):
        key = ("node_cpu_seconds_total", (("cpu", "0"), ("mode", mode)))
        assert float(first[key]) == float(second[key]) == ticks / 100


# -- the per-cpu option ------------------------------------------------------

TREE = FIXTURES / "procfs" / "linux-5.15-ubuntu22"


def once(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "--once", "--procfs", str(TREE), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def families(text: str) -> set[str]:
    return {name for name, _ in parse_samples(text)}


def test_per_cpu_on_by_default_off_by_flag_or_file(tmp_path):
    on = families(once().stdout)
    assert {"node_cpu_seconds_total", "node_cpu_guest_seconds_total"} <= on
    off = once("--collector.stat.per-cpu", "false")
    assert off.returncode == 0, off.stderr
    assert on - families(off.stdout) == {"node_cpu_seconds_total", "node_cpu_guest_seconds_total"}
    conf = tmp_path / "agent.conf"
    conf.write_text("[collector.stat]\nper-cpu = no\n")
    assert families(once("--config", str(conf)).stdout) == families(off.stdout)
    # The flag wins over the file.
    assert families(once("--config", str(conf), "--collector.stat.per-cpu", "yes").stdout) == on


def test_per_cpu_bad_value_is_one_line_and_exit_2():
    r = once("--collector.stat.per-cpu", "maybe")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "expected true or false, got 'maybe'" in r.stderr


def test_no_per_cpu_lines_no_per_cpu_families(tmp_path, empty_sysfs, backend_name):
    """A stat with only the aggregate line: node_exporter shows neither
    family, not even its HELP and TYPE lines; nor does the agent."""
    (tmp_path / "stat").write_text("cpu  1 2 3 4\nintr 5\n")
    mine = agent_once("--procfs", str(tmp_path), "--collector.disable-defaults", "--collector.stat",
                      backend=backend_name)
    theirs = node_exporter_on(["cpu", "stat"], procfs=tmp_path, sysfs=empty_sysfs)
    assert "node_intr_total" in mine.types and "node_intr_total" in theirs.types
    for family in CPU_FAMILIES:
        assert family not in theirs.types and family not in mine.types, family


def test_per_cpu_follows_a_reload(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("[collector.stat]\nper-cpu = true\n")
    with AgentProcess("--procfs", str(TREE), "--config", str(conf)) as agent:
        assert "node_cpu_seconds_total" in families(agent.metrics_text())
        conf.write_text("[collector.stat]\nper-cpu = false\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "node_cpu_seconds_total" not in families(agent.metrics_text()))
        assert "node_intr_total" in families(agent.metrics_text())
