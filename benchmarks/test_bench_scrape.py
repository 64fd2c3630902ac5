"""A full scrape over HTTP on 127.0.0.1: collection, rendering, gzip and
the server, with the headers Prometheus 2.x sends."""

from __future__ import annotations

import http.client
import threading

from agent.cli import build_registry
from agent.config import Config
from agent.server import Server
from benchutil import QUIET, describe

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}


def test_http_scrape(benchmark, backend_name, tree):
    registry = build_registry(Config(procfs=str(tree), backend=backend_name), QUIET)
    registry.collect()
    server = Server("127.0.0.1", 0, registry.collect, registry.health, logger=QUIET)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.address[1], timeout=10)
    try:
        def scrape():
            conn.request("GET", "/metrics", headers=PROMETHEUS_HEADERS)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            return body

        describe(benchmark, backend_name, tree, layer="http-scrape")
        assert benchmark(scrape)
    finally:
        conn.close()
        server.shutdown()
        thread.join(10)
