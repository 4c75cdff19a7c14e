"""`extractor run ... --batch-api` (a run through the provider's batch API, resumable from the state
file next to OUT) and `extractor batch status|cancel OUT.jsonl`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from ..client.extractor import Extractor
from ..runs.provider import BATCH_DISCOUNT, BatchEntry, BatchState, ProviderBatch, state_path_for
from ..runs.runner import BatchItem
from ..runs.sink import JsonlSink
from ..schema import CompiledSchema
from ._app import EXIT_OK, cli
from .keys import KEY_HELP, api_key_env_option, key_from_env, require_key
from .progress import RunStats
from .records import write_result

__all__ = ["EXIT_NOT_FINISHED", "run_batch_api"]

#: the batches are still running: nothing is lost, run the same command again later to collect
EXIT_NOT_FINISHED = 75


def _describe(entries: Iterable[BatchEntry]) -> list[str]:
    lines = []
    for number, entry in enumerate(entries, 1):
        counts = entry.counts
        done = f"{counts.get('completed', 0)}+{counts.get('failed', 0)} of {counts.get('total', len(entry.requests))}"
        lines.append(f"  batch {number}: {entry.batch_id or '(not created)'} {entry.status}, {done} answered")
    return lines


async def _batch_run(
    job: ProviderBatch,
    items: list[BatchItem],
    compiled: CompiledSchema[Any],
    sink: JsonlSink,
    stats: RunStats,
    *,
    wait: bool,
    poll: float,
    runner_options: dict[str, Any],
) -> bool:
    """The batch run (`ProviderBatch.run`), its results written as a synchronous run writes them; whether
    every batch had ended."""
    told = False

    def report(entries: list[BatchEntry]) -> None:
        nonlocal told
        state = job.state
        if state is not None and not told:
            told = True
            click.echo(
                f"batch API: {len(state.submitted)} inputs in {len(state.batches)} batch(es) at "
                f"{BATCH_DISCOUNT:.0%} of the price, {len(state.sync)} synchronously, {len(state.not_started)} "
                f"left for the budget; state in {job.state_path}",
                err=True,
            )
        for line in _describe(entries):
            click.echo(line, err=True)

    try:
        async for result in job.run(items, wait=wait, poll=poll, report=report, **runner_options):
            write_result(result, compiled, sink, stats)
        state = job.state
        given = {i.id for i in items}
        if state is not None:
            stats.skipped += len(given & set(state.not_started))
            stats.waiting = [(e.batch_id or "?", n, e.created_at) for e, n in job.waiting() if n]
        return job.finished
    finally:
        await job.extractor.aclose()


def run_batch_api(
    extractor: Extractor,
    schema: Any,
    compiled: CompiledSchema[Any],
    items: Iterable[BatchItem],
    sink: JsonlSink,
    output: Path,
    stats: RunStats,
    *,
    options: dict[str, Any],
    max_cost: float | None,
    concurrency: int,
    wait: bool,
    poll: float,
    runner_options: dict[str, Any],
) -> bool:
    """The run through the provider's batch API; whether every batch had ended (else run it again)."""
    job = ProviderBatch(
        extractor,
        schema,
        state_path_for(output),
        options=options,
        max_cost=max_cost,
        concurrency=concurrency,
    )
    listed = list(items)
    return asyncio.run(
        _batch_run(job, listed, compiled, sink, stats, wait=wait, poll=poll, runner_options=runner_options)
    )


@cli.group("batch")
def batch() -> None:
    """Look at or cancel the provider batches of an `extractor run ... --batch-api`."""


def _job(output: Path, api_key_env: str | None) -> ProviderBatch:
    path = state_path_for(output)
    state = BatchState.load(path)
    if state is None:
        raise click.UsageError(f"no batch run for {output}: {path} does not exist")
    extractor = Extractor(model=state.model, base_url=state.base_url, api_key=key_from_env(api_key_env))
    require_key(extractor)
    return ProviderBatch(extractor, {"type": "object"}, path)


async def _look(job: ProviderBatch, cancel: bool) -> list[BatchEntry]:
    try:
        return await (job.cancel() if cancel else job.refresh())
    finally:
        await job.extractor.aclose()


@batch.command("status", epilog=KEY_HELP)
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@api_key_env_option
def status(output: Path, api_key_env: str | None) -> int:
    """The provider batches of the run writing OUTPUT, with their status."""
    job = _job(output, api_key_env)
    entries = asyncio.run(_look(job, cancel=False))
    click.echo(f"{len(entries)} batch(es) for {output} at {job.state.base_url if job.state else '?'}:")
    for line in _describe(entries):
        click.echo(line)
    return EXIT_OK if job.finished else EXIT_NOT_FINISHED


@batch.command("cancel", epilog=KEY_HELP)
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@api_key_env_option
def cancel(output: Path, api_key_env: str | None) -> int:
    """Cancel the provider batches of the run writing OUTPUT that are still running."""
    job = _job(output, api_key_env)
    entries = asyncio.run(_look(job, cancel=True))
    for line in _describe(entries):
        click.echo(line)
    click.echo("run the same `extractor run` command again to collect what was answered", err=True)
    return EXIT_OK
