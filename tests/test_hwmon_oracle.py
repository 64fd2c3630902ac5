"""The hwmon collector against node_exporter 1.5.0 on every sysfs fixture
tree, on both backends: every node_hwmon_ family the same (type, label
sets, float64 values)."""

from __future__ import annotations

import os

import pytest

from oracle import agent_once, assert_same_families, node_exporter_on
from trees import FIXTURES

SYSFS_TREES = sorted(p for p in (FIXTURES / "sysfs").iterdir()
                     if (p / "class" / "hwmon").is_dir())


@pytest.fixture(scope="module", params=SYSFS_TREES, ids=[t.name for t in SYSFS_TREES])
def oracle(request):
    tree = request.param
    return tree, node_exporter_on(["hwmon"], sysfs=tree)


def test_hwmon_families_agree(oracle, backend_name):
    tree, theirs = oracle
    mine = agent_once("--sysfs", str(tree), backend=backend_name)
    assert_same_families(mine, theirs, "node_hwmon_")
    assert mine.families("node_hwmon_") == theirs.families("node_hwmon_")


def _odd_tree(root):
    """A chip whose files probe the parsing rules node_exporter documents
    nowhere: Go's ParseFloat (signs, exponents, hexadecimal, inf and nan,
    overflow, white space, digit separators), sensor numbers with leading
    zeros, invalid UTF-8 runs in a label and a property, a property that
    cleans to nothing."""
    chip = root / "devices" / "virtual" / "hwmon" / "hwmon3"
    chip.mkdir(parents=True)
    (root / "class" / "hwmon").mkdir(parents=True)
    (root / "class" / "hwmon" / "hwmon3").symlink_to("../../devices/virtual/hwmon/hwmon3")
    files = {
        "name": b"Odd\xff\xfeChip\n",
        "temp1_input": b"+42000\n", "temp2_input": b"4.2e4", "temp3_input": b"0x1p4\n",
        "temp4_input": b"inf\n", "temp5_input": b"-Infinity", "temp6_input": b"1e400",
        "temp7_input": b"1_000", "temp8_input": b"\n\n5000\n\n", "temp9_input": b" 5",
        "temp10_input": b".5", "temp11_input": b"5.", "temp12_input": b"",
        "temp013_input": b"13000", "temp13_max": b"99000",
        "temp14_label": b"two\xff\xfebad bytes\x80 and one", "temp14_input": b"1",
        "temp15_Crit\xffX": b"7", "temp16_\xc3\xbc": b"8",
        # Go lower-cases rune by rune: the Kelvin sign is k, a dotted
        # capital I is i (Python's str.lower gives i and a combining dot).
        "temp17_\xe2\x84\xaaX\xc4\xb0x": b"9", "in0": b"1200", "in0_input": b"1300",
        "fan1_input": b"NaN", "curr1_average": b"250", "power1_average_interval_min": b"500",
        "humidity1_input": b"45000", "intrusion0_alarm": b"1", "pwm1": b"128",
    }
    # Go's digit separators, hexadecimal floats, inf and nan spellings.
    for i, text in enumerate([b"1_000", b"1__0", b"_1", b"1_", b"0x1_0p0", b"0x_1p0", b"1_0.5", b"1.0_5",
                              b"1e1_0", b"0x1.8p1", b"0X1P-2", b"Inf", b"-nan", b"+NaN", b"infINITY",
                              b"1e-400", b"0x1p2000", b"00012", b"1e", b"e3", b"1_.5", b"0x1p"]):
        files[f"curr{20 + i}_input"] = text
    for name, content in files.items():  # each name's characters are its bytes
        (chip / os.fsdecode(name.encode("latin-1"))).write_bytes(content)
    return root


def test_odd_values_and_names_agree(tmp_path, backend_name):
    tree = _odd_tree(tmp_path)
    theirs = node_exporter_on(["hwmon"], sysfs=tree)
    mine = agent_once("--sysfs", str(tree), backend=backend_name)
    assert_same_families(mine, theirs, "node_hwmon_")
    assert mine.families("node_hwmon_") == theirs.families("node_hwmon_")
