"""Two versions of the agent side by side: started on the same tree, scraped
in turn over loopback HTTP as Prometheus scrapes (compare.py's request), in
blocks that alternate which goes first; per block, the server's CPU per
scrape (utime + stime of its process, /proc/PID/stat) and the client's
median wall time.  Reported: each block, and the medians over the blocks.

    python benchmarks/ab.py --a /tmp/old/src --b src --tree /proc
    python benchmarks/ab.py --a /tmp/old/src --b src --tree /tmp/dense --scrapes 150 \\
        --b-args "--collector.disable-defaults --collector.stat --collector.stat.per-cpu=false"
    python benchmarks/ab.py --a /tmp/old/src --b src --path /      # the landing page: the server path alone

A version is a source directory (its `agent` package, with the C extension
built in place for `--backend c`).  Only 127.0.0.1 is used; every loop is
bounded by --scrapes and --blocks.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import SCRAPE_REQUEST, ScrapeConnection, free_port  # noqa: E402

WARMUP = 300
START_SECONDS = 20


def start(src: str, tree: str, backend: str, extra: list[str]):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "--procfs", tree, "--listen", f"127.0.0.1:{port}",
                             "--backend", backend, "--log-level", "warning", *extra],
                            env=dict(os.environ, PYTHONPATH=os.path.abspath(src)), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return proc, ScrapeConnection(port)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the agent from {src} did not start") from None
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="source directory of version A")
    p.add_argument("--b", required=True, help="source directory of version B")
    p.add_argument("--a-args", default="", help="extra flags for A")
    p.add_argument("--b-args", default="", help="extra flags for B")
    p.add_argument("--tree", default="/proc")
    p.add_argument("--backend", default="c")
    p.add_argument("--path", default="/metrics")
    p.add_argument("--scrapes", type=int, default=3000, help="scrapes per block")
    p.add_argument("--blocks", type=int, default=6, help="blocks per version")
    args = p.parse_args()
    request = SCRAPE_REQUEST.replace(b"GET /metrics ", b"GET " + args.path.encode() + b" ")
    agents = {}
    try:
        for name, src, extra in (("A", args.a, args.a_args), ("B", args.b, args.b_args)):
            agents[name] = start(src, args.tree, args.backend, shlex.split(extra))
        for proc, conn in agents.values():
            for _ in range(WARMUP):
                conn.get(request)
        cpus = {name: [] for name in agents}
        walls = {name: [] for name in agents}
        for block in range(args.blocks):
            order = list(agents.items()) if block % 2 == 0 else list(reversed(agents.items()))
            for name, (proc, conn) in order:
                before, times = cpu_seconds(proc.pid), []
                for _ in range(args.scrapes):
                    start_time = time.perf_counter()
                    status, _, _ = conn.get(request)
                    times.append(time.perf_counter() - start_time)
                    if status != 200:
                        raise RuntimeError(f"{name}: HTTP {status}")
                cpus[name].append((cpu_seconds(proc.pid) - before) / args.scrapes * 1e3)
                walls[name].append(statistics.median(times) * 1e3)
        for name in agents:
            print(f"{name}: CPU per request, ms: median {statistics.median(cpus[name]):.3f} "
                  f"(blocks {' '.join(f'{x:.3f}' for x in cpus[name])}); "
                  f"wall, median of block medians {statistics.median(walls[name]):.3f} ms")
        ratio = statistics.median(cpus["B"]) / statistics.median(cpus["A"])
        print(f"B / A: CPU {ratio:.3f}, wall {statistics.median(walls['B']) / statistics.median(walls['A']):.3f}")
    finally:
        for proc, conn in agents.values():
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
