"""The hwmon collector against node_exporter 1.5.0 on every sysfs fixture
tree, on both backends: every node_hwmon_ family the same (type, label
sets, float64 values)."""

from __future__ import annotations

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
