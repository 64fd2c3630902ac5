"""Which parser backends a run covers, and loading one: shared by the tests
and the benchmarks.  C skips only where the extension is absent, and fails
instead when AGENT_REQUIRE_C=1 (CI, where the build is mandatory)."""

from __future__ import annotations

import os

import pytest

BACKENDS = [b for b in os.environ.get("AGENT_TEST_BACKENDS", "c,python").split(",") if b]


def load_backend(name: str):
    if name == "c":
        from agent.procfs import cbackend
        if not cbackend.AVAILABLE:
            if os.environ.get("AGENT_REQUIRE_C") == "1":
                pytest.fail(f"C backend required but unavailable: {cbackend.UNAVAILABLE_REASON}")
            pytest.skip(f"C backend unavailable: {cbackend.UNAVAILABLE_REASON}")
        return cbackend
    from agent.procfs import pybackend
    return pybackend
