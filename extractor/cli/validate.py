"""`extractor validate SCHEMA FILE.jsonl`: check the records of an ETL step against a schema.

Each non-blank line of FILE (`-`: stdin) is read as JSON, the value under `--field` (a dotted path,
default: the whole line) is taken and validated against SCHEMA's own rules (`CompiledSchema.check`:
`jsonschema` with format checking for a JSON Schema, pydantic for a model). The file is streamed,
one line at a time.

`extractor run`'s own OUT is recognised without `--field`: when the first line is one of its records
(`{"id", "source", "data", "meta"}`, nothing else) and is not itself an instance of SCHEMA, each
line's `data` is checked, as with `--field data`, and a note on stderr says so (`--field ''` checks
whole lines).

Output, made for pipes: stdout has one line per problem, `FILE:LINE: $.path: message`, where the path
is the place in the line (`$.data.total` with `--field data`); the summary (`N records, K valid,
M invalid`) goes to stderr. With `--json`, stdout has one JSON object per invalid line,
`{"type": "invalid", "file", "line", "id", "errors": [{"path", "message", "kind", "value"?}]}`, then a
last `{"type": "summary", "file", "records", "valid", "invalid"}`. Rules that cannot be enforced
offline (a `$ref` to another document, a regular expression Python cannot run) are named on stderr.

Exit status: 0 when every record is valid, 1 when any is not, 2 for bad usage (no such file, a schema
that cannot be read or compiled).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any, NoReturn

import click
import jsonschema

from .._jsonpath import format_path
from ..errors import ExtractorError, OutputInvalidError, SchemaCompileError
from ..schema import CompiledSchema, compile_schema
from ..schema.compiled import validation_copy, validator_class
from ._app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, cli
from .schemas import resolve_schema

__all__ = ["Problem", "check_line", "is_run_record", "validate_command"]

_MAX_TEXT = 500  # characters of a message shown on one line of the text report


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a line: where in the line (a JSON path), what, and its kind."""

    path: str
    message: str
    kind: str
    value: Any = None
    has_value: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "message": self.message, "kind": self.kind}
        if self.has_value:
            out["value"] = self.value
        return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _select(record: Any, field: list[str]) -> tuple[Any, list[str | int]] | Problem:
    """The value at the dotted `field` path of `record` with the keys and indexes taken, or the problem."""
    node: Any = record
    loc: list[str | int] = []
    for part in field:
        step: str | int
        if isinstance(node, dict) and part in node:
            node, step = node[part], part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            step = int(part)
            node = node[step]
        else:
            where = format_path([*loc, int(part) if isinstance(node, list) and part.isdigit() else part])
            return Problem(where, f"missing field {'.'.join(field)!r}", "missing")
        loc.append(step)
    return node, loc


def check_line(compiled: CompiledSchema[Any], raw: bytes, field: list[str]) -> list[Problem]:
    """The problems of one JSONL line (empty when it is valid)."""
    try:
        record = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return [Problem("$", f"not UTF-8 text: {exc.reason} at byte {exc.start}", "json")]
    except ValueError as exc:
        return [Problem("$", f"not JSON: {exc}", "json")]
    except RecursionError:
        return [Problem("$", "not JSON this reader accepts: nested too deeply", "json")]
    selected = _select(record, field)
    if isinstance(selected, Problem):
        return [selected]
    value, loc = selected
    try:
        compiled.check(value)
    except RecursionError:
        return [Problem(format_path(loc), "nested too deeply to validate", "depth")]
    except OutputInvalidError as exc:
        problems: dict[tuple[str, str], Problem] = {}  # each once: `check` may repeat a missing key
        for d in exc.errors:
            # the path in the line: the field's keys, then the detail's place in the value
            path = format_path([*loc, *d.loc]) if d.loc or d.path == "$" else format_path(loc) + d.path[1:]
            message = f"{d.message} (got {d.value!r})" if compiled.is_pydantic and d.has_value else d.message
            problems.setdefault((path, message), Problem(path, message, d.kind or "invalid", d.value, d.has_value))
        return list(problems.values())
    return []


def _one_line(text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes, bytes]]:
    """The non-blank lines of `stream`: 1-based number, the line without its end, the line as read."""
    for number, line in enumerate(stream, start=1):
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            yield number, stripped, line


def _record_id(raw: bytes) -> Any:
    """The `id` of a line written by `extractor run` (None when there is none)."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str | int) else None


#: the keys of an OUT line of `extractor run` (`extractor.runs.records`)
_RUN_KEYS = frozenset({"id", "source", "data", "meta"})


def is_run_record(raw: bytes) -> bool:
    """Whether the JSONL line `raw` is a record `extractor run` wrote to OUT: `{"id", "source", "data", "meta"}`
    with `meta` an object."""
    try:
        record = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict) and record.keys() == _RUN_KEYS and isinstance(record["meta"], dict)


def _usage_error(ctx: click.Context, message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    ctx.exit(EXIT_USAGE)


@cli.command("validate")
@click.argument("schema")
@click.argument("file", metavar="FILE.jsonl")
@click.option(
    "--field",
    default=None,
    metavar="PATH",
    help="Dotted path of the value to check (default: the whole line; `data` of each line of `extractor run`'s "
    "own OUT, recognised by itself; '' for whole lines always).",
)
@click.option(
    "--quarantine",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="BAD.jsonl",
    help="Append each invalid line there, unchanged.",
)
@click.option("--json", "as_json", is_flag=True, help="Report as JSON lines instead of text.")
@click.pass_context
def validate_command(
    ctx: click.Context, schema: str, file: str, field: str | None, quarantine: str | None, as_json: bool
) -> None:
    """Check each line of FILE.jsonl (`-`: stdin) against SCHEMA; exit 1 if any is invalid.

    SCHEMA is a JSON Schema file, `package.module:Model` or a bundled schema's name. Problems go to
    stdout, one per line (`FILE:LINE: $.path: message`), the summary to stderr. The OUT of
    `extractor run` is recognised by its lines (`{"id", "source", "data", "meta"}`): each line's
    `data` is checked, and a note says so.
    """
    try:
        source, label = resolve_schema(schema)
        compiled = compile_schema(source)
    except ExtractorError as exc:
        _usage_error(ctx, str(exc))
    if isinstance(source, dict | bool):
        not_enforced: list[str] = []
        try:  # against its meta-schema first: a broken schema would fail on the first record, or judge wrongly
            validator_class(source).check_schema(validation_copy(source, not_enforced))
        except jsonschema.SchemaError as exc:
            _usage_error(ctx, f"schema {label} is not a valid JSON Schema: at {exc.json_path}: {exc.message}")
        for note in dict.fromkeys(not_enforced):
            click.echo(f"note: {note}", err=True)
    parts = field.split(".") if field else []
    name = "<stdin>" if file == "-" else file
    records = invalid = 0
    with ExitStack() as stack:
        try:
            stream: IO[bytes] = sys.stdin.buffer if file == "-" else stack.enter_context(open(file, "rb"))
            bad: IO[bytes] | None = None
            if quarantine is not None:
                if file != "-" and os.path.exists(quarantine) and os.path.samefile(file, quarantine):
                    _usage_error(ctx, f"--quarantine {quarantine} is the file being validated")
                bad = stack.enter_context(open(quarantine, "ab"))
        except OSError as exc:
            _usage_error(ctx, f"{exc.filename}: {exc.strerror or exc}")
        for number, raw, line in _lines(stream):
            records += 1
            if field is None and records == 1 and is_run_record(raw) and check_line(compiled, raw, parts):
                parts = ["data"]  # `extractor run`'s OUT: its records are the `data` of each line
                click.echo(
                    f"note: {name} holds `extractor run` records: checking each line's `data` "
                    "(--field data; --field '' checks whole lines)",
                    err=True,
                )
            try:
                problems = check_line(compiled, raw, parts)
            except SchemaCompileError as exc:  # the schema itself is broken: nothing can be judged
                _usage_error(ctx, str(exc).splitlines()[0])
            if not problems:
                continue
            invalid += 1
            if bad is not None:
                bad.write(line if line.endswith(b"\n") else line + b"\n")
            if as_json:
                report = {"type": "invalid", "file": name, "line": number, "id": _record_id(raw)}
                report["errors"] = [p.as_json() for p in problems]
                click.echo(json.dumps(report, ensure_ascii=False, default=repr))
            else:
                for p in problems:
                    click.echo(f"{name}:{number}: {p.path}: {_one_line(p.message)}")
    valid = records - invalid
    if as_json:
        summary = {"type": "summary", "file": name, "records": records, "valid": valid, "invalid": invalid}
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        kept = f" (written to {quarantine})" if quarantine is not None and invalid else ""
        noun = "record" if records == 1 else "records"
        click.echo(f"{name}: {records} {noun}, {valid} valid, {invalid} invalid{kept}", err=True)
    ctx.exit(EXIT_FAILED if invalid else EXIT_OK)  # an exit status in click's standalone mode too
