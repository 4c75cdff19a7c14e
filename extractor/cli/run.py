"""`extractor run INPUT... --schema SCHEMA -o OUT.jsonl`: a batch of documents to JSONL.

One line per successful input in OUT (`{"id", "source", "data", "meta"}`), failures in the errors
file (`{"id", "source", "error": {"type", "message"}, "meta"}`). Re-running the same command skips
what is done; after a crash it picks up where it was, with exactly one line per input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..batch import BatchItem, BatchResult, JsonlSink, errors_path_for
from ..cache import ResponseCache
from ..errors import ConfigurationError, ExtractorError
from ..extract import OPENROUTER_BASE_URL, Extractor
from ..models_info import DEFAULT_MODEL, ModelInfo, default_cache_dir
from ..modes import mode_names
from ..output.repairs import summarize_repairs
from ..schema import CompiledSchema, compile_schema
from ..sources import Document, chunk_document, estimate_document_tokens, estimate_tokens
from ._app import EXIT_FAILED, EXIT_OK, cli
from .inputs import InputStats, count_inputs, expand_inputs
from .progress import Reporter, RunStats
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


def _meta(result: BatchResult[Any]) -> dict[str, Any]:
    """What a record says about how it was made (never the API key)."""
    r = result.result
    usage = result.usage
    meta: dict[str, Any] = dict(result.meta)
    meta.update(
        {
            "attempts": len(r.attempts) if r else len(getattr(result.error, "attempts", None) or []),
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "cost": round(usage.cost, 8),
        }
    )
    if r is not None:
        meta.update(
            {
                "model": r.model,
                "mode": r.mode,
                "reasks": r.reasks,
                "cached": all(a.cached for a in r.attempts),
                "repairs": summarize_repairs(r.repairs),
                "latency": round(r.latency, 3),
                "finish_reason": r.finish_reason,
                "generation_id": r.generation_id,
            }
        )
        if r.chunks:
            meta["chunks"] = len(r.chunks)
        if r.fallbacks:
            meta["fallbacks"] = r.fallbacks
        if r.evidence is not None:
            meta["unsupported"] = [e.path for e in r.unsupported]
    return meta


def _count(stats: RunStats, result: BatchResult[Any]) -> None:
    usage = result.usage
    stats.prompt_tokens += usage.prompt_tokens
    stats.completion_tokens += usage.completion_tokens
    stats.cost += usage.cost
    stats.cost_known = stats.cost_known and usage.cost_known
    if result.skipped:
        stats.skipped += 1
    elif result.ok and result.result is not None:
        stats.ok += 1
        r = result.result
        if r.repairs:
            stats.repaired += 1
            stats.repair_kinds.update(summarize_repairs(r.repairs))
        stats.reasked += 1 if r.reasks else 0
        stats.cached += 1 if r.attempts and all(a.cached for a in r.attempts) else 0
    else:
        stats.failed += 1
        stats.error_types[type(result.error).__name__] += 1


async def _run_batch(
    extractor: Extractor,
    schema: Any,
    items: Iterator[BatchItem],
    sink: JsonlSink,
    stats: RunStats,
    reporter: Reporter,
    runner_options: dict[str, Any],
    call_options: dict[str, Any],
) -> None:
    compiled: CompiledSchema[Any] = compile_schema(schema)
    results = extractor.aextract_many(schema, items, **runner_options, **call_options)
    try:
        async for result in results:
            _count(stats, result)
            if result.skipped:
                pass  # not started: left for the next run
            elif result.ok:
                sink.write_ok(
                    {
                        "id": result.id,
                        "source": result.source,
                        "data": compiled.dump(result.value),
                        "meta": _meta(result),
                    }
                )
            else:
                error = {"type": type(result.error).__name__, "message": str(result.error)}
                sink.write_error({"id": result.id, "source": result.source, "error": error, "meta": _meta(result)})
            reporter.update()
    finally:
        await results.aclose()
        await extractor.aclose()


def _dry_run(items: Iterator[BatchItem], schema: Any, model: str, options: dict[str, Any]) -> int:
    """What a run would do, without a request: inputs, pages, chunks, tokens, cost, and the schema."""
    compiled: CompiledSchema[Any] = compile_schema(schema)
    info = ModelInfo.known(model)
    overhead = estimate_tokens(json.dumps(compiled.json_schema)) + 200
    total_tokens = failures = count = 0
    for item in items:
        count += 1
        try:
            source = item.source
            if isinstance(source, Path):
                doc = Document.from_path(source, password=item.password)
            else:
                doc = Document.from_text(str(source), name=item.id)
        except ExtractorError as exc:
            failures += 1
            click.echo(f"{item.id}\tfails: {exc}")
            continue
        tokens = estimate_document_tokens(doc)
        chunks = 1
        if options.get("max_chars") or (info.context_length and tokens + overhead > info.context_length - 16_384):
            room = (info.context_length - 16_384 - overhead) if info.context_length else None
            chunks = len(chunk_document(doc, max_chars=options.get("max_chars"), max_tokens=room)) or 1
        request_tokens = tokens + overhead * chunks
        total_tokens += request_tokens
        pages = len(doc.pages)
        plural = "s" if pages != 1 else ""
        click.echo(f"{item.id}\t{doc.kind}, {pages} page{plural}, {chunks} chunk(s), ~{request_tokens} tokens")
    answer = 600 * count
    if info.prompt_price is not None and info.completion_price is not None:
        cost = f"~${total_tokens * info.prompt_price + answer * info.completion_price:.4f}"
    else:
        cost = "unknown (no prices known for this model without asking the endpoint)"
    click.echo(f"\n{count} inputs ({failures} would fail to load), ~{total_tokens} prompt tokens, {model}: {cost}")
    strict = "strict" if compiled.strict else f"not strict ({compiled.reason})"
    click.echo(f"schema {compiled.name}, {strict}:")
    click.echo(json.dumps(compiled.json_schema, indent=2, ensure_ascii=False))
    return EXIT_OK


@cli.command("run")
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
@click.option("--mode", type=click.Choice(["auto", *mode_names()]), default="auto", show_default=True)
@click.option("--instructions", default=None, help="System instructions, or @FILE to read them from a file.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), default=None, help="Requests per minute at most.")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), default=None, help="Tokens per minute at most.")
@click.option(
    "--max-retries", type=click.IntRange(0, 10), default=2, show_default=True, help="Re-asks of an invalid answer."
)
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, help="Stop starting inputs past this many USD.")
@click.option(
    "--cache/--no-cache", default=True, show_default=True, help="Serve repeated requests from the on-disk cache."
)
@click.option("--password", default=None, help="Password for encrypted PDFs.")
@click.option("--retry-errors", is_flag=True, help="Also redo the inputs that failed in an earlier run.")
@click.option(
    "--evidence", is_flag=True, help="Look up every extracted string in the source text; list the ones not found."
)
@click.option("--max-chars", type=click.IntRange(1000), default=None, help="Split documents longer than this.")
@click.option(
    "--pdf-engine",
    type=click.Choice(["cloudflare-ai", "mistral-ocr", "native"]),
    default=None,
    help="Send PDFs as files, parsed by this OpenRouter engine.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List inputs, pages, chunks, estimated tokens and cost, and the schema; send nothing.",
)
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
def run(
    inputs: tuple[str, ...],
    schema_spec: str,
    output: Path | None,
    errors_path: Path | None,
    model: str | None,
    base_url: str | None,
    mode: str,
    instructions: str | None,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    max_retries: int,
    max_cost: float | None,
    cache: bool,
    password: str | None,
    retry_errors: bool,
    evidence: bool,
    max_chars: int | None,
    pdf_engine: str | None,
    dry_run: bool,
    verbose: int,
) -> int:
    """Extract SCHEMA from every INPUT into OUT.jsonl.

    INPUT: files, folders (recursively: PDFs, images, text files), globs, JSONL files whose lines
    carry "text" (and optionally "id"), or - for JSONL on stdin.
    """
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)], stream=sys.stderr,
                        format="%(levelname)s %(message)s")  # fmt: skip
    schema, _label = resolve_schema(schema_spec)
    compile_schema(schema)  # a broken schema is a usage error, before anything runs
    model = model or DEFAULT_MODEL
    call_options: dict[str, Any] = {"max_retries": max_retries, "evidence": evidence}
    if max_chars:
        call_options["max_chars"] = max_chars
    if pdf_engine:
        call_options["pdf_engine"] = pdf_engine
    text = _instructions(instructions)
    if text is not None:
        call_options["instructions"] = text
    stats = InputStats()
    if dry_run:
        return _dry_run(expand_inputs(inputs, password=password, stats=stats), schema, model, call_options)
    if output is None:
        raise click.UsageError("-o/--output is needed (or use --dry-run)")
    extractor = Extractor(model=model, base_url=base_url, mode=mode)
    extractor.check_key()  # no key for a remote endpoint: a usage error before anything runs
    sink = JsonlSink(output, errors_path or errors_path_for(output), retry_errors=retry_errors)
    response_cache = ResponseCache(default_cache_dir() / "responses.sqlite") if cache else None
    run_stats = RunStats()
    with sink:
        if sink.dropped_bytes:
            click.echo(f"repaired {output}: a torn last line ({sink.dropped_bytes} bytes) was dropped", err=True)
        total = count_inputs(inputs)
        items = (i for i in expand_inputs(inputs, password=password, stats=stats) if not _done(sink, i, run_stats))
        run_stats.total = None if total is None else max(total - len(sink.done_ids), 0)
        runner_options = {
            "concurrency": concurrency,
            "requests_per_minute": rpm,
            "tokens_per_minute": tpm,
            "max_cost": max_cost,
            "cache": response_cache if response_cache is not None else False,
        }
        interrupted = False
        with Reporter(run_stats) as reporter:
            try:
                asyncio.run(
                    _run_batch(extractor, schema, items, sink, run_stats, reporter, runner_options, call_options)
                )
            except KeyboardInterrupt:
                interrupted = True
    if response_cache is not None:
        response_cache.close()
    for line in stats.bad_lines[:20]:
        click.echo(f"skipped input line {line}", err=True)
    if stats.skipped_files:
        count = stats.skipped_files
        what = "1 file in a folder was" if count == 1 else f"{count} files in folders were"
        click.echo(f"{what} not a PDF, image or text file: skipped (-v names them)", err=True)
    click.echo(run_stats.summary(), err=True)
    if interrupted:
        click.echo("interrupted: what finished is saved; run the same command again to go on", err=True)
        return 130
    return EXIT_OK if run_stats.failed == 0 and run_stats.skipped == 0 and not stats.bad_lines else EXIT_FAILED


def _done(sink: JsonlSink, item: BatchItem, stats: RunStats) -> bool:
    if sink.is_done(item.id):
        stats.resumed += 1
        return True
    return False
