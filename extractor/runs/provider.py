"""Provider batch APIs: the same requests as a synchronous run, sent through OpenAI's Files and Batches
endpoints (and the hosts that copy them), answered within 24 hours at about half the price.

A `ProviderBatch` keeps its state in a JSON file (`OUT.batches.json` for the CLI) and the planned
batch files in a folder beside it (`OUT.batches.d/`). Each step is recorded before it is taken —
planned, file written, upload started, uploaded, create started, created, polled, collected — so
that a run killed at any point is picked up exactly where it stopped by running it again:

- a planned batch whose file was not written is planned again (nothing of it reached the provider);
- a written file is uploaded (again, when the upload's answer was lost: a stray file costs nothing);
  a file the provider refuses (a 4xx) sends its inputs synchronously instead;
- a batch whose create was started is first looked up by the run's token in the provider's batch
  list, and created only when it is not there: a create whose answer was lost (a 500, a dropped
  connection) never makes a second batch for the same lines, in the same run or a later one;
- an ended batch is collected once: each input handed out is recorded (`BatchState.done`) and never
  collected, nor extracted, again (`results()` is idempotent).

Inputs left out by the budget, and inputs given since, are planned into new batches by a later
`submit`, within what the budget has left.

Each line's body is exactly the first request the synchronous path sends for that input
(`Extractor.arequests`), its `custom_id` the input's id, and the state keeps each request's
fingerprint. Collecting runs every input through the synchronous path (`BatchRunner`) with the
batch's answer given for its first request, when that request is the one the batch was sent: the
answer is read, repaired and validated the same way, and re-asked synchronously when invalid. An
output line is used only when it proves whose answer it is: a `custom_id` answered twice with
different answers, a malformed line, an error line of any shape are never an input's answer (nor a
crash): those inputs, lines that failed, expired or were cancelled, and long documents sent in
several parts, are extracted synchronously, `meta.batch_failure` saying why.

The budget (`--max-cost`) is one ledger for the whole batch run (`batch.budget.Budget`), kept in the
state across runs: each line is admitted at the batch price (`BATCH_DISCOUNT`: its first answer, and
one re-ask at the synchronous price); the synchronous inputs run within what is left after the
batches still running are counted; collected batches settle at what their answers cost. What the
provider bills is learned first from one input extracted synchronously before any line is admitted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._portal import run_sync
from ..client.attempts import Sent
from ..client.cache import ResponseCache
from ..client.transport import ChatResponse
from ..documents.plan import RequestEstimate
from ..errors import APIError, BudgetExceededError, ConfigurationError, ExtractorError, NotFoundError, ServerError
from ..sources import estimate_tokens
from .budget import Budget, Prices, input_cost
from .runner import BatchItem, BatchResult, BatchRunner

if TYPE_CHECKING:
    from ..client.extractor import Extractor

__all__ = [
    "BATCH_DISCOUNT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_LINES",
    "BatchEntry",
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
_STATE_VERSION: Final = 2
_ENDPOINT: Final = "/v1/chat/completions"
_WINDOW: Final = 256  # inputs whose requests are built at once
_CREATE_ATTEMPTS: Final = 5  # tries at POST /batches (each after looking the batch up)
_SAVE_EVERY: Final = 2.0  # seconds between two saves of the state while results are handed out


def state_path_for(output: Path) -> Path:
    """Where the batch state of a run writing `output` is kept: `OUT.batches.json` beside it."""
    return output.with_name(output.name + ".batches.json")


@dataclass
class BatchEntry:
    """One provider batch: its `part` number in the run, the inputs it holds (id -> the fingerprint of the
    request sent), how far it got (`file_written`, `upload_started`, `file_id`, `create_started`,
    `batch_id`), its status and files at the provider, when it was created, what its lines were admitted
    at (`reserved`, USD at list price), and whether it was collected."""

    requests: dict[str, str]
    part: int = 0
    file_written: bool = False
    upload_started: bool = False
    file_id: str | None = None
    create_started: bool = False
    batch_id: str | None = None
    status: str = "planned"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    created_at: float | None = None
    reserved: float = 0.0
    collected: bool = False

    @property
    def ended(self) -> bool:
        """Whether the provider has finished with it (completed, failed, expired or cancelled)."""
        return self.batch_id is not None and self.status in TERMINAL


@dataclass
class BatchState:
    """Everything a batch run must remember across restarts (no request bodies, no key): its batches, the
    inputs that go synchronously, those left out for the budget, those handed out (`done`), and the
    ledger (`spent`; `billed` against `listed`: what the provider bills against its list prices)."""

    token: str
    model: str
    base_url: str
    batches: list[BatchEntry] = field(default_factory=list)
    #: inputs sent synchronously: long documents in several parts, inputs whose line could not be built
    sync: list[str] = field(default_factory=list)
    #: inputs left out for the budget (planned into a new batch when the budget allows)
    not_started: list[str] = field(default_factory=list)
    #: inputs whose result was handed out: never collected or extracted again
    done: list[str] = field(default_factory=list)
    spent: float = 0.0
    billed: float = 0.0
    listed: float = 0.0
    #: the longest answer seen so far (tokens), for the estimates of later lines
    longest_answer: int | None = None
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
        if not isinstance(data, dict) or data.get("version") not in (1, _STATE_VERSION):
            raise ConfigurationError(f"{path}: not a batch state file this tool wrote")
        try:
            if data["version"] == 1:  # the first layout: the steps are told by what the entries hold
                for number, entry in enumerate(data.get("batches", []), 1):
                    entry.update(part=number, file_written=False, upload_started=bool(entry.get("file_id")))
                    entry["create_started"] = bool(entry.get("file_id"))
                data["version"] = _STATE_VERSION
            batches = [BatchEntry(**entry) for entry in data.pop("batches", [])]
            return cls(**data, batches=batches)
        except (TypeError, KeyError, AttributeError) as exc:
            raise ConfigurationError(f"{path}: not a batch state file this tool wrote ({exc})") from None

    def save(self, path: Path) -> None:
        """Write the state atomically (a crash leaves the old or the new file, never half of one)."""
        _write_atomic(path, json.dumps(asdict(self), indent=1).encode())

    @property
    def submitted(self) -> set[str]:
        """The inputs of every batch that reached the provider (uploaded or created)."""
        return {i for entry in self.batches if entry.file_id is not None for i in entry.requests}

    def known(self) -> set[str]:
        """Every input the state has a place for: in a batch, synchronous, or done."""
        return {i for entry in self.batches for i in entry.requests} | set(self.sync) | set(self.done)


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _line(custom_id: str, body: Mapping[str, Any]) -> bytes:
    line = {"custom_id": custom_id, "method": "POST", "url": _ENDPOINT, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _groups(lines: list[bytes], max_lines: int, max_bytes: int) -> list[list[int]]:
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


@dataclass(frozen=True)
class _Line:
    """What an input's output or error lines say: its answer (None when there is none) and why not."""

    answer: dict[str, Any] | None
    failure: str


def _read_lines(raw: bytes, entry: BatchEntry) -> dict[str, _Line]:
    """The output and error lines of `entry` by input: an answer is used only when the input's lines agree
    on it; a line that is not JSON, not an object, or for an input the batch does not hold is passed over."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for text in raw.splitlines():
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            log.warning("batch %s: an output line that is not JSON was passed over", entry.batch_id)
            continue
        custom_id = record.get("custom_id") if isinstance(record, dict) else None
        if not isinstance(custom_id, str) or custom_id not in entry.requests:
            log.warning("batch %s: an output line for no input of the batch was passed over", entry.batch_id)
            continue
        seen.setdefault(custom_id, []).append(record)
    out: dict[str, _Line] = {}
    for custom_id, records in seen.items():
        answers = [_answer(r) for r in records]
        distinct = {json.dumps(a, sort_keys=True) for a in answers if a is not None}
        if len(distinct) > 1:
            out[custom_id] = _Line(None, f"answered {len(records)} times with different answers: none is used")
            continue
        answer = next((a for a in answers if a is not None), None)
        out[custom_id] = _Line(answer, "" if answer is not None else _failure(records[-1]))
    return out


def _answer(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The chat completion a batch output line carries, when it succeeded."""
    response = record.get("response")
    if not isinstance(response, Mapping) or response.get("status_code") != 200:
        return None
    body = response.get("body")
    return dict(body) if isinstance(body, Mapping) and body.get("choices") else None


def _message(value: Any) -> str:
    """A few words from an error of any shape (`{"code", "message"}`, a string, nothing)."""
    if isinstance(value, Mapping):
        code, message = value.get("code"), value.get("message")
        return " ".join(str(p) for p in (f"{code}:" if code else None, message) if p).strip() or "error"
    return str(value)[:300] if value else ""


def _failure(record: Mapping[str, Any]) -> str:
    """Why a line has no answer, in a few words (whatever shape its error takes)."""
    error = record.get("error")
    if error:
        return _message(error)
    response = record.get("response")
    if isinstance(response, Mapping):
        body = response.get("body")
        said = _message(body.get("error")) if isinstance(body, Mapping) else _message(body)
        return f"HTTP {response.get('status_code')}: {said}".strip()
    return "failed"


class ProviderBatch:
    """One run through a provider's batch API, resumable from its state file (see the module docstring).

    `submit(items)` plans the inputs not planned yet and carries every batch as far as it goes without
    waiting (file, upload, create); `refresh()` polls; `results(items)` hands out one `BatchResult` per
    input not handed out before, of the ended batches and the synchronous inputs (`meta["path"]`: "batch"
    or "sync"); `run(items)` does all of it until every batch has ended (or, with `wait=False`, once);
    `cancel()` cancels the running batches.
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
        self.folder = state_path.with_name(state_path.name.removesuffix(".json") + ".d")
        self.options = dict(options or {})
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.max_cost = max_cost
        self.concurrency = concurrency
        self.state = BatchState.load(state_path)
        self._transport = extractor._transport
        self._prices: Prices | None = None
        #: results made before their turn (the input extracted to learn the provider's bill), by id
        self._ready: dict[str, BatchResult[Any]] = {}
        #: the inputs of a batch submitted from the library (`Extractor.asubmit_batch`)
        self.items: list[BatchItem] = []
        #: options of the synchronous runs (rates, cache, file limits), set by `run`
        self.runner_options: dict[str, Any] = {}

    @property
    def model(self) -> str:
        return str(self.options.get("model") or self.extractor.model)

    def _save(self) -> None:
        if self.state is not None:
            self.state.save(self.state_path)

    def _new_state(self) -> BatchState:
        if self.state is None:
            self.state = BatchState(token=uuid.uuid4().hex, model=self.model, base_url=self.extractor.base_url)
            self._save()
        return self.state

    # --- the budget ------------------------------------------------------------------------

    def ledger(self) -> Budget | None:
        """The run's budget as the state has it: spent so far, and the batches not collected reserved."""
        state = self.state
        if self.max_cost is None or state is None:
            return None
        budget = Budget(self.max_cost, spent=state.spent, billed=state.billed, listed=state.listed)
        for entry in state.batches:
            if not entry.collected and entry.reserved:
                budget.hold(("batch", entry.part), entry.reserved)
        return budget

    def _learn(self, budget: Budget) -> None:
        """Keep what `budget` (a synchronous run within this run's budget) spent and learned."""
        state = self.state
        if state is not None:
            state.spent, state.billed, state.listed = budget.spent, budget.billed, budget.listed

    async def _prices_known(self) -> Prices:
        if self._prices is None:
            info = await self.extractor.model_info(self.model)
            if info.prompt_price is None or info.completion_price is None:
                raise ConfigurationError(
                    f"max_cost cannot be kept: the prices of {self.model} are not known; run without max_cost"
                )
            self._prices = Prices(info.prompt_price, info.completion_price)
        return self._prices

    async def _line_cost(self, body: Mapping[str, Any]) -> float:
        """What a line may cost at list price: its first answer at the batch price, one re-ask synchronously;
        the prompt with everything the body sends (messages, schema, tools)."""
        prices = await self._prices_known()
        state = self.state
        request = [RequestEstimate(estimate_tokens(json.dumps(body, ensure_ascii=False)), None)]
        longest = state.longest_answer if state is not None else None
        batch = Prices(prices.prompt, prices.completion, BATCH_DISCOUNT)
        return input_cost(request, batch, longest_answer=longest) + input_cost(request, prices, longest_answer=longest)

    # --- submitting -----------------------------------------------------------------------

    async def _bodies(self, items: list[BatchItem]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
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
        try:
            for start in range(0, len(items), _WINDOW):
                window = items[start : start + _WINDOW]
                for item, requests in zip(window, await asyncio.gather(*(one(i) for i in window)), strict=True):
                    if requests is not None and len(requests) == 1:
                        bodies.append((item.id, requests[0]))
                    else:  # failed to load, or a long document in parts: merged after every part's answer
                        sync.append(item.id)
        finally:
            await runner.aclose()
        return bodies, sync

    def _forget_unwritten(self) -> None:
        """Planned batches whose file was not written (or is gone): nothing of them reached the provider, so
        their inputs are planned again."""
        state = self.state
        if state is None:
            return
        kept = []
        for entry in state.batches:
            written = entry.file_written and self._file(entry).is_file()
            if entry.file_id is None and not written:
                log.info("batch part %d was planned but its file not written: planned again", entry.part)
                continue
            kept.append(entry)
        state.batches = kept

    def _file(self, entry: BatchEntry) -> Path:
        return self.folder / f"part-{entry.part}.jsonl"

    async def submit(self, items: Iterable[BatchItem], *, done: set[str] | None = None) -> BatchState:
        """Plan the inputs of `items` that have no place yet (new ones, those left out for the budget; not
        those in `done`), within what the budget has left, then carry every batch as far as it goes without
        waiting: its file written beside the state, uploaded, the batch created. Called again (in this run
        or a later one), it picks up where it stopped and submits nothing twice."""
        state = self._new_state()
        self._forget_unwritten()
        listed = list(items)
        known = state.known() | (done or set())
        todo = [i for i in listed if i.id not in known]
        if todo:
            bodies, sync = await self._bodies(todo)
            state.sync.extend(sync)
            bodies = await self._probe(bodies, listed)
            admitted, left = await self._admit(bodies)
            self._plan(admitted)
            state.not_started = [custom_id for custom_id, _ in left]
            self._save()
        await self._send()
        return state

    async def _probe(
        self, bodies: list[tuple[str, dict[str, Any]]], items: list[BatchItem]
    ) -> list[tuple[str, dict[str, Any]]]:
        """With a budget and nothing learned yet of what the provider bills, the first input is extracted
        synchronously now (its result handed out first by `results`): the lines are then admitted at what
        the provider really bills. The other bodies are returned."""
        state = self.state
        budget = self.ledger()
        if budget is None or budget.learned or not bodies or state is None:
            return bodies
        first = next(i for i in items if i.id == bodies[0][0])
        first.meta = {**first.meta, "path": "sync"}
        probed = [r async for r in self._run_sync([first], budget, self.runner_options)]
        self._learn(budget)
        if not probed or probed[0].skipped:
            return bodies  # not even this one fits: nothing is admitted
        self._ready[first.id] = probed[0]
        state.sync.append(first.id)
        return bodies[1:]

    async def _admit(
        self, bodies: list[tuple[str, dict[str, Any]]]
    ) -> tuple[list[tuple[str, dict[str, Any], float]], list[tuple[str, dict[str, Any]]]]:
        """The bodies that fit the budget, in order, with what each is reserved at; and those that do not."""
        budget = self.ledger()
        if budget is None:
            return [(i, b, 0.0) for i, b in bodies], []
        admitted: list[tuple[str, dict[str, Any], float]] = []
        for index, (custom_id, body) in enumerate(bodies):
            cost = await self._line_cost(body)
            if not budget.reserve(("line", custom_id), cost):
                return admitted, bodies[index:]
            admitted.append((custom_id, body, cost))
        return admitted, []

    def _plan(self, admitted: list[tuple[str, dict[str, Any], float]]) -> None:
        """New batches for `admitted`, within the provider's limits; each recorded, then its file written."""
        state = self.state
        if state is None or not admitted:
            return
        base_url = self.extractor.base_url
        lines = [_line(custom_id, body) for custom_id, body, _ in admitted]
        part = max((e.part for e in state.batches), default=0)
        entries: list[tuple[BatchEntry, bytes]] = []
        for group in _groups(lines, self.max_lines, self.max_bytes):
            part += 1
            requests = {admitted[i][0]: ResponseCache.key_for(base_url, admitted[i][1]) for i in group}
            reserved = sum(admitted[i][2] for i in group)
            entries.append((BatchEntry(requests, part=part, reserved=reserved), b"".join(lines[i] for i in group)))
        state.batches.extend(entry for entry, _ in entries)
        self._save()  # planned: before any file is written
        self.folder.mkdir(parents=True, exist_ok=True)
        for entry, content in entries:
            _write_atomic(self._file(entry), content)
            entry.file_written = True
            self._save()

    async def _send(self) -> None:
        """Every batch as far as it goes: uploaded, then created."""
        state = self.state
        if state is None:
            return
        for entry in list(state.batches):
            if entry.batch_id is not None:
                continue
            if entry.file_id is None and not await self._upload(state, entry):
                continue
            await self._create(state, entry)

    async def _upload(self, state: BatchState, entry: BatchEntry) -> bool:
        """Upload the batch's file; False when the provider refuses it (its inputs then go synchronously)."""
        entry.upload_started = True
        self._save()
        content = self._file(entry).read_bytes()
        name = f"extractor-{state.token}-{entry.part}.jsonl"
        try:
            uploaded = await self._call(self._transport.upload("files", {"purpose": "batch"}, name, content))
        except APIError as exc:
            if _transient(exc):
                raise  # not answered: the next run uploads it again
            log.warning("the provider refused batch part %d (%s): its %d inputs go synchronously",
                        entry.part, exc, len(entry.requests))  # fmt: skip
            state.batches.remove(entry)
            state.sync.extend(entry.requests)
            self._save()
            return False
        entry.file_id = str(uploaded["id"])
        self._save()
        return True

    async def _create(self, state: BatchState, entry: BatchEntry) -> None:
        """Create the batch for the uploaded file, never twice: a create that may have happened (started
        before, or whose answer was lost) is first looked up by the run's token."""
        found = await self._created_before(entry) if entry.create_started else None
        entry.create_started = True
        self._save()
        metadata = {"extractor_run": state.token, "extractor_part": str(entry.part)}
        body = {"input_file_id": entry.file_id, "endpoint": _ENDPOINT, "completion_window": "24h", "metadata": metadata}
        tries = 0
        while found is None:
            tries += 1
            try:
                found = await self._call(self._transport.api("POST", "batches", body, retry=False))
            except APIError as exc:
                if not _transient(exc) or tries >= _CREATE_ATTEMPTS:
                    raise
                log.warning("creating batch part %d: %s; looking it up before trying again", entry.part, exc)
                found = await self._created_before(entry)
                if found is None:
                    await asyncio.sleep(min(0.5 * 2**tries, 10.0))
        self._update(entry, found)
        entry.created_at = entry.created_at or time.time()
        self._save()
        log.info("batch %s: %d inputs, %s", entry.batch_id, len(entry.requests), entry.status)

    async def _created_before(self, entry: BatchEntry) -> dict[str, Any] | None:
        """The batch this run created for `entry`, if the provider has it (found by its metadata)."""
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
                if mine and isinstance(meta, Mapping) and meta.get("extractor_part") == str(entry.part):
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
        created = batch.get("created_at")
        if isinstance(created, int | float) and not entry.created_at:
            entry.created_at = float(created)
        counts = batch.get("request_counts")
        if isinstance(counts, Mapping):
            entry.counts = {k: int(v) for k, v in counts.items() if isinstance(v, int)}

    # --- polling, collecting, cancelling ---------------------------------------------------

    async def refresh(self) -> list[BatchEntry]:
        """Every batch, its status looked up again unless it has ended."""
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
        return self.state is not None and all(entry.ended for entry in self.state.batches)

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

    def waiting(self) -> list[tuple[BatchEntry, int]]:
        """The batches not ended yet, with how many inputs not handed out each still holds."""
        state = self.state
        if state is None:
            return []
        done = set(state.done)
        return [(entry, sum(1 for i in entry.requests if i not in done)) for entry in state.batches if not entry.ended]

    async def _answers(self) -> dict[str, tuple[BatchEntry, _Line]]:
        """For every input of an ended batch not collected yet: its batch and what its lines say."""
        state = self.state
        out: dict[str, tuple[BatchEntry, _Line]] = {}
        if state is None:
            return out
        for entry in state.batches:
            if not entry.ended or entry.collected:
                continue
            raw = b""
            for file_id in (entry.output_file_id, entry.error_file_id):
                if file_id:
                    raw += await self._call(self._transport.download(f"files/{file_id}/content")) + b"\n"
            lines = _read_lines(raw, entry)
            for custom_id in entry.requests:
                out[custom_id] = (
                    entry,
                    lines.get(custom_id) or _Line(None, f"no answer in the batch ({entry.status})"),
                )
        return out

    def status(self) -> list[BatchEntry]:
        """Sync `refresh`."""
        return run_sync(self.refresh())

    def collect(self) -> list[BatchResult[Any]]:
        """Sync `results` for the submitted inputs, as a list."""

        async def gather() -> list[BatchResult[Any]]:
            return [result async for result in self.results()]

        return run_sync(gather())

    def _first(self, answers: dict[str, tuple[BatchEntry, _Line]]) -> Callable[[BatchItem], Any]:
        """For `BatchRunner(answers=...)`: each input's batch answer, given for its first request when that
        request is the one the batch was sent."""

        def answered(item: BatchItem) -> Any:
            found = answers.get(item.id)
            data = found[1].answer if found is not None else None
            if found is None or data is None:
                return None
            expected = found[0].requests[item.id]

            async def first(body: dict[str, Any]) -> Sent | None:
                if ResponseCache.key_for(self.extractor.base_url, body) != expected:
                    log.warning("%s: the request differs from the one sent in the batch: sent again", item.id)
                    return None
                return Sent(ChatResponse(data, 0.0), price_factor=BATCH_DISCOUNT)

            return first

        return answered

    async def _run_sync(
        self, items: list[BatchItem], budget: Budget | None, runner_options: Mapping[str, Any], answers: Any = None
    ) -> AsyncIterator[BatchResult[Any]]:
        runner: BatchRunner[Any] = BatchRunner(
            self.extractor,
            self.schema,
            concurrency=self.concurrency,
            options=self.options,
            answers=answers,
            budget=budget,
            **runner_options,
        )
        if budget is not None:
            await runner._price_the_budget()
        async for result in runner.run(items):
            yield result

    async def results(
        self, items: Iterable[BatchItem] | None = None, **runner_options: Any
    ) -> AsyncIterator[BatchResult[Any]]:
        """One result per input of `items` (default: those submitted from the library) not handed out before,
        that is in an ended batch or goes synchronously: the batch's answer read and validated (re-asked
        synchronously when invalid), or the input extracted synchronously when its line failed, expired or
        was never sent in a batch. Inputs of batches still running are left for a later call. With
        `max_cost`, the synchronous inputs run within what the batches left of it. Each input is recorded
        as done once its result has been taken: called again, nothing is handed out twice."""
        state = self.state
        if state is None:
            return
        answers = await self._answers()
        done, sync = set(state.done), set(state.sync)
        given = self.items if items is None else list(items)
        wanted = [i for i in given if i.id not in done and (i.id in answers or i.id in sync)]
        for item in wanted:
            found = answers.get(item.id)
            if found is None:
                item.meta = {**item.meta, "path": "sync"}
                continue
            entry, line = found
            item.meta = {
                **item.meta,
                "path": "batch" if line.answer is not None else "sync",
                "batch_id": entry.batch_id,
            }
            if line.answer is None:
                item.meta["batch_failure"] = line.failure
        answered = [i for i in wanted if i.meta.get("path") == "batch"]
        synchronous = [i for i in wanted if i.meta.get("path") != "batch" and i.id not in self._ready]
        ready = [self._ready.pop(i.id) for i in wanted if i.id in self._ready]
        handed = _Handed(self, state, answers, {i.id for i in given})
        for result in ready:
            yield result
            handed.took(result)
        if answered:  # already paid for: read whatever the budget, then settled into it
            async for result in self._run_sync(answered, None, runner_options, self._first(answers)):
                yield result
                handed.took(result, settle=True)
        if synchronous:
            budget = self.ledger()
            async for result in self._run_sync(synchronous, budget, runner_options):
                yield result
                handed.took(result)
                if budget is not None:
                    self._learn(budget)
        handed.close()

    async def run(
        self,
        items: Iterable[BatchItem],
        *,
        wait: bool = True,
        poll: float = 30.0,
        report: Callable[[list[BatchEntry]], None] | None = None,
        **runner_options: Any,
    ) -> AsyncIterator[BatchResult[Any]]:
        """The whole batch run for `items`: submit, poll until every batch has ended (`report` told of each
        look), hand out the results; then submit what the budget now admits of what was left out, until
        nothing more can go. With `wait=False`: submit once, hand out what is ready, return."""
        listed = list(items)
        self.runner_options = dict(runner_options)
        while True:
            await self.submit(listed)
            planned = len(self.state.batches) if self.state else 0
            await self.refresh()
            while wait and not self.finished:
                if report is not None:
                    report(self.state.batches if self.state else [])
                await asyncio.sleep(poll)
                await self.refresh()
            if report is not None:
                report(self.state.batches if self.state else [])
            async for result in self.results(listed, **runner_options):
                yield result
            state = self.state
            if not wait or state is None or not state.not_started:
                return
            await self.submit(listed)
            if len(state.batches) == planned:  # the budget admits nothing more of what was left out
                return


class _Handed:
    """Bookkeeping of the results handed out by `ProviderBatch.results`: each input recorded as done once
    taken, batches collected once all theirs are, the state saved every few seconds and at the end."""

    def __init__(
        self, job: ProviderBatch, state: BatchState, answers: dict[str, tuple[BatchEntry, _Line]], given: set[str]
    ) -> None:
        self.job = job
        self.state = state
        self.answers = answers
        self.given = given
        self.done = set(state.done)
        self.saved = time.monotonic()

    def took(self, result: BatchResult[Any], *, settle: bool = False) -> None:
        state = self.state
        if result.skipped:  # not started: left for the budget (a later run plans it), or the run stopped
            if isinstance(result.error, BudgetExceededError) and result.id not in state.not_started:
                state.not_started.append(result.id)
            return
        if result.id not in self.done:
            self.done.add(result.id)
            state.done.append(result.id)
        if settle:  # a batch answer: what it cost is spent
            state.spent += result.usage.cost
            if result.usage.list_cost > 0 and result.usage.cost > 0:
                state.billed += result.usage.cost
                state.listed += result.usage.list_cost
        answers = [a.usage.completion_tokens for a in (result.result.attempts if result.result else [])]
        if answers:
            state.longest_answer = max(state.longest_answer or 0, *answers)
        found = self.answers.get(result.id)
        if found is not None:
            entry = found[0]
            if not entry.collected and all(i in self.done for i in entry.requests):
                entry.collected = True
        if time.monotonic() - self.saved >= _SAVE_EVERY:
            self.job._save()
            self.saved = time.monotonic()

    def close(self) -> None:
        """Batches whose every input was handed out (or is no longer given) are collected; the state saved."""
        for entry in self.state.batches:
            if entry.ended and not entry.collected:
                entry.collected = all(i in self.done or i not in self.given for i in entry.requests)
        self.job._save()


def _transient(exc: APIError) -> bool:
    return isinstance(exc, ServerError) or exc.status is None or exc.status in (408, 409, 429)
