"""/sys/class/thermal: the attribute parsers (Go's strconv rules, which
node_exporter applies), then the agent (on both backends) against
node_exporter 1.5.0 on the sysfs fixture trees and on variants of
desktop's zones and cooling devices made in a temporary copy, and where
the host has no thermal driver."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from agent.collectors.base import Context, NoData
from agent.collectors.thermal_zone import ThermalZoneCollector
from agent.sysfs.thermal import numbered, parse_int64, parse_text, parse_uint64
from agentproc import AgentProcess
from oracle import agent_once, assert_same_families, node_exporter_on
from test_e2e import promtool_check
from trees import FIXTURES, procfs_trees

SYSFS = FIXTURES / "sysfs"
DESKTOP = SYSFS / "desktop"
FAMILIES = {"node_thermal_zone_temp", "node_cooling_device_cur_state", "node_cooling_device_max_state"}
PREFIXES = ("node_thermal_zone_", "node_cooling_device_")


@pytest.mark.parametrize("data, value", [
    (b"27800\n", 27800), (b"-40000\n", -40000), (b"+5", 5), (b"-0", 0), (b"007", 7),
    (b" \t41000 \n", 41000), ("\xa042\u3000".encode(), 42),
    (b"9223372036854775807", 2**63 - 1), (b"-9223372036854775808", -2**63),
])
def test_parse_int64_accepts_what_go_parseint_accepts(data, value):
    assert parse_int64(data) == value


@pytest.mark.parametrize("data", [
    b"", b"\n", b"41.5", b"4_1", b"0x10", b"1e3", b"--1", b"+", b"41000 x", b"N/A", "４２".encode(),
    b"9223372036854775808", b"-9223372036854775809", b"\x1c42",
])
def test_parse_int64_refuses_the_rest(data):
    with pytest.raises(ValueError):
        parse_int64(data)


def test_parse_uint64_has_no_sign():
    assert parse_uint64(b"0\n") == 0 and parse_uint64(b"18446744073709551615") == 2**64 - 1
    for data in (b"-5", b"+5", b"18446744073709551616", b""):
        with pytest.raises(ValueError):
            parse_uint64(data)


def test_parse_text_trims_only_the_ends():
    assert parse_text(b"INT3400 Thermal\n") == "INT3400 Thermal"
    assert parse_text(b" \tacpi tz \r\n") == "acpi tz"
    assert parse_text(b"caf\xe9\n") == "caf\ufffd"
    assert parse_text(b"\x1facpitz") == "\x1facpitz"  # not white space to Go


def test_numbered_is_the_glob_prefix_digit_star_in_byte_order():
    names = ["thermal_zone10", "thermal_zone2", "thermal_zoneX", "thermal_zone", "thermal_zone1x",
             "cooling_device0", "thermal_zone\u0663"]
    assert numbered(names, "thermal_zone") == ["thermal_zone10", "thermal_zone1x", "thermal_zone2"]
    assert numbered(names, "cooling_device") == ["cooling_device0"]


def copy_of_desktop(tmp_path: Path) -> Path:
    tree = tmp_path / "sys"
    shutil.copytree(DESKTOP, tree, symlinks=True)
    return tree


def zone(tree: Path, number: int) -> Path:
    return tree / "devices" / "virtual" / "thermal" / f"thermal_zone{number}"


def cooling(tree: Path, number: int) -> Path:
    return tree / "devices" / "virtual" / "thermal" / f"cooling_device{number}"


def replace_with_directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


def agent_thermal(sysfs: Path, backend: str):
    return agent_once("--collector.disable-defaults", "--collector.thermal_zone", "--sysfs", str(sysfs),
                      backend=backend)


def thermal_families(exposition) -> set[str]:
    return {name for name in exposition.types if name.startswith(PREFIXES)}


def success(exposition) -> str:
    return exposition.family("agent_source_success")[(("source", "thermal_zone"),)]


def their_success(exposition) -> str:
    return exposition.family("node_scrape_collector_success")[(("collector", "thermal_zone"),)]


def test_desktop_agrees_with_node_exporter(backend_name):
    theirs = node_exporter_on(["thermal_zone"], sysfs=DESKTOP)
    mine = agent_thermal(DESKTOP, backend_name)
    for prefix in PREFIXES:
        assert_same_families(mine, theirs, prefix)
    assert thermal_families(theirs) == FAMILIES
    # Zone 10 is disabled, zone 4 below zero, cooling device 2 at -1: all shown.
    assert len(theirs.family("node_thermal_zone_temp")) == 5 and success(mine) == "1"


# Variants of desktop, each a change to the copy; node_exporter 1.5.0
# decides what the agent must show.
def _temp_needs_one_division(tree):
    # 84850 * 0.001 is 84.85000000000001; node_exporter divides by 1000.0.
    (zone(tree, 0) / "temp").write_text("84850\n")


def _temp_padded_and_signed(tree):
    (zone(tree, 1) / "temp").write_text(" +29800 \n")
    (zone(tree, 2) / "type").write_text("\t x86 pkg temp  \n")


def _no_mode_no_passive(tree):
    (zone(tree, 0) / "mode").unlink()
    (zone(tree, 2) / "passive").unlink()


def _zone_with_letters_after_its_number(tree):
    # The glob thermal_zone[0-9]* takes it; thermal_zoneX it does not.
    shutil.copytree(zone(tree, 0), tree / "class" / "thermal" / "thermal_zone7a")
    (tree / "class" / "thermal" / "thermal_zoneX").mkdir()


def _no_cooling_devices(tree):
    for link in (tree / "class" / "thermal").glob("cooling_device*"):
        link.unlink()


def _no_zones(tree):
    for link in (tree / "class" / "thermal").glob("thermal_zone*"):
        link.unlink()


SAME = [_temp_needs_one_division, _temp_padded_and_signed, _no_mode_no_passive,
        _zone_with_letters_after_its_number, _no_cooling_devices, _no_zones]


@pytest.mark.parametrize("change", SAME, ids=[c.__name__.strip("_") for c in SAME])
def test_variants_agree_with_node_exporter(change, tmp_path, backend_name):
    tree = copy_of_desktop(tmp_path)
    change(tree)
    theirs = node_exporter_on(["thermal_zone"], sysfs=tree)
    mine = agent_thermal(tree, backend_name)
    assert their_success(theirs) == "1" and success(mine) == "1"
    assert thermal_families(mine) == thermal_families(theirs)
    for family in thermal_families(theirs):
        assert_same_families(mine, theirs, family)


# What makes node_exporter 1.5.0 fail the whole collector (no zone, no
# cooling device): the agent fails the source the same way, with one line.
def _no_policy(tree):
    (zone(tree, 2) / "policy").unlink()


def _no_type(tree):
    (zone(tree, 0) / "type").unlink()


def _temp_not_an_integer(tree):
    (zone(tree, 4) / "temp").write_text("41.5\n")


def _temp_empty(tree):
    (zone(tree, 4) / "temp").write_text("")


def _temp_unreadable(tree):
    replace_with_directory(zone(tree, 1) / "temp")


def _mode_unreadable(tree):
    replace_with_directory(zone(tree, 0) / "mode")


def _passive_negative(tree):
    (zone(tree, 2) / "passive").write_text("-1\n")


def _passive_not_a_number(tree):
    (zone(tree, 2) / "passive").write_text("off\n")


FAIL_IN_ZONES = [_no_policy, _no_type, _temp_not_an_integer, _temp_empty, _temp_unreadable, _mode_unreadable,
                 _passive_negative, _passive_not_a_number]


@pytest.mark.parametrize("change", FAIL_IN_ZONES, ids=[c.__name__.strip("_") for c in FAIL_IN_ZONES])
def test_a_broken_zone_fails_the_collector_as_in_node_exporter(change, tmp_path, backend_name):
    tree = copy_of_desktop(tmp_path)
    change(tree)
    theirs = node_exporter_on(["thermal_zone"], sysfs=tree)
    mine = agent_thermal(tree, backend_name)
    assert their_success(theirs) == "0" and thermal_families(theirs) == set()
    assert success(mine) == "0" and thermal_families(mine) == set()


def _cur_state_missing(tree):
    (cooling(tree, 3) / "cur_state").unlink()


def _max_state_not_a_number(tree):
    (cooling(tree, 12) / "max_state").write_text("lots\n")


FAIL_IN_DEVICES = [_cur_state_missing, _max_state_not_a_number]


@pytest.mark.parametrize("change", FAIL_IN_DEVICES, ids=[c.__name__.strip("_") for c in FAIL_IN_DEVICES])
def test_a_broken_cooling_device_fails_the_collector(change, tmp_path, backend_name):
    tree = copy_of_desktop(tmp_path)
    change(tree)
    theirs = node_exporter_on(["thermal_zone"], sysfs=tree)
    mine = agent_thermal(tree, backend_name)
    assert their_success(theirs) == "0" and success(mine) == "0"
    # A known difference: node_exporter has already sent the zones when a
    # cooling device fails and keeps them; a failed source shows nothing.
    assert thermal_families(theirs) == {"node_thermal_zone_temp"} and thermal_families(mine) == set()


def test_thermal_unreadable_agrees_with_node_exporter(backend_name):
    tree = SYSFS / "thermal-unreadable"
    theirs = node_exporter_on(["thermal_zone"], sysfs=tree)
    mine = agent_thermal(tree, backend_name)
    assert their_success(theirs) == "0" and thermal_families(theirs) == set()
    assert success(mine) == "0" and thermal_families(mine) == set()


@pytest.mark.parametrize("layout", ["no class/thermal", "empty class/thermal"])
def test_no_thermal_driver_is_no_data_not_a_failure(layout, tmp_path, backend_name):
    tree = tmp_path / "sys"
    (tree / "class").mkdir(parents=True)
    if layout == "empty class/thermal":
        (tree / "class" / "thermal").mkdir()
    theirs = node_exporter_on(["thermal_zone"], sysfs=tree)
    assert their_success(theirs) == "1" and thermal_families(theirs) == set()
    with AgentProcess("--collector.disable-defaults", "--collector.thermal_zone", "--collector.loadavg",
                      "--procfs", str(procfs_trees()[0]), "--sysfs", str(tree),
                      "--backend", backend_name) as agent:
        text = agent.metrics_text()
        assert 'agent_source_success{source="thermal_zone"} 1\n' in text
        assert not any(prefix in text for prefix in PREFIXES) and "node_load1 " in text
        health = json.loads(agent.request("/health")[2])
        assert health["status"] == "ok" and health["sources"]["thermal_zone"]["no_data"].startswith("no ")


def test_hwmon_tree_without_class_thermal(backend_name):
    tree = SYSFS / "hwmon-duplicate-chips"
    assert not (tree / "class" / "thermal").exists()
    theirs = node_exporter_on(["thermal_zone"], sysfs=tree)
    mine = agent_thermal(tree, backend_name)
    assert thermal_families(theirs) == thermal_families(mine) == set()
    assert their_success(theirs) == success(mine) == "1"


def test_a_broken_zone_is_one_log_line_naming_the_file(tmp_path, backend_name):
    tree = copy_of_desktop(tmp_path)
    (zone(tree, 4) / "temp").write_text("N/A\n")
    with AgentProcess("--collector.disable-defaults", "--collector.thermal_zone", "--sysfs", str(tree),
                      "--backend", backend_name) as agent:
        for _ in range(3):
            assert 'agent_source_success{source="thermal_zone"} 0\n' in agent.metrics_text()
        health = json.loads(agent.request("/health")[2])
        error = f"thermal_zone: {tree}/class/thermal/thermal_zone4/temp: not a decimal integer: 'N/A'"
        assert health["status"] == "degraded" and health["sources"]["thermal_zone"]["error"] == error
        assert agent.log().count("source thermal_zone failed") == 1 and "Traceback" not in agent.log()


def test_a_collection_past_its_deadline_stops_before_the_next_zone():
    context = Context("/proc", str(DESKTOP), "/", None, time.monotonic() - 1)
    with pytest.raises(TimeoutError, match="out of time before thermal_zone0"):
        ThermalZoneCollector().collect(context)
    context = Context("/proc", str(DESKTOP), "/", None, time.monotonic() + 60)
    assert len(ThermalZoneCollector().collect(context)) == 3
    with pytest.raises(NoData):
        ThermalZoneCollector().collect(Context("/proc", str(SYSFS / "hwmon-duplicate-chips"), "/", None,
                                               time.monotonic() + 60))


def test_promtool_lint_is_clean():
    promtool_check(agent_thermal(DESKTOP, "python").text)


def test_a_type_that_is_not_utf8_is_shown_with_a_replacement_character(tmp_path, backend_name):
    # node_exporter 1.5.0 panics on it (a label value must be UTF-8) and exits.
    tree = copy_of_desktop(tmp_path)
    (zone(tree, 0) / "type").write_bytes(b"caf\xe9 zone\n")
    (cooling(tree, 3) / "type").write_bytes(b"\xffFan\n")
    mine = agent_thermal(tree, backend_name)
    assert mine.family("node_thermal_zone_temp")[(("type", "caf\ufffd zone"), ("zone", "0"))] == "27.8"
    assert mine.family("node_cooling_device_max_state")[(("name", "3"), ("type", "\ufffdFan"))] == "1"
    promtool_check(mine.text)
