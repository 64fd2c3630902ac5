"""Side by side with Debian's node_exporter, as a benchmark: the two servers
scraped alternately on the same tree (benchmarks/compare.py), each with the
same six sources.  Opt-in, it takes a minute and needs node_exporter:

    pytest --benchmark-only --side-by-side -k side_by_side -s

`make bench-compare` runs the longer series and the growth curve that
docs/BENCHMARKS.md quotes.  The assertions are the targets the agent is
held to against node_exporter's CPU per scrape (medians of one
alternating run): 25x cheaper on the dense tree, 5x on this machine's /proc.
"""

from __future__ import annotations

import pytest

import compare

# Scrapes per series, bounded as compare.py bounds any series in time.
SCRAPES = {"proc": 1000, "dense": 100}
CPU_RATIO_TARGET = {"proc": 5.0, "dense": 25.0}


@pytest.mark.side_by_side
@pytest.mark.skipif(compare.NODE_EXPORTER is None,
                    reason="node_exporter not installed (apt-get install prometheus-node-exporter)")
def test_side_by_side_with_node_exporter(benchmark, tree, request):
    name = request.node.callspec.params["tree"]
    result = benchmark.pedantic(compare.measure, args=(tree, SCRAPES[name], 20, "c"),
                                rounds=1, iterations=1)
    agent, node_exporter = result["agent"], result["node_exporter"]
    ratio = node_exporter["cpu_ms"] / max(agent["cpu_ms"], 1e-9)
    benchmark.extra_info.update(tree=name, cpu_ratio=ratio, **{
        f"{server}_{key}": value for server, r in result.items() for key, value in r.items()})
    compare.print_table(f"{name}, {SCRAPES[name]} scrapes each", result)
    assert ratio >= CPU_RATIO_TARGET[name], (
        f"node_exporter / agent CPU per scrape {ratio:.1f}x, target {CPU_RATIO_TARGET[name]}x")
