"""/proc/net/dev: per-interface traffic counters."""

from __future__ import annotations

from agent import metrics
from agent.collectors.filters import NameFilter, label_value
from agent.metrics import Family
from agent.procfs import layout

LABELS = ("interface",)
RX_BYTES = metrics.counter("node_network_receive_bytes", "Bytes received.", LABELS)
TX_BYTES = metrics.counter("node_network_transmit_bytes", "Bytes transmitted.", LABELS)
RX_PACKETS = metrics.counter("node_network_receive_packets", "Packets received.", LABELS)
TX_PACKETS = metrics.counter("node_network_transmit_packets", "Packets transmitted.", LABELS)
RX_ERRORS = metrics.counter("node_network_receive_errors", "Receive errors detected by the driver.", LABELS)
TX_ERRORS = metrics.counter("node_network_transmit_errors", "Transmit errors detected by the driver.", LABELS)


class NetdevCollector:
    source = "netdev"
    relpath = "net/dev"

    def __init__(self, name_filter: NameFilter):
        self.name_filter = name_filter

    def families(self, data: bytes) -> list[Family]:
        rx_bytes, tx_bytes, rx_packets, tx_packets, rx_errors, tx_errors = [], [], [], [], [], []
        seen = set()
        for row in layout.decode_netdev(data, len(data) // layout.NETDEV.size):
            name = label_value(row.name)
            if name in seen or not self.name_filter(name):
                continue  # a duplicate name would be a duplicate series
            seen.add(name)
            labels = (name,)
            rx_bytes.append((labels, row.rx_bytes))
            tx_bytes.append((labels, row.tx_bytes))
            rx_packets.append((labels, row.rx_packets))
            tx_packets.append((labels, row.tx_packets))
            rx_errors.append((labels, row.rx_errs))
            tx_errors.append((labels, row.tx_errs))
        return [
            Family(RX_BYTES, rx_bytes),
            Family(TX_BYTES, tx_bytes),
            Family(RX_PACKETS, rx_packets),
            Family(TX_PACKETS, tx_packets),
            Family(RX_ERRORS, rx_errors),
            Family(TX_ERRORS, tx_errors),
        ]
