"""`extractor schema SCHEMA`: the compiled request schema, and whether it is strict."""

from __future__ import annotations

import json

import click

from ..bundled import bundled_schema, bundled_schema_names
from ..errors import ExtractorError
from ..schema import compile_schema
from ..schema.dialects import DIALECTS
from ._app import EXIT_OK, EXIT_USAGE, cli
from .schemas import resolve_schema

__all__ = ["schema_command"]


@cli.command("schema")
@click.argument("schema", required=False)
@click.option(
    "--dialect", type=click.Choice(sorted(DIALECTS)), default="openai", show_default=True, help="Provider subset."
)
@click.option("--original", is_flag=True, help="Print the resolved original schema instead of the compiled one.")
@click.option("--list", "list_names", is_flag=True, help="List the bundled schemas and exit.")
@click.pass_context
def schema_command(ctx: click.Context, schema: str | None, dialect: str, original: bool, list_names: bool) -> int:
    """Print the schema sent as `response_format.json_schema.schema` for SCHEMA.

    SCHEMA is a JSON Schema file, `package.module:Model`, or a bundled schema's name (see --list).
    The JSON goes to stdout; the schema's name, whether it is strict (and why not) and the compiler's
    notes go to stderr.
    """
    if list_names:
        names = bundled_schema_names()
        width = max((len(n) for n in names), default=0)
        for name in names:
            description = str(bundled_schema(name).get("description", "")).strip()
            click.echo(f"{name:<{width}}  {description}".rstrip())
        return EXIT_OK
    if schema is None:
        click.echo(
            "error: give a SCHEMA (a JSON Schema file, package.module:Model or a bundled name) or --list", err=True
        )
        ctx.exit(EXIT_USAGE)
    try:
        source, label = resolve_schema(schema)
        compiled = compile_schema(source, dialect=dialect)
    except ExtractorError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EXIT_USAGE)
    shown = compiled.original_schema if original else compiled.json_schema
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    strictness = "strict: yes" if compiled.strict else f"strict: no ({compiled.reason})"
    click.echo(f"{compiled.name} ({label}, {dialect}): {strictness}", err=True)
    for note in dict.fromkeys(compiled.notes):  # each note once, in order
        click.echo(f"note: {note}", err=True)
    return EXIT_OK
