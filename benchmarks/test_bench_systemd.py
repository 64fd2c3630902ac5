"""The systemd collector against a real systemd (Debian bookworm booted in
systemd-nspawn, tests/systemd_container.py), and side by side with
node_exporter 1.5.0's systemd collector on the same bus.

    pytest --benchmark-only benchmarks/test_bench_systemd.py      # collect() alone
    .venv/bin/python benchmarks/test_bench_systemd.py ROUNDS [PER_BLOCK [EXTRA_UNITS]]
                                                   # CPU per scrape, both exporters

The second runs the agent (only --collector.systemd) and node_exporter
(only --collector.systemd) on the container's bus and scrapes them in
alternating blocks (agent first in odd rounds, node_exporter first in
even ones), and reports medians per scrape of each exporter's process CPU
(/proc/PID/stat), of what the container's systemd and dbus-daemon spent
answering it, and of the wall time.  EXTRA_UNITS starts that many more
running services (agent-bench@N.service) first, for a host with many units.

    .venv/bin/python benchmarks/test_bench_systemd.py cache ROUNDS EXTRA_UNITS

compares collect() with the Type cache against asking every Type every
scrape, alternating.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from agent.collectors import BY_NAME, default_options  # noqa: E402
from agent.collectors.base import Context  # noqa: E402
from agent.collectors.systemd import SystemdCollector  # noqa: E402
from systemd_container import BootedSystemd, require_tools  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    require_tools()
    with BootedSystemd(tmp_path_factory.mktemp("systemd")) as booted:
        yield booted


def test_systemd_collect(benchmark, machine):
    options = dict(default_options(BY_NAME["systemd"]), address=machine.address)
    collector = SystemdCollector(options)

    def collect():
        return collector.collect(Context("/proc", "/sys", "/", None, time.monotonic() + 10))

    families = benchmark(collect)
    units = len(families[0].samples) // 5
    benchmark.extra_info.update(source="systemd", layer="collect", kernel=platform.release(),
                                fixture="bookworm in systemd-nspawn", units=units)
    assert units > 50


# -- side by side ----------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, its exited threads included."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def descendants(pid: int) -> dict[int, str]:
    """{pid: comm} of every process under `pid`."""
    children: dict[int, list[int]] = {}
    comms = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        comms[int(entry)] = data[data.index(b"(") + 1:data.rindex(b")")].decode()
        parent = int(data.rsplit(b")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = comms[child]
            todo.append(child)
    return found


def scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return r.read()


def side_by_side(rounds: int, per_block: int, extra_units: int = 0) -> dict:
    from agentproc import AgentProcess
    from oracle import NodeExporter

    with tempfile.TemporaryDirectory() as work, BootedSystemd(Path(work)) as machine:
        if extra_units:
            machine.start_instances("agent-bench@", extra_units)
        inside = descendants(machine.proc.pid)
        manager = next(pid for pid, comm in sorted(inside.items()) if comm == "systemd")
        bus = next(pid for pid, comm in inside.items() if comm == "dbus-daemon")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = machine.address
        agent = AgentProcess("--config", "/dev/null", "--collector.disable-defaults", "--collector.systemd",
                             "--backend", "c" if _have_c() else "python")
        exporter = NodeExporter(["systemd"])
        try:
            exporter.scrape()
            sides = {"agent": (agent.proc.pid, agent.port), "node_exporter": (exporter.proc.pid, exporter.port)}
            for _, port in sides.values():
                for _ in range(3):  # warm: connections, caches
                    scrape(port)
            spent = {(side, what): [] for side in sides for what in ("exporter", "systemd+dbus", "wall")}
            for i in range(rounds):
                for side in (sides if i % 2 else list(sides)[::-1]):
                    pid, port = sides[side]
                    before = (cpu_seconds(pid), cpu_seconds(manager) + cpu_seconds(bus), time.monotonic())
                    for _ in range(per_block):
                        scrape(port)
                    after = (cpu_seconds(pid), cpu_seconds(manager) + cpu_seconds(bus), time.monotonic())
                    for what, b, a in zip(("exporter", "systemd+dbus", "wall"), before, after):
                        spent[(side, what)].append((a - b) / per_block)
            units = scrape(sides["agent"][1]).count(b'state="active"')
            # The two agree on what they show (same units, same values).
            from oracle import Exposition
            mine, theirs = Exposition(scrape(sides["agent"][1]).decode()), exporter.scrape()
            assert mine.family("node_systemd_unit_state") == theirs.family("node_systemd_unit_state")
        finally:
            agent.stop()
            exporter.close()
    return {"units": units, **{key: statistics.median(values) * 1000 for key, values in spent.items()}}


def _have_c() -> bool:
    from agent.procfs import cbackend
    return cbackend.AVAILABLE


def cache_saving(rounds: int, extra_units: int) -> dict:
    """collect() with the Type cache against asking every Type every scrape
    (refresh_scrapes=1), alternating, thread CPU and systemd+dbus CPU."""
    with tempfile.TemporaryDirectory() as work, BootedSystemd(Path(work)) as machine:
        if extra_units:
            machine.start_instances("agent-bench@", extra_units)
        inside = descendants(machine.proc.pid)
        manager = next(pid for pid, comm in sorted(inside.items()) if comm == "systemd")
        bus = next(pid for pid, comm in inside.items() if comm == "dbus-daemon")
        options = dict(default_options(BY_NAME["systemd"]), address=machine.address)
        sides = {"cached": SystemdCollector(options), "every scrape": SystemdCollector(options, refresh_scrapes=1)}
        spent = {(side, what): [] for side in sides for what in ("collect", "systemd+dbus")}
        for i in range(rounds):
            for side in (sides if i % 2 else list(sides)[::-1]):
                before = (time.thread_time(), cpu_seconds(manager) + cpu_seconds(bus))
                for _ in range(10):
                    sides[side].collect(Context("/proc", "/sys", "/", None, time.monotonic() + 30))
                after = (time.thread_time(), cpu_seconds(manager) + cpu_seconds(bus))
                for what, b, a in zip(("collect", "systemd+dbus"), before, after):
                    spent[(side, what)].append((a - b) / 10)
    return {key: statistics.median(values) * 1000 for key, values in spent.items()}


def main(rounds: int, per_block: int = 20, extra_units: int = 0) -> None:
    logging.basicConfig(level=logging.WARNING)
    result = side_by_side(rounds, per_block, extra_units)
    print(f"{result['units']} units shown, {rounds} alternating rounds of {per_block} scrapes each, "
          "medians, ms per scrape:")
    for side in ("agent", "node_exporter"):
        print(f"  {side:14s} own CPU {result[(side, 'exporter')]:6.2f}  "
              f"systemd+dbus CPU {result[(side, 'systemd+dbus')]:6.2f}  wall {result[(side, 'wall')]:6.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["cache"]:
        rounds, extra = (int(arg) for arg in sys.argv[2:4])
        result = cache_saving(rounds, extra)
        print(f"{extra} extra units, {rounds} alternating rounds of 10 collects, medians, ms per collect:")
        for side in ("cached", "every scrape"):
            print(f"  {side:13s} collect CPU {result[(side, 'collect')]:6.2f}  "
                  f"systemd+dbus CPU {result[(side, 'systemd+dbus')]:6.2f}")
    else:
        main(*(int(arg) for arg in sys.argv[1:4]))
