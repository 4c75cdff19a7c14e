"""Provider batches you can trust: a lost answer never makes a second batch, an output line proves whose
answer it is, a malformed error line is that line's error, a run killed or failed at any step resumes, what
the budget left out is sent later, results are handed out once, and one budget holds on every path."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, field_validator
from test_cli_accounting import env, records, run

from extractor import APIConnectionError, Extractor, RetryPolicy
from extractor.runs.provider import BatchState, ProviderBatch
from extractor.runs.runner import BatchItem
from extractor.testing import ModelSpec, RecordedRequest, Reply, TestServer

MODEL = "mistralai/mistral-small-2603"


class Key(BaseModel):
    key: str


def echo(request: RecordedRequest) -> Reply:
    """Each input's answer names the input: `{"key": <its text>}`."""
    text = next(m["content"] for m in request.json["messages"] if m["role"] == "user")
    return Reply.json({"key": text})


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    retry = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", retry=retry, **kwargs)


def items(n: int, prefix: str = "in") -> list[BatchItem]:
    return [BatchItem(id=f"{prefix}__{i}", source=f"{prefix}__{i}") for i in range(n)]


def batch_posts(server: TestServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.path.rstrip("/").endswith("/batches")]


def server_batches(server: TestServer) -> list[dict[str, Any]]:
    """Every batch the server holds (its list endpoint, newest first)."""
    import httpx

    return list(httpx.get(f"{server.base_url}/batches", params={"limit": 100}).json()["data"])


def collect(job: ProviderBatch, given: list[BatchItem]) -> list[Any]:
    """Submit, wait, collect (the library's three steps)."""

    async def main() -> list[Any]:
        try:
            await job.submit(given)
            await job.wait(poll_interval=0.01)
            return [r async for r in job.results(given)]
        finally:
            await job.extractor.aclose()

    return asyncio.run(main())


def run_all(job: ProviderBatch, given: list[BatchItem]) -> list[Any]:
    """`ProviderBatch.run`: until every batch has ended and nothing more fits the budget."""

    async def main() -> list[Any]:
        try:
            return [r async for r in job.run(given, poll=0.01)]
        finally:
            await job.extractor.aclose()

    return asyncio.run(main())


# --- 1. a lost answer to POST /batches ----------------------------------------------------------------------


@pytest.mark.parametrize("lost", [1, 2, 1.0])
def test_a_lost_answer_to_a_batch_create_never_makes_a_second_batch(
    server: TestServer, tmp_path: Path, lost: float
) -> None:
    server.handler = echo
    server.batch_polls = 0
    server.lose_batch_creates = lost  # a 500 after creating it, then a dropped connection (1.0: every time)
    given = items(40)
    job = ProviderBatch(make(server, tmp_path), Key, tmp_path / "state.json", max_lines=20)
    results = collect(job, given)
    assert sorted(r.id for r in results) == sorted(i.id for i in given)
    assert all(r.meta["path"] == "batch" and r.value == Key(key=r.id) for r in results)
    assert len(server_batches(server)) == 2  # one batch per part, never a second for the same lines
    assert len(batch_posts(server)) == 2  # the lost creates were looked up, not sent again
    assert sorted(line.custom_id or "" for line in server.batch_lines) == sorted(i.id for i in given)
    assert server.chat_requests == []


def test_the_cli_with_every_create_answer_lost_finishes_with_one_batch(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 0
    server.lose_batch_creates = 1.0
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"c-{i}", "text": f"c-{i}"}) + "\n" for i in range(40)))
    schema = tmp_path / "key.json"
    schema.write_text(json.dumps(Key.model_json_schema()))
    out = tmp_path / "out.jsonl"
    args = [str(source), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
    done = run([*args, "--mode", "json_schema", "--batch-api", "--batch-poll", "0.01"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(records(out)) == 40 and len(server_batches(server)) == 1


# --- 2. and 3. every output line proves whose answer it is ---------------------------------------------------


def test_a_custom_id_answered_twice_with_another_inputs_answer_is_not_used(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 0

    def duplicate(output: list[dict[str, Any]], errors: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        by_id = {line["custom_id"]: line for line in output}
        forged = {**by_id["dup__1"], "custom_id": "dup__0"}  # a second line for dup__0 with dup__1's answer
        return [*output, forged], errors

    server.edit_batch_files = duplicate
    given = items(4, "dup")
    results = {r.id: r for r in collect(ProviderBatch(make(server, tmp_path), Key, tmp_path / "s.json"), given)}
    assert results["dup__0"].value == Key(key="dup__0")  # never dup__1's answer
    assert results["dup__0"].meta["path"] == "sync"
    assert "answered 2 times with different answers" in results["dup__0"].meta["batch_failure"]
    assert all(results[f"dup__{i}"].meta["path"] == "batch" for i in (1, 2, 3))
    assert len(server.chat_requests) == 1


def test_malformed_output_and_error_lines_fail_those_lines_only(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 0

    def break_some(output: list[dict[str, Any]], errors: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        kept = [line for line in output if line["custom_id"] not in ("bad__0", "bad__1", "bad__2")]
        broken: list[Any] = [
            {"custom_id": "bad__0", "response": {"status_code": 500, "body": {"error": "boom"}}},
            {"custom_id": "bad__1", "response": {"status_code": 503, "body": "overloaded"}, "error": None},
            {"custom_id": "bad__2", "error": "a string error"},
            "{not json",
            ["a list"],
            {"custom_id": "someone-else", "response": None},
        ]
        return kept, [*errors, *broken]

    server.edit_batch_files = break_some
    given = items(40, "bad")
    results = {r.id: r for r in collect(ProviderBatch(make(server, tmp_path), Key, tmp_path / "s.json"), given)}
    assert sorted(results) == sorted(i.id for i in given) and all(r.value == Key(key=r.id) for r in results.values())
    assert results["bad__0"].meta["batch_failure"] == "HTTP 500: boom"
    assert results["bad__1"].meta["batch_failure"] == "HTTP 503: overloaded"
    assert results["bad__2"].meta["batch_failure"] == "a string error"
    assert sum(r.meta["path"] == "sync" for r in results.values()) == 3 == len(server.chat_requests)


# --- 4. a run stopped after planning, during upload, or by a refused upload ------------------------------


def test_an_upload_whose_connection_dropped_is_uploaded_again_by_the_next_run(
    server: TestServer, tmp_path: Path
) -> None:
    server.handler = echo
    server.batch_polls = 0
    server.upload_faults = [None, None, None]  # stored, then dropped, three times: the run gives up
    given = items(30)
    state = tmp_path / "state.json"
    with pytest.raises(APIConnectionError, match="closed the connection without an answer"):
        collect(ProviderBatch(make(server, tmp_path), Key, state), given)
    saved = BatchState.load(state)
    assert saved is not None and saved.batches[0].upload_started and saved.batches[0].file_id is None
    results = collect(ProviderBatch(make(server, tmp_path), Key, state), given)
    assert sorted(r.id for r in results) == sorted(i.id for i in given)
    assert len(server_batches(server)) == 1 and len(server.batch_lines) == 30


def test_a_refused_upload_sends_its_inputs_synchronously(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 0
    server.upload_faults = [400]
    given = items(6)
    results = collect(ProviderBatch(make(server, tmp_path), Key, tmp_path / "s.json"), given)
    assert sorted(r.id for r in results) == sorted(i.id for i in given)
    assert {r.meta["path"] for r in results} == {"sync"} and len(server.chat_requests) == 6
    assert server_batches(server) == []


def test_a_batch_planned_but_not_written_is_planned_again(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 0
    given = items(10)
    state = tmp_path / "state.json"
    job = ProviderBatch(make(server, tmp_path), Key, state)
    # killed after the plan was saved, before the file was written: nothing of it reached the provider
    job.state = BatchState(token="t0", model=MODEL, base_url=server.base_url)
    from extractor.runs.provider import BatchEntry

    job.state.batches.append(BatchEntry({i.id: "stale" for i in given}, part=1))
    job._save()
    results = collect(ProviderBatch(make(server, tmp_path), Key, state), given)
    assert sorted(r.id for r in results) == sorted(i.id for i in given)
    assert all(r.meta["path"] == "batch" for r in results)
    assert len(server_batches(server)) == 1


# --- 6. results() is idempotent ----------------------------------------------------------------------------


def test_results_called_twice_hands_out_nothing_twice(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 0
    long_text = "\n\n".join(f"Paragraph {i}: in__0 was seen again." for i in range(300))
    given = [*items(3), BatchItem(id="long", source=long_text)]
    ex = make(server, tmp_path, max_chars=2_000)
    job = ex.submit_batch(Key, given, state=tmp_path / "s.json")
    job.status()
    first = job.collect()
    sent = len(server.chat_requests)
    again = job.collect()
    assert sorted(r.id for r in first) == ["in__0", "in__1", "in__2", "long"]
    assert again == [] and len(server.chat_requests) == sent  # nothing extracted, nor collected, again
    later = ProviderBatch(ex, Key, tmp_path / "s.json")  # a later run, from the state file alone
    later.items = given
    assert later.collect() == [] and len(server.chat_requests) == sent


# --- 7. and 8. one budget --------------------------------------------------------------------------------


class Box(BaseModel):
    key: str

    @field_validator("key")
    @classmethod
    def _no_draft(cls, value: str) -> str:
        if value.startswith("draft "):
            raise ValueError("a draft")
        return value


def reasking(every: int) -> Any:
    """Answers every `every`-th input's first answer invalid (a re-ask follows), the rest right."""
    seen: Counter[str] = Counter()

    def handler(request: RecordedRequest) -> Reply:
        text = next(m["content"] for m in request.json["messages"] if m["role"] == "user")
        seen[text] += 1
        n = int(text.rsplit("__", 1)[-1])
        if n % every == 0 and seen[text] == 1:
            return Reply.json({"key": "draft " + text})
        return Reply.json({"key": text})

    return handler


def spent_in(results: list[Any]) -> float:
    return sum(r.usage.cost for r in results)


@pytest.mark.parametrize("billed", [1.0, 5.0])
def test_the_budget_holds_on_the_synchronous_path(tmp_path: Path, billed: float) -> None:
    spec = ModelSpec(MODEL, prompt_price_per_token=1e-5, completion_price_per_token=1e-5, billed_factor=billed)
    with TestServer(models=[spec]) as server:
        server.handler = reasking(3)
        ex = make(server, tmp_path)
        results = list(ex.extract_many(Box, [f"s__{i}" for i in range(1_500)], concurrency=256, max_cost=0.5))
    done = [r for r in results if not r.skipped]
    assert len(results) == 1_500 and done and len(done) < 1_500
    costs = [r.usage.cost for r in done]
    assert spent_in(done) <= 0.5 * 1.1 + max(costs)


@pytest.mark.parametrize("billed", [1.0, 5.0])
def test_the_budget_holds_through_provider_batches_with_synchronous_inputs(tmp_path: Path, billed: float) -> None:
    spec = ModelSpec(MODEL, prompt_price_per_token=1e-5, completion_price_per_token=1e-5, billed_factor=billed)
    with TestServer(models=[spec]) as server:
        server.handler = reasking(3)
        server.batch_polls = 0
        long_texts = [BatchItem(id=f"long__{i}", source=f"long__{i} " * 800) for i in range(3)]
        given = [*items(400, "b"), *long_texts]
        ex = make(server, tmp_path, max_chars=1_500)
        job = ProviderBatch(ex, Box, tmp_path / "s.json", max_cost=0.4, concurrency=256)
        results = run_all(job, given)
        state = job.state
    assert state is not None
    done = [r for r in results if not r.skipped]
    assert done and state.not_started  # the budget left some out
    costs = [r.usage.cost for r in done]
    assert spent_in(done) <= 0.4 * 1.1 + max(costs)
    assert state.spent == pytest.approx(spent_in(done))


def test_no_batch_wait_then_a_later_run_keep_one_budget(server: TestServer, tmp_path: Path) -> None:
    server.handler = echo
    server.batch_polls = 10_000  # running until the later run
    source = tmp_path / "in.jsonl"
    lines = [{"id": f"n__{i}", "text": f"n__{i}"} for i in range(60)]
    long = {"id": f"long__{0}", "text": "\n\n".join(f"Paragraph {i}: notes." for i in range(400))}
    source.write_text("".join(json.dumps(line) + "\n" for line in [*lines, long]))
    schema = tmp_path / "key.json"
    schema.write_text(json.dumps(Key.model_json_schema()))
    out = tmp_path / "out.jsonl"
    args = [str(source), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url, "--max-cost", "0.004"]
    args += ["--mode", "json_schema", "--batch-api", "--no-batch-wait", "--max-chars", "1500"]
    first = run(args, tmp_path)
    assert first.returncode == 75, first.stderr
    assert "waiting in batch batch_1 (submitted at " in first.stderr
    server.batch_polls = 0
    second = run(args, tmp_path)
    assert second.returncode in (0, 1), second.stderr
    written = records(out)
    costs = [r["meta"]["cost"] for r in written.values()]
    assert sum(costs) <= 0.004 * 1.1 + max(costs)


# --- killed at random points, creates lost half of the time ------------------------------------------------


def test_killed_at_random_points_every_input_ends_with_one_line_paid_once(tmp_path: Path) -> None:
    rng = random.Random(20)
    source = tmp_path / "in.jsonl"
    count = 1_000
    source.write_text("".join(json.dumps({"id": f"k__{i}", "text": f"k__{i}"}) + "\n" for i in range(count)))
    schema = tmp_path / "key.json"
    schema.write_text(json.dumps(Key.model_json_schema()))
    kills = 0
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        number = 0
        while kills < 20 and number < 40:  # several runs, each killed at random points of plan, upload, create, ...
            number += 1
            server.fault_seed = number  # each run its own draws of lost creates
            server.reset()
            server.handler = echo
            server.batch_polls = 4
            server.lose_batch_creates = 0.5  # the answer to POST /batches lost after creating, half the time
            out = tmp_path / f"out-{number}.jsonl"
            args = [str(source), "--schema", str(schema), "-o", str(out), "--base-url", server.base_url]
            args += ["--mode", "json_schema", "--batch-api", "--batch-poll", "0.1", "--max-retries", "0"]
            command = [sys.executable, "-m", "extractor", "run", *args]
            for _ in range(8):
                process = subprocess.Popen(
                    command, cwd=tmp_path, env=env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                time.sleep(rng.uniform(0.3, 1.8))
                if process.poll() is not None:
                    break  # it finished before the kill
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
                kills += 1
            last = run(args, tmp_path)
            assert last.returncode == 0, last.stderr
            lines = [json.loads(line) for line in out.read_text().splitlines()]
            assert sorted(line["id"] for line in lines) == sorted(f"k__{i}" for i in range(count))  # one line each
            batched = [line["custom_id"] for b in server_batches(server) for line in _lines_of(server, b)]
            assert len(batched) == len(set(batched))  # no input in two batches
            paid = Counter(line.custom_id for line in server.batch_lines)
            paid.update(str(json.loads(echo(r).content or "{}")["key"]) for r in server.chat_requests)
            assert sorted(paid) == sorted(f"k__{i}" for i in range(count))
            assert all(n == 1 for n in paid.values()), [k for k, n in paid.items() if n != 1]  # none paid twice
    assert kills >= 20


def _lines_of(server: TestServer, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The input lines of a batch the server holds."""
    import httpx

    raw = httpx.get(f"{server.base_url}/files/{batch['input_file_id']}/content").content
    return [json.loads(line) for line in raw.splitlines() if line.strip()]
