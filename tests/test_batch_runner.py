"""`extract_many` / `aextract_many`: bounded, paced, within budget, cached, one bad input failing alone."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pdf_samples import text_pdf as _pdf
from pydantic import BaseModel

from extractor import BudgetExceededError, DocumentError, Extractor, RetryPolicy
from extractor.client.cache import ResponseCache
from extractor.errors import AuthenticationError, RunStoppedError
from extractor.runs.runner import BatchItem
from extractor.testing import RecordedRequest, Reply, TestServer


class Note(BaseModel):
    title: str
    words: int = 0


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("retry", RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05))
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", **kwargs)


def echo_title(request: RecordedRequest) -> Reply:
    text = request.json["messages"][-1]["content"]
    return Reply.json({"title": text, "words": len(text.split())})


def test_every_input_gets_one_result_with_its_id(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo_title
    texts = {f"doc-{i}": f"note number {i}" for i in range(120)}
    items = [BatchItem(id=k, source=v) for k, v in texts.items()]
    results = list(make(server, tmp_path).extract_many(Note, items, concurrency=8))
    assert sorted(r.id for r in results) == sorted(texts)
    assert all(r.ok and r.error is None for r in results)
    assert {r.id: r.value.title for r in results if r.value} == texts
    assert len(server.chat_requests) == 120


def test_sources_are_read_lazily(server: TestServer, tmp_path: Path) -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield f"text {pulled}"

    results = make(server, tmp_path).extract_many(Note, endless(), concurrency=4)
    first = [next(results) for _ in range(10)]
    results.close()
    assert len(first) == 10
    # consumed + finished results waiting (8) + in flight (4) + the one being started
    assert pulled <= 10 + 8 + 4 + 1


def test_no_more_than_concurrency_in_flight(tmp_path: Path) -> None:
    active = peak = 0
    lock = threading.Lock()

    def handler(request: RecordedRequest) -> Reply:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)  # the handler runs on the server thread: hold the request a moment
        with lock:
            active -= 1
        return Reply.json({"title": "t"})

    with TestServer() as server:
        server.handler = handler
        results = list(make(server, tmp_path).extract_many(Note, [f"t{i}" for i in range(40)], concurrency=5))
    assert len(results) == 40
    assert 1 <= peak <= 5


def test_a_429_storm_settles_instead_of_failing(server: TestServer, tmp_path: Path) -> None:
    calls = 0
    lock = threading.Lock()

    def handler(request: RecordedRequest) -> Reply:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
        if n <= 30:
            return Reply.status_error(429, "slow down", retry_after=0)
        return Reply.json({"title": "ok"})

    server.handler = handler
    ex = make(server, tmp_path)

    async def main() -> tuple[list[Any], Any]:
        from extractor.runs.runner import BatchRunner

        runner: BatchRunner[Any] = BatchRunner(ex, Note, concurrency=16)
        out = [r async for r in runner.run([f"t{i}" for i in range(60)])]
        await ex.aclose()
        return out, runner

    results, runner = asyncio.run(main())
    assert all(r.ok for r in results) and len(results) == 60
    assert runner.hooks.rate_limited == 30
    assert runner.limit.cuts >= 1  # the in-flight limit was cut ...
    assert runner.limit.limit < 16 or runner.limit.cuts >= 1  # ... and is recovering by successes


def test_requests_per_minute_paces_the_run(server: TestServer, tmp_path: Path) -> None:
    started = time.monotonic()
    texts = [f"t{i}" for i in range(25)]
    results = list(make(server, tmp_path).extract_many(Note, texts, requests_per_minute=600))
    assert len(results) == 25
    # 600/min is 10/s with a burst of one second's worth: 25 requests need at least 1.5 s
    assert time.monotonic() - started >= 1.4


def test_budget_stops_starting_new_inputs(server: TestServer, tmp_path: Path) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 10, "cost": 0.01}
    server.handler = lambda request: Reply.json({"title": "x"}, usage=usage)
    results = list(
        make(server, tmp_path).extract_many(Note, [f"t{i}" for i in range(20)], concurrency=1, max_cost=0.05)
    )
    done = [r for r in results if r.ok]
    skipped = [r for r in results if r.skipped]
    # the provider bills 0.01 for tokens whose list price is 0.000021: once that is seen, reservations grow by
    # the ratio, and each input is held at about 0.01; a fifth might cost more than the 0.01 left
    assert len(done) == 4 and len(skipped) == 16
    assert sum(r.usage.cost for r in done) == pytest.approx(0.04)
    assert all(isinstance(r.error, BudgetExceededError) and "not started" in str(r.error) for r in skipped)
    assert len(server.chat_requests) == 4


def test_the_cache_makes_a_rerun_free(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo_title
    cache = ResponseCache(tmp_path / "responses.sqlite")
    texts = [f"note {i}" for i in range(25)]
    first = sorted((r.id, r.value) for r in make(server, tmp_path).extract_many(Note, texts, cache=cache))
    requests_after_first = len(server.chat_requests)
    again = list(make(server, tmp_path).extract_many(Note, texts, cache=cache))
    assert len(server.chat_requests) == requests_after_first == 25
    assert sorted((r.id, r.value) for r in again) == first
    assert all(r.result is not None and r.result.attempts[0].cached for r in again)
    assert sum(r.usage.cost for r in again) == 0
    api_key = "sk-never-stored-1234567890"
    ex = Extractor(base_url=server.base_url, api_key=api_key, mode="json_schema", cache_dir=tmp_path / "c2")
    list(ex.extract_many(Note, ["fresh text"], cache=cache))
    cache.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("responses.sqlite*"))
    assert api_key.encode() not in stored


def test_one_bad_input_fails_alone(server: TestServer, tmp_path: Path) -> None:
    good_pdf = _pdf(tmp_path / "good.pdf", "Quarterly note")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj <<")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    sources = [good_pdf, broken, "a plain text", empty, binary]
    results = {r.id: r for r in make(server, tmp_path).extract_many(Note, sources, load_workers=1)}
    assert results[str(good_pdf)].ok and results["2"].ok
    for bad in (broken, empty, binary):
        error = results[str(bad)].error
        assert isinstance(error, DocumentError) and bad.name in str(error)
    assert len(server.chat_requests) == 2


def test_ordered_results_keep_input_order(tmp_path: Path) -> None:
    def handler(request: RecordedRequest) -> Reply:
        text = request.json["messages"][-1]["content"]
        return Reply.json({"title": text}, delay=0.05 if text.endswith("0") else 0.0)

    with TestServer() as server:
        server.handler = handler
        ids = [r.id for r in make(server, tmp_path).extract_many(Note, [f"n{i}" for i in range(30)], ordered=True)]
    assert ids == [str(i) for i in range(30)]


def test_async_many_with_jsonl_style_items(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo_title
    ex = make(server, tmp_path)

    async def main() -> list[Any]:
        lines = [{"id": "a", "text": "first"}, {"text": "second"}]
        out = [r async for r in ex.aextract_many(Note, lines)]
        await ex.aclose()
        return out

    results = sorted(asyncio.run(main()), key=lambda r: r.id)
    assert [(r.id, r.value.title) for r in results] == [("1", "second"), ("a", "first")]
    assert json.dumps([r.id for r in results]) == '["1", "a"]'


# --- run-level faults stop the run ------------------------------------------------------------------


def test_a_rejected_key_stops_the_run_and_fails_no_input(tmp_path: Path) -> None:
    with TestServer(api_key="sk-right-key-0123456789") as server:
        ex = make(server, tmp_path, api_key="sk-wrong-key-0123456789")
        results: list[Any] = []
        with pytest.raises(RunStoppedError) as info:
            for result in ex.extract_many(Note, (f"note {i}" for i in range(200)), concurrency=4):
                results.append(result)
        assert len(server.chat_requests) <= 4  # the first answers, not a request per input
    assert isinstance(info.value.cause, AuthenticationError)
    assert str(info.value).startswith("401 from ")
    assert results and all(r.skipped and not r.ok and r.error is info.value for r in results)
    assert len(results) <= 4  # those in flight come back not started; the rest were never read


def test_a_404_after_successes_fails_only_its_input(server: TestServer, tmp_path: Path) -> None:
    def handler(request: RecordedRequest) -> Reply:
        text = request.json["messages"][-1]["content"]
        if text == "note 5":
            return Reply.status_error(404, "No endpoints found for this input")
        return Reply.json({"title": text})

    server.handler = handler
    results = list(make(server, tmp_path).extract_many(Note, [f"note {i}" for i in range(12)], concurrency=1))
    assert sorted(r.id for r in results) == sorted(str(i) for i in range(12))
    failed = [r for r in results if not r.ok]
    assert [(r.id, type(r.error).__name__, r.skipped) for r in failed] == [("5", "NotFoundError", False)]


def test_three_404s_in_a_row_after_successes_stop_the_run(server: TestServer, tmp_path: Path) -> None:
    count = 0

    def handler(request: RecordedRequest) -> Reply | None:
        nonlocal count
        count += 1
        return Reply.status_error(404, "model removed") if count > 3 else None

    server.handler = handler
    results: list[Any] = []
    with pytest.raises(RunStoppedError):
        for result in make(server, tmp_path).extract_many(Note, [f"note {i}" for i in range(50)], concurrency=1):
            results.append(result)
    assert [r.ok for r in results[:3]] == [True, True, True]
    assert [r.skipped for r in results[3:]] == [True, True, True]  # the three 404s: not the inputs' fault
    assert len(server.chat_requests) == 6


def test_an_input_known_to_fail_is_not_sent(server: TestServer, tmp_path: Path) -> None:
    bad = BatchItem(id="bad", source="", error=DocumentError("unreadable", source="bad"))
    results = {r.id: r for r in make(server, tmp_path).extract_many(Note, [bad, BatchItem(id="good", source="x")])}
    assert results["bad"].error is bad.error and not results["bad"].skipped
    assert results["good"].ok
    assert len(server.chat_requests) == 1
