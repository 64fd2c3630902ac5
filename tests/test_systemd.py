"""The systemd collector against a real systemd: Debian bookworm booted in
systemd-nspawn (tests/systemd_container.py) with a running, a failed and
an inactive unit, its system bus reached through a bound directory; and
node_exporter 1.5.0 on the same bus as the oracle."""

from __future__ import annotations

import re
import time

import pytest

from agentproc import AgentProcess
from oracle import Exposition, agent_once, assert_same_families, node_exporter_on
from systemd_container import BootedSystemd, require_tools
from test_e2e import promtool_check

pytestmark = pytest.mark.slow

STATES = ("active", "activating", "deactivating", "inactive", "failed")


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    require_tools()
    with BootedSystemd(tmp_path_factory.mktemp("systemd")) as booted:
        yield booted


def agent_args(machine, *extra: str) -> tuple:
    return ("--config", "/dev/null", "--collector.systemd", f"--collector.systemd.address={machine.address}",
            *extra)


def unit_states(exposition, unit: str) -> dict:
    """{state: (value, type)} of one unit's node_systemd_unit_state series."""
    found = {}
    for labels, value in exposition.family("node_systemd_unit_state").items():
        labels = dict(labels)
        if labels["name"] == unit:
            found[labels["state"]] = (float(value), labels["type"])
    return found


def expect_state(exposition, unit: str, state: str, unit_type: str):
    assert unit_states(exposition, unit) == {s: (1.0 if s == state else 0.0, unit_type) for s in STATES}


def test_the_units_the_container_defines_in_their_states(machine, backend_name):
    mine = agent_once(*agent_args(machine), backend=backend_name)
    expect_state(mine, "agent-test-running.service", "active", "simple")
    expect_state(mine, "agent-test-failed.service", "failed", "oneshot")
    expect_state(mine, "agent-test-inactive.service", "inactive", "notify")
    # A failed unit makes the system "degraded", not "running".
    assert mine.family("node_systemd_system_running") == {(): "0"}
    assert float(mine.family("node_systemd_units")[(("state", "failed"),)]) >= 1
    [(labels, value)] = mine.family("node_systemd_version").items()
    assert dict(labels)["version"].startswith(value + "-")  # "252.39-1~deb12u2" and 252.39
    # node_exporter 1.5.0's default exclusion: no targets, slices, mounts ...
    names = {dict(labels)["name"] for labels in mine.family("node_systemd_unit_state")}
    assert not [n for n in names if re.fullmatch(r".+\.(automount|device|mount|scope|slice|target)", n)]
    assert "dbus.socket" in names and "systemd-journald.service" in names
    assert mine.family("agent_source_success")[(("source", "systemd"),)] == "1"
    promtool_check(mine.text)


@pytest.mark.parametrize("flags", [(), ("--collector.systemd.unit-exclude=",),
                                   ("--collector.systemd.unit-include=agent-test-.*",)],
                         ids=["default", "nothing-excluded", "include"])
def test_same_families_as_node_exporter_on_the_same_bus(machine, monkeypatch, flags):
    # Both find the bus the same way: $DBUS_SYSTEM_BUS_ADDRESS.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", machine.address)
    # A booted system moves (a timer's service starts and stops): the two
    # readings, one after the other, must agree once it holds still.
    for attempt in range(5):
        theirs = node_exporter_on(["systemd"], *flags)
        mine = agent_once("--config", "/dev/null", "--collector.systemd", *flags, backend="python")
        try:
            for family in ("node_systemd_unit_state", "node_systemd_units", "node_systemd_system_running",
                           "node_systemd_version"):
                assert_same_families(mine, theirs, prefix=family, expect={family})
            break
        except AssertionError:
            if attempt == 4:
                raise
            time.sleep(1)
    if not flags:
        assert len(theirs.family("node_systemd_unit_state")) > 100


def unique_name_number(machine) -> int:
    """The number dbus-daemon gave busctl's own connection: it numbers
    connections in the order they come."""
    names = machine.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "ListNames")
    return max(int(n) for n in re.findall(r'":1\.(\d+)"', names))


def test_a_live_agent_follows_state_changes_on_one_connection_and_survives_a_bus_restart(machine, backend_name):
    with AgentProcess(*agent_args(machine), "--backend", backend_name) as agent:
        agent.metrics_text()
        before = unique_name_number(machine)
        for _ in range(5):
            agent.metrics_text()
        # Five scrapes, no new connection: busctl's next one is numbered next.
        assert unique_name_number(machine) == before + 1

        machine.manager("call", "StartUnit", "ss", "agent-test-inactive.service", "replace")
        machine.wait_active_state("agent-test-inactive.service", "activating")  # Type=notify: never ready
        machine.manager("call", "StopUnit", "ss", "agent-test-running.service", "replace")
        machine.wait_active_state("agent-test-running.service", "inactive")
        seen = Exposition(agent.metrics_text())
        expect_state(seen, "agent-test-running.service", "inactive", "simple")
        expect_state(seen, "agent-test-inactive.service", "activating", "notify")

        # dbus-daemon restarted: the agent's connection is gone; the next
        # scrape connects again instead of failing.
        machine.manager("call", "RestartUnit", "ss", "dbus.service", "replace")
        machine.wait_active_state("dbus.service", "active")
        after = Exposition(agent.metrics_text())
        assert after.family("agent_source_success")[(("source", "systemd"),)] == "1", agent.log()
        expect_state(after, "agent-test-running.service", "inactive", "simple")
        machine.manager("call", "StopUnit", "ss", "agent-test-inactive.service", "replace")
        machine.manager("call", "StartUnit", "ss", "agent-test-running.service", "replace")
        machine.wait_active_state("agent-test-running.service", "active")
        machine.wait_active_state("agent-test-inactive.service", "inactive")
    assert "source systemd" not in agent.log(), agent.log()


def test_more_units_than_the_bus_lets_one_connection_ask_at_once(machine, monkeypatch):
    # dbus-daemon refuses a 129th pending call on one connection
    # (max_replies_per_connection): 300 services' Types are still all asked.
    machine.start_instances("agent-bench@", 300)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", machine.address)
    flags = ("--collector.systemd.unit-include=agent-bench@.+",)
    theirs = node_exporter_on(["systemd"], *flags)
    mine = agent_once("--config", "/dev/null", "--collector.systemd", *flags, backend="python")
    assert_same_families(mine, theirs, prefix="node_systemd_unit_state", expect={"node_systemd_unit_state"})
    assert {dict(labels)["type"] for labels in mine.family("node_systemd_unit_state")} == {"simple"}
    assert len(mine.family("node_systemd_unit_state")) == 300 * 5


def unit_type(agent, unit: str) -> str:
    return {t for _, t in unit_states(Exposition(agent.metrics_text()), unit).values()}.pop()


def test_a_type_changed_by_daemon_reload_shows_in_the_next_scrape(machine):
    dropin = machine.units_dir / "agent-test-inactive.service.d"
    with AgentProcess(*agent_args(machine)) as agent:
        assert unit_type(agent, "agent-test-inactive.service") == "notify"
        dropin.mkdir()
        (dropin / "type.conf").write_text("[Service]\nType=exec\n")
        try:
            machine.manager("call", "Reload")
            assert unit_type(agent, "agent-test-inactive.service") == "exec"
        finally:
            (dropin / "type.conf").unlink()
            dropin.rmdir()
            machine.manager("call", "Reload")
        assert unit_type(agent, "agent-test-inactive.service") == "notify"


def test_a_unit_loaded_again_from_a_changed_file_shows_its_new_type_within_ten_scrapes(machine):
    # No daemon-reload: the unit is stopped, unloaded, and loaded again
    # from its new file between two scrapes.
    unit = "agent-test-changing.service"
    path = machine.units_dir / unit
    path.write_text("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
    machine.manager("call", "StartUnit", "ss", unit, "replace")
    machine.wait_active_state(unit, "active")
    try:
        with AgentProcess(*agent_args(machine)) as agent:
            assert unit_type(agent, unit) == "oneshot"
            machine.manager("call", "StopUnit", "ss", unit, "replace")
            for _ in range(100):  # unloaded once inactive and unreferenced
                if machine.manager("call", "GetUnit", "s", unit, check=False) == "":  # NoSuchUnit
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"{unit} was not unloaded")
            path.write_text("[Service]\nType=simple\nExecStart=/bin/sleep infinity\n")
            machine.manager("call", "StartUnit", "ss", unit, "replace")
            machine.wait_active_state(unit, "active")
            seen = [unit_type(agent, unit) for _ in range(10)]
            assert "simple" in seen and seen[-1] == "simple", seen
    finally:
        machine.manager("call", "StopUnit", "ss", unit, "replace", check=False)


def test_systemds_private_socket_gives_what_the_bus_gives(machine, backend_name):
    # --collector.systemd.private: no bus daemon, no Hello.  systemd hangs up
    # on a peer whose PID it cannot see, so the agent runs in the container's
    # PID namespace (with a /proc of it, where the container's systemd is 1)
    # and reaches /run/systemd/private through its init's root.
    direct = agent_once(*agent_args(machine), backend=backend_name)
    mine = agent_once("--config", "/dev/null", "--collector.systemd",
                      "--collector.systemd.address=unix:path=/proc/1/root/run/systemd/private",
                      "--collector.systemd.private", "true", backend=backend_name,
                      wrapper=("nsenter", f"--target={machine.init_pid()}", "--pid", "--",
                               "unshare", "--mount", "--mount-proc", "--"))
    assert mine.family("agent_source_success")[(("source", "systemd"),)] == "1"
    for family in ("node_systemd_unit_state", "node_systemd_units", "node_systemd_system_running",
                   "node_systemd_version"):
        assert mine.family(family) == direct.family(family), family
    expect_state(mine, "agent-test-failed.service", "failed", "oneshot")
