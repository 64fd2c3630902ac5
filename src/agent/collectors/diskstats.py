"""/proc/diskstats: per-device I/O counters in base units."""

from __future__ import annotations

from agent import metrics
from agent.collectors.filters import Columns, DeviceLabels, NameFilter
from agent.metrics import Series
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

# Word (8-byte field) positions in the packed row, present bits, the
# name's byte offset.  The 2.6 partition layout has no io_time, so each
# field's bit is checked rather than assumed.
_F = layout.DiskStats._fields
PRESENT_W, NAME_LEN_W = _F.index("present"), _F.index("name_len")
NAME_OFFSET = 8 * _F.index("name_raw")
ROW_SIZE = layout.DISKSTATS.size
READS_W, READS_BIT = _F.index("reads_completed"), 1 << layout.DISK_BIT["reads_completed"]
SECTORS_READ_W, SECTORS_READ_BIT = _F.index("sectors_read"), 1 << layout.DISK_BIT["sectors_read"]
WRITES_W, WRITES_BIT = _F.index("writes_completed"), 1 << layout.DISK_BIT["writes_completed"]
SECTORS_WRITTEN_W, SECTORS_WRITTEN_BIT = _F.index("sectors_written"), 1 << layout.DISK_BIT["sectors_written"]
IO_TIME_W, IO_TIME_BIT = _F.index("io_time_ms"), 1 << layout.DISK_BIT["io_time_ms"]


class DiskstatsCollector:
    source = "diskstats"
    relpath = "diskstats"

    def __init__(self, name_filter: NameFilter):
        self.labels = DeviceLabels(name_filter)

    def families(self, data: bytes) -> list[Series]:
        labels, keep = self.labels.select(data, ROW_SIZE, NAME_LEN_W, NAME_OFFSET)
        col = Columns(data, ROW_SIZE, keep)
        present = col[PRESENT_W]
        every_row = -1
        for p in present:
            every_row &= p

        def series(desc, bit: int, values: list) -> Series:
            if every_row & bit:  # the common case: every row has the field
                return Series(desc, labels, values)
            have = [i for i, p in enumerate(present) if p & bit]
            return Series(desc, tuple(labels[i] for i in have), [values[i] for i in have])

        return [
            series(READ_BYTES, SECTORS_READ_BIT, [v * SECTOR_BYTES for v in col[SECTORS_READ_W]]),
            series(WRITTEN_BYTES, SECTORS_WRITTEN_BIT,
                   [v * SECTOR_BYTES for v in col[SECTORS_WRITTEN_W]]),
            series(READS, READS_BIT, col[READS_W]),
            series(WRITES, WRITES_BIT, col[WRITES_W]),
            series(IO_TIME, IO_TIME_BIT, [v / 1000 for v in col[IO_TIME_W]]),
        ]
