"""A pytest plugin: the `llm_server` fixture. Enable it with `pytest_plugins = ["extractor.testing.fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import TestServer

__all__ = ["llm_server"]


@pytest.fixture
def llm_server() -> Iterator[TestServer]:
    """A started `TestServer` on a free loopback port, stopped after the test."""
    with TestServer() as server:
        yield server
