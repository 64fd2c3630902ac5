"""The fixture trees the tests run on: plain files under tests/fixtures,
one procfs tree per kernel or machine they come from (tests/fixtures/README.md)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
PROCFS_TREES = FIXTURES / "procfs"


def procfs_trees():
    return sorted(p for p in PROCFS_TREES.iterdir() if p.is_dir()) if PROCFS_TREES.is_dir() else []
