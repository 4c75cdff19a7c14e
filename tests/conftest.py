"""Shared fixtures: where the real-world corpora are, skipping cleanly when they are absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from extractor.client.catalog import forget_models
from extractor.testing import TestServer

pytest_plugins = ["extractor.testing.fixtures"]

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpora() -> Path:
    """`../shared/corpora` next to the project; tests using it skip in a user's clone without it."""
    if not CORPORA.is_dir():
        pytest.skip(f"real-world corpora not found at {CORPORA} (present in CI, not in a user's clone)")
    return CORPORA


@pytest.fixture(autouse=True)
def _own_cache_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's extractors keep their model lists and caches in a folder of their own: test servers reuse
    ports, and a model list cached for one must never answer for another."""
    monkeypatch.setenv("EXTRACTOR_CACHE_DIR", str(tmp_path_factory.mktemp("extractor-cache")))


@pytest.fixture(autouse=True)
def _fresh_model_lists() -> Iterator[None]:
    """Model lists cached in memory are per test (each test server is a new endpoint)."""
    forget_models()
    yield
    forget_models()


@pytest.fixture
def server() -> Iterator[TestServer]:
    """A started test server on a free loopback port."""
    with TestServer() as s:
        yield s
