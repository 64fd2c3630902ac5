"""The connection table: the open connections, what each is doing, and
which one to close when a newcomer finds every slot taken.

A connection is in one of three states:
- "waiting": handshaking, or waiting for a request head (its first, or the
  next on a keep-alive connection);
- "busy": a request is complete and being answered;
- "lingering": draining what the client still sends after an error answer.
A busy connection is *stalled* while its write has moved no byte for
STALL_STEP (its client is not reading), and *pipelining* while it answers
requests that had arrived before the previous answer was written.

The rule: a connection that does not read what it asked for cannot keep a
slot from one that does.  Eviction order, first to go first (`_rank`):
1. stalled, pipelining or lingering: the client is not waiting for us but
   we for it, or it sent more than one request at a time.  The one in that
   state longest first.
2. waiting: of the peer address holding the most connections, one in the
   middle of a head or handshake before an idle keep-alive one, then the
   one that has waited longest.
Busy connections answering one request to a client that reads are never
evicted; only when every slot holds one is a newcomer refused.  So a slow
reader's connection is evictable from its second answer on, or from the
moment its first one stops moving, and a scraper (one request at a time,
read at once) is evictable only while waiting, never before the attackers'
stalled connections.  tests/test_limits.py runs 80 slow readers from 80
addresses against a scraper; fuzz/http_stress.py --attack all adds
slowloris and a flood (docs/SECURITY.md).

Pipelines also wait their turn (`take_turn`): a request that arrived
after its connection's previous answer (a scraper's, any client's that
reads) is answered at once; one that was already waiting in a pipeline is
parsed and answered only while no such request is being answered, one at
a time across connections, at most PIPELINED_PER_SECOND a second after a
burst of PIPELINED_BURST.  However many connections pipeline without
reading, they take a bounded share of the interpreter, which the acceptor
and a scraper's request need.  A turn covers the parse and the making of
the answer, never a write.

Finding the victim scans the table: max_connections entries, at most once
per accepted connection, and only at the cap.
"""

from __future__ import annotations

import threading
import time

# Pipelined requests answered a second, across all connections, after a
# burst (ConnectionTable.take_turn).  No scraper pipelines; a client that
# does gets 1,000 answers a second.
PIPELINED_PER_SECOND = 1000
PIPELINED_BURST = 100
# A write that moves no byte for this long makes its connection stalled
# (the writer wakes at this interval while blocked): many LAN round trips,
# so a scraper that reads is not stalled, and short next to a scrape.  A
# scraper across a slower link may be, between windows; that only matters
# while every slot is taken.
STALL_STEP = 0.05

WAITING = "waiting"
BUSY = "busy"
LINGERING = "lingering"


class Connection:
    __slots__ = ("sock", "peer", "tls", "thread", "accepted", "evicted", "retire", "served", "idle",
                 "state", "since", "stalled_since", "pipelining_since", "direct")

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
        self.stalled_since: float | None = None
        self.pipelining_since: float | None = None
        self.direct = False  # answering a request that holds pipelined ones off


class ConnectionTable:
    """The open connections.  `lock` guards the table and every state
    change that eviction depends on; methods ending in `_locked` expect the
    caller to hold it."""

    def __init__(self):
        self.lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._per_peer: dict[str, int] = {}
        # The pipeline turn (take_turn): requests answered that are not
        # pipelined, whether a pipelined one is being worked on, and the
        # budget of pipelined ones.
        self._turn = threading.Condition(self.lock)
        self._direct = 0
        self._turn_taken = False
        self._turn_waiters = 0  # so that a scraper's release notifies only when someone waits
        self._budget = float(PIPELINED_BURST)
        self._refilled = time.monotonic()

    def __len__(self) -> int:
        return len(self._connections)

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
        per_peer = self._per_peer
        best = None
        best_key = None
        for conn in self._connections:
            key = _rank(conn, per_peer)
            if key is not None and (best_key is None or key < best_key):
                best, best_key = conn, key
        if best is not None:
            best.evicted = True
            self.remove_locked(best)
        return best

    # --- state changes, from the connection's own thread ---------------------

    def claim(self, conn: Connection, pipelined: bool = False) -> bool:
        """A request is complete: busy.  False when it was evicted
        meanwhile.  A request that is not `pipelined` holds pipelined ones
        off until its answer is made (`answered`), not while it is written:
        a client that does not read it must not stop them."""
        with self.lock:
            if conn.evicted:
                return False
            conn.state = BUSY
            if not pipelined:
                conn.direct = True
                self._direct += 1
            return True

    def release(self, conn: Connection, lingering: bool = False, pipelined: bool = False) -> bool:
        """Answered: waiting for the next request, or lingering after an
        error; `pipelined` when the next request had arrived before this
        answer was written.  False when it was evicted meanwhile."""
        now = time.monotonic()
        with self.lock:
            self._undirect_locked(conn)
            if conn.evicted:
                return False
            conn.state = LINGERING if lingering else WAITING
            conn.since = now
            # Idle from now, not from when its thread next looks at its
            # buffer (read_request corrects it if bytes of a request are
            # there): on a busy host that can come after an eviction, which
            # would then take this connection for one in the middle of a head.
            conn.idle = not pipelined
            conn.stalled_since = None
            if not pipelined:
                conn.pipelining_since = None
            elif conn.pipelining_since is None:
                conn.pipelining_since = now
            return True

    def answered(self, conn: Connection) -> None:
        """Its answer is made; what is left is writing it."""
        if conn.direct:
            with self.lock:
                self._undirect_locked(conn)

    def close(self, conn: Connection) -> None:
        """Its thread is done with it."""
        with self.lock:
            self._undirect_locked(conn)
            self.remove_locked(conn)

    def _undirect_locked(self, conn: Connection) -> None:
        if conn.direct:
            conn.direct = False
            self._direct -= 1
            if not self._direct and self._turn_waiters:
                self._turn.notify()

    def take_turn(self, conn: Connection, stopping: threading.Event) -> bool:
        """Wait until this connection may work on its next (pipelined)
        request; False when it was evicted or a shutdown began meanwhile."""
        with self.lock:
            while self._direct or self._turn_taken:
                if conn.evicted or stopping.is_set():
                    self._turn.notify()  # the wake-up was perhaps meant for another
                    return False
                # One waiter is woken at a time (notify, not notify_all): a
                # herd of pipelining threads woken at every turn would hold
                # the interpreter as much as the work they wait for.  The
                # timeout is for eviction and shutdown, which don't notify.
                self._turn_waiters += 1
                try:
                    self._turn.wait(0.2)
                finally:
                    self._turn_waiters -= 1
            self._turn_taken = True
            now = time.monotonic()
            self._budget = min(float(PIPELINED_BURST), self._budget + (now - self._refilled) * PIPELINED_PER_SECOND)
            self._refilled = now
            self._budget -= 1
            pause = -self._budget / PIPELINED_PER_SECOND if self._budget < 0 else 0.0
        if pause:
            time.sleep(pause)  # holding the turn: the others wait too
        return True

    def give_turn(self) -> None:
        with self.lock:
            self._turn_taken = False
            self._turn.notify()

    def stalled(self, conn: Connection, since: float) -> None:
        """Its write has not moved since `since`."""
        with self.lock:
            conn.stalled_since = since

    def moving(self, conn: Connection) -> None:
        """Its write moves again."""
        with self.lock:
            conn.stalled_since = None


def _rank(conn: Connection, per_peer: dict[str, int]):
    """The eviction key (lowest goes first), or None: not evictable."""
    state = conn.state
    if conn.pipelining_since is not None:
        return (0, 0, 0, conn.pipelining_since)
    if state == BUSY:
        stalled = conn.stalled_since
        return None if stalled is None else (0, 0, 0, stalled)
    if state == LINGERING:
        return (0, 0, 0, conn.since)
    # Waiting: a head or handshake in progress before an idle keep-alive.
    keep_alive_idle = conn.idle and conn.served > 0
    return (1, -per_peer.get(conn.peer[0], 0), keep_alive_idle, conn.since)
