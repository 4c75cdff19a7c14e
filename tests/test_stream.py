"""Streaming: partial values while the answer arrives, and records one by one from long lists."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extractor import Extractor, ExtractResult, OutputInvalidError, Partial, RetryPolicy
from extractor.client.sse import StreamAssembler, parse_sse_line
from extractor.output.incremental import ItemScanner
from extractor.testing import Reply, TestServer


class Line(BaseModel):
    sku: str
    note: str
    qty: int


class Statement(BaseModel):
    account: str
    owner: str
    lines: list[Line]


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", **kwargs)


TRICKY = ["a } brace", "a ] bracket", 'a "quoted" word', "ünïcødé ✓ 漢字", "back\\slash", "new\nline", "{[}]"]


def lines(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{i:04d}", "note": TRICKY[i % len(TRICKY)], "qty": i} for i in range(count)]


def grows(before: Any, after: Any) -> bool:
    """Whether `after` extends `before`: same keys and more, strings and lists that go on."""
    if before is None:
        return True
    if isinstance(before, dict):
        return isinstance(after, dict) and all(k in after and grows(v, after[k]) for k, v in before.items())
    if isinstance(before, list):
        if not isinstance(after, list) or len(after) < len(before):
            return False
        return all(grows(b, a) for b, a in zip(before, after, strict=False))
    if isinstance(before, str):
        return isinstance(after, str) and after.startswith(before)
    return bool(before == after)


def test_partials_grow_and_the_final_value_equals_extract(server: TestServer, tmp_path: Path) -> None:
    answer = {"account": "DE00 1234", "owner": "Ada Lovelace", "lines": lines(40)}
    text = json.dumps(answer)
    server.queue(Reply(content=text, chunk_size=7, chunk_delay=0.002), Reply(content=text))
    events = list(make(server, tmp_path).stream(Statement, "statement"))
    partials = [e.data for e in events if isinstance(e, Partial)]
    final = events[-1]
    assert not isinstance(final, Partial) and len(partials) >= 3
    assert all(grows(a, b) for a, b in itertools.pairwise(partials))
    assert all(grows(p, answer) for p in partials)
    assert final == make(server, tmp_path).extract(Statement, "statement")
    assert server.chat_requests[0].json["stream"] is True
    assert "stream" not in server.chat_requests[1].json


def test_with_result_gives_usage_and_cost_like_extract(server: TestServer, tmp_path: Path) -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "cost": 0.0042}
    server.queue(Reply(content=json.dumps({"account": "A", "owner": "B", "lines": []}), usage=usage, id="gen-s"))
    result = list(make(server, tmp_path).stream(Statement, "text", with_result=True))[-1]
    assert isinstance(result, ExtractResult)
    assert result.value == Statement(account="A", owner="B", lines=[])
    assert result.usage.prompt_tokens == 120 and result.cost == pytest.approx(0.0042)
    assert result.generation_id == "gen-s"


def test_a_thousand_records_arrive_one_by_one_in_order(server: TestServer, tmp_path: Path) -> None:
    records = lines(1000)
    server.queue(Reply(content=json.dumps({"value": records}), chunk_size=16))
    got = list(make(server, tmp_path).stream_items(Line, "a long statement"))
    assert [g.model_dump() for g in got] == records


def test_records_stream_before_the_answer_ends(server: TestServer, tmp_path: Path) -> None:
    """The first stream is cut before its end: records from it can only have come before the answer did."""
    body = json.dumps({"value": lines(30)})
    server.queue(Reply(content=body, chunk_size=8, cut_after=60), Reply(content=body, chunk_size=8))
    ex = make(server, tmp_path)

    async def main() -> tuple[int, int]:
        stream = ex.astream_items(Line, "text")
        first = await stream.__anext__()
        assert first.sku == "SKU-0000"
        requests_at_first_item = len(server.chat_requests)  # the cut stream's retry has not been sent
        rest = [item async for item in stream]
        await ex.aclose()
        return requests_at_first_item, 1 + len(rest)

    requests, count = asyncio.run(main())
    assert requests == 1 and count == 30
    assert len(server.chat_requests) == 2


def test_a_stream_cut_midway_is_retried_without_repeating_records(server: TestServer, tmp_path: Path) -> None:
    body = json.dumps({"value": lines(50)})
    server.queue(Reply(content=body, chunk_size=32, cut_after=40), Reply(content=body, chunk_size=32))
    got = list(make(server, tmp_path).stream_items(Line, "text"))
    assert [g.sku for g in got] == [f"SKU-{i:04d}" for i in range(50)]
    assert len(server.chat_requests) == 2


def test_a_mid_stream_error_chunk_is_retried(server: TestServer, tmp_path: Path) -> None:
    body = json.dumps({"value": lines(20)})
    server.queue(Reply(content=body, chunk_size=32, error_after=10), Reply(content=body))
    got = list(make(server, tmp_path).stream_items(Line, "text"))
    assert len(got) == 20 and len({g.sku for g in got}) == 20
    assert len(server.chat_requests) == 2


def test_an_invalid_final_answer_is_reasked_like_extract(server: TestServer, tmp_path: Path) -> None:
    bad = json.dumps({"account": "A", "owner": "B", "lines": [{"sku": "x", "note": "n", "qty": "many"}]})
    good = json.dumps({"account": "A", "owner": "B", "lines": [{"sku": "x", "note": "n", "qty": 2}]})
    server.queue(Reply(content=bad, chunk_size=10), Reply(content=good, chunk_size=10))
    events = list(make(server, tmp_path).stream(Statement, "text", with_result=True))
    result = events[-1]
    assert result.value.lines[0].qty == 2 and result.reasks == 1
    second = server.chat_requests[1].json["messages"]
    assert second[-2] == {"role": "assistant", "content": bad}
    assert "$.lines[0].qty" in second[-1]["content"]


def test_a_required_field_missing_at_the_end_is_an_error(server: TestServer, tmp_path: Path) -> None:
    server.queue(*[Reply(content=json.dumps({"account": "A", "lines": []}))] * 3)
    with pytest.raises(OutputInvalidError, match="owner"):
        list(make(server, tmp_path, max_retries=2).stream(Statement, "text"))


def test_tools_mode_streams_tool_call_arguments(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(tool_arguments=json.dumps({"value": lines(12)}), chunk_size=9))
    got = list(make(server, tmp_path, mode="tools").stream_items(Line, "text"))
    assert [g.qty for g in got] == list(range(12))


def test_reasoning_details_streamed_are_sent_back_on_a_reask(server: TestServer, tmp_path: Path) -> None:
    details = [{"type": "reasoning.text", "text": "thinking", "signature": "sig=="}]
    server.queue(
        Reply(content='{"account": 1}', reasoning="thinking", reasoning_details=details),
        Reply.json({"account": "A", "owner": "B", "lines": []}),
    )
    list(make(server, tmp_path).stream(Statement, "text"))
    echo = server.chat_requests[1].json["messages"][-2]
    assert echo["reasoning_details"] == details


def test_sse_lines_are_read_as_the_protocol_says() -> None:
    assert parse_sse_line(": OPENROUTER PROCESSING") is None
    assert parse_sse_line("") is None
    assert parse_sse_line("data: [DONE]") == ("done", None)
    assembler = StreamAssembler()
    for chunk in (
        {"id": "g1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": '{"a": '}}]},
        {"id": "g1", "choices": [{"index": 0, "delta": {"content": "1}"}, "finish_reason": None}]},
        {"id": "g1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "g1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    ):
        assembler.add(chunk)
    response = assembler.response()
    assert response["choices"][0]["message"]["content"] == '{"a": 1}'
    assert response["choices"][0]["finish_reason"] == "stop"
    assert response["usage"] == {"prompt_tokens": 5, "completion_tokens": 2}


def test_the_item_scanner_is_a_real_lexer() -> None:
    text = json.dumps({"value": [{"s": '}]\\"{', "n": [1, {"x": "]"}]}, {"s": "ok"}, 3, "str,]"]})
    scanner = ItemScanner()
    found = [item for i in range(0, len(text), 3) for item in scanner.feed(text[i : i + 3])]
    assert [json.loads(f) for f in found] == json.loads(text)["value"]
    assert scanner.finished


# --- endless streams: the deadline and the size limit hold ---------------------------------------------

ENDLESS_ITEM = json.dumps({"sku": "SKU-1", "note": "again", "qty": 1}) + ", "


def endless(**fields: Any) -> Reply:
    """A stream that opens a list and repeats one record for ever (`Reply.repeat`)."""
    return Reply(content='{"value": [', repeat=ENDLESS_ITEM, **fields)


def test_an_endless_stream_stops_at_the_deadline_and_hands_out_nothing_read_before_it(
    server: TestServer, tmp_path: Path
) -> None:
    """The records were read faster than this consumer takes them: once the extraction had failed at the
    deadline (two attempts of `timeout`), the thousands queued were handed out for seconds more (168,260
    records over 25.6 s with timeout=5, 260 MB) before the error came. Now the error comes next."""
    from extractor import APITimeoutError, Event, ExtractionFailed

    server.handler = lambda request: endless()
    taken: list[int] = []
    at_failure: list[int] = []

    async def note(event: Event) -> None:
        if isinstance(event, ExtractionFailed):
            at_failure.append(len(taken))

    ex = make(server, tmp_path, timeout=1.0, hooks=[note])
    with pytest.raises(APITimeoutError, match="within 1 s"):
        for _ in ex.stream_items(Line, "text"):
            taken.append(1)
            time.sleep(0.001)  # a consumer slower than the loopback stream
    assert len(server.chat_requests) == 2  # the attempt and its one retry after a timeout
    assert at_failure and len(taken) - at_failure[0] <= 20


def test_an_endless_stream_within_the_deadline_stops_at_the_size_limit(server: TestServer, tmp_path: Path) -> None:
    from extractor.errors import ResponseTooLargeError

    server.handler = lambda request: endless()
    limit = 256 * 1024
    ex = make(server, tmp_path, timeout=60.0, max_response_bytes=limit)
    taken = 0
    with pytest.raises(ResponseTooLargeError, match="larger than 256 KiB"):
        for _ in ex.stream_items(Line, "text"):
            taken += 1
    assert len(server.chat_requests) == 1  # not retried
    piece = len(json.dumps({"choices": [{"delta": {"content": ENDLESS_ITEM}}]}))  # less than one event's bytes
    assert 0 < taken <= limit // piece
