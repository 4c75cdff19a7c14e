"""Run-scoped hooks: how a batch run sees and paces every HTTP request made on its behalf.

A batch runner sets the hooks in a context variable; the tasks it starts inherit them, so the
transport reports to the right run without any shared state on the `Extractor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

__all__ = ["RunHooks", "current_hooks", "use_hooks"]


class RunHooks:
    """What a run wants to know about its requests. The default methods do nothing."""

    #: a response cache for this run (an `extractor.batch.ResponseCache`), or None
    cache: Any = None

    async def before_request(self, body: Mapping[str, Any]) -> None:
        """Called before each chat-completions request is sent (every attempt and retry): may wait."""

    def after_response(self, status: int | None, usage: Mapping[str, Any] | None) -> None:
        """Called after each answer: the HTTP status (None when the connection failed) and its usage."""


_HOOKS: ContextVar[RunHooks | None] = ContextVar("extractor_run_hooks", default=None)


def current_hooks() -> RunHooks | None:
    """The hooks of the run this task belongs to, if any."""
    return _HOOKS.get()


def use_hooks(hooks: RunHooks | None) -> Any:
    """Make `hooks` current for this task and the tasks it starts; returns a token for `reset_hooks`."""
    return _HOOKS.set(hooks)


def reset_hooks(token: Any) -> None:
    """Undo `use_hooks`."""
    _HOOKS.reset(token)
