"""Is the C read path worth keeping for the hwmon collector?  Alternating
rounds (c, python, python, c, ...) of the whole collect and of the bulk
read alone on tests/fixtures/sysfs/desktop, thread CPU time, medians, and
what share of the collector's CPU the C path saves (keep it at >= 5 %).

    .venv/bin/python benchmarks/hwmon_alternating.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from agent.collectors.base import Context  # noqa: E402
from agent.collectors.hwmon import SENSOR_BYTES, HwmonCollector  # noqa: E402
from agent.procfs import cbackend, pybackend  # noqa: E402
from agent.procfs.layout import READ_ONCE  # noqa: E402
from test_bench_hwmon import DESKTOP, _sensor_paths  # noqa: E402

BACKENDS = {"c": cbackend, "python": pybackend}


def main(rounds: int) -> None:
    if not cbackend.AVAILABLE:
        sys.exit(f"the C backend is not available: {cbackend.UNAVAILABLE_REASON}")
    collectors = {name: HwmonCollector() for name in BACKENDS}
    clock = time.thread_time_ns  # CPU, not wall: the rule is about scrape CPU
    spent = {(name, what): [] for name in BACKENDS for what in ("bulk read", "collect")}
    dirfd = os.open(DESKTOP / "class" / "hwmon", os.O_RDONLY | os.O_DIRECTORY)
    try:
        paths = _sensor_paths(pybackend, dirfd)
        order = list(BACKENDS.items())
        for i in range(rounds):
            for name, backend in order if i % 2 else order[::-1]:
                context = Context("/proc", str(DESKTOP), "/", backend, time.monotonic() + 10)
                start = clock()
                collectors[name].collect(context)
                spent[(name, "collect")].append(clock() - start)
                start = clock()
                backend.read_files(dirfd, paths, SENSOR_BYTES, READ_ONCE)
                spent[(name, "bulk read")].append(clock() - start)
    finally:
        os.close(dirfd)
    print(f"{len(paths)} sensor files, {rounds} alternating rounds, thread CPU medians:")
    for what in ("bulk read", "collect"):
        c, py = (statistics.median(spent[(name, what)]) / 1000 for name in ("c", "python"))
        print(f"  {what:9s}  c {c:7.1f} us  python {py:7.1f} us  python/c {py / c:.2f}  "
              f"C saves {100 * (py - c) / py:.1f} % of it")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
