"""Provider batch APIs: the same requests at half the price, submitted, polled and collected against the
test server's Files and Batches endpoints, resumable after a kill, failed lines re-asked synchronously."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from test_cli_accounting import env, records, run

from extractor import Extractor, RetryPolicy
from extractor.documents.plan import RequestEstimate
from extractor.runs.budget import Prices, input_cost
from extractor.runs.provider import BATCH_DISCOUNT, BatchState, ProviderBatch, state_path_for
from extractor.runs.runner import as_items
from extractor.sources import estimate_tokens
from extractor.testing import RecordedRequest, Reply, TestServer

TEXTS = [f"Order {n}: {n} boxes for customer C{n}" for n in range(1, 6)]


class Order(BaseModel):
    customer: str
    boxes: int


def make(server: TestServer, tmp_path: Path) -> Extractor:
    return Extractor(
        base_url=server.base_url, mode="json_schema", cache_dir=tmp_path / "cache", retry=RetryPolicy(attempts=2)
    )


def source_text(request: RecordedRequest) -> str:
    """The text a request extracts from (its first user message)."""
    return str(next(m["content"] for m in request.json["messages"] if m["role"] == "user"))


def answer(request: RecordedRequest) -> Reply:
    """The true record of the order a request is about."""
    n = int(source_text(request).split(":")[0].split()[-1])
    return Reply.json({"customer": f"C{n}", "boxes": n})


def batch_command(verb: str, out: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """`extractor batch VERB OUT` in a real subprocess, with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "extractor", "batch", verb, str(out)],
        env=env(folder),
        capture_output=True,
        text=True,
        timeout=60,
    )


def batch_posts(server: TestServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.path.rstrip("/").endswith("/batches")]


def uploads(server: TestServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.path.rstrip("/").endswith("/files")]


def test_submit_poll_collect_at_half_the_price(server: TestServer, tmp_path: Path) -> None:
    server.handler = answer
    server.batch_polls = 2

    async def main() -> tuple[list[Any], list[dict[str, Any]], float]:
        ex = make(server, tmp_path)
        job = await ex.asubmit_batch(Order, TEXTS, state=tmp_path / "state.json")
        statuses = [e.status for e in await job.refresh()]
        assert statuses == ["in_progress"]
        await job.wait(poll_interval=0.01)
        results = [r async for r in job.results()]
        bodies = [await ex.arequests(Order, text) for text in TEXTS]
        sync = await ex.aextract_result(Order, TEXTS[0])  # the same request synchronously, for its price
        await ex.aclose()
        return results, [b[0] for b in bodies], sync.usage.cost

    results, bodies, sync_cost = asyncio.run(main())
    assert sorted((r.id, r.value) for r in results) == [
        (str(n - 1), Order(customer=f"C{n}", boxes=n)) for n in range(1, 6)
    ]
    assert all(r.meta["path"] == "batch" and r.meta["batch_id"] == "batch_1" for r in results)
    lines = server.batch_lines
    assert [line.json for line in lines] == bodies  # exactly what the synchronous path sends
    assert len(server.chat_requests) == 1  # only the price comparison went synchronously
    first = next(r for r in results if r.id == "0")
    assert first.result is not None
    assert math.isclose(first.usage.cost, sync_cost * BATCH_DISCOUNT)
    state = BatchState.load(tmp_path / "state.json")
    assert state is not None and [e.collected for e in state.batches] == [True]
    assert list(state.batches[0].requests) == ["0", "1", "2", "3", "4"]


def test_an_invalid_batch_answer_is_re_asked_synchronously(server: TestServer, tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def handler(request: RecordedRequest) -> Reply:
        text = source_text(request)
        seen[text] = seen.get(text, 0) + 1
        if text.startswith("Order 3") and seen[text] == 1:
            return Reply.json({"customer": "C3", "boxes": "many"})  # the batch's answer: invalid
        return answer(request)

    server.handler = handler
    server.batch_polls = 0
    ex = make(server, tmp_path)
    job = ex.submit_batch(Order, TEXTS, state=tmp_path / "state.json")
    job.status()
    results = {r.id: r for r in job.collect()}
    third = results["2"]
    assert third.value == Order(customer="C3", boxes=3)
    assert third.result is not None and len(third.result.attempts) == 2  # the batch's answer, then one re-ask
    assert third.meta["path"] == "batch"
    assert len(server.chat_requests) == 1  # the re-ask only
    reask = server.chat_requests[0].json["messages"]
    assert reask[-2]["content"] == '{"customer": "C3", "boxes": "many"}' and "$.boxes" in reask[-1]["content"]
    ex.close()


def test_failed_and_expired_lines_are_extracted_synchronously(server: TestServer, tmp_path: Path) -> None:
    server.handler = answer
    server.batch_polls = 0
    server.expire_batches = 2  # two lines answered, the other three expired
    ex = make(server, tmp_path)
    job = ex.submit_batch(Order, TEXTS, state=tmp_path / "state.json")
    job.status()
    results = {r.id: r for r in job.collect()}
    assert {i: (r.value, r.meta["path"]) for i, r in results.items()} == {
        "0": (Order(customer="C1", boxes=1), "batch"),
        "1": (Order(customer="C2", boxes=2), "batch"),
        "2": (Order(customer="C3", boxes=3), "sync"),
        "3": (Order(customer="C4", boxes=4), "sync"),
        "4": (Order(customer="C5", boxes=5), "sync"),
    }
    assert results["2"].meta["batch_failure"].startswith("batch_expired")
    assert len(server.chat_requests) == 3
    ex.close()


def test_a_large_run_is_split_into_several_batches(server: TestServer, tmp_path: Path) -> None:
    server.handler = answer
    server.batch_polls = 0

    async def main() -> list[Any]:
        ex = make(server, tmp_path)
        job = ProviderBatch(ex, Order, tmp_path / "state.json", max_lines=2)
        await job.submit(as_items(TEXTS))
        await job.wait(poll_interval=0.01)
        out = [r async for r in job.results(as_items(TEXTS))]
        await ex.aclose()
        return out

    results = asyncio.run(main())
    assert sorted(r.id for r in results) == ["0", "1", "2", "3", "4"]  # exactly one result per input
    assert len(batch_posts(server)) == 3 and len(uploads(server)) == 3
    assert server.chat_requests == []


def test_a_batch_created_just_before_a_crash_is_found_not_created_again(server: TestServer, tmp_path: Path) -> None:
    server.handler = answer
    server.batch_polls = 0
    path = tmp_path / "state.json"
    ex = make(server, tmp_path)
    ex.submit_batch(Order, TEXTS, state=path)
    saved = json.loads(path.read_text())
    saved["batches"][0]["batch_id"] = None  # as if killed after POST /batches, before the state was saved
    saved["batches"][0]["status"] = "planned"
    path.write_text(json.dumps(saved))
    job = ex.submit_batch(Order, TEXTS, state=path)
    assert len(batch_posts(server)) == 1 and len(uploads(server)) == 1
    assert job.state is not None and job.state.batches[0].batch_id == "batch_1"
    job.status()
    assert len(job.collect()) == 5
    ex.close()


# --- the command line --------------------------------------------------------------------------------


def _inputs(folder: Path) -> Path:
    folder.mkdir()
    for n, text in enumerate(TEXTS, 1):
        (folder / f"order-{n}.txt").write_text(text)
    schema = folder.parent / "order.json"
    schema.write_text(json.dumps(Order.model_json_schema()))
    return schema


def test_the_cli_runs_through_the_batch_api_one_line_per_input(server: TestServer, tmp_path: Path) -> None:
    schema = _inputs(tmp_path / "in")
    server.handler = answer
    server.batch_polls = 1
    out = tmp_path / "out.jsonl"
    args = [str(tmp_path / "in"), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
    done = run([*args, "--mode", "json_schema", "--batch-api", "--batch-poll", "0.05"], tmp_path)
    assert done.returncode == 0, done.stderr
    written = records(out)
    assert sorted(written) == sorted(str(tmp_path / "in" / f"order-{n}.txt") for n in range(1, 6))
    for record in written.values():
        assert record["meta"]["path"] == "batch" and record["meta"]["batch_id"] == "batch_1"
        n = int(Path(record["id"]).stem.split("-")[1])
        assert record["data"] == {"customer": f"C{n}", "boxes": n}
    assert "5 inputs in 1 batch(es) at 50% of the price" in done.stderr
    assert server.chat_requests == []
    again = run([*args, "--mode", "json_schema", "--batch-api", "--batch-poll", "0.05"], tmp_path)
    assert again.returncode == 0 and len(batch_posts(server)) == 1  # nothing submitted twice
    status = batch_command("status", out, tmp_path)
    assert status.returncode == 0 and "batch 1: batch_1 completed, 5+0 of 5 answered" in status.stdout


def test_a_run_killed_between_submit_and_collect_collects_without_resubmitting(
    server: TestServer, tmp_path: Path
) -> None:
    schema = _inputs(tmp_path / "in")
    server.handler = answer
    server.batch_polls = 10_000  # running until the test lets it end
    out = tmp_path / "out.jsonl"
    args = [str(tmp_path / "in"), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
    args += ["--mode", "json_schema", "--batch-api", "--batch-poll", "0.05"]
    process = subprocess.Popen(
        [sys.executable, "-m", "extractor", "run", *args], cwd=tmp_path, env=env(tmp_path), stderr=subprocess.PIPE
    )
    state_file = state_path_for(out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batches = json.loads(state_file.read_text())["batches"] if state_file.exists() else []
        if batches and batches[0]["batch_id"]:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # polling
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not out.exists() or out.read_text() == ""
    server.batch_polls = 0
    done = run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(records(out)) == 5
    assert len(batch_posts(server)) == 1 and len(uploads(server)) == 1 and server.chat_requests == []


def test_no_wait_submits_and_exits_75_until_the_batches_end(server: TestServer, tmp_path: Path) -> None:
    schema = _inputs(tmp_path / "in")
    server.handler = answer
    server.batch_polls = 10_000
    out = tmp_path / "out.jsonl"
    args = [str(tmp_path / "in"), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
    args += ["--mode", "json_schema", "--batch-api", "--no-batch-wait"]
    first = run(args, tmp_path)
    assert first.returncode == 75, first.stderr
    assert "still running: run the same command again" in first.stderr
    server.batch_polls = 0
    second = run(args, tmp_path)
    assert second.returncode == 0 and len(records(out)) == 5 and len(batch_posts(server)) == 1


def test_an_endpoint_without_a_batch_api_is_a_clear_usage_error(server: TestServer, tmp_path: Path) -> None:
    schema = _inputs(tmp_path / "in")
    server.batches = False  # as on OpenRouter
    out = tmp_path / "out.jsonl"
    args = [str(tmp_path / "in"), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
    done = run([*args, "--batch-api"], tmp_path)
    assert done.returncode == 2
    assert "does not offer a batch API" in done.stderr and "run without --batch-api" in done.stderr
    assert server.chat_requests == []


def test_the_dry_run_shows_the_batch_price(tmp_path: Path) -> None:
    schema = _inputs(tmp_path / "in")
    args = [str(tmp_path / "in"), "--schema", str(schema), "--dry-run"]
    plain = run(args, tmp_path)
    batch = run([*args, "--batch-api"], tmp_path)
    full = float(plain.stdout.split("~$")[-1].split()[0])
    half, sync = re.search(r"~\$([\d.]+) at the batch price \(~\$([\d.]+) synchronously\)", batch.stdout).groups()  # type: ignore[union-attr]
    assert float(sync) == full
    assert abs(float(half) - full * BATCH_DISCOUNT) <= 1e-4  # each printed to 4 decimals
    assert "at the batch price" in batch.stdout


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)


def _line_cost(body: dict[str, Any], info: Any) -> float:
    """What a batch line is admitted at: its first answer at the batch price and one synchronous re-ask, the
    prompt with all the body sends."""
    request = [RequestEstimate(estimate_tokens(json.dumps(body, ensure_ascii=False)), None)]
    prices = Prices(info.prompt_price, info.completion_price)
    return input_cost(request, Prices(prices.prompt, prices.completion, BATCH_DISCOUNT)) + input_cost(request, prices)


def test_max_cost_admits_lines_at_the_batch_price_and_leaves_the_rest_not_started(
    server: TestServer, tmp_path: Path
) -> None:
    server.handler = answer
    server.batch_polls = 0

    async def main() -> tuple[list[Any], BatchState | None, float]:
        ex = make(server, tmp_path)
        info = await ex.model_info()
        line = _line_cost((await ex.arequests(Order, TEXTS[1]))[0], info)
        probe = (await ex.aextract_result(Order, TEXTS[0])).usage.cost  # what the first input costs synchronously
        server.reset()
        server.handler = answer
        server.batch_polls = 0
        budget = probe + 2.5 * line
        job = ProviderBatch(ex, Order, tmp_path / "state.json", max_cost=budget)
        items = as_items(TEXTS)
        await job.submit(items)
        await job.wait(poll_interval=0.01)
        out = [r async for r in job.results(items)]
        await ex.aclose()
        return out, job.state, budget

    results, state, budget = asyncio.run(main())
    assert state is not None
    # the first input went synchronously, to learn what the provider bills; two lines fit what was left
    assert state.sync == ["0"] and [list(e.requests) for e in state.batches] == [["1", "2"]]
    assert state.not_started == ["3", "4"]
    assert {r.id: r.meta["path"] for r in results} == {"0": "sync", "1": "batch", "2": "batch"}
    assert sum(r.usage.cost for r in results) <= budget and state.spent == pytest.approx(
        sum(r.usage.cost for r in results)
    )
    assert len(server.chat_requests) == 1 and len(server.batch_lines) == 2


def test_inputs_left_out_by_the_budget_are_sent_by_a_later_run(server: TestServer, tmp_path: Path) -> None:
    # (a run that waits goes on by itself: once its batches are collected, what they did not spend of the
    # budget admits what was left out, in a new batch)
    server.handler = answer
    server.batch_polls = 0

    async def main() -> tuple[list[str], list[str], BatchState | None]:
        ex = make(server, tmp_path)
        info = await ex.model_info()
        line = _line_cost((await ex.arequests(Order, TEXTS[1]))[0], info)
        probe = (await ex.aextract_result(Order, TEXTS[0])).usage.cost
        items = as_items(TEXTS)
        first = ProviderBatch(ex, Order, tmp_path / "state.json", max_cost=probe + 2.5 * line)
        got = [r.id async for r in first.run(items, wait=False)]  # one pass: what is answered is handed out
        later = ProviderBatch(ex, Order, tmp_path / "state.json")  # run again, without --max-cost
        again = [r.id async for r in later.run(items, poll=0.01)]
        await ex.aclose()
        return got, again, later.state

    got, again, state = asyncio.run(main())
    assert sorted(got) == ["0", "1", "2"]
    assert sorted(again) == ["3", "4"]  # planned into a new batch by the later run, never left behind
    assert (
        state is not None
        and state.not_started == []
        and [list(e.requests) for e in state.batches]
        == [
            ["1", "2"],
            ["3", "4"],
        ]
    )
    assert sorted(state.done) == ["0", "1", "2", "3", "4"]


def test_batch_cancel_cancels_what_is_running(server: TestServer, tmp_path: Path) -> None:
    schema = _inputs(tmp_path / "in")
    server.handler = answer
    server.batch_polls = 10_000
    server.answered_before_cancel = 2
    out = tmp_path / "out.jsonl"
    args = [str(tmp_path / "in"), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
    args += ["--mode", "json_schema", "--batch-api", "--no-batch-wait"]
    assert run(args, tmp_path).returncode == 75
    cancel = batch_command("cancel", out, tmp_path)
    assert cancel.returncode == 0 and "batch 1: batch_1 cancelling" in cancel.stdout
    done = run(args, tmp_path)  # collects: two answered by the batch, three synchronously
    assert done.returncode == 0, done.stderr
    paths = sorted(r["meta"]["path"] for r in records(out).values())
    assert paths == ["batch", "batch", "sync", "sync", "sync"]
    assert len(server.chat_requests) == 3
