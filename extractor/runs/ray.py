"""Extraction on a Ray cluster: documents loaded across its CPUs, one rate limit and one budget for the whole job.

    import ray
    from .ray import extract_dataset

    ds = ray.data.from_items([{"path": "/data/a.pdf"}, {"id": "n-1", "text": "..."}])
    results = extract_dataset(ds, Invoice, model="openai/gpt-4o-mini", concurrency=64,
                              requests_per_minute=3000, max_cost=20.0)
    results.write_parquet("out/")            # or iterate: for row in results.iter_rows(): ...

Rows hold a file `path`, or `bytes` with its file `name`, or a `text`; an `id` column names them (else
the path, the name, or for a text `text-` and a hash of it); optional: `source` (the name shown in the
output), `password`, `meta` (a dict or a JSON object string, merged into the output's `meta`).

Two stages of `map_batches`, both Ray tasks: *loading* (1 CPU each: PDFs are parsed with pypdf through
`Document.from_path` / `from_bytes`, in parallel over the cluster's CPUs; a file that cannot be read
becomes that row's error) and *extraction* (a fraction of a CPU each: it waits on the network). Every
task is retried once if its worker dies (`max_retries=1`; Ray Data's default is to retry forever):
the inputs of a dead worker are done again, and come out once.

One set of limits for the whole job, whatever the number of workers: a `SharedLimits` Ray actor made by
the driver (not named, not detached: it ends with the driver) holds the concurrency limit (halved on a
429, won back one success at a time), the request and token rates, and the budget. Each extraction task
asks it before an input starts (`acquire`: a place, and the budget's reservation), before each HTTP
request (`request`: the rates), tells it of each answer's status (`response`: a 429 cuts the limit)
and of each input's end (`release`: the place back, the cost spent). See `SharedLimits`.

Output rows, one per input, in the shape of `extractor run`'s lines (`RECORD_COLUMNS`): `id`,
`source`, `data` (the record as a JSON string), `meta` (JSON string), `error` (JSON string
`{"type", "message"}` of a failed input, else null) and `skipped` (true for an input not started:
the budget ran out or the run stopped; it has no line to write and is done by the next run).

Resuming like a local run: `done_ids(OUT.jsonl)` reads the ids an earlier run wrote (the `JsonlSink`
format), `extract_dataset(..., skip_ids=...)` leaves them out, and `write_jsonl(results, OUT.jsonl)`
streams the results back to the driver and appends them through a `JsonlSink`, so that re-running
skips what is done; `extractor run ... --ray` does all three.

Schemas given as classes (pydantic models, dataclasses) must be importable on the workers (a package
installed there, or Ray's `runtime_env`); a JSON Schema dict always is. The API key is resolved on the
driver and given to the extraction tasks as `$EXTRACTOR_API_KEY` in their Ray `runtime_env` (it is never
pickled). No response cache on Ray (it is a file on one machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import pickle
import time
import warnings
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import pydantic_core

from .._portal import run_sync
from ..client.run_context import RunContext, use_run
from ..documents.plan import RequestEstimate
from ..errors import (
    ConfigurationError,
    DocumentError,
    ExtractorError,
    InputError,
)
from ..sources import DEFAULT_MAX_FILE_BYTES, IMAGE_TOKENS, Document, estimate_tokens
from .budget import Budget, Prices, input_cost
from .faults import FaultKind, StopRule, fault_kind, stop_message
from .limits import AdaptiveLimit, TokenBucket
from .runner import BatchResult
from .sink import JsonlSink, errors_path_for

if TYPE_CHECKING:
    import ray.data

__all__ = [
    "RECORD_COLUMNS",
    "SharedLimits",
    "WriteCounts",
    "done_ids",
    "extract_dataset",
    "shared_limits",
    "sink_record",
    "write_jsonl",
    "write_row",
]

log = logging.getLogger("extractor")

RECORD_COLUMNS = ("id", "source", "data", "meta", "error", "skipped")
"""The columns of `extract_dataset`'s rows."""

#: how long `acquire` waits in the actor before answering "wait" (the caller asks again): the actor's
#: coroutines never all wait, so that releases always get through
_ACQUIRE_WAIT = 1.0

Verdict = Literal["go", "wait", "budget", "stop", "duplicate"]


def _ray() -> ModuleType:
    """The `ray` module with Ray Data, or a `ConfigurationError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigurationError(
            f"running on Ray needs Ray Data, which is not installed ({exc}): pip install 'extractor[ray]'"
        ) from None
    return ray


# --- the shared limits (a Ray actor) ---------------------------------------------------------


class SharedLimits:
    """The limits of a whole job, shared by every worker: run as one async Ray actor (`shared_limits()`).

    The protocol, per input: `acquire(requests, prices, attempts)` answers `("go", lease, "")` once a
    place is free (at most `concurrency` inputs in flight, fewer after a 429) and, with a budget, the
    input's cost estimate is reserved; `("wait", 0, "")` after waiting `wait` seconds without one (ask
    again); `("budget", 0, message)` when the budget is reached (the input is not started, and no
    input starts after it); `("stop", 0, message)` when the run stopped on a fault no input can get
    past. Per request: `request(tokens)` returns when the rates allow it (requests are paced evenly,
    one every 60/`requests_per_minute` seconds, so any one-second window holds at most rpm/60 + 1);
    `response(status, extra_tokens)` reports the answer (a 429 halves the concurrency limit). At the
    end of the input: `release(lease, ...)` gives the place back and settles its cost; it returns the
    stop message if the run has stopped. A worker `renew`s its leases while they run: a lease not
    renewed for `lease_timeout` seconds (its worker died) is given back, its reservation counted spent.

    Estimates are the local runner's (`batch.budget`): `requests` are the `(prompt tokens, predicted answer
    tokens or None)` of every request the input's plan sends (a long document's every part; an int: one
    request of that many prompt tokens), each with every attempt it may make (`attempts`) and its
    predicted answer or the longest seen so far; an input alone may start if each request fits once with
    a short answer.
    """

    def __init__(
        self,
        concurrency: int = 16,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_cost: float | None = None,
        lease_timeout: float = 60.0,
        wait: float = _ACQUIRE_WAIT,
    ) -> None:
        self.limit = AdaptiveLimit(concurrency)
        self.requests = TokenBucket(requests_per_minute, burst=1.0) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, burst=tokens_per_minute / 6) if tokens_per_minute else None
        self.budget = Budget(max_cost) if max_cost is not None else None
        self.lease_timeout = lease_timeout
        self.wait = wait
        self.longest_answer: int | None = None
        self.over_budget = False
        self.stopped: str | None = None
        self._leases: dict[int, float] = {}  # lease -> when last renewed (monotonic)
        #: input id -> the digest of the content of the first input started with it (a row with the same id and
        #: content is started again: a task Ray retries after its worker died gives its rows again)
        self._claims: dict[str, str] = {}
        self._expired: dict[int, float] = {}  # lease -> what its reservation was counted as spent
        self._ids = itertools.count(1)
        self._swept = float("-inf")  # when leases were last looked at for expiry
        self._settled: asyncio.Event | None = None
        self._faults = StopRule()
        self.counts = {"started": 0, "finished": 0, "requests": 0, "rate_limited": 0, "expired": 0, "peak": 0}
        self.counts["busiest_second"] = 0
        self._granted: deque[float] = deque()  # when the requests of the last second were let go (monotonic)

    # -- per input --

    async def acquire(
        self,
        requests: Sequence[tuple[int, int | None]] | int = 0,
        prices: tuple[float | None, float | None] = (None, None),
        attempts: int = 1,
        claim: tuple[str, str] | None = None,
    ) -> tuple[Verdict, int, str]:
        """A place and a reservation for one input (see the class docstring for the answers). `claim`: the
        input's `(id, digest of its content)`: an id started before with another content answers "duplicate",
        so that no other row is paid for under an id that has its input."""
        self._expire()
        if self.stopped is not None:
            return "stop", 0, self.stopped
        if claim is not None and self._claims.get(claim[0], claim[1]) != claim[1]:
            return "duplicate", 0, f'duplicate id "{claim[0]}" with another content'
        if self.over_budget:
            return "budget", 0, self._budget_message()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        if self.limit.in_flight < self.limit.limit:  # a free place: taken at once (no timer)
            await self.limit.acquire()
        else:
            try:
                await asyncio.wait_for(self.limit.acquire(), self.wait)
            except asyncio.TimeoutError:
                return "wait", 0, ""
            if self.stopped is not None:  # the run stopped while this input waited: the place goes back unused
                self.limit.release(succeeded=False)
                return "stop", 0, self.stopped
        lease = next(self._ids)
        if self.budget is not None:
            planned = (
                [RequestEstimate(requests, None)]
                if isinstance(requests, int)
                else [RequestEstimate(*r) for r in requests]
            )
            verdict = await self._reserve(lease, planned, prices, attempts, deadline)
            if verdict != "go":
                self.limit.release(succeeded=False)
                return verdict, 0, self._budget_message() if verdict == "budget" else ""
        self._leases[lease] = time.monotonic()
        if claim is not None:
            self._claims.setdefault(claim[0], claim[1])
        self.counts["started"] += 1
        self.counts["peak"] = max(self.counts["peak"], self.limit.in_flight)
        return "go", lease, ""

    async def release(
        self,
        lease: int,
        *,
        ok: bool,
        cost: float = 0.0,
        cost_known: bool = True,
        list_cost: float = 0.0,
        answer_tokens: int = 0,
        fault: FaultKind | None = None,
        fault_message: str = "",
    ) -> str | None:
        """The input of `lease` is over: its place back, its cost settled (`list_cost`: what its tokens cost
        at list price, to learn what the provider bills); the stop message, if stopped."""
        self.counts["finished"] += 1
        if answer_tokens:
            self.longest_answer = max(self.longest_answer or 0, answer_tokens)
        if self._leases.pop(lease, None) is None:  # expired: its place was given back already
            counted = self._expired.pop(lease, None)
            if counted is not None and self.budget is not None:
                self.budget.spent += (cost if cost_known else max(cost, counted)) - counted
        else:
            self.limit.release(succeeded=ok)
            if self.budget is not None:
                reserved = self.budget.reserved(lease)
                self.budget.settle(lease, cost if cost_known else max(cost, reserved), list_cost if cost_known else 0.0)
        self._event().set()
        if fault is not None:
            if self._faults.fault(fault) and self.stopped is None:
                self.stopped = fault_message or "the run stopped"
                log.info("stopping: %s", self.stopped)
        elif ok:
            self._faults.success()
        return self.stopped

    async def renew(self, leases: list[int]) -> None:
        """The worker holding `leases` is alive: they do not expire yet."""
        now = time.monotonic()
        for lease in leases:
            if lease in self._leases:
                self._leases[lease] = now

    # -- per request --

    async def request(self, tokens: float = 0.0) -> None:
        """Returns when the request and token rates allow one more request (of about `tokens` tokens)."""
        if self.requests is not None:
            await self.requests.take()
        if self.tokens is not None and tokens:
            await self.tokens.take(tokens)
        self.counts["requests"] += 1
        now = time.monotonic()
        self._granted.append(now)
        while self._granted[0] <= now - 1.0:
            self._granted.popleft()
        self.counts["busiest_second"] = max(self.counts["busiest_second"], len(self._granted))

    async def response(self, status: int | None, extra_tokens: float = 0.0) -> None:
        """An answer came: a 429 cuts the concurrency limit; `extra_tokens` corrects the token estimate."""
        if status == 429:
            self.counts["rate_limited"] += 1
            self.limit.rate_limited()
        if self.tokens is not None and extra_tokens:
            self.tokens.adjust(extra_tokens)

    # -- reading --

    async def stats(self) -> dict[str, Any]:
        """Counts and state: started, finished, requests, rate_limited, expired, peak (most in flight),
        busiest_second (most requests let go within one second), limit, cuts, in_flight, spent, reserved,
        max_cost, over_budget, stopped. Leases not renewed within `lease_timeout` are given back first."""
        self._expire()
        budget = self.budget
        return {
            **self.counts,
            "limit": self.limit.limit,
            "cuts": self.limit.cuts,
            "in_flight": self.limit.in_flight,
            "spent": budget.spent if budget is not None else None,
            "reserved": budget.in_flight if budget is not None else None,
            "max_cost": budget.max_cost if budget is not None else None,
            "over_budget": self.over_budget,
            "stopped": self.stopped,
        }

    # -- inside --

    def _event(self) -> asyncio.Event:
        if self._settled is None:
            self._settled = asyncio.Event()
        return self._settled

    def _estimate(
        self,
        requests: list[RequestEstimate],
        prices: tuple[float | None, float | None],
        attempts: int,
        *,
        least: bool = False,
    ) -> float:
        prompt_price, completion_price = prices
        if prompt_price is None or completion_price is None:
            return 0.0
        priced = Prices(prompt_price, completion_price)
        return input_cost(requests, priced, attempts=attempts, longest_answer=self.longest_answer, least=least)

    async def _reserve(
        self,
        lease: int,
        requests: list[RequestEstimate],
        prices: tuple[float | None, float | None],
        attempts: int,
        deadline: float,
    ) -> Verdict:
        """Reserve the input's estimate; while others are in flight, wait (until `deadline`) for them to settle
        before deciding that the budget is reached."""
        budget = self.budget
        assert budget is not None
        loop = asyncio.get_running_loop()
        while not budget.reserve(lease, self._estimate(requests, prices, attempts)):
            if not budget.in_flight:  # alone, an input may start if its every request fits once
                if budget.reserve(lease, self._estimate(requests, prices, attempts, least=True)):
                    return "go"
                self.over_budget = True
                log.warning(
                    "budget of $%.4f reached (spent $%.4f): starting nothing more", budget.max_cost, budget.spent
                )
                return "budget"
            remaining = deadline - loop.time()
            if remaining <= 0:
                return "wait"
            event = self._event()
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                return "wait"
        return "go"

    def _budget_message(self) -> str:
        budget = self.budget
        spent, limit = (budget.spent, budget.max_cost) if budget is not None else (0.0, 0.0)
        return f"not started: max_cost ${limit:g} would be exceeded (spent ${spent:.4f})"

    def _expire(self) -> None:
        """Give back the leases of workers that stopped renewing them (dead): their places, their reservations
        counted as spent."""
        now = time.monotonic()
        if not self._leases or now - self._swept < min(1.0, self.lease_timeout / 4):
            return
        self._swept = now
        for lease, renewed in list(self._leases.items()):
            if now - renewed <= self.lease_timeout:
                continue
            del self._leases[lease]
            counted = 0.0
            if self.budget is not None:
                counted = self.budget.reserved(lease)
                self.budget.settle(lease, counted)
            self._expired[lease] = counted
            self.limit.release(succeeded=False)
            self.counts["expired"] += 1
            log.warning(
                "lease %d not renewed for %.0f s (its worker died?): its place is given back", lease, now - renewed
            )
        self._event().set()


def shared_limits(
    concurrency: int = 16,
    *,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    max_cost: float | None = None,
    lease_timeout: float = 60.0,
) -> Any:
    """A `SharedLimits` actor on the current Ray cluster (`ray.init()` first, or it starts a local one): pass it
    to `extract_dataset(limits=...)` to share one set of limits among several datasets, and read its state
    with `ray.get(limits.stats.remote())`. It lives as long as a handle to it does."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if requests_per_minute is not None and requests_per_minute <= 0:
        raise ValueError("requests_per_minute must be positive")
    if tokens_per_minute is not None and tokens_per_minute <= 0:
        raise ValueError("tokens_per_minute must be positive")
    if max_cost is not None and max_cost < 0:
        raise ValueError("max_cost must not be negative")
    ray = _ray()
    # every waiting call is a coroutine of the actor: room for the callers of all places, and more
    actor = ray.remote(num_cpus=0, max_concurrency=max(1000, 8 * concurrency), max_restarts=0)(SharedLimits)
    return actor.remote(
        concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        max_cost=max_cost,
        lease_timeout=lease_timeout,
    )


# --- rows ------------------------------------------------------------------------------------------


def _text_id(text: str) -> str:
    return "text-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _row_id(row: Mapping[str, Any]) -> str | None:
    """A row's id: its `id`, else its `path`, its `name` (bytes), or `text-HASH` of its `text`."""
    ident = row.get("id")
    if ident is not None and ident != "":
        return ident.decode() if isinstance(ident, bytes) else str(ident)
    for key in ("path", "name"):
        value = row.get(key)
        if value:
            return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    text = row.get("text")
    return _text_id(text) if isinstance(text, str) else None


def _row_meta(row: Mapping[str, Any]) -> dict[str, Any]:
    meta = row.get("meta")
    if isinstance(meta, Mapping):
        return dict(meta)
    if isinstance(meta, (str, bytes)) and meta:
        try:
            value = json.loads(meta)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _error_json(error: BaseException) -> str:
    return json.dumps({"type": type(error).__name__, "message": str(error)}, ensure_ascii=False)


def _pa() -> Any:
    import pyarrow  # type: ignore[import-untyped]

    return pyarrow


def _loaded_schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("text", pa.large_string()),
            ("document", pa.large_binary()),
            ("error", pa.string()),
            ("meta", pa.string()),
            ("digest", pa.string()),
        ]
    )


def _record_schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("data", pa.large_string()),
            ("meta", pa.string()),
            ("error", pa.string()),
            ("skipped", pa.bool_()),
        ]
    )


@dataclass(frozen=True)
class _Skip:
    """The ids to leave out, in Ray's object store (read once per worker process)."""

    ref: Any
    count: int


_SKIP_CACHE: dict[str, frozenset[str]] = {}


def _skipped_ids(skip: _Skip | None) -> frozenset[str]:
    if skip is None or not skip.count:
        return frozenset()
    key = skip.ref.hex()
    found = _SKIP_CACHE.get(key)
    if found is None:
        found = _SKIP_CACHE[key] = _ray().get(skip.ref)
        while len(_SKIP_CACHE) > 4:  # a long-lived worker of several jobs
            _SKIP_CACHE.pop(next(iter(_SKIP_CACHE)))
    return found


def _load_one(row: Mapping[str, Any], options: Mapping[str, Any]) -> Document | str:
    """What to extract from a row: its text, or the document its path or bytes hold."""
    password = row.get("password") or options.get("password")
    pages = options.get("pages")
    max_bytes = options.get("max_file_size")
    path = row.get("path")
    if path:
        return Document.from_path(os.fspath(path), password=password, pages=pages, max_bytes=max_bytes)
    data = row.get("bytes")
    if data is not None:
        name = str(row.get("name") or row.get("id") or "document")
        if max_bytes is not None and len(data) > max_bytes:
            raise DocumentError(f"{len(data)} bytes, more than the {max_bytes} allowed", source=name)
        return Document.from_bytes(bytes(data), name=name, password=password, pages=pages)
    text = row.get("text")
    if isinstance(text, str):
        return text
    raise InputError('a row needs a "path", "bytes" and "name", or a "text"')


def _load_batch(table: Any, *, options: Mapping[str, Any], skip: _Skip | None) -> Any:
    """The loading stage: each row read into a text or a pickled `Document`, or its error (runs in a Ray task)."""
    pa = _pa()
    done = _skipped_ids(skip)
    out: dict[str, list[Any]] = {name: [] for name in ("id", "source", "text", "document", "error", "meta", "digest")}
    for row in table.to_pylist():
        ident = _row_id(row)
        if ident is not None and ident in done:
            continue
        text: str | None = None
        document: bytes | None = None
        error: str | None = None
        label = row.get("source") or row.get("path") or row.get("name")
        try:
            if ident is None:
                ident = "row-" + hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:16]
                raise InputError('a row needs an "id", a "path", "bytes" and "name", or a "text"')
            loaded = _load_one(row, options)
            if isinstance(loaded, str):
                text = loaded
            else:
                document = pickle.dumps(loaded, protocol=pickle.HIGHEST_PROTOCOL)
        except ExtractorError as exc:
            error = _error_json(exc)
        except Exception as exc:  # a bug or an unexpected failure of a reader fails this row alone
            error = _error_json(DocumentError(f"unexpected {type(exc).__name__}: {exc}", source=str(label or ident)))
        out["id"].append(ident)
        out["source"].append(str(os.fspath(label) if isinstance(label, os.PathLike) else label or ident))
        out["text"].append(text)
        out["document"].append(document)
        out["error"].append(error)
        out["meta"].append(json.dumps(_row_meta(row), ensure_ascii=False, default=str))
        out["digest"].append(_digest(row))
    return pa.Table.from_pydict(out, schema=_loaded_schema(pa))


def _digest(row: Mapping[str, Any]) -> str:
    """What a row's content is, in a few characters: its path, the hash of its bytes or of its text."""
    for key in ("path", "bytes", "text"):
        value = row.get(key)
        if value is not None and value != "":
            raw = (
                os.fspath(value).encode()
                if key == "path"
                else value
                if isinstance(value, bytes)
                else str(value).encode()
            )
            return f"{key}:" + hashlib.sha256(raw).hexdigest()[:16]
    return ""


@dataclass
class _Job:
    """What every extraction task needs to know (sent to the workers with the task)."""

    schema: Any
    limits: Any
    model: str
    base_url: str
    concurrency: int
    prices: tuple[float | None, float | None]
    overhead: int
    attempts: int
    paced: bool
    tokens_paced: bool
    renew_every: float
    extractor_options: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


class _ActorRun(RunContext):
    """The requests of an extraction task, paced and reported through the shared limits."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self._estimates: list[float] = []

    async def before_request(self, body: Mapping[str, Any]) -> None:
        job = self.job
        estimate = 0.0
        if job.tokens_paced:
            estimate = float(estimate_tokens(json.dumps(body.get("messages", []))[:400_000]))
            self._estimates.append(estimate)
        if job.paced or job.tokens_paced:
            await job.limits.request.remote(estimate)

    def after_response(self, status: int | None, usage: Mapping[str, Any] | None) -> None:
        extra = 0.0
        if self.job.tokens_paced:
            estimate = self._estimates.pop(0) if self._estimates else 0.0
            if usage is not None:
                spent = float(usage.get("prompt_tokens") or 0) + float(usage.get("completion_tokens") or 0)
                extra = spent - estimate
        if status == 429 or extra:
            self.job.limits.response.remote(status, extra)  # told without waiting for the answer


def _source_tokens(source: Document | str) -> int:
    if isinstance(source, str):
        return estimate_tokens(source)
    return estimate_tokens(source.text) + IMAGE_TOKENS * len(source.images)


def _extract_batch(table: Any, *, job: _Job) -> Any:
    """The extraction stage: each loaded row extracted, within the shared limits (runs in a Ray task)."""
    pa = _pa()
    records = asyncio.run(_extract_rows(table.to_pylist(), job))
    columns = {name: [r[name] for r in records] for name in RECORD_COLUMNS}
    return pa.Table.from_pydict(columns, schema=_record_schema(pa))


async def _renew(job: _Job, leases: set[int]) -> None:
    while True:
        await asyncio.sleep(job.renew_every)
        if leases:
            await job.limits.renew.remote(list(leases))


async def _extract_rows(rows: list[dict[str, Any]], job: _Job) -> list[dict[str, Any]]:
    from ..client.extractor import Extractor
    from ..schema import compile_schema
    from .records import record_meta  # the OUT line's meta, as every run writes it

    compiled = compile_schema(job.schema)
    # the key comes as $EXTRACTOR_API_KEY, from the task's runtime_env (or the worker's own environment)
    extractor = Extractor(model=job.model, base_url=job.base_url, **job.extractor_options)
    use_run(_ActorRun(job))
    local = asyncio.Semaphore(max(1, min(job.concurrency, len(rows))))
    leases: set[int] = set()

    def record(result: BatchResult[Any], *, skipped: bool = False) -> dict[str, Any]:
        meta = json.dumps(record_meta(result), ensure_ascii=False)
        if result.ok:
            data = json.dumps(compiled.dump(result.value), ensure_ascii=False)
            return {
                "id": result.id,
                "source": result.source,
                "data": data,
                "meta": meta,
                "error": None,
                "skipped": False,
            }
        assert result.error is not None
        error = _error_json(result.error)
        return {
            "id": result.id,
            "source": result.source,
            "data": None,
            "meta": meta,
            "error": error,
            "skipped": skipped,
        }

    def not_started(row: dict[str, Any], kind: str, message: str) -> dict[str, Any]:
        meta = json.dumps(_row_meta(row), ensure_ascii=False)
        error = json.dumps({"type": kind, "message": message}, ensure_ascii=False)
        return {"id": row["id"], "source": row["source"], "data": None, "meta": meta, "error": error, "skipped": True}

    async def one(row: dict[str, Any]) -> dict[str, Any]:
        meta = _row_meta(row)
        if row.get("error"):  # it could not be read: the same meta as a local run's (no attempt, no cost)
            unread: BatchResult[Any] = BatchResult(row["id"], row["source"], None, error=ExtractorError(""), meta=meta)
            return {**record(unread), "error": row["error"]}
        source: Document | str = pickle.loads(row["document"]) if row.get("document") is not None else row["text"]
        requests: list[tuple[int, int | None]] = []
        if job.prices != (None, None):  # with a budget: every request of its plan (a long document's every part)
            plan = await extractor.aplan(job.schema, source, **job.options)
            planned = (
                plan.requests() if plan is not None else [RequestEstimate(_source_tokens(source) + job.overhead, None)]
            )
            requests = [(r.prompt_tokens, r.answer_tokens) for r in planned]
        async with local:
            claim = (row["id"], row.get("digest") or "")
            while True:
                verdict, lease, message = await job.limits.acquire.remote(requests, job.prices, job.attempts, claim)
                if verdict == "go":
                    break
                if verdict == "budget":
                    return not_started(row, "BudgetExceededError", message)
                if verdict == "stop":
                    return not_started(row, "RunStoppedError", message)
                if verdict == "duplicate":  # never paid for: the first of that id is the input
                    duplicate: BatchResult[Any] = BatchResult(
                        row["id"], row["source"], None, error=InputError(message), meta=meta
                    )
                    return record(duplicate)
            leases.add(lease)
            result: BatchResult[Any] | None = None
            try:
                value = await extractor.aextract_result(job.schema, source, **job.options)
                result = BatchResult(row["id"], row["source"], value.value, result=value, meta=meta)
            except ExtractorError as exc:
                result = BatchResult(row["id"], row["source"], None, error=exc, meta=meta)
            except Exception as exc:  # a bug must not stop the batch: it fails this one input
                log.exception("%s: unexpected error", row["source"])
                error = ExtractorError(f"unexpected {type(exc).__name__}: {exc}")
                result = BatchResult(row["id"], row["source"], None, error=error, meta=meta)
            finally:
                usage = result.usage if result is not None else None
                fault = fault_kind(result.error) if result is not None and result.error is not None else None
                message = ""
                if fault is not None and result is not None and result.error is not None:
                    message = stop_message(result.error, extractor.base_url)
                answers = [
                    a.usage.completion_tokens for a in (result.result.attempts if result and result.result else [])
                ]
                released = job.limits.release.remote(
                    lease,
                    ok=result is not None and result.ok,
                    cost=usage.cost if usage is not None else 0.0,
                    cost_known=usage.cost_known if usage is not None else False,
                    list_cost=usage.list_cost if usage is not None else 0.0,
                    answer_tokens=max(answers, default=0),
                    fault=fault,
                    fault_message=message,
                )
                leases.discard(lease)
        if fault is None:  # no need to wait for the answer: the task waits for all of them before it ends
            releases.append(released)
        else:
            stopped = await released
            if stopped is not None:  # the run stopped: this input was not really tried
                return not_started(row, "RunStoppedError", stopped)
        assert result is not None
        return record(result)

    releases: list[Any] = []
    renewer = asyncio.create_task(_renew(job, leases))
    try:
        records = list(await asyncio.gather(*(one(row) for row in rows)))
        for released in releases:  # every input's place is back before the task's rows count as done
            await released
        return records
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await extractor.aclose()


# --- the driver ------------------------------------------------------------------------------------


def extract_dataset(
    ds: ray.data.Dataset,
    schema: Any,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    concurrency: int = 16,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    max_cost: float | None = None,
    limits: Any = None,
    skip_ids: Collection[str] | None = None,
    password: str | None = None,
    pages: Any = None,
    max_file_size: int | None = DEFAULT_MAX_FILE_BYTES,
    timeout: float = 120.0,
    extractor_options: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    load_batch_size: int = 4,
    extract_num_cpus: float = 0.25,
    lease_timeout: float = 60.0,
    send_api_key: bool = True,
    **options: Any,
) -> ray.data.Dataset:
    """`schema` extracted from every row of `ds` on Ray: a lazy dataset of records (see the module docstring).

    `concurrency`, `requests_per_minute`, `tokens_per_minute` and `max_cost` (USD) hold for the whole
    job, across every worker (one `SharedLimits` actor), or pass `limits=shared_limits(...)` to share
    them among several datasets. `skip_ids`: ids to leave out (`done_ids(OUT.jsonl)` to resume).
    `password`, `pages`, `max_file_size` apply to every file; `timeout` and `extractor_options` (other
    `Extractor` arguments: `retry`, `headers`, ...) make each worker's `Extractor`; every other option
    (`mode`, `instructions`, `max_retries`, `evidence`, `max_chars`, ...) applies to each extraction.
    `batch_size` rows go to one extraction task, `load_batch_size` to one loading task (1 CPU each;
    extraction tasks take `extract_num_cpus`). Loading and extraction start when the dataset is consumed.

    The API key (`api_key`, else the driver's environment as for `Extractor`) reaches the extraction tasks
    as `$EXTRACTOR_API_KEY` in their Ray `runtime_env` (never pickled, never in a row); with
    `send_api_key=False` the workers' own environment must hold it.
    """
    ray = _ray()
    from ..client.catalog import DEFAULT_MODEL
    from ..client.extractor import Extractor
    from ..client.transport import api_key_for
    from ..schema import compile_schema

    compiled = compile_schema(schema)  # a broken schema fails here, not on every worker
    model = model or DEFAULT_MODEL
    given = dict(extractor_options or {})
    given.setdefault("timeout", timeout)
    mode = options.get("mode", given.get("mode", "auto"))
    if limits is None:
        budgeted = max_cost is not None
        paced, tokens_paced = requests_per_minute is not None, tokens_per_minute is not None
    else:
        if max_cost is not None or requests_per_minute is not None or tokens_per_minute is not None:
            raise ValueError("with limits=..., give max_cost and the rates to shared_limits(), not here")
        budgeted = ray.get(limits.stats.remote())["max_cost"] is not None
        paced = tokens_paced = True  # the actor knows whether it paces: each request asks it
    # the driver's own extractor: the mode and the key are checked once, here; it asks for the prices
    extractor = Extractor(model=model, base_url=base_url, api_key=api_key, **{**given, "mode": mode})
    prices: tuple[float | None, float | None] = (None, None)
    overhead = 0
    try:
        extractor.check_key()  # no key for a remote endpoint: said now, not by every worker
        if budgeted:
            info = run_sync(extractor.model_info(model))
            if info.prompt_price is None or info.completion_price is None:
                raise ConfigurationError(
                    f"max_cost cannot be kept: the prices of {model} are not known (the endpoint's model list "
                    "does not give them); run without max_cost, or on an endpoint that lists prices"
                )
            prices = (info.prompt_price, info.completion_price)
            instructions = options.get("instructions") or ""
            overhead = estimate_tokens(json.dumps(compiled.json_schema) + str(instructions)) + 100
    finally:
        extractor.close()
    if limits is None:
        limits = shared_limits(
            concurrency,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_cost=max_cost,
            lease_timeout=lease_timeout,
        )
    key = api_key_for(extractor.base_url, api_key)
    job = _Job(
        schema=schema,
        limits=limits,
        model=model,
        base_url=extractor.base_url,
        concurrency=concurrency,
        prices=prices,
        overhead=overhead,
        attempts=2 + int(options.get("max_retries", extractor.max_retries)),
        paced=paced,
        tokens_paced=tokens_paced,
        renew_every=max(0.5, lease_timeout / 6),
        extractor_options=given,
        options=dict(options),
    )
    skip: _Skip | None = None
    if skip_ids:
        done = frozenset(skip_ids)
        skip = _Skip(ray.put(done), len(done))
    load_options = {"password": password, "pages": pages, "max_file_size": max_file_size}
    loaded = _map_batches(
        ds, functools.partial(_load_batch, options=load_options, skip=skip), batch_size=load_batch_size, num_cpus=1
    )
    # the API key is never pickled (nor put in the dataset): it reaches the extraction tasks as their environment
    env = {"env_vars": {"EXTRACTOR_API_KEY": key}} if key and send_api_key else None
    return _map_batches(
        loaded,
        functools.partial(_extract_batch, job=job),
        batch_size=batch_size,
        num_cpus=extract_num_cpus,
        runtime_env=env,
    )


def _map_batches(
    ds: ray.data.Dataset, fn: Any, *, batch_size: int, num_cpus: float, runtime_env: dict[str, Any] | None = None
) -> ray.data.Dataset:
    """`ds.map_batches(fn)` over Arrow batches, in Ray tasks retried once when their worker dies (Ray Data's
    default retries forever). Ray 2.60 takes `max_retries` only among the remote arguments it calls
    deprecated (it has no named parameter for it yet): that warning is silenced here alone."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        return ds.map_batches(
            fn,
            batch_format="pyarrow",
            batch_size=batch_size,
            num_cpus=num_cpus,
            max_retries=1,
            runtime_env=runtime_env,
        )


def done_ids(out: str | Path, errors: str | Path | None = None, *, retry_errors: bool = False) -> frozenset[str]:
    """The ids that have their line in `out` (a `JsonlSink` output) or, unless `retry_errors`, in its errors
    file (default `OUT.errors.jsonl`): those a resumed run leaves out. Reads only; missing files have none."""
    paths = [Path(out)]
    if not retry_errors:
        paths.append(Path(errors) if errors is not None else errors_path_for(out))
    found: set[str] = set()
    for path in paths:
        try:
            reader = open(path, "rb")  # noqa: SIM115 - closed by the `with`
        except FileNotFoundError:
            continue
        with reader:
            for line in reader:
                if not line.endswith(b"\n"):
                    break  # a torn last line: its input is done again
                try:
                    value = pydantic_core.from_json(line, cache_strings="keys")
                except ValueError:
                    continue
                ident = value.get("id") if isinstance(value, dict) else None
                if isinstance(ident, str):
                    found.add(ident)
    return frozenset(found)


@dataclass
class WriteCounts:
    """What `write_jsonl` wrote: lines to OUT (`ok`), to the errors file (`failed`); inputs not started
    (`skipped`: budget, `stopped`: a run-level fault) and rows whose id already had its line (`repeated`)."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    stopped: int = 0
    repeated: int = 0
    cost: float = 0.0
    stop_message: str | None = None


def sink_record(row: Mapping[str, Any]) -> tuple[bool, dict[str, Any]] | None:
    """A result row as the line `extractor run` writes: (True, OUT's record) or (False, the errors file's);
    None for an input not started (nothing is written for it)."""
    if row.get("skipped"):
        return None
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    if row.get("error") is not None:
        return False, {"id": row["id"], "source": row["source"], "error": json.loads(row["error"]), "meta": meta}
    data = json.loads(row["data"]) if row.get("data") is not None else None
    return True, {"id": row["id"], "source": row["source"], "data": data, "meta": meta}


def write_jsonl(
    results: ray.data.Dataset,
    out: str | Path,
    errors: str | Path | None = None,
    *,
    retry_errors: bool = False,
) -> WriteCounts:
    """Consume `results` (of `extract_dataset`) into `out` and its errors file through a `JsonlSink`: one line per
    input, as `extractor run` writes them; inputs not started get none (a re-run does them)."""
    counts = WriteCounts()
    with JsonlSink(out, errors, retry_errors=retry_errors) as sink:
        for row in results.iter_rows():
            write_row(sink, row, counts)
    return counts


def write_row(sink: JsonlSink, row: Mapping[str, Any], counts: WriteCounts) -> None:
    """One result row written to `sink` (or counted as not started, or as a repeat of an id already written)."""
    line = sink_record(row)
    if line is None:
        error = json.loads(row["error"]) if row.get("error") else {}
        if error.get("type") == "RunStoppedError":
            counts.stopped += 1
            counts.stop_message = counts.stop_message or str(error.get("message"))
        else:
            counts.skipped += 1
        return
    ok, record = line
    cost = record["meta"].get("cost") if isinstance(record["meta"], dict) else None
    counts.cost += float(cost) if isinstance(cost, (int, float)) else 0.0
    if sink.is_done(record["id"]):
        counts.repeated += 1
        log.warning("%s: the id already has its line; this result is dropped", record["id"])
        return
    if ok:
        sink.write_ok(record)
        counts.ok += 1
    else:
        sink.write_error(record)
        counts.failed += 1
