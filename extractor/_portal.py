"""Running the async core from sync code: one background event loop shared by every sync call.

A loop of its own (rather than `asyncio.run` per call) keeps connection pools alive between
calls, and works where the caller already runs an event loop (notebooks). An interrupt (Ctrl-C)
of the waiting thread stops the work on the loop too: the task is cancelled, and the interrupt
goes on only once it is (or after `CANCEL_WAIT` seconds), so that no request starts after it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

__all__ = ["at_portal_exit", "iterate_sync", "run_sync"]

T = TypeVar("T")

#: seconds an interrupted call waits for its task on the background loop to end
CANCEL_WAIT = 5.0

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
            thread = threading.Thread(target=_serve, args=(loop,), name="extractor-sync", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """Run `loop` until it is stopped. A task that raises `SystemExit` or `KeyboardInterrupt` makes
    asyncio raise it out of the loop as well: the loop is run on (the error is the task's, handed to
    the thread that waits for it), so that the sync calls of every other thread still work."""
    while True:
        try:
            loop.run_forever()
        except (SystemExit, KeyboardInterrupt):  # a task's: already in its outcome, for its caller to see
            continue
        return


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the shared background loop and wait for its result in this thread, in a copy of
    this thread's context (its context variables, such as the current OpenTelemetry span, are seen).

    Interrupted while waiting (`KeyboardInterrupt`, or any other exception raised in this thread),
    it cancels the task and waits until the task has ended (at most `CANCEL_WAIT` seconds) before
    the interrupt goes on.
    """
    loop = _portal()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("a sync extractor call was made from inside an async one; await the async method")
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
    tasks: list[asyncio.Task[T]] = []

    def start() -> None:
        task = loop.create_task(coro)
        tasks.append(task)
        task.add_done_callback(lambda done: _settle(done, outcome))

    def cancel() -> None:
        for task in tasks:  # `start` ran before: both are called in order on the loop
            task.cancel()

    loop.call_soon_threadsafe(start, context=contextvars.copy_context())  # the task copies it
    try:
        return outcome.result()
    except BaseException:
        if not outcome.done():  # interrupted while waiting: the task is still running
            loop.call_soon_threadsafe(cancel)
            concurrent.futures.wait([outcome], timeout=CANCEL_WAIT)
        raise


def _settle(task: asyncio.Task[T], outcome: concurrent.futures.Future[T]) -> None:
    """Hand the end of `task` (result, error or cancellation) to the waiting thread's `outcome`."""
    if task.cancelled():
        outcome.cancel()
        outcome.set_running_or_notify_cancel()
    elif task.exception() is not None:
        outcome.set_exception(task.exception())
    else:
        outcome.set_result(task.result())


def iterate_sync(results: AsyncIterator[T]) -> Iterator[T]:
    """An async iterator consumed from sync code, on the shared background loop.

    Interrupted while waiting for the next item, the step is cancelled and ended first (see
    `run_sync`), then the iterator is closed, and the interrupt goes on: an error while closing
    does not hide it.
    """

    async def step() -> T:
        return await results.__anext__()

    async def close() -> None:
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()

    failed = False
    try:
        while True:
            try:
                item = run_sync(step())
            except StopAsyncIteration:
                return
            yield item
    except BaseException as exc:
        failed = not isinstance(exc, GeneratorExit)  # GeneratorExit: the caller stopped iterating
        raise
    finally:
        if failed:
            with contextlib.suppress(Exception):  # the error in flight is the one to see
                run_sync(close())
        else:
            run_sync(close())


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
