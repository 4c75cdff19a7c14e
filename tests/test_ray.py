"""`extractor.runs.ray` and `extractor run --ray` on a local two-CPU Ray cluster, against the loopback test server.

One rate limit, one concurrency limit and one budget for every worker (held by one actor); exactly one
record per input; one bad PDF failing alone; a killed driver resumed with no id sent twice.
Skipped as a whole where Ray Data is not installed (`pip install extractor[ray]`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install extractor[ray])", exc_type=ImportError)

import ray
from pdf_samples import text_pdf

from extractor.client.transport import RetryPolicy
from extractor.runs.ray import SharedLimits, done_ids, extract_dataset, shared_limits, write_jsonl
from extractor.testing import ModelSpec, RecordedRequest, Reply, TestServer

# Ray Data's own context warns of its deprecated settings when it is copied: not this project's concern
# (with `pytest -n`, this module's tests run in one worker, on one cluster: conftest.py)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

MODEL = "test/model"
NOTE = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
FAST_RETRY = {"retry": RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray cluster of two CPUs for the module (its start takes a few seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def api(cluster: None) -> Iterator[TestServer]:
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        yield server


def _text(request: RecordedRequest) -> str:
    content = request.json["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def echo(request: RecordedRequest) -> Reply:
    return Reply.json({"title": _text(request)})


def run(server: TestServer, rows: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    options.setdefault("mode", "json_schema")
    # the workers' model lists in a folder of this run's: test servers reuse ports
    options.setdefault("extractor_options", {**FAST_RETRY, "cache_dir": tempfile.mkdtemp(prefix="extractor-ray-")})
    ds = ray.data.from_items(rows)
    return list(extract_dataset(ds, NOTE, base_url=server.base_url, model=MODEL, **options).iter_rows())


def test_every_input_gets_exactly_one_record_across_workers(api: TestServer) -> None:
    api.handler = echo
    rows = [{"id": f"n-{i}", "text": f"note {i}"} for i in range(2000)]
    limits = shared_limits(32)
    records = run(api, rows, limits=limits, batch_size=100)
    assert len(records) == 2000
    by_id = {r["id"]: r for r in records}
    assert len(by_id) == 2000
    assert all(r["error"] is None and not r["skipped"] for r in records)
    assert all(json.loads(by_id[f"n-{i}"]["data"]) == {"title": f"note {i}"} for i in range(2000))
    assert set(records[0]) == {"id", "source", "data", "meta", "error", "skipped"}
    assert json.loads(records[0]["meta"])["attempts"] == 1
    assert len(api.chat_requests) == 2000
    stats = ray.get(limits.stats.remote())
    assert stats["started"] == stats["finished"] == 2000
    assert stats["peak"] <= 32
    assert stats["in_flight"] == 0


def test_one_rate_limit_for_all_workers(api: TestServer) -> None:
    rows = [{"id": f"r-{i}", "text": f"note {i}"} for i in range(150)]
    per_second = 20  # 1200 a minute, over every worker together
    limits = shared_limits(32, requests_per_minute=60 * per_second)
    records = run(api, rows, limits=limits, batch_size=10)
    assert len(records) == 150 and all(r["error"] is None for r in records)
    times = sorted(r.received for r in api.chat_requests)
    assert len(times) == 150
    stats = ray.get(limits.stats.remote())
    assert stats["requests"] == 150  # every request of every worker went through the one limit
    # the most requests it let go within any one second: grants are 1/20 s apart, so 21 fit in a window that
    # starts on one (when they reach the server depends on how busy the machine is, not on the limit)
    assert stats["busiest_second"] <= per_second + 1
    # no worker sent before its grant: the run cannot be shorter (a slow machine only lengthens it)
    assert times[-1] - times[0] >= (150 - 1) / per_second - 1.0


def test_a_429_cuts_the_shared_concurrency(api: TestServer) -> None:
    answered = 0

    def handler(request: RecordedRequest) -> Reply:
        nonlocal answered
        answered += 1
        if answered <= 6:
            return Reply.status_error(429, "slow down", retry_after=0)
        return echo(request)

    api.handler = handler
    limits = shared_limits(16)
    records = run(api, [{"id": f"q-{i}", "text": f"note {i}"} for i in range(40)], limits=limits)
    assert len(records) == 40 and all(r["error"] is None for r in records)
    stats = ray.get(limits.stats.remote())
    assert stats["rate_limited"] >= 1 and stats["cuts"] >= 1


def test_one_budget_for_all_workers(cluster: None) -> None:
    pricey = ModelSpec(MODEL, prompt_price_per_token=1e-4, completion_price_per_token=1e-4)
    with TestServer(models=[pricey]) as server:
        rows = [{"id": f"b-{i}", "text": f"note {i}"} for i in range(60)]
        records = run(server, rows, max_cost=0.1, concurrency=8, batch_size=10)
        assert len(records) == 60
        started = [r for r in records if not r["skipped"]]
        skipped = [r for r in records if r["skipped"]]
        costs = [json.loads(r["meta"])["cost"] for r in started]
        assert started and skipped
        assert all(r["error"] is None for r in started)
        assert {json.loads(r["error"])["type"] for r in skipped} == {"BudgetExceededError"}
        assert sum(costs) <= 0.1 + max(costs)
        assert len(server.chat_requests) == len(started)  # the rest were never sent


def test_a_rejected_key_stops_the_run(cluster: None) -> None:
    with TestServer(models=[ModelSpec(MODEL)], api_key="right") as server:
        ds = ray.data.from_items([{"id": f"k-{i}", "text": f"note {i}"} for i in range(30)])
        results = extract_dataset(
            ds, NOTE, base_url=server.base_url, model=MODEL, api_key="wrong", mode="json_schema", concurrency=2
        )
        records = list(results.iter_rows())
    assert len(records) == 30
    assert all(r["skipped"] and json.loads(r["error"])["type"] == "RunStoppedError" for r in records)
    assert len(server.chat_requests) <= 2  # those in flight when the first 401 came


def test_a_bad_pdf_is_one_error_record(api: TestServer, tmp_path: Path) -> None:
    good = [text_pdf(tmp_path / f"good-{i}.pdf", f"Invoice number {i}") for i in range(3)]
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog>> garbage, no xref, no trailer")
    rows: list[dict[str, Any]] = [{"path": str(p)} for p in [*good, bad]]
    rows.append({"bytes": good[0].read_bytes(), "name": "from-bytes.pdf"})
    records = {r["id"]: r for r in run(api, rows)}
    assert set(records) == {*(str(p) for p in [*good, bad]), "from-bytes.pdf"}
    error = json.loads(records[str(bad)]["error"])
    assert error["type"] == "DocumentError" and not records[str(bad)]["skipped"]
    assert all(records[k]["error"] is None for k in records if k != str(bad))
    assert len(api.chat_requests) == 4


def test_write_jsonl_resumes_by_id(api: TestServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": "w-0", "source": "w-0", "data": {"title": "earlier"}, "meta": {}}) + "\n")
    rows = [{"id": f"w-{i}", "text": f"note {i}"} for i in range(20)]
    ds = ray.data.from_items(rows)

    def once() -> Any:
        results = extract_dataset(
            ds, NOTE, base_url=api.base_url, model=MODEL, mode="json_schema", skip_ids=done_ids(out)
        )
        return write_jsonl(results, out)

    counts = once()
    assert (counts.ok, counts.failed) == (19, 0)
    assert len(api.chat_requests) == 19
    again = once()
    assert (again.ok, again.failed) == (0, 0)
    assert len(api.chat_requests) == 19  # nothing sent for the ids written
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(r["id"] for r in rows)
    assert lines[0]["data"] == {"title": "earlier"}


def _cli(inputs: Path, schema: Path, out: Path, server: TestServer, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "extractor", "run", str(inputs), "--schema", str(schema), "-o", str(out)]
    command += ["--base-url", server.base_url, "--model", MODEL, "--mode", "json_schema", "--no-cache"]
    command += ["--ray-address", ray.get_runtime_context().gcs_address, *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTRACTOR_")}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _quiet(server: TestServer, *, still: float = 1.5, limit: float = 60.0) -> None:
    """Wait until no request has come for `still` seconds (the killed run's workers have stopped)."""
    seen, since, end = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < end:
        count = len(server.chat_requests)
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= still:
            return
        time.sleep(0.1)


def test_cli_on_ray_resumes_after_the_driver_is_killed(api: TestServer, tmp_path: Path) -> None:
    total = 200
    inputs = tmp_path / "notes.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"c-{i}", "text": f"note {i}"}) + "\n" for i in range(total)))
    schema = tmp_path / "note.json"
    schema.write_text(json.dumps(NOTE))
    out = tmp_path / "out.jsonl"

    first = _cli(inputs, schema, out, api, "--rpm", "1500", "--concurrency", "8")
    deadline = time.monotonic() + 180
    while len(_lines(out)) < 30 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    first.send_signal(signal.SIGKILL)
    first.communicate()
    _quiet(api)
    written = done_ids(out)
    assert 0 < len(written) < total

    api.reset()  # count the second run's requests alone
    second = _cli(inputs, schema, out, api, "--rpm", "1500", "--concurrency", "8")
    _, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr
    ids = [json.loads(line)["id"] for line in _lines(out)]
    assert len(ids) == total and set(ids) == {f"c-{i}" for i in range(total)}
    assert _lines(out.with_name("out.errors.jsonl")) == []
    sent = {"c-" + _text(r).split()[-1] for r in api.chat_requests}
    assert not sent & written  # ids already written were not sent again
    assert len(api.chat_requests) == total - len(written)


def test_a_dead_workers_lease_is_given_back() -> None:
    async def scenario() -> dict[str, Any]:
        limits = SharedLimits(1, max_cost=1.0, lease_timeout=0.05, wait=0.5)
        verdict, lease, _ = await limits.acquire(100, (1e-3, 1e-3), 1)
        assert verdict == "go"
        assert (await limits.acquire(100, (1e-3, 1e-3), 1))[0] == "wait"  # the one place is taken
        await asyncio.sleep(0.1)  # its worker died: no renewal
        again, second, _ = await limits.acquire(100, (1e-3, 1e-3), 1)
        assert again == "go" and second != lease
        await limits.release(lease, ok=True, cost=0.01)  # a late answer of the first: counted, no place freed
        await limits.release(second, ok=True, cost=0.01)
        return await limits.stats()

    stats = asyncio.run(scenario())
    assert stats["expired"] == 1 and stats["in_flight"] == 0
    assert stats["spent"] == pytest.approx(0.02)


def test_an_input_waiting_for_a_place_when_the_run_stops_is_not_started() -> None:
    async def scenario() -> tuple[str, str, dict[str, Any]]:
        limits = SharedLimits(1, wait=30.0)
        verdict, lease, _ = await limits.acquire(100)
        assert verdict == "go"
        waiting = asyncio.create_task(limits.acquire(100))  # the one place is taken: it waits for it
        await asyncio.sleep(0.05)
        assert not waiting.done()
        stopped = await limits.release(lease, ok=False, fault="at_once", fault_message="401: key refused")
        assert stopped == "401: key refused"
        verdict, _, message = await waiting  # woken by the place given back, after the run stopped
        return verdict, message, await limits.stats()

    verdict, message, stats = asyncio.run(scenario())
    assert (verdict, message) == ("stop", "401: key refused")
    assert stats["started"] == 1 and stats["in_flight"] == 0


def _raylet() -> int | None:
    """The process id of this test cluster's raylet (the parent of its workers), if Ray says it."""
    node = getattr(getattr(ray, "_private", None), "worker", None)
    node = getattr(node, "_global_node", None)
    processes = getattr(node, "all_processes", {}).get("raylet") or []
    return processes[0].process.pid if processes else None


def _extraction_workers(raylet: int) -> list[int]:
    """The process ids of this cluster's workers (children of its raylet) running an extraction task now."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if b"_extract_batch" in title and parent == str(raylet):
            found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_a_dead_workers_inputs_are_done_again_once(api: TestServer) -> None:
    raylet = _raylet()
    if raylet is None:
        pytest.skip("cannot find this cluster's raylet process")
    killed: list[int] = []
    answered = 0

    def handler(request: RecordedRequest) -> Reply:
        nonlocal answered
        answered += 1
        if answered == 40 and not killed:  # mid-run: kill the workers extracting now
            killed.extend(_extraction_workers(raylet))
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        return echo(request)

    api.handler = handler
    limits = shared_limits(16, lease_timeout=3.0)
    rows = [{"id": f"d-{i}", "text": f"note {i}"} for i in range(200)]
    records = run(api, rows, limits=limits, batch_size=50)
    assert killed
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in rows)
    assert all(r["error"] is None for r in records)
    assert len(api.chat_requests) > 200  # the dead workers' inputs were sent again
    # the places the dead workers held come back once their leases go unrenewed for lease_timeout (3 s), which
    # may be after the run ended
    deadline = time.monotonic() + 60
    while (stats := ray.get(limits.stats.remote()))["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stats["in_flight"] == 0


def test_one_budget_holds_when_the_provider_bills_five_times_its_list_price(cluster: None) -> None:
    pricey = ModelSpec(MODEL, prompt_price_per_token=1e-4, completion_price_per_token=1e-4, billed_factor=5.0)
    with TestServer(models=[pricey]) as server:
        rows = [{"id": f"f-{i}", "text": f"note {i}"} for i in range(60)]
        records = run(server, rows, max_cost=0.1, concurrency=8, batch_size=10)
        started = [r for r in records if not r["skipped"]]
        costs = [json.loads(r["meta"])["cost"] for r in started]
        assert started and len(started) < 60
        assert sum(costs) <= 0.1 * 1.1 + max(costs)  # reservations grew by what the answers billed


def test_a_row_whose_id_was_seen_is_never_paid_for_twice(api: TestServer) -> None:
    api.handler = echo
    rows = [
        {"id": "d", "text": "first"},
        {"id": "d", "text": "another"},
        {"id": "e", "text": "same"},
        {"id": "e", "text": "same"},
    ]
    records = run(api, rows, concurrency=1, batch_size=1)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_id.setdefault(record["id"], []).append(record)
    d_ok = [r for r in by_id["d"] if r["error"] is None]
    d_bad = [json.loads(r["error"]) for r in by_id["d"] if r["error"] is not None]
    assert len(d_ok) == 1 and [e["type"] for e in d_bad] == ["InputError"]
    assert 'duplicate id "d" with another content' in d_bad[0]["message"]
    # the same id and content again is the same input, started again (as a task Ray retries gives its rows
    # again); write_jsonl keeps one line of it
    assert [r["error"] for r in by_id["e"]] == [None, None]
    assert len(api.chat_requests) == 3
