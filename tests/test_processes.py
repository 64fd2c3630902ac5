"""The processes collector: node_exporter 1.5.0's processes collector and
the agent on the same tree; a CPU-burning child found first among the top
processes of the real kernel; the top lists' rules (the CPU window, pid
reuse, a process seen once, the options); hostile comms in the exposition;
a malformed stat file failing only this source.  Both backends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.collectors import BY_NAME, default_options
from agent.collectors.base import BadFile, Context, NoData
from agent.collectors.processes import ProcessesCollector
from agent.cpu import SAMPLES_PER_WINDOW, CpuWindow
from agentproc import AgentProcess
from exposition_parse import parse_samples
from oracle import agent_once, assert_same_families, node_exporter_on
from test_e2e import promtool_check
from test_processes_walk import TREE, make_proc, stat_line

PAGE = os.sysconf("SC_PAGESIZE")
NODE_FAMILIES = {"node_processes_state", "node_processes_threads_state", "node_processes_pids",
                 "node_processes_threads", "node_processes_max_processes", "node_processes_max_threads"}


def only_processes(*extra: str) -> tuple:
    return ("--collector.disable-defaults", "--collector.processes", *extra)


@pytest.fixture(scope="module")
def oracle():
    return node_exporter_on(["processes"], procfs=TREE)


def test_node_exporter_and_the_agent_agree_on_the_fixture_tree(oracle, backend_name):
    mine = agent_once("--procfs", str(TREE), *only_processes(), backend=backend_name)
    assert_same_families(mine, oracle, "node_processes_", expect=NODE_FAMILIES)
    # A state per letter of proc(5): the labels are the letters, as node_exporter's.
    assert {dict(labels)["state"] for labels in mine.family("node_processes_state")} == set("RSDZTtXxKWPI")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def collector(window=1.0, clock=None, **options):
    opts = default_options(BY_NAME["processes"])
    opts.update({k.replace("_", "-"): v for k, v in options.items()})
    return ProcessesCollector(CpuWindow(window), opts, clock=clock or Clock())


def scrape(coll, root, backend) -> dict:
    families = coll.collect(Context(procfs=str(root), sysfs="/nonexistent", rootfs="/", backend=backend,
                                    deadline=time.monotonic() + 5))
    return {f.desc.name: f.samples for f in families}


def test_cpu_percent_over_the_window_keyed_on_pid_and_start_time(backend, tmp_path):
    root = tmp_path / "proc"
    clock = Clock()
    coll = collector(window=1.0, clock=clock)
    make_proc(root, 10, stat_line(10, b"steady", utime=1000, stime=500, start=50))
    make_proc(root, 11, stat_line(11, b"reused", utime=1000, start=60))
    make_proc(root, 12, stat_line(12, b"idle", utime=7, start=70))
    first = scrape(coll, root, backend)
    # Seen once: no rate yet, for anyone.
    assert "node_top_process_cpu_percent" not in first

    clock.now += 0.5  # half a window: still no sample a window old
    make_proc(root, 10, stat_line(10, b"steady", utime=1030, stime=520, start=50))
    assert "node_top_process_cpu_percent" not in scrape(coll, root, backend)

    clock.now += 0.5
    make_proc(root, 10, stat_line(10, b"steady", utime=1080, stime=520, start=50))
    # pid 11 exited and a new process took its pid: more ticks than the old
    # one had, but no rate (a pid-only key would show 2000 % here).
    make_proc(root, 11, stat_line(11, b"newcomer", utime=21000, start=90))
    make_proc(root, 13, stat_line(13, b"born", utime=400, start=95))  # new: no rate
    got = scrape(coll, root, backend)
    # 100 ticks over 1 s, from the first sample (the one a window old).
    assert got["node_top_process_cpu_percent"] == [(("10", "steady"), 100.0)]

    clock.now += 0.5
    make_proc(root, 10, stat_line(10, b"steady", utime=1130, stime=520, start=50))
    make_proc(root, 11, stat_line(11, b"newcomer", utime=21020, start=90))
    # The window now starts at the sample taken 1 s ago (the second), not
    # the first: 100 ticks (1130+520 - 1030-520) over 1 s.
    got = scrape(coll, root, backend)
    assert got["node_top_process_cpu_percent"] == [(("10", "steady"), 100.0)]
    clock.now += 0.75
    make_proc(root, 11, stat_line(11, b"newcomer", utime=21170, start=90))
    # Base: the sample 1.25 s ago (the newest at least a window old): pid 11
    # (the newcomer) went 21000 -> 21170 ticks, 10 went 1600 -> 1650.
    got = scrape(coll, root, backend)
    assert got["node_top_process_cpu_percent"] == [(("11", "newcomer"), 170 / 1.25), (("10", "steady"), 50 / 1.25)]
    # The idle process used nothing: it is not in the list.


def test_top_n_and_comm_filters(backend, tmp_path):
    root = tmp_path / "proc"
    clock = Clock()
    for pid in range(20, 35):
        make_proc(root, pid, stat_line(pid, b"app-%d" % pid if pid % 2 else b"db-%d" % pid, utime=0, start=pid,
                                       rss=pid * 10))
    colls = {"default": collector(clock=clock), "three": collector(clock=clock, top=3),
             "db": collector(clock=clock, comm_include="^db-"),
             "no-db": collector(clock=clock, top=2, comm_exclude="db"),
             "none": collector(clock=clock, top=0)}
    for c in colls.values():
        scrape(c, root, backend)
    clock.now += 2
    for pid in range(20, 35):
        make_proc(root, pid, stat_line(pid, b"app-%d" % pid if pid % 2 else b"db-%d" % pid, utime=pid * 2, start=pid,
                                       rss=pid * 10))
    got = {name: scrape(c, root, backend) for name, c in colls.items()}

    def pids(result, family):
        return [int(labels[0]) for labels, _ in result[family]]

    cpu, rss = "node_top_process_cpu_percent", "node_top_process_resident_memory_bytes"
    assert pids(got["default"], cpu) == list(range(34, 24, -1))
    assert got["default"][cpu][0] == (("34", "db-34"), 68 / 2)
    assert pids(got["default"], rss) == list(range(34, 24, -1))
    assert got["default"][rss][0][1] == 340 * PAGE
    assert pids(got["three"], cpu) == pids(got["three"], rss) == [34, 33, 32]
    assert pids(got["db"], cpu) == [34, 32, 30, 28, 26, 24, 22, 20]
    assert pids(got["no-db"], rss) == [33, 31]
    assert cpu not in got["none"] and rss not in got["none"]
    # node_exporter's families do not depend on the top lists.
    assert got["none"]["node_processes_pids"] == [((), 15)]


def test_hostile_comms_render_as_valid_exposition(backend_name):
    text = agent_once("--procfs", str(TREE), *only_processes("--collector.processes.top", "30"),
                      backend=backend_name).text
    promtool_check(text)
    comms = {dict(labels)["pid"]: dict(labels)["comm"]
             for (name, labels), _ in parse_samples(text).items() if name == "node_top_process_resident_memory_bytes"}
    assert comms["101"] == "a) R 1 2 3 (b"
    assert comms["102"] == "new\nline"
    assert comms["103"] == "\ufffd\ufffd not utf-8"  # as interface names: not UTF-8 becomes U+FFFD
    assert comms["105"] == 'quote"back\\slash'
    assert comms["100"] == "my proc"
    assert 'comm="new\\nline"' in text and 'comm="quote\\"back\\\\slash"' in text


def test_a_busy_process_comes_first_in_cpu_percent(backend_name):
    """A child that burns a CPU on the real kernel is the first of
    node_top_process_cpu_percent, near 100 % of one CPU."""
    burn = subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + 30\n"
                             "while time.monotonic() < end: pass\n"], stdin=subprocess.DEVNULL)
    try:
        with AgentProcess("--backend", backend_name, "--cpu-window", "0.5", *only_processes()) as agent:
            top = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                samples = parse_samples(agent.metrics_text())
                top = sorted(((float(value), dict(labels)) for (name, labels), value in samples.items()
                              if name == "node_top_process_cpu_percent"), key=lambda s: -s[0])
                if top and top[0][1]["pid"] == str(burn.pid):
                    break
                time.sleep(0.6)
            assert top, "no node_top_process_cpu_percent after 15 s"
            value, labels = top[0]
            assert labels == {"pid": str(burn.pid), "comm": Path(sys.executable).name[:15]}, top[:3]
            # A busy loop on a shared two-core machine: never more than one
            # CPU, and a share of it however loaded (24 % was seen with a
            # load average of 4.4, the whole suite on two workers).
            assert 5 < value <= 105, top[:3]
    finally:
        burn.kill()
        burn.wait(10)


def test_a_malformed_stat_fails_only_this_source_with_one_line(backend_name, tmp_path):
    root = tmp_path / "proc"
    shutil.copytree(TREE / "sys", root / "sys")
    shutil.copy(TREE / "loadavg", root / "loadavg")
    make_proc(root, 5, stat_line(5))
    make_proc(root, 6, b"6 (broken S 1\n")
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--backend", backend_name, "--procfs", str(root),
                        "--collector.disable-defaults", "--collector.processes", "--collector.loadavg"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    samples = parse_samples(r.stdout)
    assert samples[("agent_source_success", (("source", "processes"),))] == "0"
    assert samples[("agent_source_success", (("source", "loadavg"),))] == "1"
    assert not any(name.startswith("node_processes_") for name, _ in samples)
    lines = [line for line in r.stderr.splitlines() if "processes" in line]
    assert len(lines) == 1 and f"{root}/6/stat" in lines[0] and "malformed" in lines[0], r.stderr


def test_missing_limit_files_leave_out_only_the_limits(backend, tmp_path):
    root = tmp_path / "proc"
    make_proc(root, 5, stat_line(5, threads=1))
    got = scrape(collector(), root, backend)
    assert "node_processes_max_processes" not in got and "node_processes_max_threads" not in got
    assert got["node_processes_pids"] == [((), 1)] and got["node_processes_threads"] == [((), 1)]


def test_a_procfs_without_processes_has_no_data(backend, tmp_path):
    shutil.copytree(TREE / "sys", tmp_path / "sys")
    with pytest.raises(NoData):
        scrape(collector(), tmp_path, backend)


def test_cpu_samples_are_kept_at_most_as_the_cpu_window_keeps_them(backend, tmp_path):
    """Scrapes every 10 ms with a 1 s window: the per-process samples kept
    stay at the CPU window's bound (SAMPLES_PER_WINDOW + 1), not one per scrape."""
    root = tmp_path / "proc"
    make_proc(root, 5, stat_line(5, utime=1))
    clock = Clock()
    coll = collector(window=1.0, clock=clock)
    for _ in range(300):
        clock.now += 0.01
        scrape(coll, root, backend)
    assert coll.cpu.samples() <= SAMPLES_PER_WINDOW + 1


def test_a_missing_procfs_root_is_a_bad_file(backend, tmp_path):
    with pytest.raises(BadFile):
        scrape(collector(), tmp_path / "nowhere", backend)


@pytest.mark.parametrize("value", ["-1", "1001", "ten", ""])
def test_a_bad_top_option_stops_start_up_with_one_line(value):
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--collector.processes.top", value],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "collector.processes.top" in r.stderr, r.stderr
