"""Shared by the benchmark modules."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

DENSE = dict(cpus=256, interfaces=2000, disks=300)
QUIET = logging.getLogger("bench.quiet")
QUIET.setLevel(logging.CRITICAL)


def describe(benchmark, backend: str, tree: Path, **extra):
    benchmark.extra_info.update(
        backend=backend,
        kernel=platform.release() if str(tree) == "/proc" else "generated",
        fixture="proc" if str(tree) == "/proc" else "dense-{cpus}cpu-{interfaces}if-{disks}disk".format(**DENSE),
        **extra)
