"""Hooks that fail, block or never return: no input is lost, no run hangs, the background thread lives on.

Every test that could hang on a regression runs the call in a daemon thread joined with a generous
limit, so that a hang fails the test instead of stopping the suite; nothing here asserts how fast
anything is.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extractor import ConfigurationError, Event, ExtractionStarted, Extractor
from extractor._portal import run_sync
from extractor.testing import TestServer

#: seconds a call that would hang on a regression is given before the test fails
LIMIT = 120.0


class Item(BaseModel):
    n: int


#: what the test server answers by default for `Item`
SAMPLE = Item(n=1)


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    return Extractor(base_url=server.base_url, mode="json_schema", cache_dir=tmp_path / "cache", **kwargs)


def finishes(call: Callable[[], Any], limit: float = LIMIT) -> Any:
    """`call()` in a daemon thread: its result (or its error, raised), or a failed test when it hangs."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", call()))
        except BaseException as exc:  # handed to the test thread as it is
            outcome.append(("error", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {limit:g} s")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """Set at the end of the test: what sync hooks that "never return" wait for, so that they give their
    threads back to the next tests."""
    event = threading.Event()
    yield event
    event.set()


def raising(kind: type[BaseException]) -> Callable[[Event], None]:
    def hook(event: Event) -> None:
        if isinstance(event, ExtractionStarted) and event.input_id == "3":
            raise kind("from the hook")

    return hook


def raising_async(kind: type[BaseException]) -> Callable[[Event], Any]:
    async def hook(event: Event) -> None:
        await asyncio.sleep(0)
        if isinstance(event, ExtractionStarted) and event.input_id == "3":
            raise kind("from the hook")

    return hook


KINDS = [ValueError, asyncio.CancelledError, KeyboardInterrupt, SystemExit]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("flavour", [raising, raising_async], ids=["sync", "async"])
def test_whatever_a_hook_raises_every_input_has_its_result(
    server: TestServer, tmp_path: Path, kind: type[BaseException], flavour: Callable[..., Any]
) -> None:
    """A CancelledError once cost the input (9 results for 10); SystemExit and KeyboardInterrupt killed the
    background thread, and `extract_many` hung."""
    ex = make(server, tmp_path, hooks=[flavour(kind)])
    texts = [{"id": str(i), "text": f"item {i}"} for i in range(10)]
    results = finishes(lambda: list(ex.extract_many(Item, texts, concurrency=4)))
    assert sorted(r.id for r in results) == [str(i) for i in range(10)]
    assert all(r.ok for r in results)
    assert ex.extract(Item, "after") == SAMPLE  # the background loop still serves sync calls


def test_an_async_hook_that_never_returns_has_its_time(
    server: TestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def stuck(event: Event) -> None:
        calls.append(type(event).__name__)
        await asyncio.Event().wait()

    caplog.set_level(logging.WARNING, logger="extractor")
    ex = make(server, tmp_path, hooks=[stuck], hook_timeout=0.2)
    assert finishes(lambda: ex.extract(Item, "one")) == SAMPLE
    assert calls[0] == "ExtractionStarted"
    late = [r.getMessage() for r in caplog.records if "took too long" in r.getMessage()]
    assert late and "more than hook_timeout, 0.2 s" in late[0]


def test_a_sync_hook_that_never_returns_holds_one_thread_and_is_then_skipped(
    server: TestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, released: threading.Event
) -> None:
    """Once a call ran past its time and is still running, the hook is not called again until it ends:
    a hook stuck for good holds one thread, not one per event."""
    calls: list[str] = []
    seen: list[str] = []

    def stuck(event: Event) -> None:
        calls.append(type(event).__name__)
        released.wait()

    caplog.set_level(logging.WARNING, logger="extractor")
    ex = make(server, tmp_path, hooks=[stuck, lambda e: seen.append(type(e).__name__)], hook_timeout=0.2)
    assert finishes(lambda: [ex.extract(Item, "one"), ex.extract(Item, "two")]) == [SAMPLE] * 2
    assert calls == ["ExtractionStarted"]
    assert seen.count("ExtractionFinished") == 2  # the other hook heard everything
    assert any("skipped on RequestSent" in r.getMessage() for r in caplog.records)


def test_slow_sync_hooks_run_in_threads_not_on_the_event_loop(server: TestServer, tmp_path: Path) -> None:
    """Eight sync hooks blocked at once, one per extraction in flight: they can meet only if none of
    them holds up the event loop (on the loop, the first would wait alone until the barrier broke)."""
    barrier = threading.Barrier(8, timeout=30)
    met: list[bool] = []
    loop_threads: list[str] = []

    def slow(event: Event) -> None:
        if isinstance(event, ExtractionStarted):
            loop_threads.append(threading.current_thread().name)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                met.append(False)
            else:
                met.append(True)

    ex = make(server, tmp_path, hooks=[slow], hook_timeout=60)
    results = finishes(lambda: list(ex.extract_many(Item, [f"item {i}" for i in range(8)], concurrency=8)))
    assert len(results) == 8 and all(r.ok for r in results)
    assert met == [True] * 8
    assert "extractor-sync" not in loop_threads


def test_sync_hooks_see_the_context_of_their_extraction(server: TestServer, tmp_path: Path) -> None:
    import contextvars

    where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")
    seen: list[str] = []
    ex = make(server, tmp_path, hooks=[lambda e: seen.append(where.get())])

    async def call() -> None:
        where.set("in the caller")
        await ex.aextract(Item, "one")

    asyncio.run(call())
    assert seen and set(seen) == {"in the caller"}


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
def test_the_hook_timeout_must_be_a_positive_number(value: float) -> None:
    with pytest.raises(ConfigurationError, match="hook_timeout"):
        Extractor(base_url="http://127.0.0.1:9/v1", hook_timeout=value)


def test_the_background_thread_survives_a_task_that_raises_system_exit() -> None:
    """A coroutine that raises SystemExit on the shared loop once stopped its thread, and every later
    sync call waited for ever."""

    async def leave() -> None:
        raise SystemExit(3)

    async def answer() -> int:
        return 42

    with pytest.raises(SystemExit):
        finishes(lambda: run_sync(leave()), limit=30)
    assert finishes(lambda: run_sync(answer()), limit=30) == 42


def test_a_thousand_inputs_with_hooks_that_do_everything_wrong(
    server: TestServer, tmp_path: Path, released: threading.Event
) -> None:
    """Hooks that at random raise ValueError, CancelledError, KeyboardInterrupt or SystemExit, sleep, or
    never return (sync and async, on every event): exactly one result per input, and the run ends."""
    chance = random.Random(23)
    kinds = ["ok", "ValueError", "CancelledError", "KeyboardInterrupt", "SystemExit", "sleep", "never"]
    errors: dict[str, type[BaseException]] = {
        "ValueError": ValueError,
        "CancelledError": asyncio.CancelledError,
        "KeyboardInterrupt": KeyboardInterrupt,
        "SystemExit": SystemExit,
    }

    def wild(event: Event) -> None:
        kind = chance.choice(kinds)
        if kind in errors:
            raise errors[kind]("from the hook")
        if kind == "sleep":
            time.sleep(chance.uniform(0, 0.1))
        elif kind == "never":
            released.wait()

    async def wild_async(event: Event) -> None:
        kind = chance.choice(kinds)
        if kind in errors:
            raise errors[kind]("from the hook")
        if kind == "sleep":
            await asyncio.sleep(chance.uniform(0, 0.1))
        elif kind == "never":
            await asyncio.Event().wait()

    ex = make(server, tmp_path, hooks=[wild, wild_async], hook_timeout=0.05)
    texts = [{"id": str(i), "text": f"item {i}"} for i in range(1000)]
    results = finishes(lambda: list(ex.extract_many(Item, texts, concurrency=32)), limit=600)
    assert len(results) == 1000
    assert sorted(r.id for r in results) == sorted(str(i) for i in range(1000))
    assert all(r.ok for r in results)
