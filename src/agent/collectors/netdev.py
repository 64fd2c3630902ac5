"""/proc/net/dev: per-interface traffic counters."""

from __future__ import annotations

from agent import metrics
from agent.collectors.filters import DeviceLabels, NameFilter
from agent.metrics import Family
from agent.procfs import layout

LABELS = ("interface",)
RX_BYTES = metrics.counter("node_network_receive_bytes", "Bytes received.", LABELS)
TX_BYTES = metrics.counter("node_network_transmit_bytes", "Bytes transmitted.", LABELS)
RX_PACKETS = metrics.counter("node_network_receive_packets", "Packets received.", LABELS)
TX_PACKETS = metrics.counter("node_network_transmit_packets", "Packets transmitted.", LABELS)
RX_ERRORS = metrics.counter("node_network_receive_errors", "Receive errors detected by the driver.", LABELS)
TX_ERRORS = metrics.counter("node_network_transmit_errors", "Transmit errors detected by the driver.", LABELS)

# Rows stay plain tuples from struct.iter_unpack (a NamedTuple per row
# costs more than the C parse on a host with thousands of interfaces).
_F = layout.NetDev._fields
RX_BYTES_I, RX_PACKETS_I, RX_ERRS_I = _F.index("rx_bytes"), _F.index("rx_packets"), _F.index("rx_errs")
TX_BYTES_I, TX_PACKETS_I, TX_ERRS_I = _F.index("tx_bytes"), _F.index("tx_packets"), _F.index("tx_errs")
NAME_LEN_I, NAME_I = _F.index("name_len"), _F.index("name_raw")


class NetdevCollector:
    source = "netdev"
    relpath = "net/dev"

    def __init__(self, name_filter: NameFilter):
        self.labels = DeviceLabels(name_filter)

    def families(self, data: bytes) -> list[Family]:
        kept = self.labels.select(layout.NETDEV.iter_unpack(data), NAME_LEN_I, NAME_I)
        return [
            Family(RX_BYTES, [(labels, row[RX_BYTES_I]) for labels, row in kept]),
            Family(TX_BYTES, [(labels, row[TX_BYTES_I]) for labels, row in kept]),
            Family(RX_PACKETS, [(labels, row[RX_PACKETS_I]) for labels, row in kept]),
            Family(TX_PACKETS, [(labels, row[TX_PACKETS_I]) for labels, row in kept]),
            Family(RX_ERRORS, [(labels, row[RX_ERRS_I]) for labels, row in kept]),
            Family(TX_ERRORS, [(labels, row[TX_ERRS_I]) for labels, row in kept]),
        ]
