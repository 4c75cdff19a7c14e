"""Provider batch APIs: the same requests as a synchronous run, sent through OpenAI's Files and Batches
endpoints (and the hosts that copy them), answered within 24 hours at about half the price.

A `ProviderBatch` keeps its state in a JSON file (next to the run's OUT file for the CLI), written
before anything happens at the provider and after every step, so that a run killed at any point is
picked up by running it again: planned batches are uploaded, uploaded files made into batches (a
batch created just before a crash is found again by the run's token in its metadata, never created
twice), running batches polled, finished ones collected.

Each line's body is exactly the first request the synchronous path sends for that input
(`Extractor.arequests`), its `custom_id` the input's id. Collecting runs every input through the
synchronous path (`BatchRunner`) with the batch's answer given for its first request: the answer is
read, repaired and validated the same way, and re-asked synchronously when it is invalid. Inputs
whose line failed or expired, and long documents sent in several chunks, are extracted
synchronously. Batch answers are priced at `BATCH_DISCOUNT` of the list price.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._portal import run_sync
from ..attempts import Sent
from ..cache import ResponseCache
from ..errors import ConfigurationError, ExtractorError, NotFoundError
from ..transport import ChatResponse
from .runner import BatchItem, BatchResult, BatchRunner

if TYPE_CHECKING:
    from ..extract import Extractor

__all__ = [
    "BATCH_DISCOUNT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_LINES",
    "BatchState",
    "ProviderBatch",
    "state_path_for",
]

log = logging.getLogger("extractor")

#: What a batch answer costs against the synchronous price (OpenAI's and Mistral's batch APIs: half).
BATCH_DISCOUNT: Final = 0.5
#: Provider limits a batch is split within: requests per batch, bytes per input file (OpenAI: 50,000 and 200 MB).
MAX_BATCH_LINES: Final = 50_000
MAX_BATCH_BYTES: Final = 190 * 1024 * 1024
TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})
_STATE_VERSION: Final = 1
_ENDPOINT: Final = "/v1/chat/completions"
_WINDOW: Final = 256  # inputs whose requests are built at once


def state_path_for(output: Path) -> Path:
    """Where the batch state of a run writing `output` is kept: `OUT.batches.json` beside it."""
    return output.with_name(output.name + ".batches.json")


@dataclass
class BatchEntry:
    """One provider batch: the inputs it holds (id -> the response-cache key of the request sent), its uploaded
    file, its id at the provider, its last known status and files, and whether it was collected."""

    requests: dict[str, str]
    file_id: str | None = None
    batch_id: str | None = None
    status: str = "planned"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    collected: bool = False


@dataclass
class BatchState:
    """Everything a batch run must remember across restarts (no request bodies, no key)."""

    token: str
    model: str
    base_url: str
    batches: list[BatchEntry] = field(default_factory=list)
    #: inputs sent synchronously: long documents in several chunks, inputs whose line could not be built
    sync: list[str] = field(default_factory=list)
    #: inputs left out for the budget (run again with more budget to send them)
    not_started: list[str] = field(default_factory=list)
    version: int = _STATE_VERSION

    @classmethod
    def load(cls, path: Path) -> BatchState | None:
        """The state saved at `path`, or None when there is none; `ConfigurationError` when it is unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{path}: not a batch state file this tool wrote ({exc})") from None
        if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
            raise ConfigurationError(f"{path}: not a batch state file this tool wrote")
        batches = [BatchEntry(**entry) for entry in data.pop("batches", [])]
        return cls(**data, batches=batches)

    def save(self, path: Path) -> None:
        """Write the state atomically (a crash leaves the old or the new file, never half of one)."""
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(asdict(self), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    @property
    def submitted(self) -> set[str]:
        return {i for entry in self.batches for i in entry.requests}


def _lines(bodies: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [
        json.dumps(
            {"custom_id": custom_id, "method": "POST", "url": _ENDPOINT, "body": body},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        + b"\n"
        for custom_id, body in bodies
    ]


def _split(lines: list[bytes], max_lines: int, max_bytes: int) -> list[list[int]]:
    """Indexes of `lines` grouped into batches within the provider's limits, in order."""
    groups: list[list[int]] = []
    size = 0
    for index, line in enumerate(lines):
        if len(line) > max_bytes:
            raise ConfigurationError(f"one request is {len(line)} bytes: more than a batch file may hold ({max_bytes})")
        if not groups or len(groups[-1]) >= max_lines or size + len(line) > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += len(line)
    return groups


def _by_custom_id(raw: bytes) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
            out[record["custom_id"]] = record
    return out


def _answer(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The chat completion a batch output line carries, when it succeeded."""
    if record is None:
        return None
    response = record.get("response")
    if not isinstance(response, Mapping) or response.get("status_code") != 200:
        return None
    body = response.get("body")
    return dict(body) if isinstance(body, Mapping) and body.get("choices") else None


def _failure(record: Mapping[str, Any] | None, status: str) -> str:
    """Why a line has no answer, in a few words."""
    if record is None:
        return f"no answer in the batch ({status})"
    error = record.get("error")
    if isinstance(error, Mapping):
        return f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    response = record.get("response")
    if isinstance(response, Mapping):
        body = response.get("body")
        message = body.get("error", {}).get("message") if isinstance(body, Mapping) else None
        return f"HTTP {response.get('status_code')}: {message or ''}".strip()
    return "failed"


class ProviderBatch:
    """One run through a provider's batch API, resumable from its state file (see the module docstring).

    `submit(items)` plans, uploads and creates the batches (or, with a state file, only finishes what
    a killed run left); `refresh()` polls them; `results(items)` collects the finished ones, yielding
    one `BatchResult` per input (`meta["path"]`: "batch" or "sync"); `cancel()` cancels the running ones.
    """

    def __init__(
        self,
        extractor: Extractor,
        schema: Any,
        state_path: Path,
        *,
        options: Mapping[str, Any] | None = None,
        max_lines: int = MAX_BATCH_LINES,
        max_bytes: int = MAX_BATCH_BYTES,
        max_cost: float | None = None,
        concurrency: int = 16,
    ) -> None:
        self.extractor = extractor
        self.schema = schema
        self.state_path = state_path
        self.options = dict(options or {})
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.max_cost = max_cost
        self.concurrency = concurrency
        self.state = BatchState.load(state_path)
        self._transport = extractor._transport
        self._files: dict[int, bytes] = {}  # the planned batches' files, until uploaded
        #: the inputs of a batch submitted from the library (`Extractor.asubmit_batch`)
        self.items: list[BatchItem] = []

    @property
    def model(self) -> str:
        return str(self.options.get("model") or self.extractor.model)

    def _save(self) -> None:
        if self.state is not None:
            self.state.save(self.state_path)

    # --- submitting -----------------------------------------------------------------------

    async def _bodies(self, items: Iterable[BatchItem]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        """Each input's request body (`(id, body)`, in input order), and the inputs to send synchronously
        instead; files are read `concurrency` at a time (PDFs in worker processes)."""
        runner: BatchRunner[Any] = BatchRunner(self.extractor, self.schema, options=self.options)
        gate = asyncio.Semaphore(max(1, self.concurrency))

        async def one(item: BatchItem) -> list[dict[str, Any]] | None:
            if item.error is not None:
                return None  # fails again, with its own error, in the synchronous path
            async with gate:
                try:
                    source = await runner.load(item)
                    return await self.extractor.arequests(self.schema, source, **self.options)
                except ExtractorError:
                    return None  # its error is recorded when it is extracted synchronously

        bodies: list[tuple[str, dict[str, Any]]] = []
        sync: list[str] = []
        listed = list(items)
        try:
            for start in range(0, len(listed), _WINDOW):
                window = listed[start : start + _WINDOW]
                for item, requests in zip(window, await asyncio.gather(*(one(i) for i in window)), strict=True):
                    if requests is not None and len(requests) == 1:
                        bodies.append((item.id, requests[0]))
                    else:  # failed to load, or a long document in chunks: merged after every chunk's answer
                        sync.append(item.id)
        finally:
            await runner.aclose()
        return bodies, sync

    async def _affordable(self, bodies: list[tuple[str, dict[str, Any]]]) -> int:
        """How many of `bodies`, in order, fit `max_cost` at the batch price (all without a budget)."""
        if self.max_cost is None:
            return len(bodies)
        info = await self.extractor.model_info(self.model)
        if info.prompt_price is None or info.completion_price is None:
            raise ConfigurationError(
                f"max_cost cannot be kept: the prices of {self.model} are not known; run without max_cost"
            )
        spent = 0.0
        for count, (_, body) in enumerate(bodies):
            prompt = len(json.dumps(body.get("messages", []), ensure_ascii=False).encode()) / 4
            answer = float(body.get("max_tokens") or 1_000)
            spent += (prompt * info.prompt_price + answer * info.completion_price) * BATCH_DISCOUNT
            if spent > self.max_cost:
                return count
        return len(bodies)

    async def submit(self, items: Iterable[BatchItem], *, done: set[str] | None = None) -> BatchState:
        """Plan, upload and create the batches for `items` (those not in `done`); with a saved state,
        only finish what was left (nothing is submitted twice)."""
        if self.state is None:
            bodies, sync = await self._bodies(i for i in items if i.id not in (done or set()))
            affordable = await self._affordable(bodies)
            kept, left = bodies[:affordable], bodies[affordable:]
            lines = _lines(kept)
            groups = _split(lines, self.max_lines, self.max_bytes)
            base_url = self.extractor.base_url

            def key(body: dict[str, Any]) -> str:  # how a later run tells the answer belongs to its request
                return ResponseCache.key_for(base_url, body)

            self.state = BatchState(
                token=uuid.uuid4().hex,
                model=self.model,
                base_url=self.extractor.base_url,
                batches=[
                    BatchEntry({kept[i][0]: ResponseCache.key_for(self.extractor.base_url, kept[i][1]) for i in group})
                    for group in groups
                ],
                sync=sync,
                not_started=[custom_id for custom_id, _ in left],
            )
            self._save()  # before anything happens at the provider
            self._files = {n: b"".join(lines[i] for i in group) for n, group in enumerate(groups)}
        await self._send_planned()
        return self.state

    async def _send_planned(self) -> None:
        state = self.state
        if state is None:
            return
        files = self._files
        for number, entry in enumerate(state.batches):
            if entry.batch_id is not None:
                continue
            if entry.file_id is None:
                content = files.get(number)
                if content is None:
                    raise ConfigurationError(
                        f"{self.state_path}: batch {number + 1} was planned but its file was never uploaded; "
                        "delete the state file to plan the run again"
                    )
                uploaded = await self._call(
                    self._transport.upload(
                        "files", {"purpose": "batch"}, f"extractor-{state.token}-{number + 1}.jsonl", content
                    )
                )
                entry.file_id = str(uploaded["id"])
                self._save()
            found = await self._created_before(number)
            if found is None:
                metadata = {"extractor_run": state.token, "extractor_part": str(number + 1)}
                body = {"input_file_id": entry.file_id, "endpoint": _ENDPOINT, "completion_window": "24h"}
                found = await self._call(self._transport.api("POST", "batches", {**body, "metadata": metadata}))
            self._update(entry, found)
            self._save()
            log.info("batch %s: %d inputs, %s", entry.batch_id, len(entry.requests), entry.status)

    async def _created_before(self, number: int) -> dict[str, Any] | None:
        """A batch this run created for part `number` before it was stopped (found by its metadata)."""
        state = self.state
        if state is None:
            return None
        after: str | None = None
        for _ in range(20):  # the 2,000 newest batches
            path = "batches?limit=100" + (f"&after={after}" if after else "")
            page = await self._call(self._transport.api("GET", path))
            data = page.get("data") if isinstance(page, Mapping) else None
            if not isinstance(data, list) or not data:
                return None
            for batch in data:
                meta = batch.get("metadata") if isinstance(batch, Mapping) else None
                mine = isinstance(meta, Mapping) and meta.get("extractor_run") == state.token
                if mine and isinstance(meta, Mapping) and meta.get("extractor_part") == str(number + 1):
                    return dict(batch)
            if not page.get("has_more"):
                return None
            after = str(data[-1].get("id"))
        return None

    async def _call(self, call: Any) -> Any:
        """An awaited Files/Batches call; a 404 says the endpoint has no batch API."""
        try:
            return await call
        except NotFoundError as exc:
            raise ConfigurationError(
                f"{self.extractor.base_url} does not offer a batch API ({exc}); run without --batch-api "
                "(the synchronous run)"
            ) from None

    @staticmethod
    def _update(entry: BatchEntry, batch: Mapping[str, Any]) -> None:
        entry.batch_id = str(batch.get("id"))
        entry.status = str(batch.get("status") or "unknown")
        entry.output_file_id = batch.get("output_file_id") or entry.output_file_id
        entry.error_file_id = batch.get("error_file_id") or entry.error_file_id
        counts = batch.get("request_counts")
        if isinstance(counts, Mapping):
            entry.counts = {k: int(v) for k, v in counts.items() if isinstance(v, int)}

    # --- polling, collecting, cancelling ---------------------------------------------------

    async def refresh(self) -> list[BatchEntry]:
        """Every batch, its status looked up again unless it is finished."""
        state = self.state
        if state is None:
            return []
        for entry in state.batches:
            if entry.batch_id is not None and entry.status not in TERMINAL:
                self._update(entry, await self._call(self._transport.api("GET", f"batches/{entry.batch_id}")))
        self._save()
        return list(state.batches)

    @property
    def finished(self) -> bool:
        """Whether every batch has ended (completed, failed, expired or cancelled)."""
        return self.state is not None and all(entry.status in TERMINAL for entry in self.state.batches)

    async def wait(self, poll_interval: float = 30.0) -> None:
        """Poll until every batch has ended."""
        await self.refresh()
        while not self.finished:
            await asyncio.sleep(poll_interval)
            await self.refresh()

    async def cancel(self) -> list[BatchEntry]:
        """Ask the provider to cancel every batch still running."""
        state = self.state
        if state is None:
            return []
        for entry in state.batches:
            if entry.batch_id is not None and entry.status not in TERMINAL:
                self._update(entry, await self._call(self._transport.api("POST", f"batches/{entry.batch_id}/cancel")))
        self._save()
        return list(state.batches)

    async def _answers(self) -> dict[str, tuple[BatchEntry, dict[str, Any] | None, str]]:
        """For every input sent in a finished batch: its batch, its answer (None when it has none), and
        why it has none."""
        state = self.state
        out: dict[str, tuple[BatchEntry, dict[str, Any] | None, str]] = {}
        if state is None:
            return out
        for entry in state.batches:
            if entry.status not in TERMINAL:
                continue
            records: dict[str, dict[str, Any]] = {}
            for file_id in (entry.output_file_id, entry.error_file_id):
                if file_id:
                    records.update(
                        _by_custom_id(await self._call(self._transport.download(f"files/{file_id}/content")))
                    )
            for custom_id in entry.requests:
                record = records.get(custom_id)
                out[custom_id] = (entry, _answer(record), _failure(record, entry.status))
        return out

    def status(self) -> list[BatchEntry]:
        """Sync `refresh`."""
        return run_sync(self.refresh())

    def collect(self) -> list[BatchResult[Any]]:
        """Sync `results` for the submitted inputs, as a list."""

        async def gather() -> list[BatchResult[Any]]:
            return [result async for result in self.results()]

        return run_sync(gather())

    async def results(
        self, items: Iterable[BatchItem] | None = None, **runner_options: Any
    ) -> AsyncIterator[BatchResult[Any]]:
        """One result per input of `items` that is in a finished batch or goes synchronously: the batch's
        answer read and validated (re-asked synchronously when invalid), or the input extracted
        synchronously when its line failed, expired or was never sent in a batch. Inputs of batches
        still running are left for a later call. With `max_cost`, the synchronous inputs run within
        what the batch answers (and their re-asks) left of it."""
        state = self.state
        if state is None:
            return
        answers = await self._answers()
        sync = set(state.sync)
        wanted = [i for i in (self.items if items is None else items) if i.id in answers or i.id in sync]
        for item in wanted:
            entry = answers.get(item.id)
            if entry is None:
                item.meta = {**item.meta, "path": "sync"}
            else:
                batch, answer, why = entry
                item.meta = {**item.meta, "path": "batch" if answer is not None else "sync", "batch_id": batch.batch_id}
                if answer is None:
                    item.meta["batch_failure"] = why

        def answered(item: BatchItem) -> Any:
            entry = answers.get(item.id)
            if entry is None:
                return None
            batch, data, _ = entry
            expected = batch.requests[item.id]
            if data is None:
                return None

            async def first(body: dict[str, Any]) -> Sent | None:
                if ResponseCache.key_for(self.extractor.base_url, body) != expected:
                    log.warning("%s: the request differs from the one sent in the batch: sent again", item.id)
                    return None
                return Sent(ChatResponse(data, 0.0), price_factor=BATCH_DISCOUNT)

            return first

        # first the inputs the batches answered (their re-asks synchronously), then those that go
        # synchronously, within what is left of the budget
        spent = 0.0
        answered_items = [i for i in wanted if i.meta.get("path") == "batch"]
        sync_items = [i for i in wanted if i.meta.get("path") != "batch"]
        for group, budget in ((answered_items, None), (sync_items, self.max_cost)):
            if not group:
                continue
            runner: BatchRunner[Any] = BatchRunner(
                self.extractor,
                self.schema,
                concurrency=self.concurrency,
                options=self.options,
                answers=answered,
                max_cost=None if budget is None else max(budget - spent, 0.0),
                **runner_options,
            )
            async for result in runner.run(group):
                spent += result.usage.cost
                yield result
        for entry_ in state.batches:
            if entry_.status in TERMINAL:
                entry_.collected = True
        self._save()
