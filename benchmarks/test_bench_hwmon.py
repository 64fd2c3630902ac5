"""The hwmon collector on the desktop sysfs fixture (10 chips, ~200 sensor
files), per backend: the bulk read of every sensor file alone (C's
agent_read_files against the pure-Python open/fstat/read/close per file),
and the whole collect (listings, chip labels, reads, families).  The C
path is worth keeping only where it saves >= 5 % of the collect."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from agent.collectors.base import Context
from agent.collectors.hwmon import SENSOR_BYTES, HwmonCollector
from agent.procfs.layout import READ_ONCE
from agent.procfs.read_files import dir_entries
from agent.sysfs.hwmon import explode_filename
from backends import load_backend

DESKTOP = Path(__file__).parent.parent / "tests" / "fixtures" / "sysfs" / "desktop"


def _describe(benchmark, backend_name, layer, **extra):
    benchmark.extra_info.update(backend=backend_name, kernel=platform.release(), fixture="sysfs/desktop",
                                layer=layer, source="hwmon", **extra)


def _sensor_paths(backend, dirfd) -> list[bytes]:
    paths = []
    for chip, _ in dir_entries(*backend.list_dir(dirfd, b".")):
        for sub in (chip + b"/", chip + b"/device/"):
            try:
                entries = dir_entries(*backend.list_dir(dirfd, sub))
            except NotADirectoryError:
                continue
            except FileNotFoundError:
                continue
            paths += [sub + name for name, _ in entries if explode_filename(name)]
    return paths


def test_hwmon_bulk_read(benchmark, backend_name):
    backend = load_backend(backend_name)
    dirfd = os.open(DESKTOP / "class" / "hwmon", os.O_RDONLY | os.O_DIRECTORY)
    try:
        paths = _sensor_paths(backend, dirfd)
        _describe(benchmark, backend_name, "bulk read", files=len(paths))
        table, data = benchmark(backend.read_files, dirfd, paths, SENSOR_BYTES, READ_ONCE)
        assert len(paths) > 150 and len(data) > 500
    finally:
        os.close(dirfd)


def test_hwmon_collect(benchmark, backend_name):
    backend = load_backend(backend_name)
    collector = HwmonCollector()

    def collect():
        return collector.collect(Context("/proc", str(DESKTOP), "/", backend, time.monotonic() + 10))

    _describe(benchmark, backend_name, "collect")
    families = benchmark(collect)
    assert sum(len(f.samples) for f in families) > 150
