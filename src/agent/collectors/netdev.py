"""/proc/net/dev: per-interface traffic counters."""

from __future__ import annotations

from agent import metrics
from agent.collectors.filters import Columns, DeviceLabels, NameFilter
from agent.metrics import Series
from agent.procfs import layout

LABELS = ("interface",)
RX_BYTES = metrics.counter("node_network_receive_bytes", "Bytes received.", LABELS)
TX_BYTES = metrics.counter("node_network_transmit_bytes", "Bytes transmitted.", LABELS)
RX_PACKETS = metrics.counter("node_network_receive_packets", "Packets received.", LABELS)
TX_PACKETS = metrics.counter("node_network_transmit_packets", "Packets transmitted.", LABELS)
RX_ERRORS = metrics.counter("node_network_receive_errors", "Receive errors detected by the driver.", LABELS)
TX_ERRORS = metrics.counter("node_network_transmit_errors", "Transmit errors detected by the driver.", LABELS)

# Word (8-byte field) positions in the packed row; the name's byte offset.
_F = layout.NetDev._fields
RX_BYTES_W, RX_PACKETS_W, RX_ERRS_W = _F.index("rx_bytes"), _F.index("rx_packets"), _F.index("rx_errs")
TX_BYTES_W, TX_PACKETS_W, TX_ERRS_W = _F.index("tx_bytes"), _F.index("tx_packets"), _F.index("tx_errs")
NAME_LEN_W = _F.index("name_len")
NAME_OFFSET = 8 * _F.index("name_raw")
ROW_SIZE = layout.NETDEV.size


class NetdevCollector:
    source = "netdev"
    relpath = "net/dev"

    def __init__(self, name_filter: NameFilter):
        self.labels = DeviceLabels(name_filter)

    def families(self, data: bytes) -> list[Series]:
        labels, keep = self.labels.select(data, ROW_SIZE, NAME_LEN_W, NAME_OFFSET)
        col = Columns(data, ROW_SIZE, keep)
        return [
            Series(RX_BYTES, labels, col[RX_BYTES_W]),
            Series(TX_BYTES, labels, col[TX_BYTES_W]),
            Series(RX_PACKETS, labels, col[RX_PACKETS_W]),
            Series(TX_PACKETS, labels, col[TX_PACKETS_W]),
            Series(RX_ERRORS, labels, col[RX_ERRS_W]),
            Series(TX_ERRORS, labels, col[TX_ERRS_W]),
        ]
