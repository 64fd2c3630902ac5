"""Instructions per scrape, by layer, counted by valgrind's callgrind.

Wall and CPU times on a shared machine swing by 2x from one minute to the
next; instruction counts do not (the same binary on the same input counts
the same, whatever else runs).  So this is the measure to compare two
versions of a layer with.  Each layer runs N times after a warm-up, in a
process of its own under callgrind, and again with N = 0: the difference
over N is the layer's user-space cost.  Kernel work (the /proc reads, the
loopback TCP) is not counted.

    python benchmarks/instructions.py                  # this machine's /proc
    python benchmarks/instructions.py --tree /tmp/dense --iterations 20
    python benchmarks/instructions.py --layers scrape  # the agent over HTTP

Layers: collect (read, parse and convert every source, with the agent's own
metrics), render (OpenMetrics text), render_gzip (text and gzip, as a
Prometheus scrape asks), scrape (the agent process answering GET /metrics
over one keep-alive connection on 127.0.0.1, request to response).  The
pieces of collect: load:SOURCE (the backend's loader on the open file: pread
and parse), families:SOURCE (the collector on the loaded bytes), own (the
agent's process families), for SOURCE one of stat, meminfo, diskstats,
netdev, loadavg, uptime:

    python benchmarks/instructions.py --layers families:diskstats,load:diskstats,own
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = ("collect", "render", "render_gzip", "scrape")
SOURCES = ("stat", "meminfo", "diskstats", "netdev", "loadavg", "uptime")
PIECES = (*(f"load:{s}" for s in SOURCES), *(f"families:{s}" for s in SOURCES), "own")
ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
WARMUP = 20


def _layer(name: str, tree: str, n: int) -> None:
    """Run inside the callgrind'ed process: warm up, then `n` iterations."""
    import logging

    from agent import exposition
    from agent.cli import build_registry
    from agent.config import Config
    from agent.procfs import cbackend
    cbackend.tune_malloc()  # as the agent does
    log = logging.getLogger("instructions")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    registry = build_registry(Config(procfs=tree, backend="c"), log)
    render, _ = exposition.choose_encoder(ACCEPT)
    families = registry.collect()
    steps = {
        "collect": registry.collect,
        "render": lambda: render(families),
        "render_gzip": lambda: exposition.render_gzip(render, families),
        "own": registry._process_families,
    }
    for s in registry.sources:
        if s.path is None:  # a tree collector: no one file to load
            continue
        fd = os.open(s.path, os.O_RDONLY | os.O_CLOEXEC)
        data = s.loader(fd)
        steps[f"load:{s.collector.source}"] = lambda s=s, fd=fd: s.loader(fd)
        steps[f"families:{s.collector.source}"] = lambda s=s, data=data: s.collector.families(data)
    step = steps[name]
    for _ in range(WARMUP):
        step()
    for _ in range(n):
        step()


def _callgrind(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                             capture_output=True, text=True, timeout=900)
        match = re.search(r"Collected : (\d+)", run.stderr)
        if run.returncode != 0 or match is None:
            raise RuntimeError(f"callgrind failed: {run.stderr[-2000:]}")
        return int(match.group(1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape_instructions(tree: str, n: int) -> int:
    """Total instructions of an agent process that answers `n` scrapes
    after the warm-up, then stops on SIGTERM."""
    sys.path.insert(0, HERE)
    from compare import SCRAPE_REQUEST, ScrapeConnection
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", "agent",
             "--procfs", tree, "--listen", f"127.0.0.1:{port}", "--backend", "c", "--log-level", "warning",
             "--header-timeout", "60"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    conn = ScrapeConnection(port)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the agent did not start under valgrind") from None
                    time.sleep(0.2)
            for _ in range(WARMUP + n):
                status, _, _ = conn.get(SCRAPE_REQUEST)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")
            conn.close()
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=120)
        match = re.search(r"Collected : (\d+)", err)
        if match is None:
            raise RuntimeError(f"callgrind failed: {err[-2000:]}")
        return int(match.group(1))


def measure(layer: str, tree: str, n: int) -> float:
    if layer == "scrape":
        base, total = _scrape_instructions(tree, 0), _scrape_instructions(tree, n)
    else:
        me = [sys.executable, os.path.abspath(__file__), "--run", layer, "--tree", tree]
        base, total = _callgrind([*me, "--iterations", "0"]), _callgrind([*me, "--iterations", str(n)])
    return (total - base) / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default="/proc")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--layers", default="collect,render,render_gzip",
                   help=f"comma-separated, of {', '.join(LAYERS + PIECES)}")
    p.add_argument("--run", choices=LAYERS[:3] + PIECES, help=argparse.SUPPRESS)  # inside callgrind
    args = p.parse_args(argv)
    if args.run:
        _layer(args.run, args.tree, args.iterations)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind: not installed (apt-get install valgrind)")
        return 1
    layers = [x for x in args.layers.split(",") if x]
    for layer in layers:
        if layer not in LAYERS + PIECES:
            p.error(f"unknown layer {layer!r}")
    for layer in layers:
        print(f"{layer:18s} {measure(layer, args.tree, args.iterations):12,.0f} instructions per iteration "
              f"({args.tree}, {args.iterations} iterations)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
