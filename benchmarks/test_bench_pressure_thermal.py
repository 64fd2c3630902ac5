"""The Python-only tree collectors, one collection each: pressure on this
machine's /proc (or the procfs-host fixture where the kernel has no PSI)
and thermal_zone on the desktop sysfs fixture (this VM has no zones).
No backend parameter: neither collector calls into a parser backend."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from agent.collectors.base import Context
from agent.collectors.pressure import PressureCollector
from agent.collectors.thermal_zone import ThermalZoneCollector

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"


def context(procfs: Path, sysfs: Path) -> Context:
    return Context(str(procfs), str(sysfs), "/", None, time.monotonic() + 3600)


def test_collect_pressure(benchmark):
    procfs = Path("/proc") if Path("/proc/pressure/cpu").exists() else FIXTURES / "procfs-host" / "linux-6.8-host"
    benchmark.extra_info.update(source="pressure", layer="collect", fixture=str(procfs),
                                kernel=platform.release() if str(procfs) == "/proc" else "fixture")
    assert benchmark(PressureCollector().collect, context(procfs, FIXTURES))


def test_collect_thermal_zone(benchmark):
    sysfs = FIXTURES / "sysfs" / "desktop"
    benchmark.extra_info.update(source="thermal_zone", layer="collect", fixture="sysfs/desktop", kernel="fixture")
    assert len(benchmark(ThermalZoneCollector().collect, context(Path("/proc"), sysfs))) == 3
