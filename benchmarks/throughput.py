"""Extraction throughput against the project's test server, beside instructor and a bare aiohttp loop.

The test server (`python -m extractor.testing`) runs in its own process and answers every request
after a fixed latency with a schema-valid instance. Three clients do the same work, N requests
with C in flight:

- `extractor`: `Extractor.aextract(Invoice, text)` in json_schema mode;
- `instructor`: `instructor.from_openai(AsyncOpenAI(...), mode=JSON_SCHEMA)` with `response_model=Invoice`
  (installed only for this benchmark: `pip install instructor`; skipped when absent);
- `bare aiohttp`: the very request `extractor` sends (its body and headers, recorded once) POSTed
  with `aiohttp`, the answer validated with `Invoice.model_validate_json`, nothing else: the
  yardstick of what this machine allows.

    python benchmarks/throughput.py                   # 0 ms and 100 ms latency
    python benchmarks/throughput.py --latency 0.1 --requests 1280 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from _server import start_server
from pydantic import BaseModel

from extractor import Extractor
from extractor.testing import TestServer

MODEL = "mistralai/mistral-small-2603"
TEXT = "Invoice INV-2024-0042 from ACME GmbH, issued 2024-03-01, total 169.58 EUR, due 2024-03-31."


CLIENTS = ("bare aiohttp", "extractor", "instructor")


class Invoice(BaseModel):
    number: str
    seller: str
    issued: str
    total: float
    currency: str
    due: str | None = None


def the_request() -> tuple[bytes, dict[str, str]]:
    """The body and headers `extractor` sends for one extraction (the strict json_schema request, its
    instructions and token ceiling), recorded from a test server of this process."""
    with TestServer() as server:
        with Extractor(model=MODEL, base_url=server.base_url, api_key="bench", mode="json_schema") as ex:
            ex.extract(Invoice, TEXT)
        sent = server.chat_requests[0]
    headers = {k: v for k, v in sent.headers.items() if k.lower() in ("content-type", "authorization", "accept")}
    return sent.body, headers


#: the client's CPU time per request (ms), by client: the figure a busy machine moves least
CPU_MS: dict[str, list[float]] = {}


async def run_batch(
    requests: int, concurrency: int, one: Callable[[int], Awaitable[Any]], name: str | None = None
) -> float:
    """Requests per second for `requests` calls of `one`, `concurrency` at a time; with `name`, the
    client process's CPU time per request is kept in `CPU_MS` (the server runs in its own process)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(i)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if name is not None:
        CPU_MS.setdefault(name, []).append((time.process_time() - cpu) * 1000 / requests)
    return requests / (time.perf_counter() - started)


async def measure(name: str, base_url: str, requests: int, concurrency: int, repeats: int) -> list[float] | None:
    figures: list[float] = []
    if name == "extractor":
        ex = Extractor(model=MODEL, base_url=base_url, api_key="bench", mode="json_schema", max_connections=concurrency)

        async def one(i: int) -> Any:
            return await ex.aextract(Invoice, TEXT)

        await run_batch(concurrency, concurrency, one)  # warm up: connections, schema cache
        for _ in range(repeats):
            figures.append(await run_batch(requests, concurrency, one, name))
        await ex.aclose()
    elif name == "instructor":
        try:
            import instructor
            import openai
        except ImportError:
            return None
        oai = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
        client = instructor.from_openai(oai, mode=instructor.Mode.JSON_SCHEMA)

        async def one(i: int) -> Any:
            return await client.chat.completions.create(
                model=MODEL, response_model=Invoice, messages=[{"role": "user", "content": TEXT}], max_retries=0
            )

        await run_batch(concurrency, concurrency, one)
        for _ in range(repeats):
            figures.append(await run_batch(requests, concurrency, one, name))
        await oai.close()
    else:
        body, headers = the_request()
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> Any:
                async with session.post(f"{base_url}/chat/completions", data=body, headers=headers) as response:
                    data = await response.json()
                return Invoice.model_validate_json(data["choices"][0]["message"]["content"])

            await run_batch(concurrency, concurrency, one)
            for _ in range(repeats):
                figures.append(await run_batch(requests, concurrency, one, name))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, action="append", help="server latency in seconds (repeatable)")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per run (default: 640 at 100 ms, 2000 at 0)"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    latencies = args.latency or [0.0, 0.1]
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "concurrency": args.concurrency,
        "runs": [],
    }
    for latency in latencies:
        requests = args.requests or (2000 if latency == 0 else max(640, int(args.concurrency / latency * 2)))
        proc, base_url = start_server(latency)
        try:
            row: dict[str, Any] = {"latency": latency, "requests": requests}
            # the clients take turns, one run each, so that a change in the machine's load falls on all
            runs: dict[str, list[float] | None] = {name: [] for name in CLIENTS}
            CPU_MS.clear()
            for _ in range(args.repeats):
                for name in CLIENTS:
                    if runs[name] is not None:
                        figures = asyncio.run(measure(name, base_url, requests, args.concurrency, 1))
                        runs[name] = None if figures is None else [*(runs[name] or []), *figures]
            for name, got in runs.items():
                row[name] = None if not got else {"best": max(got), "median": statistics.median(got)}
                if got:
                    row[name]["cpu_ms"] = statistics.median(CPU_MS[name])
            report["runs"].append(row)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}, {args.concurrency} in flight")
    for row in report["runs"]:
        latency = row["latency"]
        ideal = f" (ideal {args.concurrency / latency:.0f}/s)" if latency else ""
        print(f"\nserver latency {latency * 1000:.0f} ms, {row['requests']} requests{ideal}:")
        for name in CLIENTS:
            fig = row[name]
            shown = "not installed"
            if fig is not None:
                shown = f"{fig['best']:8.0f} req/s best, {fig['median']:8.0f} median, {fig['cpu_ms']:.2f} ms CPU/req"
            print(f"  {name:13s} {shown}")
        ours, bare, inst = row["extractor"], row["bare aiohttp"], row["instructor"]
        print(f"  extractor / bare aiohttp = {ours['median'] / bare['median']:.2f}")
        if inst:
            print(f"  extractor / instructor   = {ours['median'] / inst['median']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
