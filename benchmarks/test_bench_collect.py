"""Collection: parse only, read + parse, and every source together, per
backend, on this machine's /proc and on the dense tree."""

from __future__ import annotations

import os

import pytest

from agent.cli import build_registry
from agent.config import Config
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
