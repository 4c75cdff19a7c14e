"""Long lists and long documents: every row of a long statement exactly once, in order, whatever the model's
completion limit or context; rows printed twice stay two rows; every request fits the model; budgets count
every part. The model is the test server's `RowReader`: it answers with the rows its request holds and
stops at a completion limit, as a real provider does."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from pydantic import BaseModel
from test_cli_accounting import run

from extractor import DocumentSplit, Extractor, OutputTruncatedError, RequestSent, RetryPolicy
from extractor.documents.plan import split_preamble
from extractor.runs.budget import Budget
from extractor.testing import ModelSpec, RecordedRequest, Reply, RowReader, TestServer, document_text

MODEL = "mistralai/mistral-small-2603"
ROW = r"^(?P<date>\d{4}-\d\d-\d\d) (?P<text>[A-Z][A-Z ]+?[A-Z]) (?P<amount>-?\d+\.\d\d)$"


class Transaction(BaseModel):
    date: str
    text: str
    amount: float


class Statement(BaseModel):
    account: str | None = None
    transactions: list[Transaction] = []


def statement(rows: int, twice: int, seed: int = 3) -> tuple[str, list[dict[str, Any]]]:
    """A bank statement of `rows` rows, `twice` of them printed twice in a row (two equal coffees on one day),
    and the rows as a reader reads them."""
    rng = random.Random(seed)
    shops = ["COFFEE SHOP", "BAKERY", "BOOK STORE", "TRAIN TICKET", "GROCERY MARKET", "PHARMACY", "CINEMA"]
    lines: list[dict[str, Any]] = []
    doubled = set(rng.sample(range(rows - twice), twice)) if twice else set()
    while len(lines) < rows:
        day = 1 + len(lines) // 100
        row = {
            "date": f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}",
            "text": rng.choice(shops),
            "amount": -round(rng.uniform(1, 300), 2),
        }
        lines.append(row)
        if len(lines) - 1 in doubled and len(lines) < rows:
            lines.append(dict(row))
    head = "ACME Bank\nStatement of account DE44 5001 0517 5407 3249 31\n\nDate Text Amount\n"
    body = "\n".join(f"{r['date']} {r['text']} {r['amount']:.2f}" for r in lines)
    return head + body + "\n\nClosing balance 1,234.56\n", lines


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("model", MODEL)
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", retry=RetryPolicy(attempts=2), **kwargs)


def reader(limit: int | None = None) -> RowReader:
    return RowReader(ROW, convert={"amount": float}, fields={"account": r"account (DE[\d ]+\d)"},
                     max_completion_tokens=limit)  # fmt: skip


def user_text(request: RecordedRequest) -> str:
    content = request.json["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n\n".join(p["text"] for p in content if p.get("type") == "text")


def answer_tokens(rows: list[dict[str, Any]]) -> int:
    """The tokens of the whole list as one answer, as the test server counts them (4 characters a token)."""
    return math.ceil(len(json.dumps({"account": None, "transactions": rows})) / 4)


@pytest.fixture
def reserved(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every reservation a budget grants, in order (what an input was let start with)."""
    granted: list[float] = []
    real_reserve = Budget.reserve

    def spy(self: Budget, key: int, estimate: float) -> bool:
        ok = real_reserve(self, key, estimate)
        if ok:
            granted.append(estimate)
        return ok

    monkeypatch.setattr(Budget, "reserve", spy)
    return granted


def test_a_statement_longer_than_one_answer_comes_back_whole_and_in_order(tmp_path: Path) -> None:
    text, rows = statement(3_000, twice=20)
    minimum = math.ceil(answer_tokens(rows) / 8_192)
    assert minimum >= 5  # the list is several answers long
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=8_192)]) as server:
        server.handler = model = reader(8_192)
        result = make(server, tmp_path).extract_result(Statement, text)
        requests = server.chat_requests
    assert [t.model_dump() for t in result.value.transactions] == rows  # every row once, in order
    assert len(rows) == 3_000 and sum(a == b for a, b in itertools.pairwise(rows)) >= 20
    assert result.value.account == "DE44 5001 0517 5407 3249 31"
    assert model.cut == 0  # predicted, then learned from the first answer: no answer was cut off
    assert len(requests) == len(result.chunks) <= minimum + 2
    assert all(r.json["max_tokens"] <= 8_192 for r in requests)
    # every item's chunk, in document order; the chunks tile the text without overlapping
    chunks = result.chunks
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    by_chunk = [result.provenance[f"$.transactions[{i}]"] for i in range(len(rows))]
    assert by_chunk == sorted(by_chunk) and set(by_chunk) == set(range(len(chunks)))


def test_a_cut_answer_is_split_and_asked_again_until_every_answer_fits(tmp_path: Path) -> None:
    # a model whose /models entry says nothing of its limit: the first answer is cut at 2,000 tokens
    text, rows = statement(1_000, twice=5)
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.handler = model = reader(2_000)
        result = make(server, tmp_path).extract_result(Statement, text)
    assert [t.model_dump() for t in result.value.transactions] == rows
    assert model.cut >= 1  # cut off: split, never failed
    assert len(result.attempts) == model.requests
    assert sum(a.problem == "cut off at max_tokens" for a in result.attempts) == model.cut
    assert result.usage.completion_tokens > answer_tokens(rows)  # the cut answers are counted, not hidden


def statement_pdf(path: Path, text: str, rows_a_page: int) -> Path:
    lines = text.splitlines()
    doc = FPDF()
    doc.set_font("helvetica", size=8)
    for start in range(0, len(lines), rows_a_page):
        doc.add_page()
        for line in lines[start : start + rows_a_page]:
            doc.cell(0, 3.5, line, new_x="LMARGIN", new_y="NEXT")
    doc.output(str(path))
    return path


def test_a_long_statement_pdf_comes_back_whole_split_between_pages(tmp_path: Path) -> None:
    text, rows = statement(3_000, twice=20, seed=5)
    path = statement_pdf(tmp_path / "statement.pdf", text, rows_a_page=60)
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=8_192)]) as server:
        server.handler = model = reader(8_192)
        result = make(server, tmp_path).extract_result(Statement, path)
    assert [t.model_dump() for t in result.value.transactions] == rows
    assert model.cut == 0
    assert len(result.chunks) <= math.ceil(answer_tokens(rows) / 8_192) + 2
    pages = [c.pages for c in result.chunks]
    assert all(a[-1] < b[0] for a, b in itertools.pairwise(pages))  # cut between pages


def test_rows_printed_twice_survive_a_split_by_max_chars(server: TestServer, tmp_path: Path) -> None:
    text, rows = statement(310, twice=12, seed=11)
    doubled = sum(a == b for a, b in itertools.pairwise(rows))
    assert doubled >= 10
    server.handler = reader()
    result = make(server, tmp_path, max_chars=3_000).extract_result(Statement, text)
    assert len(result.chunks) >= 4
    assert len(result.value.transactions) == 310
    assert [t.model_dump() for t in result.value.transactions] == rows  # equal rows are two rows


def test_a_small_context_model_gets_no_request_larger_than_its_context(tmp_path: Path) -> None:
    words = ["delivery", "note", "goods", "received", "order", "pallet", "warehouse", "signed"]
    rng = random.Random(1)
    prose = "\n\n".join(" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(400))
    text = "Invoice INV-7\n\n" + prose + "\n\nTotal due: 99.50 EUR\n"

    class Invoice(BaseModel):
        number: str | None = None
        total: float | None = None

    def handler(request: RecordedRequest) -> Reply:
        own = document_text(request)
        number = "INV-7" if "Invoice INV-7" in own else None
        return Reply.json({"number": number, "total": 99.5 if "Total due" in own else None, "part_note": None})

    with TestServer(models=[ModelSpec(MODEL, context_length=4_096)]) as server:
        server.handler = handler
        result = make(server, tmp_path).extract_result(Invoice, text)
        requests = server.chat_requests
        server.handler = reader()
        with_lists = make(server, tmp_path).extract_result(Statement, text)
        listed = server.chat_requests[len(requests) :]
    assert result.value == Invoice(number="INV-7", total=99.5)
    assert len(requests) > 1
    for request in [*requests, *listed]:  # the server counts 4 bytes of the request a token
        assert math.ceil(len(request.body) / 4) + request.json["max_tokens"] <= 4_096
    assert with_lists.value.transactions == [] and len(listed) > 1


def test_a_budget_reserves_every_chunk_of_a_document(server: TestServer, tmp_path: Path, reserved: list[float]) -> None:
    text, _rows = statement(250, twice=0, seed=2)
    server.handler = reader()
    ex = make(server, tmp_path, max_chars=1_500, max_retries=0)
    [done] = list(ex.extract_many(Statement, [text], max_cost=10.0))
    assert done.ok and len(done.result.chunks) >= 5  # type: ignore[union-attr]
    assert len(server.chat_requests) == len(done.result.chunks)  # type: ignore[union-attr]
    assert reserved and reserved[0] >= done.usage.cost  # what its 5+ requests cost was held before any was sent


def test_one_row_too_long_for_any_answer_fails_naming_it(tmp_path: Path) -> None:
    long_row = "2024-01-01 " + "ABC " * 400 + "DEF 1.00"
    text = "\n".join([*(f"2024-01-0{i} BAKERY 2.00" for i in range(1, 6)), long_row])
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=256)]) as server:
        server.handler = reader(256)
        where = rf"characters {text.index(long_row)}-{len(text)} \(page 1\) of text"
        with pytest.raises(OutputTruncatedError, match=where + r": cut off at 256 tokens after 0 whole list item"):
            make(server, tmp_path).extract(Statement, text)


def test_a_model_that_runs_on_is_not_split_into_more_requests(tmp_path: Path) -> None:
    # a weak model repeating itself to the token limit: no whole item comes, so splitting would only pay again
    text, _ = statement(50, twice=0)
    runaway = '{"account": null, "transactions": [{"date": "2024-01-02", "text": "' + "COFFEE " * 2_000
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=16_384)]) as server:
        server.handler = lambda request: Reply.truncated(runaway[: 4 * request.json["max_tokens"]])
        with pytest.raises(OutputTruncatedError, match="after 0 whole list item"):
            make(server, tmp_path).extract(Statement, text)
        assert [r.json["max_tokens"] for r in server.chat_requests] == [4_096, 8_192]  # one try with more room


def test_a_model_repeating_whole_items_is_not_split_either(tmp_path: Path) -> None:
    # whole items, again and again: far more than the text's few lines would make
    text = "Call from ACME about 3 boxes, and from Initech about a refund.\nThanks, Ana."
    item = '{"date": "2024-01-02", "text": "COFFEE", "amount": -3.5}, '
    runaway = '{"account": null, "transactions": [' + item * 5_000
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=16_384)]) as server:
        server.handler = lambda request: Reply.truncated(runaway[: 4 * request.json["max_tokens"]])
        with pytest.raises(OutputTruncatedError, match="a model that runs on"):
            make(server, tmp_path).extract(Statement, text)
        assert len(server.chat_requests) == 2  # the answer, one try with more room: not split


def test_a_fixed_shape_record_cut_at_the_limit_fails_at_once(tmp_path: Path) -> None:
    class Note(BaseModel):
        summary: str

    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=1_000)]) as server:
        server.queue(Reply.truncated('{"summary": "' + "x" * 3_990))
        with pytest.raises(OutputTruncatedError, match="has no list to split") as info:
            make(server, tmp_path).extract(Note, "a note")
        assert len(server.chat_requests) == 1  # no second request cut off at the same limit
    assert info.value.at_limit and info.value.limit == 1_000


def test_a_table_continued_across_pages_keeps_its_header_row(tmp_path: Path) -> None:
    text, rows = statement(600, twice=3, seed=8)
    path = statement_pdf(tmp_path / "statement.pdf", text, rows_a_page=50)
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=2_048)]) as server:
        server.handler = reader(2_048)
        result = make(server, tmp_path).extract_result(Statement, path)
        requests = server.chat_requests
    assert [t.model_dump() for t in result.value.transactions] == rows
    assert len(requests) >= 3
    carried = [split_preamble(user_text(r))[0] for r in requests]
    assert "Repeated from earlier" not in carried[0]
    for preamble in carried[1:]:  # the table's columns, and no line of the title block to read again
        assert preamble.endswith("\nTable columns: Date Text Amount\n]")
        assert "ACME Bank" not in preamble


def test_the_hooks_hear_every_new_plan_of_a_split_document(tmp_path: Path) -> None:
    text, _rows = statement(2_000, twice=0, seed=4)
    events: list[Any] = []
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=4_096)]) as server:
        server.handler = model = reader(4_096)
        result = make(server, tmp_path, hooks=[events.append]).extract_result(Statement, text)
    assert model.cut == 0, [(e.chunk, e.problem) for e in events if hasattr(e, "problem") and e.problem]
    splits = [e for e in events if isinstance(e, DocumentSplit)]
    assert len(splits) >= 2  # the plan, then the rest planned again by the first part's answer
    assert splits[-1].chunks == tuple((c.start, c.end) for c in result.chunks)
    assert splits[0].chunks[0] == splits[-1].chunks[0]  # the first part, sent alone, stays as it was
    chunks = {e.chunk for e in events if isinstance(e, RequestSent)}
    assert chunks == set(range(len(result.chunks)))  # each request tells which part it is


def test_stream_items_of_a_list_longer_than_one_answer_yields_every_row_once(tmp_path: Path) -> None:
    text, rows = statement(1_500, twice=10, seed=9)
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=4_096)]) as server:
        server.handler = reader(4_096)
        streamed = list(make(server, tmp_path).stream_items(Transaction, text))
    assert [t.model_dump() for t in streamed] == rows


def test_the_dry_run_plans_the_parts_of_a_long_list(server: TestServer, tmp_path: Path) -> None:
    text, rows = statement(3_000, twice=20)
    (tmp_path / "statement.txt").write_text(text)
    (tmp_path / "statement.json").write_text(json.dumps(Statement.model_json_schema()))
    common = ["statement.txt", "--schema", "statement.json", "--mode", "json_schema"]
    dry = run([*common, "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    found = re.search(
        r"^statement\.txt\t.*, (\d+) chunk\(s\) \(answers ~(\d+) tokens\), ~\d+ tokens$", dry.stdout, re.M
    )
    assert found is not None, dry.stdout
    planned, answers = int(found[1]), int(found[2])
    # the default model's entry gives no completion limit: answers are planned within 16,384 tokens
    assert answers >= answer_tokens(rows) and planned >= math.ceil(answer_tokens(rows) / 16_384)
    assert f"\n1 inputs (0 would fail to load), {planned} requests, " in dry.stdout
    server.handler = reader()
    done = run([*common, "-o", "out.jsonl", "--base-url", server.base_url], tmp_path)
    assert done.returncode == 0, done.stderr
    [record] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert record["data"]["transactions"] == rows
    # the prediction errs high; the run learns the real density from its first answer: never more requests
    assert 2 <= record["meta"]["chunks"] <= planned
    assert len(server.chat_requests) == record["meta"]["chunks"]


def test_a_ray_worker_asks_the_shared_budget_for_every_part(server: TestServer, tmp_path: Path) -> None:
    from extractor.runs.ray import _extract_rows, _Job

    text, _ = statement(250, twice=0, seed=2)
    server.handler = reader()
    asked: list[Any] = []

    class Call:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        def remote(self, *args: Any, **kwargs: Any) -> Any:
            asked.append((args, kwargs))
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_result(self.answer)
            return future

    class Limits:  # the actor's side, as a worker sees it
        acquire = Call(("go", 1, ""))
        release = Call(None)
        renew = Call(None)

    job = _Job(
        schema=Statement,
        limits=Limits(),
        model=MODEL,
        base_url=server.base_url,
        concurrency=1,
        prices=(1e-6, 1e-6),
        overhead=100,
        attempts=1,
        paced=False,
        tokens_paced=False,
        renew_every=60.0,
        extractor_options={"cache_dir": tmp_path / "cache"},
        options={"mode": "json_schema", "max_chars": 1_500},
    )
    [record] = asyncio.run(_extract_rows([{"id": "s-1", "source": "s-1", "text": text}], job))
    assert record["error"] is None
    chunks = json.loads(record["meta"])["chunks"]
    requests = asked[0][0][0]
    assert chunks >= 5 and len(requests) == chunks == len(server.chat_requests)
    assert all(prompt > 100 for prompt, _ in requests)


def test_a_provider_batch_reserves_a_long_documents_every_part(
    server: TestServer, tmp_path: Path, reserved: list[float]
) -> None:
    text, _ = statement(250, twice=0, seed=2)
    server.handler = reader()
    ex = make(server, tmp_path, max_chars=1_500, max_retries=0)
    job = ex.submit_batch(Statement, [text], state=tmp_path / "state.json", max_cost=10.0)
    [done] = job.collect()
    assert done.ok and done.meta["path"] == "sync"  # a document in several parts goes synchronously
    assert len(done.result.chunks) >= 5  # type: ignore[union-attr]
    assert reserved and reserved[0] >= done.usage.cost  # its every part was held before any was sent
