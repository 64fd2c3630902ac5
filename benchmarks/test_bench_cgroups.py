"""The cgroups collector on a generated tree of 1,000 container cgroups
(benchmarks/gen_cgroups.py, in a temporary directory), per backend: the
walk alone (one agent_walk_cgroups call against the Python twin's
open/read/close per file) and the whole collect (walk, labels, families).
The side-by-side comparison with the C floor is benchmarks/compare_cgroups.py
(`make bench-compare`)."""

from __future__ import annotations

import os
import platform
import time

import pytest

import gen_cgroups
from agent.collectors.base import Context
from agent.collectors.cgroups import OPTIONS, CgroupsCollector
from agent.procfs import cgroups
from backends import load_backend

CONTAINERS = 1000


@pytest.fixture(scope="module")
def cgroup_tree(tmp_path_factory):
    top = tmp_path_factory.mktemp("cgroups") / "tree"
    gen_cgroups.generate(str(top), CONTAINERS)
    return top


def _describe(benchmark, backend_name, layer):
    benchmark.extra_info.update(backend=backend_name, kernel=platform.release(), source="cgroups", layer=layer,
                                fixture=f"generated-{CONTAINERS}-containers")


def test_cgroups_walk(benchmark, backend_name, cgroup_tree):
    walker = cgroups.Walker(load_backend(backend_name))
    dirfd = os.open(cgroup_tree / "sys" / "fs" / "cgroup", os.O_RDONLY | os.O_DIRECTORY)
    procfd = os.open(cgroup_tree / "proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        _describe(benchmark, backend_name, "walk")
        found = benchmark(walker, dirfd, procfd)
        assert len(found) == CONTAINERS and all(c.net for c in found)
    finally:
        os.close(dirfd)
        os.close(procfd)


def test_cgroups_collect(benchmark, backend_name, cgroup_tree):
    backend = load_backend(backend_name)
    collector = CgroupsCollector({option.name: option.default for option in OPTIONS})

    def collect():
        return collector.collect(Context(str(cgroup_tree / "proc"), str(cgroup_tree / "sys"),
                                         str(cgroup_tree / "rootfs"), backend, time.monotonic() + 60))

    _describe(benchmark, backend_name, "collect")
    families = benchmark(collect)
    usage = next(f for f in families if f.desc.name == "container_cpu_usage_seconds")
    assert len(usage.values) == CONTAINERS
