"""/proc/diskstats: per-device I/O counters in base units."""

from __future__ import annotations

from agent import metrics
from agent.collectors.filters import DeviceLabels, NameFilter
from agent.metrics import Family
from agent.procfs import layout

# node_exporter's default: partitions and pseudo-devices.
DEFAULT_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"

# The kernel counts diskstats sectors in 512-byte units whatever the
# device's logical block size (Documentation/admin-guide/iostats.rst).
SECTOR_BYTES = 512

LABELS = ("device",)
READ_BYTES = metrics.counter("node_disk_read_bytes", "Bytes read (sectors read x 512).", LABELS)
WRITTEN_BYTES = metrics.counter("node_disk_written_bytes", "Bytes written (sectors written x 512).", LABELS)
READS = metrics.counter("node_disk_reads_completed", "Reads completed successfully.", LABELS)
WRITES = metrics.counter("node_disk_writes_completed", "Writes completed successfully.", LABELS)
IO_TIME = metrics.counter("node_disk_io_time_seconds", "Time spent doing I/Os.", LABELS)

_F = layout.DiskStats._fields
PRESENT_I, NAME_LEN_I, NAME_I = _F.index("present"), _F.index("name_len"), _F.index("name_raw")
# (tuple index, present bit) of each field used; the 2.6 partition layout
# has no io_time, so its bit is checked rather than assumed.
READS_I, READS_BIT = _F.index("reads_completed"), 1 << layout.DISK_BIT["reads_completed"]
SECTORS_READ_I, SECTORS_READ_BIT = _F.index("sectors_read"), 1 << layout.DISK_BIT["sectors_read"]
WRITES_I, WRITES_BIT = _F.index("writes_completed"), 1 << layout.DISK_BIT["writes_completed"]
SECTORS_WRITTEN_I, SECTORS_WRITTEN_BIT = _F.index("sectors_written"), 1 << layout.DISK_BIT["sectors_written"]
IO_TIME_I, IO_TIME_BIT = _F.index("io_time_ms"), 1 << layout.DISK_BIT["io_time_ms"]


class DiskstatsCollector:
    source = "diskstats"
    relpath = "diskstats"

    def __init__(self, name_filter: NameFilter):
        self.labels = DeviceLabels(name_filter)

    def families(self, data: bytes) -> list[Family]:
        kept = self.labels.select(layout.DISKSTATS.iter_unpack(data), NAME_LEN_I, NAME_I)
        return [
            Family(READ_BYTES, [(labels, row[SECTORS_READ_I] * SECTOR_BYTES)
                                for labels, row in kept if row[PRESENT_I] & SECTORS_READ_BIT]),
            Family(WRITTEN_BYTES, [(labels, row[SECTORS_WRITTEN_I] * SECTOR_BYTES)
                                   for labels, row in kept if row[PRESENT_I] & SECTORS_WRITTEN_BIT]),
            Family(READS, [(labels, row[READS_I]) for labels, row in kept if row[PRESENT_I] & READS_BIT]),
            Family(WRITES, [(labels, row[WRITES_I]) for labels, row in kept if row[PRESENT_I] & WRITES_BIT]),
            Family(IO_TIME, [(labels, row[IO_TIME_I] / 1000)
                             for labels, row in kept if row[PRESENT_I] & IO_TIME_BIT]),
        ]
