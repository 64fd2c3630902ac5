"""Soak: the agent scraped once per 10 ms for 60 s (5 s in `make test`'s
smoke run) while it is sent a SIGHUP every 2.5 s, on this machine's /proc.
Resident memory must stay flat and no scrape may fail.

    make bench   # or: .venv/bin/python -m pytest benchmarks/test_soak.py --benchmark-only -s
"""

from __future__ import annotations

import http.client
import os
import signal
import time

from agentproc import AgentProcess

SCRAPE_INTERVAL = 0.010
RELOAD_INTERVAL = 2.5


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def soak(seconds: float, tmp_path) -> dict:
    conf = tmp_path / "soak.conf"
    conf.write_text("[agent]\ncpu-window = 1.0\n")
    with AgentProcess("--config", str(conf)) as agent:
        pid = agent.proc.pid
        conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
        scrapes = failures = reloads = 0
        rss = []
        start = time.monotonic()
        next_reload = start + RELOAD_INTERVAL
        next_rss = start
        while (now := time.monotonic()) - start < seconds:
            try:
                conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200 and len(body) > 100
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
            scrapes += 1
            failures += not ok
            if now >= next_reload:
                # Alternate the window so each reload changes something.
                conf.write_text(f"[agent]\ncpu-window = {1.0 + (reloads % 2) * 0.5}\n")
                os.kill(pid, signal.SIGHUP)
                reloads += 1
                next_reload += RELOAD_INTERVAL
            if now >= next_rss:
                rss.append(rss_kib(pid))
                next_rss += 1.0
            time.sleep(max(0.0, SCRAPE_INTERVAL - (time.monotonic() - now)))
        conn.close()
        reloaded = agent.log().count("reloaded configuration")
    return dict(scrapes=scrapes, failures=failures, reloads_sent=reloads, reloads_logged=reloaded,
                rss_kib=rss, seconds=seconds)


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
