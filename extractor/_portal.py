"""Running the async core from sync code: one background event loop shared by every sync call.

A loop of its own (rather than `asyncio.run` per call) keeps connection pools alive between
calls, and works where the caller already runs an event loop (notebooks).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["at_portal_exit", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_closables: weakref.WeakSet[Any] = weakref.WeakSet()


def _portal() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="extractor-sync", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the shared background loop and wait for its result in this thread."""
    loop = _portal()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("a sync extractor call was made from inside an async one; await the async method")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def at_portal_exit(closable: _Closable) -> None:
    """`await closable.aclose()` on the background loop at interpreter exit, if it still exists then
    (closing the connection pools sync calls opened). Held weakly."""
    _closables.add(closable)


@atexit.register
def _shutdown() -> None:
    loop = _loop
    if loop is None or not loop.is_running():
        return

    async def close_all() -> None:
        for closable in list(_closables):
            with contextlib.suppress(Exception):  # best effort at exit
                await closable.aclose()

    with contextlib.suppress(Exception):  # the loop may already be gone
        asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
