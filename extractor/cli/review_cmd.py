"""`extractor review OUT.jsonl -o review.html`: every record of a run beside its source text, in one
self-contained HTML page (see `extractor.quality.review`), where each value can be accepted, corrected or
struck, and the labels exported as `gold.jsonl` for `extractor eval`. `--schema` types the inputs and
checks the labels; `--gold gold.jsonl` opens the page with those labels applied and shows where OUT
disagrees with them.

Exit status: 0 when the page was written; 2 for bad usage (OUT or a named file cannot be read, a
schema or GOLD file that is not one, the page cannot be written). Records that failed or have values
not found are shown, not an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import ExtractorError
from ..quality.review import DEFAULT_MAX_CHARS, write_review
from ..runs.sink import errors_path_for
from ._app import EXIT_OK, EXIT_USAGE, cli
from ._text import printable
from .schemas import resolve_schema

__all__ = ["review_command"]


def _default_output(out: Path) -> Path:
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".review.html")


@cli.command("review")
@click.argument("out", metavar="OUT.jsonl", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The HTML page to write [default: OUT.review.html].",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Errors JSONL file listing the failed inputs [default: OUT.errors.jsonl, when present].",
)
@click.option(
    "--inputs",
    "inputs",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE.jsonl",
    help='JSONL inputs ({"id", "text"} lines) to look texts up by id (repeatable); needed for stdin inputs.',
)
@click.option(
    "--source-root",
    "source_roots",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    metavar="FOLDER",
    help="Also show sources under FOLDER (repeatable); by default only those under the current folder and OUT's.",
)
@click.option(
    "--schema",
    "schema_spec",
    default=None,
    metavar="SCHEMA",
    help="JSON Schema file, package.module:Model, or a bundled schema name: types the page's inputs and "
    "checks the labels before they are exported.",
)
@click.option(
    "--gold",
    "gold",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="GOLD.jsonl",
    help="Labels exported before (as extractor eval reads them): applied, and where OUT disagrees shown.",
)
@click.option("--password", default=None, help="Password of encrypted PDF sources.")
@click.option(
    "--max-chars",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_CHARS,
    show_default=True,
    help="Characters of each source text shown (0: all); evidence is still looked up in the whole text.",
)
@click.pass_context
def review_command(
    ctx: click.Context,
    out: Path,
    output: Path | None,
    errors_path: Path | None,
    inputs: tuple[Path, ...],
    source_roots: tuple[Path, ...],
    schema_spec: str | None,
    gold: Path | None,
    password: str | None,
    max_chars: int,
) -> None:
    """Write one self-contained HTML page showing each record of OUT.jsonl beside its source text.

    Every extracted value is highlighted where it occurs in the source (looked up now, in the files
    the records name); values not found are flagged, repairs and conflicts marked, and the failed
    inputs of the errors file listed with their error. Open the page with #failed or #unsupported
    to see only those records. Sources are read only under the current folder, OUT's folder and each
    --source-root (symlinks and .. resolved first); others are "not shown".

    Each value can be accepted, corrected or marked not in the source, list items removed or added,
    records marked unusable, from the keyboard; the work is kept in the browser and exported by the
    page as gold.jsonl for `extractor eval` (nothing is sent anywhere). --schema types the inputs and
    checks the labels; --gold opens the page with earlier labels applied, and shows where OUT
    disagrees with them (#disagree).
    """
    output = output or _default_output(out)
    if errors_path is None:
        default = errors_path_for(out)
        errors_path = default if default.exists() else None
    named = [(out, "OUT"), *((p, "--inputs") for p in inputs), *([(gold, "--gold")] if gold is not None else [])]
    for path, what in named:
        if not path.is_file():
            click.echo(f"error: {what} {printable(os.fspath(path))}: no such file", err=True)
            ctx.exit(EXIT_USAGE)
    read = [out, *inputs, *([errors_path] if errors_path is not None else []), *([gold] if gold is not None else [])]
    if any(os.path.realpath(output) == os.path.realpath(path) for path in read):
        click.echo(
            f"error: {printable(os.fspath(output))} is a file the page is made from: choose another -o", err=True
        )
        ctx.exit(EXIT_USAGE)
    try:
        schema = resolve_schema(schema_spec)[0] if schema_spec is not None else None
        summary = write_review(
            out,
            output,
            errors=errors_path,
            inputs=list(inputs),
            password=password,
            max_chars=max_chars,
            source_roots=list(source_roots),
            schema=schema,
            gold=gold,
        )
    except ExtractorError as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        ctx.exit(EXIT_USAGE)
    except OSError as exc:
        click.echo(f"error: cannot write {printable(os.fspath(output))}: {exc.strerror or exc}", err=True)
        ctx.exit(EXIT_USAGE)
    unread = f", {len(summary.problems)} lines not read" if summary.problems else ""
    labelled = ""
    if gold is not None:
        labelled = (
            f"; {printable(os.fspath(gold))}: {summary.labelled} records labelled, OUT disagrees with "
            f"{summary.disagreeing} of them"
        )
    click.echo(
        f"{printable(os.fspath(output))}: {summary.records} records ({summary.failed} failed, "
        f"{summary.unsupported} with values not found in the source{unread}){labelled}"
    )
    ctx.exit(EXIT_OK)
