"""The processes collector per backend, on a generated tree of 1,000
processes (gen_processes.py: a tenth multi-threaded) and on this machine's
/proc: the walk alone (agent_walk_procs against the pure-Python walk), and
the whole collect (walk, limits, state counts, CPU deltas, top lists).
compare_processes.py measures the agent against its peers; these time the
layers."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest

from agent.collectors import BY_NAME, default_options
from agent.collectors.base import Context
from agent.collectors.processes import ProcessesCollector
from agent.cpu import CpuWindow
from agent.procfs.layout import PROCS_THREADS
from backends import load_backend

PIDS = 1000


@pytest.fixture(scope="session")
def process_tree(tmp_path_factory) -> Path:
    import gen_processes
    root = tmp_path_factory.mktemp("processes") / "proc"
    gen_processes.generate(root, pids=PIDS)
    return root


@pytest.fixture(params=["proc", "generated"])
def tree(request) -> Path:
    return Path("/proc") if request.param == "proc" else request.getfixturevalue("process_tree")


def _describe(benchmark, backend_name, tree, layer):
    benchmark.extra_info.update(backend=backend_name, layer=layer, source="processes",
                                kernel=platform.release() if str(tree) == "/proc" else "generated",
                                fixture="proc" if str(tree) == "/proc" else f"generated-{PIDS}-processes")


def test_processes_walk(benchmark, backend_name, tree):
    backend = load_backend(backend_name)
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _describe(benchmark, backend_name, tree, "walk")
        walk, rows, comms = benchmark(backend.walk_procs, fd, PROCS_THREADS, PIDS)
        assert rows and comms
        if str(tree) != "/proc":
            assert len(rows) // 72 == PIDS
    finally:
        os.close(fd)


def test_processes_collect(benchmark, backend_name, tree):
    backend = load_backend(backend_name)
    collector = ProcessesCollector(CpuWindow(0.001), default_options(BY_NAME["processes"]))
    context = Context(str(tree), "/sys", "/", backend, time.monotonic() + 60)
    collector.collect(context)  # a first sample: later collects compute rates
    time.sleep(0.002)
    _describe(benchmark, backend_name, tree, "collect")
    families = benchmark(collector.collect, context)
    names = {f.desc.name for f in families}
    assert "node_processes_pids" in names and "node_top_process_resident_memory_bytes" in names
