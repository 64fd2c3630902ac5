"""The seed's collectors against node_exporter on every fixture tree: the
families both expose (load averages, disk counters) must agree exactly, on
both backends.  (Memory and network families have the seed's own names and
labels, so node_exporter has nothing to say about them.)"""

from __future__ import annotations

import pytest

from agent.collectors.diskstats import DEFAULT_EXCLUDE
from oracle import agent_once, assert_same_families, node_exporter_on
from trees import procfs_trees

TREES = procfs_trees()


@pytest.fixture(scope="module", params=TREES, ids=[t.name for t in TREES])
def oracle(request):
    tree = request.param
    return tree, node_exporter_on(["loadavg", "diskstats"], f"--collector.diskstats.device-exclude={DEFAULT_EXCLUDE}",
                                  procfs=tree)


def test_load_averages_agree(oracle, backend_name):
    tree, theirs = oracle
    mine = agent_once("--procfs", str(tree), backend=backend_name)
    assert_same_families(mine, theirs, "node_load", expect={"node_load1", "node_load5", "node_load15"})


def test_disk_counters_agree(oracle, backend_name):
    tree, theirs = oracle
    mine = agent_once("--procfs", str(tree), backend=backend_name)
    shared = {"node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_disk_reads_completed_total",
              "node_disk_writes_completed_total", "node_disk_io_time_seconds_total"}
    for family in sorted(shared):
        assert_same_families(mine, theirs, family.removesuffix("_total"))
