"""Every record from one real answer: streaming restarts, re-asks, the cache and the key keep their promises.

Each test scripts the test server the way a real endpoint misbehaves and asserts the exact outcome.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

from extractor import (
    ConfigurationError,
    Extractor,
    ExtractResult,
    OutputInvalidError,
    OutputTruncatedError,
    RefusalError,
    RetryPolicy,
    StreamDivergedError,
)
from extractor.client.cache import ResponseCache
from extractor.sources import Image
from extractor.testing import ModelSpec, RecordedRequest, Reply, TestServer

KEY = "sk-test-promises-0123456789abcdefghij"


class Item(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def positive(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be positive")
        return value


class Note(BaseModel):
    title: str


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", **kwargs)


def listing(*values: int) -> str:
    return json.dumps({"value": [{"n": v} for v in values]})


# --- stream_items: what is yielded is a prefix of the final list --------------------------------------


def test_a_restarted_stream_that_regenerates_differently_raises_with_both_lists(
    server: TestServer, tmp_path: Path
) -> None:
    first = listing(100, 101, 102, 103, 104)  # cut after two records: A0, A1 are yielded
    second = listing(200, 201, 202, 203, 204)  # regenerated differently: B0..B4
    server.queue(Reply(content=first, chunk_size=4, cut_after=9), Reply(content=second, chunk_size=4))
    got: list[int] = []
    with pytest.raises(StreamDivergedError) as info:
        for item in make(server, tmp_path).stream_items(Item, "text"):
            got.append(item.n)
    assert got == [100, 101]  # never A0, A1, B2, B3, B4
    assert [i.n for i in info.value.yielded] == [100, 101]
    assert [i.n for i in info.value.final] == [200, 201, 202, 203, 204]
    assert "after 2 records were yielded" in str(info.value)


def test_a_restarted_stream_that_regenerates_the_same_records_goes_on(server: TestServer, tmp_path: Path) -> None:
    body = listing(*range(10))
    server.queue(Reply(content=body, chunk_size=4, cut_after=10), Reply(content=body, chunk_size=4))
    got = [item.n for item in make(server, tmp_path).stream_items(Item, "text")]
    assert got == list(range(10))


def test_a_reask_is_told_which_records_to_keep_and_a_kept_prefix_goes_on(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content=listing(1, 2, -3), chunk_size=4), Reply(content=listing(1, 2, 3), chunk_size=4))
    got = [item.n for item in make(server, tmp_path).stream_items(Item, "text")]
    assert got == [1, 2, 3]
    reask = server.chat_requests[1].json["messages"][-1]["content"]
    assert 'The first 2 records of the list were already accepted and used: keep them exactly as they are, in the ' \
           'same order, at the start of your corrected list: [{"n": 1}, {"n": 2}]' in reask  # fmt: skip


def test_a_reask_that_changes_accepted_records_raises_instead_of_mixing(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content=listing(1, 2, -3), chunk_size=4), Reply(content=listing(10, 20, 30), chunk_size=4))
    got: list[int] = []
    with pytest.raises(StreamDivergedError) as info:
        for item in make(server, tmp_path).stream_items(Item, "text"):
            got.append(item.n)
    assert got == [1, 2]  # never 1, 2, 30
    assert [i.n for i in info.value.final] == [10, 20, 30]


def test_stream_items_with_result_ends_with_the_result(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content=listing(1, 2), chunk_size=4))
    events = list(make(server, tmp_path).stream_items(Item, "text", with_result=True))
    assert [e.n for e in events[:-1]] == [1, 2]
    assert isinstance(events[-1], ExtractResult) and [i.n for i in events[-1].value] == [1, 2]


# --- the response cache keeps only answers that validated ---------------------------------------------


def test_an_invalid_answer_is_not_cached_so_a_second_reask_reaches_the_endpoint(
    server: TestServer, tmp_path: Path
) -> None:
    answers = iter([json.dumps({"title": None}), json.dumps({"title": None}), json.dumps({"title": "ok"})])
    server.handler = lambda request: Reply(content=next(answers))
    ex = make(server, tmp_path, cache=tmp_path / "responses.sqlite")
    assert ex.extract(Note, "text").title == "ok"
    assert len(server.chat_requests) == 3  # re-ask 2 (same body as re-ask 1) was not answered from the cache


def test_a_failure_is_not_replayed_from_the_cache(server: TestServer, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "responses.sqlite")
    ex = make(server, tmp_path, cache=cache, max_retries=0)
    server.queue(Reply.refuse("no"))
    with pytest.raises(RefusalError):
        ex.extract(Note, "text")
    server.queue(Reply(content=json.dumps({"title": None})))
    with pytest.raises(OutputInvalidError):
        ex.extract(Note, "text")
    server.queue(Reply.truncated('{"title": "cut'))
    server.queue(Reply.truncated('{"title": "cut again'))
    with pytest.raises(OutputTruncatedError):
        ex.extract(Note, "text")
    assert len(cache) == 0
    server.queue(Reply(content=json.dumps({"title": "now right"})))
    assert ex.extract(Note, "text").title == "now right"  # asked again, not replayed
    assert len(cache) == 1
    before = len(server.chat_requests)
    assert ex.extract(Note, "text").title == "now right"  # a valid answer is served from the cache
    assert len(server.chat_requests) == before


# --- the key --------------------------------------------------------------------------------------------


def test_an_answer_holding_the_key_is_refused_and_not_sent_back(tmp_path: Path) -> None:
    with TestServer(api_key=KEY) as server:
        server.queue(Reply(content=json.dumps({"title": f"the key is {KEY}"})))
        ex = make(server, tmp_path, api_key=KEY)
        with pytest.raises(OutputInvalidError) as info:
            ex.extract(Note, "text")
        assert len(server.chat_requests) == 1  # not re-asked with the key in the conversation
    error = info.value
    assert str(error) == "the answer holds the API key: refused, and not sent back in a re-ask"
    assert error.raw is None and error.attempts[0].problem == "held the API key"


# --- what a re-ask echoes is capped -----------------------------------------------------------------------


def test_a_huge_invalid_answer_makes_a_small_reask(server: TestServer, tmp_path: Path) -> None:
    huge = json.dumps({"title": None, "padding": "x" * 200_000})
    server.queue(Reply(content=huge), Reply(content=json.dumps({"title": "fine"})))
    make(server, tmp_path).extract(Note, "text")
    second = server.chat_requests[1]
    assert len(second.body) < 20_000

    def echoed(request: RecordedRequest) -> str:
        return str(request.json["messages"][-2]["content"])

    assert echoed(second).endswith("more characters]")


# --- budgets that hold ---------------------------------------------------------------------------------


def _spent(results: list[Any]) -> tuple[float, float]:
    """(what the run spent in all, the most one attempt cost), from every result, failures included."""
    attempts = [
        a for r in results for a in (r.result.attempts if r.result else (getattr(r.error, "attempts", None) or []))
    ]
    return sum(r.usage.cost for r in results), max(a.usage.cost for a in attempts)


@pytest.mark.parametrize("concurrency", [64, 256])
def test_max_cost_holds_with_reasks_and_length_retries(tmp_path: Path, concurrency: int) -> None:
    calls = itertools.count()

    def handler(request: RecordedRequest) -> Reply | None:
        n = next(calls)
        if n % 3 == 0:
            return Reply(content=json.dumps({"title": None}))  # invalid: re-asked
        if n % 7 == 1:
            return Reply.truncated('{"title": "cut')  # cut off: retried with more room
        return Reply(content=json.dumps({"title": "t" * 400}))

    budget = 0.05
    with TestServer() as server:
        server.handler = handler
        ex = make(server, tmp_path)
        texts = [f"note {i} " + "words " * 50 for i in range(3000)]
        results = list(ex.extract_many(Note, texts, concurrency=concurrency, max_cost=budget))
    spent, one = _spent(results)
    assert spent <= budget * 1.1 + one, (spent, one)
    assert any(r.skipped for r in results)  # the budget, not the inputs, ended the run
    assert spent >= budget / 2  # and it was spent, not left unused


def test_max_cost_prices_the_model_the_calls_use(tmp_path: Path) -> None:
    dear = ModelSpec("dear/model", prompt_price_per_token=50e-6, completion_price_per_token=200e-6)
    budget = 0.5
    with TestServer(models=[ModelSpec("mistralai/mistral-small-2603"), dear]) as server:
        ex = make(server, tmp_path)
        results = list(ex.extract_many(Note, [f"note {i}" for i in range(500)], concurrency=64, max_cost=budget,
                                       model="dear/model"))  # fmt: skip
    spent, one = _spent(results)
    assert spent <= budget * 1.1 + one, (spent, one)
    assert {r.result.model for r in results if r.result} == {"dear/model"}
    assert sum(r.ok for r in results) >= 10  # the budget was spent, not left unused


def test_a_budget_that_cannot_be_priced_is_refused_before_any_request(server: TestServer, tmp_path: Path) -> None:
    ex = make(server, tmp_path, model="unlisted/model")
    with pytest.raises(ConfigurationError) as info:
        list(ex.extract_many(Note, ["a", "b"], max_cost=0.05))
    assert "max_cost cannot be kept: the prices of unlisted/model are not known" in str(info.value)
    assert server.chat_requests == []


# --- runaway answers: a ceiling on every request -------------------------------------------------------


class Lines(BaseModel):
    items: list[Note]


def test_a_request_without_max_tokens_carries_a_ceiling(tmp_path: Path) -> None:
    small = ModelSpec("small/model", max_completion_tokens=3_000)
    big = ModelSpec("big/model", max_completion_tokens=65_536)
    with TestServer(models=[ModelSpec("mistralai/mistral-small-2603"), small, big]) as server:
        ex = make(server, tmp_path)
        ex.extract(Note, "short text")
        ex.extract(Lines, "word " * 8_000, model="big/model")
        ex.extract(Lines, "word " * 8_000, model="small/model")
        ex.extract(Lines, "word " * 8_000)
        ex.extract(Note, "short text", max_tokens=77)
        sent = [r.json["max_tokens"] for r in server.chat_requests]
    assert sent[0] == 1_024  # a record of fixed shape: about its schema's size, at least 1,024
    assert 2 * 10_000 + 1_024 <= sent[1] <= 2 * 10_100 + 1_024  # a list: twice the text's tokens (and the
    # instructions') and 1,024
    assert sent[2] == 3_000  # never past the model's completion limit
    assert sent[3] == 16_384  # nor past 16,384 when the model's entry gives no limit
    assert sent[4] == 77  # the caller's own wins


def test_a_cut_off_answer_is_retried_once_with_twice_the_ceiling(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.truncated('{"title": "cu'), Reply(content=json.dumps({"title": "whole"})))
    assert make(server, tmp_path).extract(Note, "text").title == "whole"
    assert [r.json["max_tokens"] for r in server.chat_requests] == [1_024, 2_048]


# --- a fallback is remembered ---------------------------------------------------------------------------


def test_an_auto_mode_fallback_is_remembered_so_ten_inputs_cost_eleven_requests(
    server: TestServer, tmp_path: Path
) -> None:
    def handler(request: RecordedRequest) -> Reply | None:
        if request.mode == "json_schema":
            return Reply.status_error(400, "response_format json_schema is not supported by this model")
        return None

    server.handler = handler
    ex = make(server, tmp_path, mode="auto")
    for i in range(10):
        result = ex.extract_result(Note, f"note {i}")
        assert result.mode == "tools"
    chats = server.chat_requests
    assert len(chats) == 11 and [r.mode for r in chats[:2]] == ["json_schema", "tools"]
    again = make(server, tmp_path, mode="auto")  # a new extractor (a new run): the disk cache remembers
    assert again.extract_result(Note, "note").mode == "tools"
    assert len(server.chat_requests) == 12


# --- evidence for every source -------------------------------------------------------------------------


class Invoice(BaseModel):
    number: str
    seller: str
    total: float


def test_evidence_covers_a_list_source_and_flags_what_is_not_in_it(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"number": "KDS-2024-0117", "seller": "Invented GmbH", "total": 1234.5}))
    source = ["Notes from the clerk:", "Invoice KDS-2024-0117 from Kestrel Design, total due 1.234,50 EUR"]
    result = make(server, tmp_path).extract_result(Invoice, source, evidence=True)
    assert [e.path for e in result.unsupported] == ["$.seller"]
    found = {e.path: e for e in result.evidence or []}
    assert found["$.total"].found and found["$.total"].where == "$[1]"


def test_evidence_inside_a_longer_token_is_partial(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"number": "2024-0117", "seller": "Kestrel Design", "total": 10}))
    result = make(server, tmp_path).extract_result(Invoice, "KDS-2024-0117 Kestrel Design 10.00", evidence=True)
    found = {e.path: e for e in result.evidence or []}
    assert found["$.number"].method == "partial" and found["$.seller"].method == "exact"


def test_evidence_on_images_only_is_refused_before_any_request(server: TestServer, tmp_path: Path) -> None:
    png = Path(__file__).resolve().parents[1] / "examples" / "receipts" / "cafe-luna.png"
    with pytest.raises(ConfigurationError) as info:
        make(server, tmp_path).extract(Invoice, [Image.from_path(png)], evidence=True)
    assert str(info.value).startswith("evidence=True needs text to look values up in: this source is only images")
    assert server.chat_requests == []
