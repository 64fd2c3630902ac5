"""The connection table: the open connections, what each is doing, and
which one to close when a newcomer finds every slot taken.

A connection is in one of three states:
- "waiting": handshaking, or waiting for a request head (its first, or the
  next on a keep-alive connection);
- "busy": a request is complete and being answered;
- "lingering": draining what the client still sends after an error answer.

Busy connections are never evicted.  Of the others, the victim is a
connection of the peer address holding the most connections, a lingering
one first, then the one that has waited longest: a scraper on another host
than the attacker keeps its slot whatever the attacker does.  Only when
every slot is busy is a newcomer refused.

Finding the victim scans the table: max_connections entries, at most once
per accepted connection, and only at the cap.
"""

from __future__ import annotations

import threading
import time

WAITING = "waiting"
BUSY = "busy"
LINGERING = "lingering"


class Connection:
    __slots__ = ("sock", "peer", "tls", "thread", "accepted", "evicted", "retire", "served", "idle",
                 "state", "since")

    def __init__(self, sock, peer, accepted: float, tls):
        self.sock = sock
        self.peer = peer
        self.tls = tls  # the TLS listener it was accepted with, or None
        self.thread: threading.Thread | None = None
        self.accepted = accepted
        # Set (under the table's lock) when the acceptor closes it to make
        # room; its thread then leaves without answering.
        self.evicted = False
        # Set by configure(): close after the response in progress or next.
        self.retire = False
        self.served = 0  # responses sent
        # True while no byte of the next request has arrived: shutdown()
        # may wake such a connection, never one in the middle of a request.
        self.idle = True
        self.state = WAITING
        self.since = accepted  # when it entered its state


class ConnectionTable:
    """The open connections.  `lock` guards the table and every state
    change that eviction depends on; methods ending in `_locked` expect the
    caller to hold it."""

    def __init__(self):
        self.lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._per_peer: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, conn: Connection) -> bool:
        return conn in self._connections

    def snapshot(self) -> list[Connection]:
        with self.lock:
            return list(self._connections)

    def snapshot_locked(self) -> list[Connection]:
        return list(self._connections)

    def add_locked(self, conn: Connection) -> None:
        self._connections.add(conn)
        host = conn.peer[0]
        self._per_peer[host] = self._per_peer.get(host, 0) + 1

    def remove_locked(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            host = conn.peer[0]
            left = self._per_peer[host] - 1
            if left:
                self._per_peer[host] = left
            else:
                del self._per_peer[host]

    def evict_locked(self) -> Connection | None:
        """Take the connection that should make room (the module's order)
        out of the table and mark it evicted; None when every one is busy."""
        now = time.monotonic()
        per_peer = self._per_peer
        best = None
        best_key = None
        for conn in self._connections:
            key = _rank(conn, now, per_peer)
            if key is not None and (best_key is None or key < best_key):
                best, best_key = conn, key
        if best is not None:
            best.evicted = True
            self.remove_locked(best)
        return best

    # --- state changes, from the connection's own thread ---------------------

    def claim(self, conn: Connection) -> bool:
        """A request is complete: busy.  False when it was evicted meanwhile."""
        with self.lock:
            if conn.evicted:
                return False
            conn.state = BUSY
            return True

    def release(self, conn: Connection, lingering: bool = False) -> bool:
        """Answered: waiting for the next request, or lingering after an
        error.  False when it was evicted meanwhile."""
        with self.lock:
            if conn.evicted:
                return False
            conn.state = LINGERING if lingering else WAITING
            conn.since = time.monotonic()
            return True


def _rank(conn: Connection, now: float, per_peer: dict[str, int]):
    """The eviction key (lowest goes first), or None: not evictable."""
    if conn.state == BUSY:
        return None
    return (-per_peer.get(conn.peer[0], 0), conn.state != LINGERING, conn.since)
