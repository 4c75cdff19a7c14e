"""Hooks and traces: every event of every path, in order, against the test server; the spans made of them.

The hooks' events are compared field by field (times and latencies only for their order and sign); the
spans by name, parent and attributes. The API key is looked for everywhere it must not be.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from extractor import (
    AttemptFinished,
    ConfigurationError,
    DocumentSplit,
    Event,
    ExtractionFailed,
    ExtractionFinished,
    ExtractionStarted,
    Extractor,
    ExtractResult,
    InputFinished,
    ModeFallback,
    OutputInvalidError,
    Reasked,
    RequestSent,
    ResponseReceived,
    Retried,
    RetryPolicy,
    add_global_hook,
    instrument,
    remove_global_hook,
)
from extractor.client.attempts import Sent
from extractor.client.transport import ChatResponse
from extractor.observe.otel import OpenTelemetryHook, provider_name
from extractor.testing import Reply, TestServer
from extractor.testing.models import DEFAULT_MODEL

KEY = "sk-test-observe-0123456789abcdefghij"
MODEL = DEFAULT_MODEL


class Item(BaseModel):
    n: int


class Note(BaseModel):
    title: str | None = None


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("retry", RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02))
    return Extractor(base_url=server.base_url, api_key=KEY, cache_dir=tmp_path / "cache", **kwargs)


def shape(event: Event) -> tuple[Any, ...]:
    """An event's fields that do not depend on time, as a tuple to compare exactly."""
    if isinstance(event, ExtractionStarted):
        return ("started", event.schema, event.model, event.mode, event.stream)
    if isinstance(event, DocumentSplit):
        return ("split", event.document, event.characters, len(event.chunks))
    if isinstance(event, RequestSent):
        return ("sent", event.chunk, event.attempt, event.retry, event.mode, event.stream, event.messages)
    if isinstance(event, ResponseReceived):
        return ("received", event.chunk, event.attempt, event.retry, event.status, event.finish_reason, event.error)
    if isinstance(event, Retried):
        return ("retried", event.attempt, event.retry, event.reason, event.status)
    if isinstance(event, ModeFallback):
        return ("fallback", event.attempt, event.rejected, event.mode, event.reason)
    if isinstance(event, AttemptFinished):
        kinds = tuple(r.kind.value for r in event.repairs)
        return ("attempt", event.chunk, event.attempt, event.mode, event.problem, kinds, event.cached, event.provided)
    if isinstance(event, Reasked):
        errors = tuple((e.path, e.message, e.has_value) for e in event.errors)
        return ("reasked", event.attempt, event.reason, event.problem, errors)
    if isinstance(event, ExtractionFinished):
        return ("finished",)
    if isinstance(event, ExtractionFailed):
        return ("failed", type(event.error).__name__)
    if isinstance(event, InputFinished):
        return ("input", event.input_id, event.result.ok, event.result.skipped)
    raise AssertionError(f"unexpected event {event!r}")


def check_times(events: list[Event]) -> None:
    """Times go forward; latencies and waits are not negative."""
    assert [e.at for e in events] == sorted(e.at for e in events)
    for event in events:
        if isinstance(event, ResponseReceived | AttemptFinished):
            assert event.latency >= 0
        if isinstance(event, Retried):
            assert 0 <= event.wait <= 0.02


def everything(value: Any) -> str:
    """`value` rendered as deeply as repr goes: where a key would show."""
    return repr(value)


INVALID = "the answer does not match the schema"
NOT_INT = "Input should be a valid integer, unable to parse string as an integer"


# --- one call -----------------------------------------------------------------------------------------


def test_a_reasked_call_tells_every_step_in_order(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"n": "many"}), Reply(content='```json\n{"n": 3}\n```'))
    events: list[Event] = []
    result = make(server, tmp_path, hooks=[events.append]).extract_result(Item, "three items")
    assert result.value == Item(n=3)
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 200, "stop", None),
        ("attempt", None, 1, "json_schema", INVALID, (), False, False),
        ("reasked", 1, "invalid", INVALID, (("$.n", NOT_INT, False),)),
        ("sent", None, 2, 0, "json_schema", False, 4),
        ("received", None, 2, 0, 200, "stop", None),
        ("attempt", None, 2, "json_schema", None, ("fence",), False, False),
        ("finished",),
    ]
    check_times(events)
    assert len({e.call_id for e in events}) == 1 and all(e.input_id is None for e in events)
    started = events[0]
    assert isinstance(started, ExtractionStarted) and started.host == f"127.0.0.1:{server.port}"
    sent = [e for e in events if isinstance(e, RequestSent)]
    assert [e.body_size for e in sent] == [len(r.body) for r in server.chat_requests]
    assert [e.params for e in sent] == [{"max_tokens": 1024}, {"max_tokens": 1024}]
    assert [e.body for e in sent] == [None, None]  # no hook asked for content
    received = [e for e in events if isinstance(e, ResponseReceived)]
    attempts = [e for e in events if isinstance(e, AttemptFinished)]
    assert [e.usage for e in attempts] == [a.usage for a in result.attempts]
    assert [e.response_id for e in received] == [e.response_id for e in attempts] == ["gen-1", "gen-2"]
    assert [e.response_model for e in received] == [MODEL, MODEL]
    assert [(e.usage.prompt_tokens, e.usage.completion_tokens) for e in received if e.usage] == [
        (a.usage.prompt_tokens, a.usage.completion_tokens) for a in result.attempts
    ]
    assert [e.answer for e in attempts] == [None, None]
    finished = events[-1]
    assert isinstance(finished, ExtractionFinished) and finished.result is result
    assert KEY not in everything(events)


def test_a_transient_500_is_retried_and_told(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(status=500), Reply.json({"n": 1}))
    events: list[Event] = []
    assert make(server, tmp_path, hooks=[events.append]).extract(Item, "one") == Item(n=1)
    reason = f"500 from 127.0.0.1:{server.port}: Internal Server Error"
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 500, None, reason),
        ("retried", 1, 1, reason, 500),
        ("sent", None, 1, 1, "json_schema", False, 2),
        ("received", None, 1, 1, 200, "stop", None),
        ("attempt", None, 1, "json_schema", None, (), False, False),
        ("finished",),
    ]
    check_times(events)


def test_a_failed_extraction_tells_the_error_it_raises(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"n": "x"}))
    events: list[Event] = []
    with pytest.raises(OutputInvalidError) as info:
        make(server, tmp_path, hooks=[events.append], max_retries=0).extract(Item, "one")
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 200, "stop", None),
        ("attempt", None, 1, "json_schema", INVALID, (), False, False),
        ("failed", "OutputInvalidError"),
    ]
    failed = events[-1]
    assert isinstance(failed, ExtractionFailed) and failed.error is info.value
    assert str(info.value).startswith("the answer was still invalid after 1 attempts (0 re-asks)")


def test_a_failed_request_tells_its_status_and_the_failure(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.status_error(402, "no credits left"))
    events: list[Event] = []
    with pytest.raises(Exception) as info:
        make(server, tmp_path, hooks=[events.append]).extract(Item, "one")
    error = f"402 from 127.0.0.1:{server.port}: no credits left"
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 402, None, error),
        ("failed", "PaymentRequiredError"),
    ]
    assert str(info.value) == error


def test_a_rejected_mode_is_told_as_a_fallback(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.status_error(400, "response_format json_schema is not supported by this provider"))
    events: list[Event] = []
    result = make(server, tmp_path, mode="auto", hooks=[events.append]).extract_result(Item, "one")
    assert result.mode == "tools"
    error = f"400 from 127.0.0.1:{server.port}: response_format json_schema is not supported by this provider"
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "auto", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 400, None, error),
        ("fallback", 1, "json_schema", "tools", "response_format json_schema is not supported by this provider"),
        ("sent", None, 1, 0, "tools", False, 2),
        ("received", None, 1, 0, 200, "tool_calls", None),
        ("attempt", None, 1, "tools", None, (), False, False),
        ("finished",),
    ]


def test_an_answer_cut_off_is_told_as_a_reask_for_more_room(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content='{"n": 1', finish_reason="length"), Reply.json({"n": 1}))
    events: list[Event] = []
    make(server, tmp_path, hooks=[events.append]).extract(Item, "one")
    assert [shape(e) for e in events if isinstance(e, AttemptFinished | Reasked)] == [
        ("attempt", None, 1, "json_schema", "cut off at max_tokens", (), False, False),
        ("reasked", 1, "cut_off", "cut off at max_tokens", ()),
        ("attempt", None, 2, "json_schema", None, (), False, False),
    ]
    assert [e.params for e in events if isinstance(e, RequestSent)] == [{"max_tokens": 1024}, {"max_tokens": 2048}]


def test_a_cached_answer_is_an_attempt_without_a_request(server: TestServer, tmp_path: Path) -> None:
    events: list[Event] = []
    ex = make(server, tmp_path, cache=True)
    ex.extract(Item, "one")
    ex.add_hook(events.append)
    ex.extract(Item, "one")
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("attempt", None, 1, "json_schema", None, (), True, False),
        ("finished",),
    ]
    assert len(server.chat_requests) == 1


def test_an_answer_given_by_a_provider_batch_is_a_provided_attempt(server: TestServer, tmp_path: Path) -> None:
    events: list[Event] = []
    data = {
        "id": "batch-gen-1",
        "model": MODEL,
        "choices": [{"message": {"role": "assistant", "content": '{"n": 7}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "cost": 0.002},
    }

    async def answered(body: dict[str, Any]) -> Sent | None:
        return Sent(ChatResponse(data, 0.0), price_factor=0.5)

    async def run() -> ExtractResult[Any]:
        ex = make(server, tmp_path, hooks=[events.append])
        return await ex.aextract_result(Item, "seven", answered=answered)

    result = asyncio.run(run())
    assert result.value == Item(n=7)
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("attempt", None, 1, "json_schema", None, (), False, True),
        ("finished",),
    ]
    attempt = events[1]
    assert isinstance(attempt, AttemptFinished) and attempt.usage.cost == 0.001 and attempt.response_id == "batch-gen-1"
    assert server.chat_requests == []


# --- content, only when asked -------------------------------------------------------------------------


class ContentHook:
    capture_content = True

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


def test_a_hook_that_captures_content_gets_bodies_and_answers_with_the_key_redacted(
    server: TestServer, tmp_path: Path
) -> None:
    server.queue(Reply.json({"n": "x"}), Reply.json({"n": 2}))
    hook = ContentHook()
    text = f"two items; the key is {KEY}"
    make(server, tmp_path, hooks=[hook]).extract(Item, text)
    sent = [e for e in hook.events if isinstance(e, RequestSent)]
    assert sent[0].body is not None
    assert sent[0].body["messages"][1] == {"role": "user", "content": "two items; the key is ***"}
    assert sent[0].body["model"] == MODEL
    attempts = [e for e in hook.events if isinstance(e, AttemptFinished)]
    assert [e.answer for e in attempts] == ['{"n": "x"}', '{"n": 2}']
    reasked = next(e for e in hook.events if isinstance(e, Reasked))
    assert [(e.path, e.value, e.has_value) for e in reasked.errors] == [("$.n", "x", True)]
    assert KEY not in everything(hook.events)
    assert KEY in server.chat_requests[0].json["messages"][1]["content"]  # the endpoint got the text as it is


# --- streams, batches, chunks ---------------------------------------------------------------------------


def test_a_stream_tells_its_streamed_requests(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content='{"n": "x"}', chunk_size=3), Reply(content='{"n": 5}', chunk_size=3))
    events: list[Event] = []

    async def run() -> list[Any]:
        ex = make(server, tmp_path)
        return [v async for v in ex.astream(Item, "five", hooks=[events.append])]

    assert asyncio.run(run())[-1] == Item(n=5)
    assert [shape(e) for e in events] == [
        ("started", "Item", MODEL, "json_schema", True),
        ("sent", None, 1, 0, "json_schema", True, 2),
        ("received", None, 1, 0, 200, "stop", None),
        ("attempt", None, 1, "json_schema", INVALID, (), False, False),
        ("reasked", 1, "invalid", INVALID, (("$.n", NOT_INT, False),)),
        ("sent", None, 2, 0, "json_schema", True, 4),
        ("received", None, 2, 0, 200, "stop", None),
        ("attempt", None, 2, "json_schema", None, (), False, False),
        ("finished",),
    ]
    sent = [e for e in events if isinstance(e, RequestSent)]
    assert [e.body_size for e in sent] == [len(r.body) for r in server.chat_requests]


def test_a_broken_stream_is_retried_and_told(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content='{"n": 5}', chunk_size=2, cut_after=2), Reply(content='{"n": 5}'))
    events: list[Event] = []
    assert list(make(server, tmp_path, hooks=[events.append]).stream(Item, "five"))[-1] == Item(n=5)
    reason = next(e.error for e in events if isinstance(e, ResponseReceived) and e.error)
    assert reason is not None
    assert reason.startswith(f"connection to 127.0.0.1:{server.port} failed: Response payload is not completed")
    assert [shape(e) for e in events if not isinstance(e, ExtractionStarted | ExtractionFinished)] == [
        ("sent", None, 1, 0, "json_schema", True, 2),
        ("received", None, 1, 0, None, None, reason),
        ("retried", 1, 1, reason, None),
        ("sent", None, 1, 1, "json_schema", True, 2),
        ("received", None, 1, 1, 200, "stop", None),
        ("attempt", None, 1, "json_schema", None, (), False, False),
    ]


def test_extract_many_tells_each_inputs_events_with_its_id(server: TestServer, tmp_path: Path) -> None:
    def answer(request: Any) -> Reply:
        text = request.json["messages"][-1]["content"]
        return Reply.json({"n": "bad"}) if text == "b" and len(request.json["messages"]) == 2 else Reply.json({"n": 1})

    server.handler = answer
    events: list[Event] = []
    inputs = [{"id": "first", "text": "a"}, {"id": "second", "text": "b"}]
    ex = make(server, tmp_path, hooks=[events.append])
    results = list(ex.extract_many(Item, inputs, concurrency=1, ordered=True))
    assert [(r.id, r.value) for r in results] == [("first", Item(n=1)), ("second", Item(n=1))]
    by_input: dict[str | None, list[Event]] = {}
    for event in events:
        by_input.setdefault(event.input_id, []).append(event)
    assert set(by_input) == {"first", "second"}
    assert [shape(e) for e in by_input["first"]] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 200, "stop", None),
        ("attempt", None, 1, "json_schema", None, (), False, False),
        ("finished",),
        ("input", "first", True, False),
    ]
    assert [shape(e) for e in by_input["second"]] == [
        ("started", "Item", MODEL, "json_schema", False),
        ("sent", None, 1, 0, "json_schema", False, 2),
        ("received", None, 1, 0, 200, "stop", None),
        ("attempt", None, 1, "json_schema", INVALID, (), False, False),
        ("reasked", 1, "invalid", INVALID, (("$.n", NOT_INT, False),)),
        ("sent", None, 2, 0, "json_schema", False, 4),
        ("received", None, 2, 0, 200, "stop", None),
        ("attempt", None, 2, "json_schema", None, (), False, False),
        ("finished",),
        ("input", "second", True, False),
    ]
    for group in by_input.values():
        assert len({e.call_id for e in group}) == 1  # the input's outcome carries its extraction's id
    assert by_input["first"][0].call_id != by_input["second"][0].call_id
    finished = [e for e in events if isinstance(e, InputFinished)]
    assert [e.result for e in finished] == results


def test_a_provider_batchs_results_tell_provided_attempts_and_a_reask_sent_now(
    server: TestServer, tmp_path: Path
) -> None:
    def answer(request: Any) -> Reply:
        text = str(request.json["messages"][-1]["content"])
        return Reply.json({"n": "bad" if text == "b" and request.batch_id else 1})

    server.handler = answer
    server.batch_polls = 0
    events: list[Event] = []

    async def main() -> list[Any]:
        ex = make(server, tmp_path, hooks=[events.append])
        job = await ex.asubmit_batch(Item, [{"id": "x", "text": "a"}, {"id": "y", "text": "b"}], state=tmp_path / "s")
        await job.wait(poll_interval=0.01)
        results = [r async for r in job.results()]
        await ex.aclose()
        return results

    results = asyncio.run(main())
    assert sorted((r.id, r.value) for r in results) == [("x", Item(n=1)), ("y", Item(n=1))]
    by_input: dict[str | None, list[tuple[Any, ...]]] = {}
    for event in events:
        by_input.setdefault(event.input_id, []).append(shape(event))
    assert by_input == {
        "x": [
            ("started", "Item", MODEL, "json_schema", False),
            ("attempt", None, 1, "json_schema", None, (), False, True),
            ("finished",),
            ("input", "x", True, False),
        ],
        "y": [
            ("started", "Item", MODEL, "json_schema", False),
            ("attempt", None, 1, "json_schema", INVALID, (), False, True),
            ("reasked", 1, "invalid", INVALID, (("$.n", NOT_INT, False),)),
            ("sent", None, 2, 0, "json_schema", False, 4),
            ("received", None, 2, 0, 200, "stop", None),
            ("attempt", None, 2, "json_schema", None, (), False, False),
            ("finished",),
            ("input", "y", True, False),
        ],
    }
    assert len(server.chat_requests) == 1  # only the re-ask was sent synchronously


def test_a_batch_input_that_fails_before_its_extraction_is_told_as_finished(server: TestServer, tmp_path: Path) -> None:
    events: list[Event] = []
    ex = make(server, tmp_path)
    results = list(ex.extract_many(Item, [tmp_path / "missing.txt"], hooks=[events.append]))
    assert [r.ok for r in results] == [False]
    assert [shape(e) for e in events] == [("input", str(tmp_path / "missing.txt"), False, False)]
    assert isinstance(events[0], InputFinished) and events[0].result is results[0]


def test_a_long_document_tells_its_chunks(server: TestServer, tmp_path: Path) -> None:
    paragraph = "A paragraph of the report that goes on for a while without saying much. " * 20
    text = "\n\n".join(f"Section {i}. {paragraph}" for i in range(3))
    server.handler = lambda request: Reply.json({"title": None, "part_note": None})
    events: list[Event] = []
    result = make(server, tmp_path, hooks=[events.append], max_chars=2_000).extract_result(Note, text)
    count = len(result.chunks)
    assert count == 3
    split = events[1]
    assert isinstance(split, DocumentSplit)
    assert split.chunks == tuple((c.start, c.end) for c in result.chunks)
    assert (split.document, split.characters) == ("text", len(text))
    assert shape(events[0]) == ("started", "Note", MODEL, "json_schema", False)
    per_chunk: dict[Any, list[tuple[Any, ...]]] = {}
    for event in events[2:-1]:
        per_chunk.setdefault(getattr(event, "chunk", "?"), []).append(shape(event))
    assert per_chunk == {
        index: [
            ("sent", index, 1, 0, "json_schema", False, 2),
            ("received", index, 1, 0, 200, "stop", None),
            ("attempt", index, 1, "json_schema", None, (), False, False),
        ]
        for index in range(count)
    }
    assert shape(events[-1]) == ("finished",)


# --- registering hooks, and hooks that fail ----------------------------------------------------------------


def test_async_hooks_are_awaited_in_order_with_sync_ones(server: TestServer, tmp_path: Path) -> None:
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(f"async {type(event).__name__}")

    def quick(event: Event) -> None:
        seen.append(f"sync {type(event).__name__}")

    make(server, tmp_path, hooks=[slow, quick]).extract(Item, "one")
    names = ["ExtractionStarted", "RequestSent", "ResponseReceived", "AttemptFinished", "ExtractionFinished"]
    assert seen == [f"{kind} {name}" for name in names for kind in ("async", "sync")]


def test_extractor_call_and_global_hooks_are_called_in_that_order(server: TestServer, tmp_path: Path) -> None:
    seen: list[str] = []

    def own(event: Event) -> None:
        seen.append("own")

    def per_call(event: Event) -> None:
        seen.append("call")

    def everywhere(event: Event) -> None:
        seen.append("global")

    ex = make(server, tmp_path)
    ex.add_hook(own)
    add_global_hook(everywhere)
    try:
        ex.extract(Item, "one", hooks=[per_call], max_retries=0)
    finally:
        remove_global_hook(everywhere)
    assert seen == ["own", "call", "global"] * 5
    seen.clear()
    ex.remove_hook(own)
    assert ex.hooks == ()
    ex.extract(Item, "one")
    assert seen == []


def test_a_failing_hook_never_breaks_the_extraction_and_is_logged_once(
    server: TestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("the dashboard is down")

    async def broken_async(event: Event) -> None:
        raise ValueError(f"no room for {type(event).__name__}")

    caplog.set_level(logging.WARNING, logger="extractor")
    ex = make(server, tmp_path, hooks=[broken, broken_async, events.append])
    assert ex.extract(Item, "one") == ex.extract(Item, "two")
    assert [type(e).__name__ for e in events] == [
        "ExtractionStarted", "RequestSent", "ResponseReceived", "AttemptFinished", "ExtractionFinished"
    ] * 2  # fmt: skip
    warnings = [r for r in caplog.records if r.name == "extractor" and "hook" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in warnings] == [
        (
            logging.WARNING,
            "hook test_a_failing_hook_never_breaks_the_extraction_and_is_logged_once.<locals>.broken failed on "
            "ExtractionStarted (RuntimeError: the dashboard is down); the extraction goes on (logged once per "
            "hook and error type)",
        ),
        (
            logging.WARNING,
            "hook test_a_failing_hook_never_breaks_the_extraction_and_is_logged_once.<locals>.broken_async failed "
            "on ExtractionStarted (ValueError: no room for ExtractionStarted); the extraction goes on (logged "
            "once per hook and error type)",
        ),
    ]


# --- OpenTelemetry -----------------------------------------------------------------------------------------


def by_name(exported: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in exported:
        found.setdefault(span.name, []).append(span)
    return found


def no_key_in(exported: tuple[ReadableSpan, ...]) -> None:
    for span in exported:
        assert KEY not in json.dumps(dict(span.attributes or {}), default=str)
        for event in span.events:
            assert KEY not in json.dumps(dict(event.attributes or {}), default=str)
        assert KEY not in (span.status.description or "")
        assert KEY[8:24] not in span.to_json()


def test_a_reasked_extraction_makes_one_span_with_a_chat_span_per_attempt(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    server.queue(Reply(status=500), Reply.json({"n": "many"}), Reply(content='```json\n{"n": 3}\n```'))
    ex = make(server, tmp_path, temperature=0.2)
    hook = instrument(ex, tracer_provider=provider, capture_content=False)
    assert ex.hooks == (hook,)
    result = ex.extract_result(Item, f"three items (key {KEY})")
    exported = exporter.get_finished_spans()
    named = by_name(exported)
    assert sorted(named) == [f"chat {MODEL}", "extract Item"]
    (root,) = named["extract Item"]
    chats = sorted(named[f"chat {MODEL}"], key=lambda s: s.start_time or 0)
    assert len(chats) == 2
    assert root.parent is None and root.kind == SpanKind.INTERNAL
    for chat in chats:
        assert chat.parent is not None and chat.parent.span_id == root.context.span_id
        assert chat.context.trace_id == root.context.trace_id and chat.kind == SpanKind.CLIENT
    attributes = dict(root.attributes or {})
    assert attributes == {
        "gen_ai.provider.name": "127.0.0.1",
        "gen_ai.system": "127.0.0.1",
        "gen_ai.request.model": MODEL,
        "gen_ai.output.type": "json",
        "extractor.schema": "Item",
        "extractor.mode": "json_schema",
        "extractor.call_id": attributes["extractor.call_id"],
        "extractor.stream": False,
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.response.model": MODEL,
        "gen_ai.response.id": "gen-2",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": result.usage.completion_tokens,
        "extractor.cost_usd": result.usage.cost,
        "extractor.cost_known": True,
        "extractor.client.attempts": 2,
        "extractor.reasks": 1,
        "extractor.repairs": 1,
        "extractor.repair_kinds": ("fence",),
    }
    assert len(str(attributes["extractor.call_id"])) == 16
    assert root.status.status_code == StatusCode.UNSET
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "127.0.0.1",
        "gen_ai.system": "127.0.0.1",
        "gen_ai.request.model": MODEL,
        "gen_ai.output.type": "json",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "extractor.mode": "json_schema",
        "extractor.stream": False,
        "extractor.cached": False,
        "extractor.provided": False,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": MODEL,
        "gen_ai.response.finish_reasons": ("stop",),
        "http.response.status_code": 200,
    }
    first, second = (dict(c.attributes or {}) for c in chats)
    bodies = [len(r.body) for r in server.chat_requests]
    assert first == {
        **common,
        "extractor.attempt": 1,
        "extractor.request.size": bodies[0],
        "gen_ai.response.id": "gen-1",
        "gen_ai.usage.input_tokens": result.attempts[0].usage.prompt_tokens,
        "gen_ai.usage.output_tokens": result.attempts[0].usage.completion_tokens,
        "extractor.cost_usd": result.attempts[0].usage.cost,
        "extractor.repairs": 0,
        "extractor.repair_kinds": (),
        "extractor.problem": INVALID,
    }
    assert second == {
        **common,
        "extractor.attempt": 2,
        "extractor.request.size": bodies[2],
        "gen_ai.response.id": "gen-2",
        "gen_ai.usage.input_tokens": result.attempts[1].usage.prompt_tokens,
        "gen_ai.usage.output_tokens": result.attempts[1].usage.completion_tokens,
        "extractor.cost_usd": result.attempts[1].usage.cost,
        "extractor.repairs": 1,
        "extractor.repair_kinds": ("fence",),
    }
    reason = f"500 from 127.0.0.1:{server.port}: Internal Server Error"
    (retry,) = chats[0].events
    retried = dict(retry.attributes or {})
    assert 0 <= float(str(retried.pop("extractor.retry.wait_s"))) <= 0.02
    assert (retry.name, retried) == (
        "extractor.retry",
        {"extractor.retry": 1, "extractor.retry.reason": reason, "http.response.status_code": 500},
    )
    assert chats[1].events == ()
    assert [(e.name, dict(e.attributes or {})) for e in root.events] == [
        (
            "extractor.reask",
            {
                "extractor.attempt": 1,
                "extractor.reask.reason": "invalid",
                "extractor.problem": INVALID,
                "extractor.errors": (f"$.n: {NOT_INT}",),
            },
        )
    ]
    for chat in chats:
        assert root.start_time is not None and chat.start_time is not None and chat.end_time is not None
        assert root.end_time is not None and root.start_time <= chat.start_time <= chat.end_time <= root.end_time
    assert "gen_ai.input.messages" not in first and "gen_ai.output.messages" not in first
    no_key_in(exported)


def test_captured_content_is_recorded_with_the_key_redacted(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    server.queue(Reply.json({"n": 4}))
    ex = make(server, tmp_path, instructions="Read the number.")
    instrument(ex, tracer_provider=provider, capture_content=True)
    ex.extract(Item, f"four (key {KEY})")
    named = by_name(exporter.get_finished_spans())
    (chat,) = named[f"chat {MODEL}"]
    (root,) = named["extract Item"]
    attributes = dict(chat.attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "Read the number."}]},
        {"role": "user", "parts": [{"type": "text", "content": "four (key ***)"}]},
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {"role": "assistant", "parts": [{"type": "text", "content": '{"n": 4}'}], "finish_reason": "stop"}
    ]
    assert dict(root.attributes or {})["extractor.output"] == '{"n":4}'
    no_key_in(exporter.get_finished_spans())


def test_every_attribute_is_redacted_the_same_way(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """An answer holding 12 characters of the key (too few to be refused): `gen_ai.output.messages` showed
    `***` while `extractor.output` recorded them as they were."""
    provider, exporter = spans
    fragment = KEY[4:16]
    server.queue(Reply.json({"title": f"ref {fragment}"}))
    ex = make(server, tmp_path)
    instrument(ex, tracer_provider=provider, capture_content=True)
    assert ex.extract(Note, "a note") == Note(title=f"ref {fragment}")  # the caller gets the value as it is
    named = by_name(exporter.get_finished_spans())
    (chat,) = named[f"chat {MODEL}"]
    (root,) = named["extract Note"]
    assert dict(root.attributes or {})["extractor.output"] == '{"title":"ref ***"}'
    output = json.loads(str(dict(chat.attributes or {})["gen_ai.output.messages"]))
    assert output[0]["parts"][0]["content"] == '{"title": "ref ***"}'
    for span in exporter.get_finished_spans():
        text = span.to_json()
        assert not any(KEY[i : i + 8] in text for i in range(len(KEY) - 7))


def test_problems_and_error_messages_in_events_are_redacted(server: TestServer, tmp_path: Path) -> None:
    fragment = KEY[4:16]
    server.queue(Reply.json({"n": f"n{fragment}"}), Reply.json({"n": 3}))
    hook = ContentHook()
    make(server, tmp_path, hooks=[hook]).extract(Item, "three")
    reasked = next(e for e in hook.events if isinstance(e, Reasked))
    assert [(e.path, e.value) for e in reasked.errors] == [("$.n", "n***")]
    finished = next(e for e in hook.events if isinstance(e, ExtractionFinished))
    assert finished.output == '{"n":3}'
    assert not any(KEY[i : i + 8] in everything(hook.events) for i in range(len(KEY) - 7))


def test_content_capture_follows_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert OpenTelemetryHook().capture_content is True
    assert OpenTelemetryHook(capture_content=False).capture_content is False
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    assert OpenTelemetryHook().capture_content is False


def test_a_failed_extraction_span_says_the_error(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    server.queue(Reply(status=503), Reply(status=503))
    ex = make(server, tmp_path, hooks=[OpenTelemetryHook(tracer_provider=provider)])
    with pytest.raises(Exception, match="503 from"):
        ex.extract(Item, "one")
    named = by_name(exporter.get_finished_spans())
    (root,) = named["extract Item"]
    (chat,) = named[f"chat {MODEL}"]
    message = f"503 from 127.0.0.1:{server.port}: Service Unavailable"
    assert (root.status.status_code, root.status.description) == (StatusCode.ERROR, message)
    assert (chat.status.status_code, chat.status.description) == (StatusCode.ERROR, message)
    assert dict(root.attributes or {})["error.type"] == "ServerError"
    assert dict(root.attributes or {})["extractor.client.attempts"] == 0
    assert dict(chat.attributes or {})["error.type"] == "ServerError"
    assert dict(chat.attributes or {})["http.response.status_code"] == 503
    assert [e.name for e in chat.events] == ["extractor.retry"]


def test_an_invalid_answer_span_gives_the_summary_not_the_values(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    server.queue(Reply.json({"n": "secret-value"}))
    ex = make(server, tmp_path, max_retries=0, hooks=[OpenTelemetryHook(tracer_provider=provider)])
    with pytest.raises(OutputInvalidError):
        ex.extract(Item, "one")
    (root,) = by_name(exporter.get_finished_spans())["extract Item"]
    assert root.status.description == "the answer was still invalid after 1 attempts (0 re-asks)"
    assert "secret-value" not in root.to_json()


def test_a_sync_call_inside_a_span_is_its_child(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    current: list[int] = []

    def during(event: Event) -> None:  # what HTTP instrumentation would see as its parent
        if isinstance(event, RequestSent):
            current.append(trace.get_current_span().get_span_context().span_id)

    ex = make(server, tmp_path, hooks=[OpenTelemetryHook(tracer_provider=provider), during])
    tracer = provider.get_tracer("the application")
    with tracer.start_as_current_span("nightly load") as outer:
        ex.extract(Item, "one")
        assert trace.get_current_span() is outer  # the extraction's span is current only while it runs
    named = by_name(exporter.get_finished_spans())
    (root,) = named["extract Item"]
    assert root.parent is not None and root.parent.span_id == outer.get_span_context().span_id
    assert current == [root.context.span_id]


def test_a_batch_makes_one_extraction_span_per_input_under_the_callers_span(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    ex = make(server, tmp_path)
    instrument(ex, tracer_provider=provider)
    tracer = provider.get_tracer("the application")
    inputs = [{"id": f"doc-{i}", "text": f"text {i}"} for i in range(3)]

    async def run() -> list[Any]:
        with tracer.start_as_current_span("batch") as outer:
            results = [r async for r in ex.aextract_many(Item, inputs, concurrency=2)]
        return [outer, results]

    outer, results = asyncio.run(run())
    assert sorted(r.id for r in results if r.ok) == ["doc-0", "doc-1", "doc-2"]
    named = by_name(exporter.get_finished_spans())
    roots = named["extract Item"]
    chats = named[f"chat {MODEL}"]
    assert sorted(str((r.attributes or {})["extractor.input_id"]) for r in roots) == ["doc-0", "doc-1", "doc-2"]
    for root in roots:
        assert root.parent is not None and root.parent.span_id == outer.get_span_context().span_id
        (chat,) = [c for c in chats if c.parent is not None and c.parent.span_id == root.context.span_id]
        assert dict(chat.attributes or {})["extractor.attempt"] == 1
    assert len(chats) == 3
    no_key_in(exporter.get_finished_spans())


def test_a_long_documents_chat_spans_name_their_chunk(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    paragraph = "A paragraph of the report that goes on for a while without saying much. " * 20
    text = "\n\n".join(f"Section {i}. {paragraph}" for i in range(3))
    server.handler = lambda request: Reply.json({"title": None, "part_note": None})
    ex = make(server, tmp_path, max_chars=2_000, hooks=[OpenTelemetryHook(tracer_provider=provider)])
    ex.extract(Note, text)
    named = by_name(exporter.get_finished_spans())
    (root,) = named["extract Note"]
    assert dict(root.attributes or {})["extractor.chunks"] == 3
    chunks = [dict(c.attributes or {}).get("extractor.chunk") for c in named[f"chat {MODEL}"]]
    assert sorted(chunks, key=str) == [0, 1, 2]


def test_a_cached_answer_has_a_chat_span_without_a_request(
    server: TestServer, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    ex = make(server, tmp_path, cache=True)
    ex.extract(Item, "one")
    instrument(ex, tracer_provider=provider)
    ex.extract(Item, "one")
    named = by_name(exporter.get_finished_spans())
    (chat,) = named[f"chat {MODEL}"]
    attributes = dict(chat.attributes or {})
    assert (attributes["extractor.cached"], attributes["gen_ai.usage.input_tokens"]) == (True, 0)
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.response.id"]) == (MODEL, "gen-1")
    assert "http.response.status_code" not in attributes and "extractor.request.size" not in attributes
    assert len(server.chat_requests) == 1


def test_provider_names_come_from_the_host() -> None:
    assert [
        provider_name(host)
        for host in ("openrouter.ai", "api.openai.com", "myres.openai.azure.com", "api.mistral.ai", "localhost:8080")
    ] == ["openrouter", "openai", "azure.ai.openai", "mistral_ai", "localhost"]


def test_tracing_without_the_opentelemetry_api_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'extractor\[otel\]'"):
        instrument()
