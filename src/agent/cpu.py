"""CPU percentages over a window of at least --cpu-window seconds.

The rules (issue 2): percentages describe the most recent window of at least
`window` seconds that ends at the scrape; until the agent has seen such a
window they describe the time since boot (counters against zero); a window
in which no tick was counted keeps the previous values; a counter that went
backwards (iowait does, per Documentation/filesystems/proc.rst) contributes
0 for that window.  So no scraper, at any rate, sees a shorter window, the
first scrape has real numbers, and nothing is ever NaN.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable


# Samples are kept at most this many per window: enough that the chosen
# window is at most 1/16 longer than asked, and a bound on memory whatever
# the scrape rate.
SAMPLES_PER_WINDOW = 16


@record
class CpuTicks:
    """The eight fields of the aggregate cpu line that make up its total.
    guest and guest_nice are already inside user and nice, so they are not
    here: adding them would count guest time twice."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int


@record
class CpuPercent:
    usage: float
    user: float
    system: float
    idle: float
    iowait: float


ZERO_TICKS = CpuTicks(0, 0, 0, 0, 0, 0, 0, 0)
ZERO_PERCENT = CpuPercent(0.0, 0.0, 0.0, 0.0, 0.0)


def percentages(old: CpuTicks, new: CpuTicks) -> CpuPercent | None:
    """Percentages over old..new; None when no tick was counted."""
    # Spelled out field by field: this runs on every scrape, and a
    # generator into CpuTicks._make cost twice as much.
    user = new.user - old.user if new.user > old.user else 0
    system = new.system - old.system if new.system > old.system else 0
    idle = new.idle - old.idle if new.idle > old.idle else 0
    iowait = new.iowait - old.iowait if new.iowait > old.iowait else 0
    total = (user + system + idle + iowait
             + (new.nice - old.nice if new.nice > old.nice else 0)
             + (new.irq - old.irq if new.irq > old.irq else 0)
             + (new.softirq - old.softirq if new.softirq > old.softirq else 0)
             + (new.steal - old.steal if new.steal > old.steal else 0))
    if total == 0:
        return None
    return CpuPercent(
        usage=100.0 * (1.0 - (idle + iowait) / total),
        user=100.0 * user / total,
        system=100.0 * system / total,
        idle=100.0 * idle / total,
        iowait=100.0 * iowait / total,
    )


class CpuWindow:
    """Thread-safe: the agent may collect for concurrent scrapes."""

    def __init__(self, window_seconds: float, clock: Callable[[], float] = time.monotonic):
        if not window_seconds > 0:
            raise ValueError("window must be positive")
        self._window = window_seconds
        self._clock = clock
        self._history: deque[tuple[float, CpuTicks]] = deque()
        self._last: CpuPercent | None = None
        self._lock = threading.Lock()

    @property
    def window_seconds(self) -> float:
        return self._window

    def set_window(self, window_seconds: float) -> None:
        """Change the window, keeping the samples (a reload keeps baselines)."""
        if not window_seconds > 0:
            raise ValueError("window must be positive")
        with self._lock:
            self._window = window_seconds

    def update(self, ticks: CpuTicks) -> CpuPercent:
        with self._lock:
            now = self._clock()
            window = self._window
            history = self._history
            # Drop samples older than the newest one that is at least a
            # window old: that one is the start of the window.
            while len(history) >= 2 and now - history[1][0] >= window:
                history.popleft()
            if history and now - history[0][0] >= window:
                base = history[0][1]
            else:
                base = ZERO_TICKS  # no full window yet: since boot
            result = percentages(base, ticks)
            if result is None:
                result = self._last
                if result is None:
                    # Nothing counted in the window and nothing before it:
                    # fall back to since boot, which is all zero only on a
                    # procfs that never ticked.
                    result = percentages(ZERO_TICKS, ticks) or ZERO_PERCENT
            self._last = result
            if not history or now - history[-1][0] >= window / SAMPLES_PER_WINDOW:
                history.append((now, ticks))
            return result
