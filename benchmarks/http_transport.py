"""Requests per second through the HTTP client layer: httpx, httpx on aiohttp, and raw aiohttp.

    python benchmarks/http_transport.py                  # latency 0 ms and 100 ms, the three main clients
    python benchmarks/http_transport.py --knobs          # also the configuration variants (slower)
    python benchmarks/http_transport.py --latency 0.1 --requests 1280 --concurrency 128
    python benchmarks/http_transport.py --json           # one JSON object on stdout, progress on stderr

A minimal OpenAI-compatible server (aiohttp.web, `POST /v1/chat/completions`) runs in a separate,
spawned process so that it does not share the GIL with the clients. It reads the JSON body, sleeps
`latency` seconds and answers with a small chat completion. Each client sends the same ~1 KB chat
request (model, messages, response_format) with `concurrency` requests in flight (a fixed pool of
worker tasks) and parses the JSON answer:

- `httpx`          httpx.AsyncClient with its default transport (httpcore), limits = concurrency
- `httpx+aiohttp`  httpx.AsyncClient over httpx_aiohttp.AiohttpTransport, limits = concurrency
- `aiohttp`        raw aiohttp.ClientSession with TCPConnector(limit=concurrency), the yardstick

Every client is built once, warmed up with one full round of `concurrency` concurrent requests (so the
pool holds its connections), then timed over `--repeat` batches; best and median requests/s are
reported. Per variant the table also shows: per-request latency (p50/p99 over the timed batches); the
client's CPU time per request (steadier than requests/s on a shared machine); the time to build the
client object; the server process's CPU use; and, counted by the server, the connections opened during
the timed batches (0 means keep-alive works), the connections used, and the peak number of requests in
flight (equal to concurrency means the pool limit really allows it).

At 0 ms latency the figure is the client's CPU ceiling (on a 2-core machine one core each for client
and server; check the server CPU column: near 100 % means the server, not the client, was the limit).
At 100 ms it shows how close each client gets to the ideal concurrency / latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any, Protocol

import aiohttp
import httpx
import httpx_aiohttp
from aiohttp import web

PATH = "/v1/chat/completions"
ANSWER = '{"answer": "ok"}'
PACKAGES = ("httpx", "httpcore", "h11", "anyio", "httpx-aiohttp", "aiohttp", "yarl", "multidict")

# --------------------------------------------------------------------------------------------------
# Server (runs in the child process)
# --------------------------------------------------------------------------------------------------


@dataclass
class _ServerStats:
    requests: int = 0
    inflight: int = 0
    peak_inflight: int = 0
    peers: set[Any] = field(default_factory=set)  # connections used since the last snapshot
    seen: set[Any] = field(default_factory=set)  # every connection ever used
    new_connections: int = 0

    def enter(self, peer: Any) -> None:
        self.requests += 1
        self.inflight += 1
        self.peak_inflight = max(self.peak_inflight, self.inflight)
        self.peers.add(peer)
        if peer not in self.seen:
            self.seen.add(peer)
            self.new_connections += 1

    def take(self) -> dict[str, Any]:
        """Counters since the last call, and the process's CPU time so far; then reset."""
        snapshot = {
            "requests": self.requests,
            "peak_inflight": self.peak_inflight,
            "connections": len(self.peers),
            "new_connections": self.new_connections,
            "cpu_s": time.process_time(),
        }
        self.requests = self.peak_inflight = self.new_connections = 0
        self.peers = set()
        return snapshot


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "gen-1",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


async def _serve_async(conn: Connection, latency: float) -> None:
    stats = _ServerStats()

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        stats.enter(peer)
        try:
            await asyncio.sleep(latency)
        finally:
            stats.inflight -= 1
        return web.json_response(_completion(str(body.get("model", ""))))

    app = web.Application()
    app.router.add_post(PATH, chat)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    conn.send(runner.addresses[0][1])

    loop = asyncio.get_running_loop()
    while True:  # commands from the parent: "stats" or "stop" (EOF: the parent is gone)
        try:
            command = await loop.run_in_executor(None, conn.recv)
        except EOFError:
            break
        if command != "stats":
            break
        conn.send(stats.take())
    await runner.cleanup()


def _serve(conn: Connection, latency: float) -> None:
    asyncio.run(_serve_async(conn, latency))


class Server:
    """The chat-completions server in a spawned process; `with Server(latency) as server: server.url`."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency), daemon=True, name="bench-server")
        self._child = child
        self.url = ""

    def __enter__(self) -> Server:
        self._process.start()
        self._child.close()
        try:
            if not self._conn.poll(60):
                raise TimeoutError("no port within 60 s")
            port = self._conn.recv()
        except (EOFError, TimeoutError) as exc:
            self._process.kill()
            raise RuntimeError(f"benchmark server did not start (exit code {self._process.exitcode})") from exc
        self.url = f"http://127.0.0.1:{port}{PATH}"
        return self

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        result: dict[str, Any] = self._conn.recv()
        return result

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()


# --------------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------------


class Client(Protocol):
    async def chat(self, body: dict[str, Any]) -> Any: ...

    async def aclose(self) -> None: ...


class HttpxClient:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url

    async def chat(self, body: dict[str, Any]) -> Any:
        response = await self._client.post(self._url, json=body)
        response.raise_for_status()
        return response.json()

    async def aclose(self) -> None:
        await self._client.aclose()


class FreshHttpxClient:
    """Anti-pattern for comparison: a new httpx.AsyncClient for every request."""

    def __init__(self, factory: Callable[[], httpx.AsyncClient], url: str) -> None:
        self._factory = factory
        self._url = url

    async def chat(self, body: dict[str, Any]) -> Any:
        async with self._factory() as client:
            response = await client.post(self._url, json=body)
            response.raise_for_status()
            return response.json()

    async def aclose(self) -> None:
        pass


class AiohttpClient:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url

    async def chat(self, body: dict[str, Any]) -> Any:
        async with self._session.post(self._url, json=body) as response:
            response.raise_for_status()
            return await response.json()

    async def aclose(self) -> None:
        await self._session.close()


def _limits(concurrency: int, **kwargs: Any) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, **kwargs)


@dataclass(frozen=True)
class Variant:
    name: str
    code: str  # the constructor, as shown in the report
    make: Callable[[str, int], Client]  # (url, concurrency) -> client; called inside the event loop
    knob: bool = False  # only with --knobs
    max_requests: int | None = None  # cap for very slow variants


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "httpx",
        "httpx.AsyncClient(limits=httpx.Limits(max_connections=c, max_keepalive_connections=c))",
        lambda url, c: HttpxClient(httpx.AsyncClient(limits=_limits(c)), url),
    ),
    Variant(
        "httpx+aiohttp",
        "httpx.AsyncClient(transport=AiohttpTransport(limits=httpx.Limits(max_connections=c, "
        "max_keepalive_connections=c)))",
        lambda url, c: HttpxClient(
            httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(limits=_limits(c))),
            url,
        ),
    ),
    Variant(
        "aiohttp",
        "aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c))",
        lambda url, c: AiohttpClient(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)), url),
    ),
    # ---- knobs: httpx default transport
    Variant(
        "httpx default limits",
        "httpx.AsyncClient()  # max_connections=100, max_keepalive_connections=20",
        lambda url, c: HttpxClient(httpx.AsyncClient(), url),
        knob=True,
    ),
    Variant(
        "httpx http2=False trust_env=False",
        "httpx.AsyncClient(limits=..., http2=False, trust_env=False)",
        lambda url, c: HttpxClient(httpx.AsyncClient(limits=_limits(c), http2=False, trust_env=False), url),
        knob=True,
    ),
    Variant(
        "httpx keepalive_expiry=None",
        "httpx.AsyncClient(limits=httpx.Limits(..., keepalive_expiry=None))",
        lambda url, c: HttpxClient(httpx.AsyncClient(limits=_limits(c, keepalive_expiry=None)), url),
        knob=True,
    ),
    Variant(
        "httpx timeout=None",
        "httpx.AsyncClient(limits=..., timeout=None)",
        lambda url, c: HttpxClient(httpx.AsyncClient(limits=_limits(c), timeout=None), url),
        knob=True,
    ),
    Variant(
        "httpx new client per request",
        "async with httpx.AsyncClient(limits=...) as client: ...  # per request",
        lambda url, c: FreshHttpxClient(lambda: httpx.AsyncClient(limits=_limits(c)), url),
        knob=True,
        max_requests=256,
    ),
    # ---- knobs: httpx over aiohttp
    Variant(
        "httpx+aiohttp default limits",
        "httpx.AsyncClient(transport=AiohttpTransport())  # connector limit 100",
        lambda url, c: HttpxClient(httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport()), url),
        knob=True,
    ),
    Variant(  # unlike transport=..., keeps httpx's HTTP(S)_PROXY / NO_PROXY handling (proxies on aiohttp too)
        "HttpxAiohttpClient",
        "httpx_aiohttp.HttpxAiohttpClient(limits=...)",
        lambda url, c: HttpxClient(httpx_aiohttp.HttpxAiohttpClient(limits=_limits(c)), url),
        knob=True,
    ),
    Variant(
        "httpx+aiohttp trust_env=False",
        "httpx.AsyncClient(transport=AiohttpTransport(limits=..., trust_env=False), trust_env=False)",
        lambda url, c: HttpxClient(
            httpx.AsyncClient(
                transport=httpx_aiohttp.AiohttpTransport(limits=_limits(c), trust_env=False), trust_env=False
            ),
            url,
        ),
        knob=True,
    ),
    Variant(
        "httpx+aiohttp keepalive_expiry=None",
        "httpx.AsyncClient(transport=AiohttpTransport(limits=httpx.Limits(..., keepalive_expiry=None)))",
        lambda url, c: HttpxClient(
            httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(limits=_limits(c, keepalive_expiry=None))),
            url,
        ),
        knob=True,
    ),
    Variant(
        "httpx+aiohttp timeout=None",
        "httpx.AsyncClient(transport=AiohttpTransport(limits=...), timeout=None)",
        lambda url, c: HttpxClient(
            httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(limits=_limits(c)), timeout=None),
            url,
        ),
        knob=True,
    ),
    Variant(
        "httpx+aiohttp own session",
        "httpx.AsyncClient(transport=AiohttpTransport(client=lambda: aiohttp.ClientSession("
        "connector=aiohttp.TCPConnector(limit=c))))",
        lambda url, c: HttpxClient(
            httpx.AsyncClient(
                transport=httpx_aiohttp.AiohttpTransport(
                    client=lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c))
                )
            ),
            url,
        ),
        knob=True,
    ),
)

# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


def request_body() -> dict[str, Any]:
    """A ~1 KB chat-completion request with a strict JSON-schema response format."""
    document = (
        "Invoice INV-2024-0042, issued 2024-03-01 by ACME GmbH, Berlin, to Example Ltd, London. "
        "5 x Widget A at 9.50 EUR, 3 x Widget B at 12.00 EUR, shipping 4.90 EUR. Subtotal 88.40 EUR, "
        "VAT 19 % 16.80 EUR, total 105.20 EUR, payable within 30 days."
    )
    schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "issue_date": {"type": "string", "format": "date"},
            "seller": {"type": "string"},
            "buyer": {"type": "string"},
            "currency": {"type": "string"},
            "total": {"type": "number"},
        },
        "required": ["invoice_number", "issue_date", "seller", "buyer", "currency", "total"],
        "additionalProperties": False,
    }
    return {
        "model": "openai/gpt-4o-mini",
        "temperature": 0,
        "messages": [
            {
                "role": "system",
                "content": "You extract structured records from documents. Answer with one JSON object that "
                "matches the schema; use null for what the document does not state.",
            },
            {"role": "user", "content": f"Extract the invoice from this document:\n\n{document}"},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Invoice", "strict": True, "schema": schema},
        },
    }


@dataclass
class Batch:
    seconds: float
    cpu_seconds: float
    latencies: list[float]
    errors: Counter[str]


async def run_batch(client: Client, body: dict[str, Any], requests: int, concurrency: int) -> Batch:
    """`requests` requests through a fixed pool of `concurrency` worker tasks."""
    todo = iter(range(requests))
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def worker() -> None:
        for _ in todo:  # shared iterator: each worker takes the next request
            start = time.perf_counter()
            try:
                data = await client.chat(body)
                if data["choices"][0]["message"]["content"] != ANSWER:
                    raise ValueError("unexpected answer")
            except Exception as exc:
                errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
            else:
                latencies.append(time.perf_counter() - start)

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    return Batch(time.perf_counter() - start, time.process_time() - cpu, latencies, errors)


@dataclass
class Result:
    variant: str
    code: str
    requests: int
    rps: list[float]
    best_rps: float
    median_rps: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu_us_per_request: float
    server_cpu_percent: float
    construct_ms: float
    new_connections: int
    connections_used: int
    peak_inflight: int
    errors: dict[str, int]


def _percentile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2)


async def measure(variant: Variant, server: Server, requests: int, concurrency: int, repeat: int) -> Result:
    body = request_body()
    if variant.max_requests is not None:
        requests = min(requests, variant.max_requests)
    start = time.perf_counter()
    client = variant.make(server.url, concurrency)
    construct_ms = (time.perf_counter() - start) * 1000
    errors: Counter[str] = Counter()
    batches: list[Batch] = []
    server_stats: list[dict[str, Any]] = []
    server_cpu: list[float] = []
    try:
        warmup = await run_batch(client, body, concurrency, concurrency)
        errors.update({f"warm-up {key}": n for key, n in warmup.errors.items()})
        for _ in range(repeat):
            gc.collect()
            before = server.stats()
            batch = await run_batch(client, body, requests, concurrency)
            after = server.stats()
            batches.append(batch)
            server_stats.append(after)
            server_cpu.append((after["cpu_s"] - before["cpu_s"]) / batch.seconds)
            errors.update(batch.errors)
    finally:
        await client.aclose()
    rps = [len(b.latencies) / b.seconds for b in batches]  # successful requests only
    latencies = [x for b in batches for x in b.latencies]
    return Result(
        variant=variant.name,
        code=variant.code,
        requests=requests,
        rps=[round(x, 1) for x in rps],
        best_rps=round(max(rps), 1),
        median_rps=round(statistics.median(rps), 1),
        p50_ms=_percentile_ms(latencies, 0.50),
        p99_ms=_percentile_ms(latencies, 0.99),
        client_cpu_us_per_request=round(min(b.cpu_seconds for b in batches) / requests * 1e6, 1),
        server_cpu_percent=round(statistics.median(server_cpu) * 100, 1),
        construct_ms=round(construct_ms, 2),
        new_connections=sum(s["new_connections"] for s in server_stats),
        connections_used=max(s["connections"] for s in server_stats),
        peak_inflight=max(s["peak_inflight"] for s in server_stats),
        errors=dict(errors),
    )


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "event_loop": "asyncio (default)",
        "packages": versions,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_table(run: dict[str, Any], out: Any) -> None:
    latency_ms = run["latency"] * 1000
    ideal = f" · ideal {run['ideal_rps']:.0f} req/s" if run["ideal_rps"] else ""
    print(
        f"\nlatency {latency_ms:g} ms · {run['requests']} requests · concurrency {run['concurrency']}"
        f" · best/median of {run['repeat']}{ideal}",
        file=out,
    )
    yardstick = next((r["best_rps"] for r in run["results"] if r["variant"] == "aiohttp"), None)
    header = (
        f"{'variant':<36}{'best r/s':>10}{'median':>9}{'vs aio':>8}{'% ideal':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'cpu µs/r':>10}{'build ms':>9}{'srv cpu':>8}{'new conn':>9}{'conns':>6}{'peak':>6}{'errors':>7}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in run["results"]:
        vs = f"{r['best_rps'] / yardstick:.0%}" if yardstick else "-"
        of_ideal = f"{r['best_rps'] / run['ideal_rps']:.0%}" if run["ideal_rps"] else "-"
        name = r["variant"] + (f" (n={r['requests']})" if r["requests"] != run["requests"] else "")
        print(
            f"{name:<36}{r['best_rps']:>10.0f}{r['median_rps']:>9.0f}{vs:>8}{of_ideal:>8}{_ms(r['p50_ms']):>8}"
            f"{_ms(r['p99_ms']):>8}{r['client_cpu_us_per_request']:>10.0f}{r['construct_ms']:>9.1f}"
            f"{r['server_cpu_percent']:>7.0f}%"
            f"{r['new_connections']:>9}{r['connections_used']:>6}{r['peak_inflight']:>6}"
            f"{sum(r['errors'].values()):>7}",
            file=out,
        )
    for r in run["results"]:
        for error, count in r["errors"].items():
            print(f"  {r['variant']}: {count} x {error}", file=out)


def main(argv: list[str] | None = None) -> int:
    names = [v.name for v in VARIANTS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1], help="server latency, seconds")
    parser.add_argument("--requests", type=int, help="requests per timed batch (default 2000 at 0 s, else 640)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--repeat", type=int, default=3, help="timed batches per variant (default 3)")
    parser.add_argument("--knobs", action="store_true", help="also run the configuration variants")
    parser.add_argument("--only", nargs="+", choices=names, metavar="VARIANT", help=f"run only these: {names}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)

    variants = [v for v in VARIANTS if (v.name in args.only if args.only else args.knobs or not v.knob)]
    info = machine()
    report: dict[str, Any] = {"machine": info, "body_bytes": len(json.dumps(request_body())), "runs": []}
    log = sys.stderr if args.json else sys.stdout
    if not args.json:
        packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
        print(f"{info['python']} on {info['platform']}, {info['cpu_count']} CPUs ({info['cpus_usable']} usable)")
        print(f"{packages}; request body {report['body_bytes']} bytes")

    for latency in args.latency:
        requests = args.requests or (2000 if latency == 0 else 640)
        run: dict[str, Any] = {
            "latency": latency,
            "requests": requests,
            "concurrency": args.concurrency,
            "repeat": args.repeat,
            "ideal_rps": args.concurrency / latency if latency > 0 else None,
            "results": [],
        }
        with Server(latency) as server:
            for variant in variants:
                print(f"[{latency * 1000:g} ms] {variant.name} ...", file=sys.stderr, flush=True)
                result = asyncio.run(measure(variant, server, requests, args.concurrency, args.repeat))
                run["results"].append(asdict(result))
        report["runs"].append(run)
        if not args.json:
            _print_table(run, log)

    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
