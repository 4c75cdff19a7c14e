"""Shared fixtures: where the real-world corpora are, skipping cleanly when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["extractor.testing.fixtures"]

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpora() -> Path:
    """`../shared/corpora` next to the project; tests using it skip in a user's clone without it."""
    if not CORPORA.is_dir():
        pytest.skip(f"real-world corpora not found at {CORPORA} (present in CI, not in a user's clone)")
    return CORPORA
