"""A full scrape over HTTP on 127.0.0.1: the agent as its own process (as
Prometheus sees it), the headers Prometheus 2.x sends, keep-alive."""

from __future__ import annotations

import http.client

from agentproc import AgentProcess
from benchutil import describe

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}


def test_http_scrape(benchmark, backend_name, tree):
    with AgentProcess("--procfs", str(tree), "--backend", backend_name) as agent:
        conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
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
