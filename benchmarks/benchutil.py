"""Shared by the benchmark modules."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

DENSE = dict(cpus=256, interfaces=2000, disks=300)
# The dense host of the side-by-side comparison (gen_procfs.generate_host):
# DENSE's /proc, a Kubernetes node's 2,000 mounts, two sockets' sensors.
DENSE_HOST = dict(DENSE, mounts=2000, sockets=2, textfiles=20)
# The growth curve's host, the interfaces varied.
CURVE_HOST = dict(cpus=16, disks=16, mounts=50, sockets=2, textfiles=2)
QUIET = logging.getLogger("bench.quiet")
QUIET.setLevel(logging.CRITICAL)


def describe(benchmark, backend: str, tree: Path, **extra):
    benchmark.extra_info.update(
        backend=backend,
        kernel=platform.release() if str(tree) == "/proc" else "generated",
        fixture="proc" if str(tree) == "/proc" else "dense-{cpus}cpu-{interfaces}if-{disks}disk".format(**DENSE),
        **extra)
