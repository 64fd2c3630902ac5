"""Rendering the exposition (and gzip, as Prometheus asks for it)."""

from __future__ import annotations


import pytest

from agent import exposition
from agent.cli import build_registry
from agent.config import Config
from benchutil import QUIET, describe



@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
def test_render(benchmark, tree, fmt):
    families = build_registry(Config(procfs=str(tree), backend="python"), QUIET).collect()
    render = exposition.render_openmetrics if fmt == "openmetrics" else exposition.render_text
    describe(benchmark, "n/a", tree, layer="render", format=fmt,
             samples=sum(len(f.samples) for f in families))
    assert benchmark(render, families)


def test_render_and_gzip(benchmark, tree):
    families = build_registry(Config(procfs=str(tree), backend="python"), QUIET).collect()
    gzip_ok = exposition.choose_gzip("gzip")
    assert gzip_ok
    level = getattr(exposition, "GZIP_LEVEL", 6)
    describe(benchmark, "n/a", tree, layer="render+gzip", gzip_level=level)
    assert benchmark(lambda: exposition.gzip_encode(exposition.render_text(families)))
