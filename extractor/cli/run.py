"""`extractor run INPUT... --schema SCHEMA -o OUT.jsonl`: a batch of documents to JSONL.

One line per successful input in OUT (`{"id", "source", "data", "meta"}`), failures in the errors
file (`{"id", "source", "error": {"type", "message"}, "meta"}`). Re-running the same command skips
what is done; after a crash it picks up where it was, with exactly one line per input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import click

from ..client.cache import ResponseCache
from ..client.catalog import DEFAULT_MODEL, ModelInfo, default_cache_dir
from ..client.extractor import DEFAULT_INSTRUCTIONS, OPENROUTER_BASE_URL, Extractor, _needs_key
from ..client.modes import mode_names
from ..client.transport import _PROVIDER_KEYS, api_key_for
from ..documents.plan import plan_document
from ..errors import ConfigurationError, ExtractorError, RunStoppedError
from ..runs.loader import DEFAULT_LOAD_TIMEOUT
from ..runs.provider import BATCH_DISCOUNT
from ..runs.runner import BatchItem, BatchRunner
from ..runs.sink import JsonlSink, errors_path_for
from ..schema import CompiledSchema, compile_schema
from ..sources import Document, typical_tokens
from ._app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, cli
from ._text import byte_size, printable, setup_logging
from .batch_api import EXIT_NOT_FINISHED, run_batch_api
from .inputs import InputStats, check_inputs, count_inputs, expand_inputs
from .keys import KEY_HELP, api_key_env_option, key_from_env, require_key
from .progress import Reporter, RunStats
from .records import write_result
from .schemas import resolve_schema

__all__ = ["run"]

log = logging.getLogger("extractor")


def _instructions(value: str | None) -> str | None:
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"--instructions {value}: cannot read {path} ({exc.strerror})") from None


async def _run_batch(
    runner: BatchRunner[Any],
    compiled: CompiledSchema[Any],
    items: Iterator[BatchItem],
    sink: JsonlSink,
    stats: RunStats,
    reporter: Reporter,
) -> None:
    results = runner.run(items)
    try:
        async for result in results:
            write_result(result, compiled, sink, stats)
            reporter.update()
    finally:
        await results.aclose()
        await runner.extractor.aclose()


#: the answer tokens a dry run counts for a record of fixed shape
_RECORD_ANSWER_TOKENS = 600


def _next_step(base_url: str | None, output: Path | None) -> str:
    """What to do after a dry run: the same command without `--dry-run` (with `-o` if it had none), after
    setting the key variable its endpoint needs when no key is there."""
    url = base_url or os.environ.get("EXTRACTOR_BASE_URL") or OPENROUTER_BASE_URL
    command = "the same command" + (" with -o OUT.jsonl," if output is None else "") + " without --dry-run"
    if api_key_for(url) is not None or not _needs_key(url):
        return f"to run it: {command}"
    host = urlsplit(url).hostname or url
    variable = _PROVIDER_KEYS.get(host, "EXTRACTOR_API_KEY")
    return f"to run it: set {variable} (the API key for {host}), then {command}"


def _dry_run(
    items: Iterator[BatchItem],
    stats: InputStats,
    schema: Any,
    model: str,
    options: dict[str, Any],
    show_schema: bool,
    *,
    batch_price: bool = False,
    base_url: str | None = None,
    output: Path | None = None,
) -> int:
    """What a run would do, without a request: inputs, pages, chunks, tokens, cost, and (asked for) the schema."""
    click.echo("dry run: nothing is sent; what a run would read and send:")
    compiled: CompiledSchema[Any] = compile_schema(schema)
    info = ModelInfo.known(model)
    instructions = options.get("instructions") or DEFAULT_INSTRUCTIONS

    def sent(value: Any) -> int:  # what the endpoint will count: JSON as sent, about 4 bytes a token
        return typical_tokens(json.dumps(value, ensure_ascii=False))

    total_tokens = failures = count = requests = answer = 0
    for item in items:
        count += 1
        try:
            if item.error is not None:
                raise item.error
            source = item.source
            if isinstance(source, Path):
                doc = Document.from_path(source, password=item.password, max_bytes=options.get("max_file_size"))
            else:
                doc = Document.from_text(str(source), name=item.id)
            # the real run's planner, with the limits known without asking the endpoint
            plan = plan_document(
                doc,
                compiled,
                instructions=instructions,
                max_chars=options.get("max_chars"),
                info=info,
                answer_tokens=options.get("max_tokens"),
                carry=options.get("carry_context", True),
            )
        except ExtractorError as exc:
            failures += 1
            click.echo(f"{item.id}\tfails: {printable(str(exc))}")
            continue
        planned = plan.requests(sent)
        request_tokens = sum(r.prompt_tokens for r in planned)
        answers = [r.answer_tokens for r in planned if r.answer_tokens is not None]
        answer += sum(answers) if answers else _RECORD_ANSWER_TOKENS * len(planned)
        total_tokens += request_tokens
        requests += len(planned)
        pages = len(doc.pages)
        plural = "s" if pages != 1 else ""
        said = f" (answers ~{sum(answers)} tokens)" if answers else ""
        click.echo(
            f"{item.id}\t{doc.kind}, {pages} page{plural}, {len(planned)} chunk(s){said}, ~{request_tokens} tokens"
        )
    if info.prompt_price is not None and info.completion_price is not None:
        full = total_tokens * info.prompt_price + answer * info.completion_price
        cost = f"~${full:.4f}"
        if batch_price:  # what the provider's batch API charges for the same requests
            cost = f"~${full * BATCH_DISCOUNT:.4f} at the batch price ({cost} synchronously)"
    else:
        cost = "unknown (no prices known for this model without asking the endpoint)"
    click.echo(
        f"\n{count} inputs ({failures} would fail to load), {requests} requests, ~{total_tokens} prompt tokens, "
        f"{model}: {cost}"
    )
    for line in skipped_lines(stats, limit=None):
        click.echo(line)
    strict = "strict" if compiled.strict else f"not strict ({compiled.reason})"
    if show_schema:
        click.echo(f"schema {compiled.name}, {strict}:")
        click.echo(json.dumps(compiled.json_schema, indent=2, ensure_ascii=False))
    else:
        click.echo(f"schema {compiled.name}, {strict} (--show-schema prints it)")
    click.echo(_next_step(base_url, output))
    return EXIT_OK


@cli.command("run", epilog=KEY_HELP)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--schema", "schema_spec", required=True, help="JSON Schema file, package.module:Model, or a bundled schema name."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output JSONL file (needed unless --dry-run).",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Errors JSONL file [default: OUT.errors.jsonl].",
)
@click.option("--model", default=None, help=f"Model id [default: {DEFAULT_MODEL}].")
@click.option(
    "--base-url",
    default=None,
    help=f"OpenAI-compatible endpoint [default: $EXTRACTOR_BASE_URL or {OPENROUTER_BASE_URL}].",
)
@api_key_env_option
@click.option("--mode", type=click.Choice(["auto", *mode_names()]), default="auto", show_default=True)
@click.option("--instructions", default=None, help="System instructions, or @FILE to read them from a file.")
@click.option(
    "--max-tokens",
    type=click.IntRange(1),
    default=None,
    help="Answer tokens at most per request [default: about the schema's size; lists: planned by the answer].",
)
@click.option("--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature.")
@click.option("--top-p", type=click.FloatRange(0, 1), default=None, help="Nucleus sampling: top_p.")
@click.option("--seed", type=int, default=None, help="Sampling seed, for endpoints that honour one.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), default=None, help="Requests per minute at most.")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), default=None, help="Tokens per minute at most.")
@click.option(
    "--max-retries", type=click.IntRange(0, 10), default=2, show_default=True, help="Re-asks of an invalid answer."
)
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, help="Stop starting inputs past this many USD.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120,
    show_default=True,
    help="Seconds one request may take, its whole answer included.",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Answer a request sent before from the response cache (responses.sqlite in $EXTRACTOR_CACHE_DIR, "
    'default ~/.cache/extractor; the summary\'s "from cache: N"), storing each answer that validated; '
    "`extractor cache info|clear`.",
)
@click.option("--password", default=None, help="Password for encrypted PDFs.")
@click.option("--retry-errors", is_flag=True, help="Also redo the inputs that failed in an earlier run.")
@click.option(
    "--evidence", is_flag=True, help="Look up every extracted string in the source text; list the ones not found."
)
@click.option("--max-chars", type=click.IntRange(1000), default=None, help="Split documents longer than this.")
@click.option(
    "--on-conflict",
    type=click.Choice(["first", "fail"]),
    default="first",
    show_default=True,
    help="Chunks of a long document that disagree on a value: keep the first chunk's (listed in meta.conflicts) "
    "or fail the input.",
)
@click.option(
    "--pdf-engine",
    type=click.Choice(["cloudflare-ai", "mistral-ocr", "native"]),
    default=None,
    help="Send PDFs as files, parsed by this OpenRouter engine.",
)
@click.option(
    "--max-file-size",
    default="200MB",
    callback=byte_size,
    show_default=True,
    help="Larger input files fail alone, unread (e.g. 500MB, 2GB).",
)
@click.option(
    "--load-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_LOAD_TIMEOUT,
    show_default=True,
    help="Seconds one file may take to read; a PDF past it fails alone.",
)
@click.option(
    "--batch-api",
    is_flag=True,
    help="Send the requests through the provider's batch API (about half the price, answers within 24 h); "
    "resumable: run the same command again to collect.",
)
@click.option(
    "--batch-wait/--no-batch-wait",
    default=True,
    show_default=True,
    help="With --batch-api: wait for the batches to end (else submit, and exit 75 until they have).",
)
@click.option(
    "--batch-poll",
    type=click.FloatRange(min=0.01),
    default=30.0,
    show_default=True,
    help="With --batch-api: seconds between looks at the batches.",
)
@click.option(
    "--ray",
    "on_ray",
    is_flag=True,
    help="Load and extract the inputs on a Ray cluster (one rate limit, concurrency and budget for all of it); "
    "needs extractor[ray].",
)
@click.option(
    "--ray-address",
    default=None,
    help="With --ray: the cluster to connect to (e.g. ray://HOST:10001, or auto) [default: start a local one].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List inputs, pages, chunks, estimated tokens and cost; send nothing.",
)
@click.option("--show-schema", is_flag=True, help="With --dry-run: print the compiled schema too.")
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
def run(
    inputs: tuple[str, ...],
    schema_spec: str,
    output: Path | None,
    errors_path: Path | None,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None,
    mode: str,
    instructions: str | None,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    max_retries: int,
    max_cost: float | None,
    timeout: float,
    cache: bool,
    password: str | None,
    retry_errors: bool,
    evidence: bool,
    max_chars: int | None,
    on_conflict: str,
    pdf_engine: str | None,
    max_file_size: int,
    load_timeout: float,
    batch_api: bool,
    batch_wait: bool,
    batch_poll: float,
    on_ray: bool,
    ray_address: str | None,
    dry_run: bool,
    show_schema: bool,
    verbose: int,
) -> int:
    """Extract SCHEMA from every INPUT into OUT.jsonl.

    INPUT: files, folders (recursively: PDFs, images, text files), globs, JSONL files whose lines
    carry "text" (and optionally "id"), or - for JSONL on stdin.
    """
    setup_logging(verbose)
    schema, _label = resolve_schema(schema_spec)
    compiled: CompiledSchema[Any] = compile_schema(schema)  # a broken schema is a usage error, before anything
    model = model or DEFAULT_MODEL
    call_options: dict[str, Any] = {"max_retries": max_retries, "evidence": evidence, "on_conflict": on_conflict}
    if max_chars:
        call_options["max_chars"] = max_chars
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
    call_options.update({k: v for k, v in sampling.items() if v is not None})
    if pdf_engine:
        call_options["pdf_engine"] = pdf_engine
    text = _instructions(instructions)
    if text is not None:
        call_options["instructions"] = text
    if output is None and not dry_run:
        raise click.UsageError("-o/--output is needed (or use --dry-run)")
    outputs = [output, errors_path or errors_path_for(output)] if output is not None else []
    check_inputs(inputs, outputs=outputs)  # a missing INPUT, or OUT among the inputs: a usage error
    stats = InputStats()
    if dry_run:
        items = expand_inputs(inputs, password=password, stats=stats, exclude=outputs)
        options = {**call_options, "max_file_size": max_file_size}
        return _dry_run(
            items, stats, schema, model, options, show_schema, batch_price=batch_api, base_url=base_url, output=output
        )
    output = cast(Path, output)  # given: checked above
    api_key = key_from_env(api_key_env)
    extractor = Extractor(model=model, base_url=base_url, api_key=api_key, mode=mode, timeout=timeout)
    require_key(extractor)  # no key for a remote endpoint: a usage error before anything runs
    sink = JsonlSink(output, outputs[1], retry_errors=retry_errors)
    run_stats = RunStats()
    with sink:  # refuses (exit 2) a file that is not this tool's output, leaving it as it was
        if sink.dropped_bytes:
            click.echo(f"repaired {output}: a torn last line ({sink.dropped_bytes} bytes) was dropped", err=True)
        run_stats.total = count_inputs(inputs, exclude=outputs)
        items = (
            i
            for i in expand_inputs(inputs, password=password, stats=stats, exclude=outputs)
            if not _done(sink, i, run_stats)
        )
        if on_ray or ray_address:
            if batch_api:
                raise click.UsageError("--ray and --batch-api do not go together")
            return _run_on_ray(
                ray_address, schema, compiled, items, sink, run_stats, stats,
                model=model, base_url=base_url, api_key=api_key, mode=mode, timeout=timeout, concurrency=concurrency,
                rpm=rpm, tpm=tpm,
                max_cost=max_cost, max_file_size=max_file_size, options=call_options, verbose=verbose,
            )  # fmt: skip
        response_cache = ResponseCache(default_cache_dir() / "responses.sqlite") if cache else None
        if batch_api:
            runner_options = {
                "requests_per_minute": rpm,
                "tokens_per_minute": tpm,
                "cache": response_cache,
                "max_file_size": max_file_size,
                "load_timeout": load_timeout,
            }
            finished = run_batch_api(
                extractor,
                schema,
                compiled,
                items,
                sink,
                output,
                run_stats,
                options=call_options,
                max_cost=max_cost,
                concurrency=concurrency,
                wait=batch_wait,
                poll=batch_poll,
                runner_options=runner_options,
            )
            if response_cache is not None:
                response_cache.close()
            run_stats.given = stats.given
            run_stats.repeats = stats.repeats
            click.echo(run_stats.summary(), err=True)
            if not finished:
                click.echo("the batches are still running: run the same command again to collect them", err=True)
                return EXIT_NOT_FINISHED
            return EXIT_OK if run_stats.complete else EXIT_FAILED
        runner: BatchRunner[Any] = BatchRunner(
            extractor,
            schema,
            concurrency=concurrency,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            max_cost=max_cost,
            cache=response_cache,
            max_file_size=max_file_size,
            load_timeout=load_timeout,
            options=call_options,
        )
        interrupted = False
        stopped: RunStoppedError | None = None
        with Reporter(run_stats, in_flight=lambda: runner.in_flight) as reporter:
            try:
                asyncio.run(_run_batch(runner, compiled, items, sink, run_stats, reporter))
            except KeyboardInterrupt:
                interrupted = True
            except RunStoppedError as exc:
                stopped = exc
        if response_cache is not None:
            response_cache.close()
    return _finish(run_stats, stats, verbose=verbose, interrupted=interrupted, stopped=stopped)


def _finish(
    run_stats: RunStats, stats: InputStats, *, verbose: int, interrupted: bool, stopped: BaseException | str | None
) -> int:
    """The summary of a run, and its exit status."""
    ended_early = stopped is not None or interrupted  # not every input was read: the count made up front says
    run_stats.given = run_stats.total if run_stats.total is not None and ended_early else stats.given
    run_stats.unread_unknown = ended_early and run_stats.total is None
    run_stats.interrupted = interrupted
    run_stats.repeats = stats.repeats
    click.echo(run_stats.summary(), err=True)
    for line in skipped_lines(stats, limit=None if verbose else 10):
        click.echo(line, err=True)
    if interrupted:
        click.echo("interrupted: what finished is saved; run the same command again to go on", err=True)
        return 130
    if stopped is not None:
        click.echo(f"error: {printable(str(stopped))}", err=True)
        click.echo(
            "the run stopped: nothing was written for the inputs it did not try; "
            "run the same command again once this is fixed",
            err=True,
        )
        return EXIT_USAGE
    return EXIT_OK if run_stats.complete else EXIT_FAILED


def _run_on_ray(
    address: str | None,
    schema: Any,
    compiled: CompiledSchema[Any],
    items: Iterator[BatchItem],
    sink: JsonlSink,
    run_stats: RunStats,
    stats: InputStats,
    *,
    mode: str,
    verbose: int,
    rpm: float | None,
    tpm: float | None,
    options: dict[str, Any],
    **settings: Any,
) -> int:
    """`--ray`: the inputs run on a Ray cluster, their lines written here (see `extractor.cli.ray_run`)."""
    from .ray_run import run_on_ray

    stopped: str | None = None
    interrupted = False
    try:
        stopped = run_on_ray(
            address, schema, compiled, items, sink, run_stats,
            requests_per_minute=rpm, tokens_per_minute=tpm, options={**options, "mode": mode}, **settings,
        )  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
    return _finish(run_stats, stats, verbose=verbose, interrupted=interrupted, stopped=stopped)


def _done(sink: JsonlSink, item: BatchItem, stats: RunStats) -> bool:
    """Whether `item` has its line from an earlier run (counted as done before, or still failed)."""
    status = sink.status(item.id)
    if status == "ok":
        stats.resumed += 1
        return True
    if status == "failed" and sink.is_done(item.id):
        stats.still_failed += 1
        return True
    return False


def skipped_lines(stats: InputStats, *, limit: int | None) -> list[str]:
    """The files left out by name, each with its reason (at most `limit` of them named)."""
    if not stats.skipped_count:
        return []
    count = stats.skipped_count
    lines = [f"skipped {count} file{'s' if count != 1 else ''} by name (not inputs):"]
    shown = stats.skipped if limit is None else stats.skipped[:limit]
    lines.extend(f"  {printable(skip.path)}: {skip.reason}" for skip in shown)
    if count > len(shown):
        lines.append(f"  ... and {count - len(shown)} more" + ("" if limit is None else " (-v names them all)"))
    return lines
