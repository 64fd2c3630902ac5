"""The hwmon collector on real trees: no data where there is no chip, a
FIFO or a vanished file never stalls or fails a scrape, the chip filters,
and promtool's lint on the agent's output for every sysfs fixture."""

from __future__ import annotations

import os
import time

import pytest

from agent.collectors import BY_NAME, default_options
from agent.collectors.base import Context, NoData
from agent.collectors.filters import NameFilter
from agent.collectors.hwmon import HwmonCollector
from oracle import agent_once
from test_e2e import promtool_check
from test_hwmon_oracle import SYSFS_TREES, _odd_tree
from trees import FIXTURES

DESKTOP = FIXTURES / "sysfs" / "desktop"


def collect(backend, sysfs, collector=None):
    collector = collector or HwmonCollector()
    return collector.collect(Context("/proc", str(sysfs), "/", backend, time.monotonic() + 10))


def samples(families) -> dict:
    return {(f.desc.name, labels): value for f in families for labels, value in f.samples}


def test_no_class_hwmon_is_no_data(tmp_path, backend):
    (tmp_path / "class").mkdir()
    with pytest.raises(NoData):
        collect(backend, tmp_path)


def test_empty_class_hwmon_is_no_data(tmp_path, backend):
    (tmp_path / "class" / "hwmon").mkdir(parents=True)
    (tmp_path / "class" / "hwmon" / "not-a-chip").write_bytes(b"")
    (tmp_path / "class" / "hwmon" / "hwmon9").symlink_to("../../devices/gone")
    with pytest.raises(NoData):
        collect(backend, tmp_path)


def test_fifo_vanished_and_directory_sensor_files_are_skipped(tmp_path, backend):
    chip = tmp_path / "class" / "hwmon" / "hwmon0"
    chip.mkdir(parents=True)
    (chip / "name").write_bytes(b"test\n")
    (chip / "temp1_input").write_bytes(b"42000\n")
    os.mkfifo(chip / "temp2_input")          # node_exporter 1.5.0 would block on it for good
    (chip / "temp3_input").symlink_to("gone")
    (chip / "temp4_input").mkdir()
    got = samples(collect(backend, tmp_path))
    assert got == {("node_hwmon_chip_names", ("test", "test")): 1,
                   ("node_hwmon_temp_celsius", ("test", "temp1")): 42000 * 0.001}


def test_chip_include_and_exclude(backend):
    every = {labels[0] for (_, labels) in samples(collect(backend, DESKTOP))}
    assert "platform_coretemp_0" in every and "nvme_nvme0" in every and len(every) == 10
    only = samples(collect(backend, DESKTOP, HwmonCollector(NameFilter("^platform_", None))))
    assert {labels[0] for (_, labels) in only} == {"platform_coretemp_0", "platform_it87_2608"}
    rest = samples(collect(backend, DESKTOP, HwmonCollector(NameFilter(None, "nvme|^i2c_"))))
    assert {labels[0] for (_, labels) in rest} == every - {"nvme_nvme0", "i2c_1_1_0040", "i2c_1_1_0044"}


def test_chip_filters_from_the_command_line(backend_name):
    mine = agent_once("--sysfs", str(DESKTOP), "--collector.hwmon.chip-include", "^nvme", backend=backend_name)
    chips = {dict(labels)["chip"] for (name, labels) in mine.samples if name.startswith("node_hwmon_")}
    assert chips == {"nvme_nvme0"}


def test_hwmon_is_on_by_default_without_options():
    assert BY_NAME["hwmon"].enabled_by_default
    assert default_options(BY_NAME["hwmon"]) == {"timeout": None, "chip-include": "", "chip-exclude": ""}


@pytest.mark.parametrize("tree", SYSFS_TREES, ids=[t.name for t in SYSFS_TREES])
def test_promtool_lint_is_clean(tree, backend_name):
    mine = agent_once("--sysfs", str(tree), backend=backend_name)
    assert any(name.startswith("node_hwmon_") for name in mine.types)
    promtool_check(mine.text)


def test_promtool_lint_is_clean_on_odd_names_and_values(tmp_path, backend_name):
    """File names that are not UTF-8 end up in HELP texts: as U+FFFD, never
    as a crash or an exposition Prometheus cannot read."""
    mine = agent_once("--sysfs", str(_odd_tree(tmp_path)), backend=backend_name)
    assert "Hardware monitor for temperature (Crit\ufffdX)" in mine.text
    promtool_check(mine.text)
