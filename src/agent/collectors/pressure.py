"""/proc/pressure: pressure stall information (PSI, Linux 4.20+), with
node_exporter's names, help texts and arithmetic (docs/NODE_EXPORTER_COMPAT.md,
"pressure")."""

from __future__ import annotations

import errno
import os

from agent import metrics
from agent.collectors.base import BadFile, NoData
from agent.metrics import Family
from agent.procfs.layout import ParseError
from agent.procfs.pressure import parse_pressure
from agent.procfs.reader import read_fd

# node_exporter's help texts, word for word (no final period).
CPU_WAITING = metrics.counter(
    "node_pressure_cpu_waiting_seconds", "Total time in seconds that processes have waited for CPU time")
IO_WAITING = metrics.counter(
    "node_pressure_io_waiting_seconds", "Total time in seconds that processes have waited due to IO congestion")
IO_STALLED = metrics.counter(
    "node_pressure_io_stalled_seconds",
    "Total time in seconds no process could make progress due to IO congestion")
MEMORY_WAITING = metrics.counter(
    "node_pressure_memory_waiting_seconds", "Total time in seconds that processes have waited for memory")
MEMORY_STALLED = metrics.counter(
    "node_pressure_memory_stalled_seconds",
    "Total time in seconds no process could make progress due to memory congestion")
# node_exporter 1.9.0's name; 1.5.0 does not read the irq file.
IRQ_STALLED = metrics.counter(
    "node_pressure_irq_stalled_seconds",
    "Total time in seconds no process could make progress due to IRQ congestion")

# (file, family of the `some` line, family of the `full` line, required).
# cpu's `full` line (5.13+, all zeros at system level since 5.18.3) is left
# out, as node_exporter does.  irq exists only on 6.1+ kernels built with
# CONFIG_IRQ_TIME_ACCOUNTING.
RESOURCES = (
    ("cpu", CPU_WAITING, None, True),
    ("io", IO_WAITING, IO_STALLED, True),
    ("memory", MEMORY_WAITING, MEMORY_STALLED, True),
    ("irq", None, IRQ_STALLED, False),
)
NO_LABELS = ()


def seconds(total_us: int) -> float:
    # node_exporter's float64(total)/1000.0/1000.0: two divisions, which is
    # not always the double nearest to total/1e6 (91233122 -> 91.23312200000001).
    return total_us / 1000.0 / 1000.0


def read_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


class PressureCollector:
    source = "pressure"
    # It reads nothing but this part of the procfs root: where that is the
    # kernel's own (a proc mount), the registry reads it in the collecting
    # thread.
    procfs_only = "pressure"

    def collect(self, context) -> list[Family]:
        directory = os.path.join(context.procfs, "pressure")
        families = []
        for name, some_desc, full_desc, required in RESOURCES:
            path = os.path.join(directory, name)
            try:
                data = read_file(path)
            except FileNotFoundError:
                if not os.path.isdir(directory):
                    raise NoData(f"no {directory}: a kernel before 4.20 or without CONFIG_PSI") from None
                if required:
                    raise
                continue
            except OSError as exc:
                # Built with CONFIG_PSI but booted with psi=0 (or
                # CONFIG_PSI_DEFAULT_DISABLED without psi=1): the files
                # refuse to be read.  irq also refuses where IRQ time
                # accounting is off at run time.
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                if required:
                    raise NoData(f"{path}: PSI is disabled (boot with psi=1 to enable it)") from None
                continue
            try:
                pressure = parse_pressure(data)
            except ParseError as exc:
                raise BadFile(path, str(exc)) from None
            # A line the file lacks leaves out its family only: node_exporter
            # 1.5.0 crashes on an io or memory file without `full`.
            if some_desc is not None and pressure.some_total_us is not None:
                families.append(Family(some_desc, [(NO_LABELS, seconds(pressure.some_total_us))]))
            if full_desc is not None and pressure.full_total_us is not None:
                families.append(Family(full_desc, [(NO_LABELS, seconds(pressure.full_total_us))]))
        return families
