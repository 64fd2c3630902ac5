"""The CPU-window rules of issue 2, with an injected clock."""

import math

import pytest

from agent.cpu import CpuTicks, CpuWindow


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def ticks(user=0, nice=0, system=0, idle=0, iowait=0, irq=0, softirq=0, steal=0):
    return CpuTicks(user, nice, system, idle, iowait, irq, softirq, steal)


@pytest.fixture
def clock():
    return Clock()


def test_first_update_describes_the_time_since_boot(clock):
    w = CpuWindow(1.0, clock)
    p = w.update(ticks(user=300, system=100, idle=500, iowait=100))
    # total 1000: busy = 1000 - idle - iowait = 400
    assert p.usage == pytest.approx(40.0)
    assert p.user == pytest.approx(30.0)
    assert p.system == pytest.approx(10.0)
    assert p.idle == pytest.approx(50.0)
    assert p.iowait == pytest.approx(10.0)


def test_window_shorter_than_asked_is_never_used(clock):
    w = CpuWindow(1.0, clock)
    w.update(ticks(user=100, idle=100))          # t=0, since boot
    clock.now += 0.5
    # Only half a window old: still since boot, not the 0.5 s delta.
    p = w.update(ticks(user=100, idle=200))
    assert p.user == pytest.approx(100 / 300 * 100)
    clock.now += 0.5
    # Now a full window since the first sample: delta user 0, idle 100+...
    p = w.update(ticks(user=150, idle=250))
    assert p.user == pytest.approx(50 / 200 * 100)   # from the t=0 sample
    assert p.idle == pytest.approx(150 / 200 * 100)


def test_window_is_the_most_recent_one_of_at_least_the_length(clock):
    w = CpuWindow(1.0, clock)
    # Samples every 0.25 s (exact in binary) for 3 s; counters at t=k/4 are
    # user=k, idle=10k.
    for k in range(13):
        w.update(ticks(user=k, idle=10 * k))
        clock.now += 0.25
    # now = t0 + 3.25: the newest sample at least 1 s old is t=2.25 (k=9).
    p = w.update(ticks(user=9 + 30, idle=90 + 10))
    assert p.user == pytest.approx(30 / 40 * 100)
    assert p.idle == pytest.approx(10 / 40 * 100)


def test_window_without_ticks_keeps_previous_values(clock):
    w = CpuWindow(1.0, clock)
    first = w.update(ticks(user=50, idle=50))
    clock.now += 2
    second = w.update(ticks(user=50, idle=50))   # nothing counted
    assert second == first
    assert not any(math.isnan(v) for v in second)


def test_counter_going_backwards_counts_as_zero(clock):
    w = CpuWindow(1.0, clock)
    w.update(ticks(user=100, idle=100, iowait=50))
    clock.now += 1
    # iowait went back from 50 to 40: that field contributes nothing.
    p = w.update(ticks(user=200, idle=200, iowait=40))
    assert p.iowait == 0.0
    assert p.user == pytest.approx(50.0)
    assert p.idle == pytest.approx(50.0)
    assert p.usage == pytest.approx(50.0)


def test_all_zero_procfs_gives_zeros_not_nan(clock):
    w = CpuWindow(1.0, clock)
    p = w.update(ticks())
    assert tuple(p) == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_guest_is_not_counted_twice():
    # CpuTicks has no guest field at all: the collector must not add it.
    assert "guest" not in CpuTicks._fields


def test_history_stays_bounded_at_any_scrape_rate(clock):
    w = CpuWindow(1.0, clock)
    for i in range(10_000):                      # one scrape per millisecond
        clock.now += 0.001
        w.update(ticks(user=i, idle=i))
    assert len(w._history) <= 20


def test_set_window_keeps_the_baseline(clock):
    w = CpuWindow(10.0, clock)
    w.update(ticks(user=0, idle=100))
    clock.now += 2
    w.set_window(1.0)
    p = w.update(ticks(user=100, idle=100))      # window from the t=0 sample
    assert p.user == pytest.approx(100.0)


def test_window_must_be_positive():
    with pytest.raises(ValueError):
        CpuWindow(0)
