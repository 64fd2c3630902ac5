"""Collection: parse only, read + parse, each collector (read, parse and
its families), and every source together, per backend, on this machine's
/proc and on the dense tree."""

from __future__ import annotations

import os
import time

import pytest

from agent.cli import build_registry
from agent.collectors import NoData, TABLE, Context, build
from agent.config import Config
from agent.cpu import CpuWindow
from backends import load_backend
from benchutil import QUIET, describe

SOURCES = {"stat": "stat", "meminfo": "meminfo", "diskstats": "diskstats",
           "netdev": "net/dev", "loadavg": "loadavg", "uptime": "uptime"}


@pytest.mark.parametrize("source", SOURCES)
def test_parse(benchmark, backend_name, tree, source):
    backend = load_backend(backend_name)
    data = (tree / SOURCES[source]).read_bytes()
    parse = getattr(backend, f"parse_{source}")
    describe(benchmark, backend_name, tree, layer="parse", source=source, bytes=len(data))
    assert benchmark(parse, data)


@pytest.mark.parametrize("source", SOURCES)
def test_read_and_parse(benchmark, backend_name, tree, source):
    backend = load_backend(backend_name)
    load = backend.make_loader(source)
    path = str(tree / SOURCES[source])

    def read_and_parse():
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return load(fd)
        finally:
            os.close(fd)

    describe(benchmark, backend_name, tree, layer="read+parse", source=source)
    assert benchmark(read_and_parse)


def test_collect_all_sources(benchmark, backend_name, tree):
    registry = build_registry(Config(procfs=str(tree), backend=backend_name), QUIET)
    describe(benchmark, backend_name, tree, layer="collect")
    families = benchmark(registry.collect)
    assert all(s.ok for s in registry.sources)
    assert len(families) > 20


@pytest.mark.parametrize("name", [entry.name for entry in TABLE])
def test_collector(benchmark, backend_name, tree, name):
    """One collector with its default options, as a scrape runs it: read,
    parse and families for a file collector (the file opened and closed,
    as on a tree that is not a proc mount), collect() for a tree one."""
    backend = load_backend(backend_name)
    config = Config(procfs=str(tree), backend=backend_name)
    collector = build([name], config, CpuWindow(config.cpu_window))[0]
    if hasattr(collector, "relpath"):
        load = backend.make_loader(collector.source)
        path = str(tree / collector.relpath)

        def collect():
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return collector.families(load(fd))
            finally:
                os.close(fd)
    else:
        def collect():
            return collector.collect(Context(str(tree), config.sysfs, config.rootfs, backend,
                                             time.monotonic() + 5.0))

    try:
        collect()
    except NoData as exc:  # this tree has no such source (no hwmon chip on a VM's /sys ...)
        pytest.skip(f"{name} on {tree}: {exc}")
    describe(benchmark, backend_name, tree, layer="collector", source=name)
    assert benchmark(collect) is not None
