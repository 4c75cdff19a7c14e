"""The run a request belongs to: how a run over many inputs sees and paces every HTTP request made on
its behalf (its rate limit, its budget, its response cache).

A runner sets its `RunContext` in a context variable; the tasks it starts inherit it, so the
transport reports to the right run without any shared state on the `Extractor`. (The user's hooks,
which hear events, are `extractor.observe.events.Hook`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

__all__ = ["RunContext", "current_run", "reset_run", "use_run"]


class RunContext:
    """What a run wants to know about the requests made for it, and its cache. The default methods do nothing."""

    #: a response cache for this run (an `extractor.client.cache.ResponseCache`), or None
    cache: Any = None

    async def before_request(self, body: Mapping[str, Any]) -> None:
        """Called before each chat-completions request is sent (every attempt and retry): may wait."""

    def after_response(self, status: int | None, usage: Mapping[str, Any] | None) -> None:
        """Called after each answer: the HTTP status (None when the connection failed) and its usage."""


_RUN: ContextVar[RunContext | None] = ContextVar("extractor_run", default=None)


def current_run() -> RunContext | None:
    """The run this task belongs to, if any."""
    return _RUN.get()


def use_run(run: RunContext | None) -> Any:
    """Make `run` current for this task and the tasks it starts; returns a token for `reset_run`."""
    return _RUN.set(run)


def reset_run(token: Any) -> None:
    """Undo `use_run`."""
    _RUN.reset(token)
