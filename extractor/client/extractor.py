"""`Extractor`: typed records from texts, documents and images over any OpenAI-compatible endpoint.

The attempt loop is async; the sync methods run it on a background loop (`_portal`). One
extraction: choose the mode, send, read the answer with the mode, parse it with the compiled
schema; re-ask with the errors when the answer is invalid (only the latest failure is kept in the
conversation), retry once with more room when the answer was cut off for length, refuse to
re-ask a refusal. A document too long for one request is split into chunks, each extracted, and
the results merged; with `evidence=True` every extracted string is looked up in the source text.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar, overload
from urllib.parse import urlsplit

import httpx
from typing_extensions import Unpack

from .._portal import at_portal_exit, iterate_sync, run_sync
from ..documents.chunking import Chunk
from ..documents.parts import extract_planned
from ..documents.plan import Part, Plan, plan_document
from ..errors import (
    ConfigurationError,
    ExtractorError,
)
from ..observe.events import (
    DEFAULT_HOOK_TIMEOUT,
    DocumentSplit,
    ExtractionFailed,
    ExtractionStarted,
    Hook,
    Watch,
    global_hooks,
    new_call_id,
    take_input,
)
from ..results import Attempt, ExtractResult, Usage
from ..schema import CompiledSchema, compile_schema
from ..sources import (
    Document,
    SourceText,
    evidence_texts,
    file_parser_plugin,
    find_evidence_in,
    to_parts,
)
from .attempts import AttemptLoop, Sent, annotate
from .cache import ResponseCache, open_cache
from .catalog import DEFAULT_MODEL, ModelCatalog, ModelInfo, default_cache_dir
from .modes import Message, Mode, choose_mode, get_mode, mode_names
from .prompting import with_examples
from .run_context import current_run
from .settings import BATCH_OPTIONS, CallOptions, ManyOptions, Settings
from .streaming import Listener, stream_records, stream_values
from .transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ChatResponse,
    RetryPolicy,
    Secret,
    Transport,
    api_key_for,
)

__all__ = ["DEFAULT_INSTRUCTIONS", "OPENROUTER_BASE_URL", "CallOptions", "Extractor", "ManyOptions"]

if TYPE_CHECKING:
    from ..runs.provider import ProviderBatch
    from ..runs.runner import BatchResult

log = logging.getLogger("extractor")

T = TypeVar("T")

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
"""The default endpoint: OpenRouter's OpenAI-compatible API."""
DEFAULT_INSTRUCTIONS = (
    "You extract structured data from the user's input. Use only what the input states; where it "
    "does not say, use null. Never invent values."
)
"""The system message sent unless `instructions=` says otherwise."""
_SAMPLING = ("temperature", "top_p", "max_tokens", "stop", "seed", "frequency_penalty", "presence_penalty")
_ROUTING = ("reasoning", "provider", "plugins")


#: what to extract from: a text, a `Document`, an `Image`, a file path, a list of these (sent in order),
#: or a list of chat messages (sent as they are)
Source = str | os.PathLike[str] | Document | Any

#: answers a first request obtained another way (a provider batch): the answer, or None to send it
FirstAnswer = Callable[[dict[str, Any]], Awaitable[Sent | None]]


class _Captured(Exception):
    """Stops an extraction at its first request (`arequests`); never seen outside this module."""


def _needs_key(base_url: str) -> bool:
    """Whether an endpoint is a remote service (a key is needed) rather than a local server."""
    host = urlsplit(base_url).hostname or ""
    if host in ("localhost", "") or host.endswith(".localhost"):
        return False
    try:
        address = ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_unspecified)


class Extractor:
    """Extracts typed records from texts, documents and images with a model behind an OpenAI-compatible
    chat-completions endpoint (OpenRouter, OpenAI, Mistral, vLLM, llama.cpp's server, Ollama, ...).

    Every option is documented here, once; the guides and the README link to this list. The sampling,
    prompt, long-document and hook options are defaults for every call: a call (`extract`,
    `extract_result`, `stream`, `extract_many`, ...) may pass any of them again by name to override it
    (`CallOptions`), and `None` in a call removes a sampling default. A call also takes `merge`,
    `context` and `examples` (see `CallOptions`); `extract_many` takes the batch options of `ManyOptions`.

    Args:
        model: The model id at the endpoint (default `mistralai/mistral-small-2603`, `DEFAULT_MODEL`).
        base_url: The endpoint's API base URL: the argument, else `$EXTRACTOR_BASE_URL`, else
            `https://openrouter.ai/api/v1` (`OPENROUTER_BASE_URL`).
        api_key: The argument, else `$EXTRACTOR_API_KEY`, else `$OPENROUTER_API_KEY` for openrouter.ai or
            `$OPENAI_API_KEY` for api.openai.com (a provider's variable is never sent to another host: use
            `EXTRACTOR_API_KEY` or `api_key=` for any other endpoint). A remote endpoint without a key is a
            `ConfigurationError` before any request; a local server needs none. The key is held in a
            `Secret`, added per request, and never appears in a message, log line, repr or file.
        mode: How the schema is sent: `"json_schema"` (the compiled schema as `response_format`),
            `"tools"` (one function tool, forced with `tool_choice: "required"`), `"json"`
            (`response_format: json_object`, the schema in the instructions as a compact type signature),
            `"prompt"` (the schema in the instructions only), or `"auto"` (default): chosen from the
            model's `supported_parameters` in `GET /models`, falling back to the next mode once when the
            endpoint rejects the schema or the mode (`result.fallbacks`).
        max_retries: How many times an invalid answer is re-asked with its errors (default 2).
        instructions: The system message (default `DEFAULT_INSTRUCTIONS`; `None` for none); its
            `{placeholders}` are filled from a call's `context` (`{{`/`}}` for literal braces).
        temperature: Sampling temperature sent with every request (default: the endpoint's).
        top_p: Nucleus sampling (default: the endpoint's).
        max_tokens: The most tokens one answer may have. When none is set, every request still carries a
            ceiling: about the schema's size (1,024 to 4,096 tokens) for a record of fixed shape, twice the
            source's tokens plus 1,024 (at least 4,096) when the schema has lists, never past the model's
            completion limit nor past what its context leaves beside the prompt.
        stop: Stop sequence(s).
        seed: Sampling seed, for endpoints that honour it.
        frequency_penalty: Sent as given.
        presence_penalty: Sent as given.
        reasoning: OpenRouter's reasoning settings, e.g. `{"effort": "low"}`.
        provider: OpenRouter's provider routing, e.g. `{"require_parameters": True}`.
        plugins: OpenRouter's plugins, e.g. `[{"id": "response-healing"}]`.
        extra_body: Anything else, merged into every request body.
        evidence: Look every extracted string, number and date up in the source's text (no extra request):
            `result.evidence`, and `result.unsupported` for the values found nowhere.
        max_chars: Split a document into parts of at most this many characters.
        max_tokens_per_request: Split a document so that no request's prompt passes this many tokens
            (besides the split the model's context and completion limits always impose).
        on_conflict: Parts of a long document that state different values for one field: keep the
            first (`"first"`, default; reported in `result.conflicts`) or raise `ConflictError` (`"fail"`).
        carry_context: Carry a long document's title block and the header row of a table it continues into
            its later parts (default True).
        pdf_engine: Send PDFs as files (a `file` part with OpenRouter's `file-parser` plugin) rather than
            their text: `"cloudflare-ai"`, `"mistral-ocr"` or `"native"`.
        app_url: Sent as the `HTTP-Referer` header (OpenRouter's app attribution).
        app_name: Sent as the `X-Title` header (OpenRouter's app attribution).
        headers: More HTTP headers for every request.
        timeout: Seconds one request may take, a whole answer or stream (default 120); past it,
            `APITimeoutError` (tried once more, like any transient failure).
        retry: How transient failures (408, 409, 425, 429, 5xx, dropped connections, timeouts, a 200
            carrying an error) are retried (default `RetryPolicy(attempts=5, base_delay=0.5, max_delay=30)`),
            honouring `Retry-After` and `X-RateLimit-Reset`; 400-404 are not retried.
        max_connections: Connections open to the endpoint at most (default 256).
        max_response_bytes: The largest answer or whole stream accepted, decompressed (default 64 MiB);
            past it, `ResponseTooLargeError`.
        cache_dir: The folder of the model lists read from `GET /models` and of the default response
            cache: `$EXTRACTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/extractor`, else `~/.cache/extractor`.
        http_backend: `"aiohttp"` (default: httpx's API over aiohttp's connection pool) or `"httpx"`.
        http_transport: Any httpx transport (e.g. `httpx.MockTransport`) instead of the network.
        cache: The response cache, off by default here (`extractor run` turns it on; `--no-cache`):
            `True` for `responses.sqlite` in `cache_dir`, a path, or a `ResponseCache`. Keyed by the whole
            request; only answers that validated are stored; never the API key.
        hooks: Callables told of every call's events (`extractor.observe.events`), sync or async; one that
            raises, blocks or is slow never costs an input.
        hook_timeout: Seconds each call of a hook may take (default 5); past it the extraction goes on
            without waiting.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_key: str | None = None,
        mode: str = "auto",
        max_retries: int = 2,
        *,
        instructions: str | None = DEFAULT_INSTRUCTIONS,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        reasoning: dict[str, Any] | None = None,
        provider: dict[str, Any] | None = None,
        plugins: list[dict[str, Any]] | None = None,
        extra_body: dict[str, Any] | None = None,
        evidence: bool = False,
        max_chars: int | None = None,
        max_tokens_per_request: int | None = None,
        on_conflict: str = "first",
        carry_context: bool = True,
        pdf_engine: str | None = None,
        app_url: str | None = None,
        app_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 256,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        cache_dir: str | Path | None = None,
        http_backend: str = "aiohttp",
        http_transport: httpx.AsyncBaseTransport | None = None,
        cache: bool | str | Path | ResponseCache | None = None,
        hooks: Iterable[Hook] | None = None,
        hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
    ) -> None:
        self.base_url = (base_url or os.environ.get("EXTRACTOR_BASE_URL") or OPENROUTER_BASE_URL).rstrip("/")
        key = api_key_for(self.base_url, api_key)
        self._secret = Secret(key) if key else None
        if mode != "auto":
            get_mode(mode)  # an unknown mode is a configuration error now, not at the first call
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        params = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stop": stop,
            "seed": seed,
            "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty,
            "reasoning": reasoning,
            "provider": provider,
            "plugins": plugins,
        }
        self._settings = Settings(
            model=model,
            mode=mode,
            max_retries=max_retries,
            instructions=instructions,
            params={k: v for k, v in params.items() if v is not None},
            extra_body=dict(extra_body or {}),
            evidence=evidence,
            max_chars=max_chars,
            max_tokens_per_request=max_tokens_per_request,
            pdf_engine=pdf_engine,
        ).merged({"on_conflict": on_conflict, "carry_context": carry_context})  # checked like a call's options
        if pdf_engine is not None:
            file_parser_plugin(pdf_engine)  # an unknown engine is a configuration error now
        extra_headers = dict(headers or {})
        if app_url:
            extra_headers["HTTP-Referer"] = app_url
        if app_name:
            extra_headers["X-Title"] = app_name
        self._transport = Transport(
            self.base_url,
            key or None,
            headers=extra_headers,
            timeout=timeout,
            retry=retry,
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
            http_backend=http_backend,
            http_transport=http_transport,
        )
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._cache_folder = folder
        self._catalog = ModelCatalog(self._transport, cache_dir=folder)
        self._cache = open_cache(cache, folder)
        self._hooks: tuple[Hook, ...] = tuple(hooks or ())
        if not (isinstance(hook_timeout, int | float) and 0 < hook_timeout < float("inf")):
            raise ConfigurationError(f"hook_timeout={hook_timeout!r}: give a positive number of seconds")
        #: the seconds one call of a hook may take (`extractor.observe.events`); past it the call goes on without it
        self.hook_timeout = float(hook_timeout)
        at_portal_exit(self._transport)

    @property
    def model(self) -> str:
        """The model calls use unless they name another."""
        return self._settings.model

    @property
    def max_retries(self) -> int:
        """How many times calls re-ask an invalid answer unless they say otherwise."""
        return self._settings.max_retries

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks told of every call's events (`extractor.observe.events`), in the order they are called."""
        return self._hooks

    def add_hook(self, hook: Hook) -> None:
        """Call `hook` with the events of every call of this extractor (`extractor.observe.events`): a callable
        taking one event, sync or async; one that raises is logged and never breaks the extraction."""
        self._hooks = (*self._hooks, hook)

    def remove_hook(self, hook: Hook) -> None:
        """Stop calling `hook` (nothing happens when it was not added)."""
        self._hooks = tuple(h for h in self._hooks if h is not hook)

    def _observers(self, extra: Iterable[Hook] | None = None) -> tuple[Hook, ...]:
        """Every hook a call with `extra` (its `hooks=` option) tells: this extractor's, the call's, the global ones."""
        found = self._hooks
        if extra:
            found = (*found, *extra)
        glob = global_hooks()
        return (*found, *glob) if glob else found

    def __repr__(self) -> str:
        return (
            f"Extractor(model={self._settings.model!r}, base_url={self.base_url!r}, mode={self._settings.mode!r}, "
            f"api_key={'set' if self._secret else 'not set'})"
        )

    # --- public API -----------------------------------------------------------------------

    @overload
    async def aextract(self, schema: type[T], source: Source, **options: Unpack[CallOptions]) -> T: ...
    @overload
    async def aextract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any: ...
    async def aextract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any:
        """The value extracted from `source`, validated against `schema`."""
        return (await self.aextract_result(schema, source, **options)).value

    @overload
    def extract(self, schema: type[T], source: Source, **options: Unpack[CallOptions]) -> T: ...
    @overload
    def extract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any: ...
    def extract(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Any:
        """Sync `aextract`."""
        return run_sync(self.aextract_result(schema, source, **options)).value

    @overload
    async def aextract_result(
        self, schema: type[T], source: Source, *, answered: FirstAnswer | None = None, **options: Unpack[CallOptions]
    ) -> ExtractResult[T]: ...
    @overload
    async def aextract_result(
        self, schema: Any, source: Source, *, answered: FirstAnswer | None = None, **options: Unpack[CallOptions]
    ) -> ExtractResult[Any]: ...
    async def aextract_result(
        self, schema: Any, source: Source, *, answered: FirstAnswer | None = None, **options: Unpack[CallOptions]
    ) -> ExtractResult[Any]:
        """The value with everything about how it was obtained: attempts, repairs, usage, cost; for a
        long document the chunks and where each value came from; with `evidence=True`, the evidence.

        `answered`: an answer obtained another way (a provider batch's) for the first request: given the
        request body, it returns the answer (`Sent`) when it answers exactly that request, else None
        (the request is then sent). Re-asks are sent as usual."""
        return await self._extract(compile_schema(schema), source, self._settings.merged(options), first=answered)

    async def arequests(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> list[dict[str, Any]]:
        """The bodies of the first requests a call would send for `source` (one, or one per chunk of a long
        document), built exactly as the call builds them; nothing is sent to chat completions."""
        captured: list[dict[str, Any]] = []

        async def capture(body: dict[str, Any]) -> Sent | None:
            captured.append(body)
            raise _Captured

        with contextlib.suppress(_Captured):
            settings = self._settings.merged(options)
            await self._extract(compile_schema(schema), source, settings, first=capture, observed=False)
        return captured

    async def _extract(
        self,
        compiled: CompiledSchema[Any],
        source: Source,
        settings: Settings,
        listen: Listener | None = None,
        *,
        keep: Callable[[], str | None] | None = None,
        first: FirstAnswer | None = None,
        observed: bool = True,
    ) -> ExtractResult[Any]:
        """One extraction from any source; `listen` (streaming) hears the answer's text as it arrives;
        `first` may answer the first request of each conversation (see `aextract_result`). The hooks
        (unless not `observed`) hear of its start and end, and of everything between."""
        hooks = self._observers(settings.hooks) if observed else ()
        if not hooks:
            return await self._extract_now(compiled, source, settings, listen, keep, first, None)
        identity = take_input()
        call_id, input_id = identity if identity is not None else (new_call_id(), None)
        secret = self._secret.get() if self._secret else None
        watch = Watch(hooks, call_id, input_id, secret, timeout=self.hook_timeout)
        started = ExtractionStarted(
            call_id=call_id,
            input_id=input_id,
            schema=compiled.name,
            model=settings.model,
            mode=settings.mode,
            host=self._transport.host.rpartition("@")[2],  # never credentials written into the URL
            stream=listen is not None,
        )
        await watch.emit(started)
        try:
            result = await self._extract_now(compiled, source, settings, listen, keep, first, watch)
        except BaseException as exc:
            await watch.emit(ExtractionFailed(call_id=call_id, input_id=input_id, error=exc))
            raise
        await watch.finished(result)
        return result

    async def _extract_now(
        self,
        compiled: CompiledSchema[Any],
        source: Source,
        settings: Settings,
        listen: Listener | None,
        keep: Callable[[], str | None] | None,
        first: FirstAnswer | None,
        watch: Watch | None,
    ) -> ExtractResult[Any]:
        """`_extract`'s work. With `evidence`, the texts to look values up in are read first (a source with
        no text at all fails before anything is sent), and the lookup runs off the event loop."""
        self.check_key()
        settings = settings.prepared(compiled)  # instructions filled, examples checked: before any request
        compiled = compiled.with_context(settings.context)
        document = None if _is_messages(source) else await _as_document(source)
        texts: list[SourceText] | None = None
        if settings.evidence:
            texts = await asyncio.to_thread(evidence_texts, document if document is not None else source)
        if _is_messages(source):
            messages = self._messages(source, settings)
            result = await self._run(compiled, messages, settings, listen, keep, first, watch)
        elif document is None:  # images, or a list of several sources: sent whole, in order
            parts = await asyncio.to_thread(to_parts, source)
            messages = self._messages(parts, settings)
            result = await self._run(compiled, messages, settings, listen, keep, first, watch)
        else:
            result = await self._extract_document(compiled, document, settings, listen, keep, first, watch)
        if texts is not None:
            result.evidence = await asyncio.to_thread(find_evidence_in, compiled.dump(result.value), texts)
        return result

    async def _extract_document(
        self,
        compiled: CompiledSchema[Any],
        document: Document,
        settings: Settings,
        listen: Listener | None,
        keep: Callable[[], str | None] | None,
        first: FirstAnswer | None,
        watch: Watch | None,
    ) -> ExtractResult[Any]:
        """One document: sent as a file (`pdf_engine`), whole, or in chunks merged back."""
        if settings.pdf_engine is not None and document.kind == "pdf" and document.data is not None:
            plugins = [*(settings.params.get("plugins") or []), file_parser_plugin(settings.pdf_engine)]
            file_settings = settings.merged({"plugins": plugins})
            messages = self._messages([document.as_file_part()], file_settings)
            return await self._run(compiled, messages, file_settings, listen, keep, first, watch)
        plan = await self._plan(document, compiled, settings)
        room = plan.limits.answer_room

        async def whole() -> ExtractResult[Any]:
            messages = self._messages(document.to_parts(), settings)
            floor = plan.answer_floor(plan.chunks[0])
            return await self._run(compiled, messages, settings, listen, keep, first, watch, room=room, floor=floor)

        async def run(part: Part) -> ExtractResult[Any]:  # a document in parts is not streamed: its value
            messages = self._messages(part.to_parts(), settings)  # exists only once they are merged
            chunk_watch = watch.at_chunk(part.number - 1) if watch is not None else None
            schema = plan.part_schema().compiled
            floor = plan.answer_floor(part.chunk)
            return await self._run(schema, messages, settings, first=first, watch=chunk_watch, room=room, floor=floor)

        async def split(chunks: list[Chunk]) -> None:
            if watch is not None:
                spans = tuple((c.start, c.end) for c in chunks)
                event = DocumentSplit(
                    call_id=watch.call_id,
                    input_id=watch.input_id,
                    document=document.name,
                    characters=len(document.text),
                    chunks=spans,
                )
                await watch.emit(event)
            log.info("%s: %d characters in %d parts", document.name, len(document.text), len(chunks))

        # the first part of a list document is asked alone (the rest planned by its answer), unless the first
        # requests are answered another way (a provider batch) or only looked at (`arequests`)
        return await extract_planned(
            whole,
            run,
            plan,
            self._annotate,
            merge=settings.merge,
            on_conflict=settings.on_conflict,
            probe=first is None,
            split=split,
        )

    def extract_result(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> ExtractResult[Any]:
        """Sync `aextract_result`."""
        return run_sync(self.aextract_result(schema, source, **options))

    # --- streaming (extractor.client.streaming) ----------------------------------------------

    async def astream(
        self, schema: Any, source: Source, *, with_result: bool = False, **options: Unpack[CallOptions]
    ) -> AsyncIterator[Any]:
        """`Partial` values while the answer streams, then the final value, validated in full exactly like
        `aextract` (re-asked when invalid: the partials then start over). With `with_result`, the last
        item is the `ExtractResult` instead of the bare value."""
        settings = self._settings.merged(options)
        async for value in stream_values(self._extract, compile_schema(schema), source, settings, with_result):
            yield value

    def stream(
        self, schema: Any, source: Source, *, with_result: bool = False, **options: Unpack[CallOptions]
    ) -> Iterator[Any]:
        """Sync `astream`."""
        return iterate_sync(self.astream(schema, source, with_result=with_result, **options))

    async def astream_items(
        self, item_schema: Any, source: Source, *, with_result: bool = False, **options: Unpack[CallOptions]
    ) -> AsyncIterator[Any]:
        """The records of a list, each as soon as it is complete and valid (`item_schema` is one record's
        schema). The whole list is then validated like `aextract` would; with `with_result`, the last
        item is the `ExtractResult`.

        What is yielded is always a prefix of the final validated list. A stream that starts over (a
        dropped connection) or a re-ask must give the same records first: a re-ask tells the model which
        records were accepted and must stay; records are not yielded again; and if the final list still
        differs from what was yielded, `StreamDivergedError` is raised with both, never a mix.
        """
        settings = self._settings.merged(options)
        async for value in stream_records(self._extract, item_schema, source, settings, with_result):
            yield value

    def stream_items(
        self, item_schema: Any, source: Source, *, with_result: bool = False, **options: Unpack[CallOptions]
    ) -> Iterator[Any]:
        """Sync `astream_items`."""
        return iterate_sync(self.astream_items(item_schema, source, with_result=with_result, **options))

    def aextract_many(
        self, schema: Any, sources: Iterable[Any] | AsyncIterable[Any], **options: Unpack[ManyOptions]
    ) -> AsyncGenerator[BatchResult[Any], None]:
        """Results for many sources, as they finish (see `extractor.runs.runner.BatchRunner`).

        `sources` may be any (lazy) iterable of texts, paths, documents, images, `{"id", "text"}`
        dicts or `BatchItem`s; every input ends with exactly one result. The options are those of
        `ManyOptions` (concurrency, pacing, budget, cache, order, file loading) and of a single call. A
        fault no input can get past (a rejected key, no credits, an unreachable endpoint, a wrong URL)
        stops the run: inputs not tried come back `skipped`, then `RunStoppedError` is raised.
        """
        from ..runs.runner import BatchRunner  # the batch layer builds on the client: imported when used

        batch: dict[str, Any] = {k: v for k, v in options.items() if k in BATCH_OPTIONS}
        call = {k: v for k, v in options.items() if k not in BATCH_OPTIONS}
        cache = batch.pop("cache", None)
        runner: BatchRunner[Any] = BatchRunner(
            self,
            schema,
            cache=open_cache(cache, self._cache_folder) if cache is not None else None,
            options=call,
            **batch,
        )
        return runner.run(sources)

    def extract_many(
        self, schema: Any, sources: Iterable[Any], **options: Unpack[ManyOptions]
    ) -> Iterator[BatchResult[Any]]:
        """Sync `aextract_many`: an iterator of results, as they finish."""
        return iterate_sync(self.aextract_many(schema, sources, **options))

    async def asubmit_batch(
        self,
        schema: Any,
        sources: Iterable[Any],
        *,
        state: str | os.PathLike[str],
        max_cost: float | None = None,
        **options: Unpack[CallOptions],
    ) -> ProviderBatch:
        """Send `sources` through the provider's batch API (about half the price; answers within 24 hours)
        and return the handle: `await handle.refresh()` (the batches' status), `await handle.wait()`,
        `handle.results()` (one `BatchResult` per source, read and validated like `extract_many`'s,
        re-asked synchronously when invalid), `await handle.cancel()`. `state`: the file that makes it
        resumable: called again with the same `state`, nothing is submitted twice. Sources as for
        `extract_many`."""
        from ..runs.provider import ProviderBatch
        from ..runs.runner import as_items

        job = ProviderBatch(self, schema, Path(state), options=dict(options), max_cost=max_cost)
        job.items = as_items(sources)
        await job.submit(job.items)
        return job

    def submit_batch(
        self,
        schema: Any,
        sources: Iterable[Any],
        *,
        state: str | os.PathLike[str],
        max_cost: float | None = None,
        **options: Unpack[CallOptions],
    ) -> ProviderBatch:
        """Sync `asubmit_batch` (the handle's `status()` and `collect()` are sync too)."""
        return run_sync(self.asubmit_batch(schema, sources, state=state, max_cost=max_cost, **options))

    async def aplan(self, schema: Any, source: Source, **options: Unpack[CallOptions]) -> Plan | None:
        """How a call would send `source` (`extractor.documents.plan`): for a text or a document, the plan (whole, or
        the parts that each fit one request and one answer of the model, with `Plan.requests()` estimating each
        request's tokens); None for a source sent as it is (images, a list of sources, messages, a PDF sent
        as a file). Nothing is sent but, when it is not known yet, the endpoint's model list."""
        settings = self._settings.merged(options)
        document = None if _is_messages(source) else await _as_document(source)
        if document is None or (settings.pdf_engine is not None and document.kind == "pdf"):
            return None
        return await self._plan(document, compile_schema(schema), settings)

    async def model_info(self, model: str | None = None) -> ModelInfo:
        """What the endpoint says about `model` (default: this extractor's): limits, prices, parameters."""
        return await self._catalog.info(model or self._settings.model)

    async def aclose(self) -> None:
        """Close this loop's connections."""
        await self._transport.aclose()

    def close(self) -> None:
        """Close the connections used by sync calls."""
        run_sync(self._transport.aclose())

    async def __aenter__(self) -> Extractor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the attempt loop -----------------------------------------------------------------

    def _messages(self, source: Sequence[Mapping[str, Any]], settings: Settings) -> list[Message]:
        """The conversation for `source`: a message list as given, or content parts as one user message;
        the instructions as the system message unless the messages bring their own."""
        messages: list[Message]
        if _is_messages(source):
            messages = [dict(copy.deepcopy(m)) for m in source]
        elif all(p.get("type") == "text" for p in source):
            messages = [{"role": "user", "content": "\n\n".join(str(p["text"]) for p in source)}]
        else:
            messages = [{"role": "user", "content": [dict(p) for p in source]}]
        if settings.instructions and not (messages and messages[0].get("role") in ("system", "developer")):
            messages.insert(0, {"role": "system", "content": settings.instructions})
        return messages

    async def _plan(self, document: Document, compiled: CompiledSchema[Any], settings: Settings) -> Plan:
        """How `document` is sent (`extractor.documents.plan`): whole, or in parts that each fit one request and one
        answer of the model (its limits from the endpoint's model list, cached)."""
        info = await self._catalog.info(settings.model)
        return plan_document(
            document,
            compiled,
            instructions=settings.instructions,
            max_chars=settings.max_chars,
            max_tokens=settings.max_tokens_per_request,
            info=info,
            answer_tokens=settings.params.get("max_tokens"),
            carry=settings.carry_context,
        )

    def check_key(self) -> None:
        """Raise `ConfigurationError` when the endpoint needs an API key and none was found."""
        if self._secret is None and _needs_key(self.base_url):
            raise ConfigurationError(
                f"no API key for {urlsplit(self.base_url).hostname}: pass api_key=, or set EXTRACTOR_API_KEY "
                "(OPENROUTER_API_KEY is sent only to openrouter.ai, OPENAI_API_KEY only to api.openai.com)"
            )

    async def _mode(self, settings: Settings) -> tuple[Mode, bool]:
        if settings.mode != "auto":
            return get_mode(settings.mode), False
        info = await self._catalog.info(settings.model)
        chosen = choose_mode(info.supported_parameters)
        preferred = self._catalog.preferred_mode(settings.model)  # a fallback this endpoint needed before
        if preferred in mode_names() and get_mode(preferred).rank > chosen.rank:
            return get_mode(preferred), True
        return chosen, True

    def _body(
        self, settings: Settings, mode: Mode, schema: CompiledSchema[Any], messages: list[Message]
    ) -> dict[str, Any]:
        part, sent = mode.request(schema, with_examples(messages, settings.shots, mode, schema))
        body: dict[str, Any] = {"model": settings.model, "messages": sent, **part}
        body.update(settings.params)
        body.update(settings.extra_body)
        return body

    async def _run(
        self,
        schema: CompiledSchema[Any],
        messages: list[Message],
        settings: Settings,
        listen: Listener | None = None,
        keep: Callable[[], str | None] | None = None,
        first: FirstAnswer | None = None,
        watch: Watch | None = None,
        *,
        room: int | None = None,
        floor: int | None = None,
    ) -> ExtractResult[Any]:
        """The attempt loop (`extractor.client.attempts`) for one conversation, sending with `_send` (the first
        request answered by `first` when it can); `watch` tells the hooks what happens. `room`: the most
        tokens an answer may have; `floor`: the least `max_tokens` sent (when the call sets none)."""
        mode, auto = await self._mode(settings)

        async def send(body: dict[str, Any], mode: Mode, attempt: int) -> Sent:
            if first is not None and attempt == 1:
                sent = await first(body)
                if sent is not None:
                    sent.provided = True
                    return sent
            return await self._send(body, mode, listen, attempt, watch)

        loop = AttemptLoop(
            schema=schema,
            messages=messages,
            settings=settings,
            mode=mode,
            auto=auto,
            send=send,
            body=self._body,
            catalog=self._catalog,
            secret=self._secret.get() if self._secret else None,
            host=self._transport.host,
            keep=keep,
            watch=watch,
            answer_room=room,
            answer_floor=floor,
        )
        return await loop.run()

    async def _send(
        self, body: dict[str, Any], mode: Mode, listen: Listener | None, attempt: int, watch: Watch | None = None
    ) -> Sent:
        """The answer to `body`: from the run's (or this extractor's) response cache, else from the
        endpoint, streamed when someone `listen`s (told each piece of the answer's text, with a key that
        changes whenever a new stream starts over). A fresh answer is cached only when `keep()` is
        called, once it has validated; cache reads and writes run off the event loop."""
        hooks = current_run()
        cache = hooks.cache if hooks is not None and hooks.cache is not None else self._cache
        key = cache.key_for(self.base_url, body) if cache is not None else None
        stored = await asyncio.to_thread(cache.get, key) if cache is not None and key is not None else None
        if stored is not None:
            if listen is not None:
                listen(mode.read(stored["choices"][0]["message"]).text or "", (attempt, 0))
            return Sent(ChatResponse(stored, 0.0), cached=True)
        requests = watch.request(attempt, mode.name) if watch is not None else None
        if listen is None:
            response = await self._transport.chat(body, requests)
        else:

            def on_piece(kind: str, piece: str, stream: int) -> None:
                if kind == mode.stream_field:
                    listen(piece, (attempt, stream))

            response = await self._transport.stream_chat(body, on_piece, requests)
        if cache is None or key is None:
            return Sent(response)
        store, secret = cache, self._secret

        async def keep() -> None:
            await asyncio.to_thread(store.put, key, response.data, secrets=[secret])

        return Sent(response, keep=keep)

    def _annotate(self, exc: ExtractorError, attempts: list[Attempt], usage: Usage) -> ExtractorError:
        """`exc` carrying what the failed extraction cost, its message free of the API key (`annotate`)."""
        return annotate(exc, attempts, usage, self._secret.get() if self._secret else None)


def _is_messages(source: Any) -> TypeGuard[Sequence[Mapping[str, Any]]]:
    """Whether `source` is a list of chat messages (dicts with a `role`)."""
    return (
        isinstance(source, Sequence)
        and not isinstance(source, str)
        and bool(source)
        and all(isinstance(m, Mapping) and "role" in m for m in source)
    )


async def _as_document(source: Any) -> Document | None:
    """`source` as one document, when it is one (a text, a `Document`, a file path); else None."""
    if isinstance(source, Document):
        return source
    if isinstance(source, str):
        return Document.from_text(source)
    if isinstance(source, os.PathLike):
        return await asyncio.to_thread(Document.from_path, source)  # CPU work off the event loop
    return None
