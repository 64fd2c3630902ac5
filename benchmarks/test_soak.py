"""Soak: the agent scraped once per 10 ms for 60 s (5 s in `make test`'s
smoke run) while it is sent a SIGHUP every 2.5 s, on this machine's /proc.
Resident memory must stay flat and no scrape may fail.

    make bench   # or: .venv/bin/pytest --benchmark-only --soak -k soak -s

As a script, the scrapes and the reloads can be run apart, to tell which
one moves the memory (docs/BENCHMARKS.md, Soak):

    .venv/bin/python benchmarks/test_soak.py --seconds 60 --reload-interval 0 --rss-every 5
    .venv/bin/python benchmarks/test_soak.py --seconds 180 --scrape-interval 0 --reload-interval 0.25
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time

import pytest

if __name__ == "__main__":  # as a script: the tests' helpers, as conftest.py adds them
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from agentproc import AgentProcess  # noqa: E402

SCRAPE_INTERVAL = 0.010
RELOAD_INTERVAL = 2.5


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def scrape_once(conn: http.client.HTTPConnection) -> bool:
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status == 200 and len(body) > 100
    except (OSError, http.client.HTTPException):
        return False


def soak(seconds: float, tmp_path, scrape_interval: float = SCRAPE_INTERVAL,
         reload_interval: float = RELOAD_INTERVAL, rss_every: float = 1.0) -> dict:
    """Scrapes every scrape_interval, a SIGHUP every reload_interval (0
    leaves either out), RSS read every rss_every seconds."""
    conf = tmp_path / "soak.conf"
    conf.write_text("[agent]\ncpu-window = 1.0\n")
    with AgentProcess("--config", str(conf)) as agent:
        pid = agent.proc.pid
        conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
        scrapes = failures = reloads = 0
        rss = []
        start = time.monotonic()
        next_reload = start + reload_interval if reload_interval else float("inf")
        next_rss = start
        # The loop's step: the shortest interval of what it runs.
        step = min(x for x in (scrape_interval, reload_interval, rss_every) if x)
        while (now := time.monotonic()) - start < seconds:
            if scrape_interval:
                ok = scrape_once(conn)
                if not ok:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
                scrapes += 1
                failures += not ok
            if now >= next_reload:
                # Alternate the window so each reload changes something.
                conf.write_text(f"[agent]\ncpu-window = {1.0 + (reloads % 2) * 0.5}\n")
                os.kill(pid, signal.SIGHUP)
                reloads += 1
                next_reload += reload_interval
            if now >= next_rss:
                rss.append(rss_kib(pid))
                next_rss += rss_every
            time.sleep(max(0.0, step - (time.monotonic() - now)))
        conn.close()
        reloaded = agent.log().count("reloaded configuration")
    return dict(scrapes=scrapes, failures=failures, reloads_sent=reloads, reloads_logged=reloaded,
                rss_kib=rss, seconds=seconds)


@pytest.mark.soak
def test_soak_memory_flat_through_reloads(benchmark, tmp_path):
    seconds = 5.0 if benchmark.disabled else 60.0
    result = benchmark.pedantic(soak, args=(seconds, tmp_path), rounds=1, iterations=1)
    rss = result["rss_kib"]
    # After the first seconds of warm-up (imports, caches, buffers sized),
    # resident memory must not grow.
    settled = rss[min(3, len(rss) - 1)]
    benchmark.extra_info.update(result, rss_settled_kib=settled, rss_last_kib=rss[-1],
                                rss_max_kib=max(rss))
    print(f"\nsoak: {result['scrapes']} scrapes in {seconds:.0f} s, {result['failures']} failed, "
          f"{result['reloads_sent']} SIGHUPs, RSS settled {settled} KiB, last {rss[-1]} KiB, "
          f"max {max(rss)} KiB")
    assert result["failures"] == 0
    assert result["reloads_sent"] >= (20 if seconds >= 60 else 1)
    assert rss[-1] - settled < 1024, rss


def main(argv=None) -> int:
    import argparse
    import tempfile
    from pathlib import Path
    p = argparse.ArgumentParser(description="The soak, its scrapes and reloads apart.")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--scrape-interval", type=float, default=SCRAPE_INTERVAL, help="0: no scrapes")
    p.add_argument("--reload-interval", type=float, default=RELOAD_INTERVAL, help="0: no SIGHUPs")
    p.add_argument("--rss-every", type=float, default=1.0)
    args = p.parse_args(argv)
    if not 0 < args.seconds <= 3600 or min(args.scrape_interval, args.reload_interval) < 0 \
            or args.rss_every <= 0:
        p.error("--seconds in (0, 3600], intervals >= 0, --rss-every > 0")
    with tempfile.TemporaryDirectory() as tmp:
        r = soak(args.seconds, Path(tmp), args.scrape_interval, args.reload_interval, args.rss_every)
    print(f"{r['scrapes']} scrapes, {r['failures']} failed, {r['reloads_sent']} SIGHUPs "
          f"({r['reloads_logged']} logged); RSS KiB every {args.rss_every:g} s: {r['rss_kib']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
