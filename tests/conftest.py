"""Shared fixtures.  `backend` parametrizes a test over the C and the Python
parser backends; C skips only where the extension is absent, and fails
instead when AGENT_REQUIRE_C=1 (CI, where the build is mandatory).
AGENT_TEST_BACKENDS=c or =python narrows the run to one backend."""

from __future__ import annotations

import pytest

from backends import BACKENDS, load_backend
from backends import pytest_runtest_makereport  # noqa: F401  (a hook: C skips in one line)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The parser backend module (cbackend or pybackend); `.__name__` tells which."""
    return load_backend(request.param)


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    """The backend's name ('c' or 'python'), for tests that start the agent."""
    load_backend(request.param)
    return request.param


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a suite of a minute or more (wheels in fresh venvs, "
                            "schemathesis); runs in make test, -m 'not slow' leaves it out")
