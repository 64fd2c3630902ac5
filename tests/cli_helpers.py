"""The registry as the command line builds it, for tests that drive it in
process."""

from __future__ import annotations

import logging

from agent.cli import build_registry


def registry_for(config):
    return build_registry(config, logging.getLogger("test"))
