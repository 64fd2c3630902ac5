"""Which parser backends a run covers, and loading one: shared by the tests
and the benchmarks.  C skips only where the extension is absent, and fails
instead when AGENT_REQUIRE_C=1 (CI, where the build is mandatory); the
skips are reported as one line (pytest_runtest_makereport, which a conftest
imports to use)."""

from __future__ import annotations

import os

import pytest

BACKENDS = [b for b in os.environ.get("AGENT_TEST_BACKENDS", "c,python").split(",") if b]
C_UNAVAILABLE = "C backend unavailable: "


def load_backend(name: str):
    if name == "c":
        from agent.procfs import cbackend
        if not cbackend.AVAILABLE:
            if os.environ.get("AGENT_REQUIRE_C") == "1":
                pytest.fail(f"C backend required but unavailable: {cbackend.UNAVAILABLE_REASON}")
            pytest.skip(C_UNAVAILABLE + cbackend.UNAVAILABLE_REASON)
        return cbackend
    from agent.procfs import pybackend
    return pybackend


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Report every skip for want of the C backend at load_backend, where it
    happens, so that -ra folds them into one line: pytest puts a fixture's
    skip at each test, hundreds of lines on a machine without a compiler."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and C_UNAVAILABLE in report.longrepr[2]:
        report.longrepr = (__file__, load_backend.__code__.co_firstlineno, report.longrepr[2])
    return report
