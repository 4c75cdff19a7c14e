"""`extractor eval GOLD.jsonl OUT.jsonl --schema SCHEMA`: how accurate a pipeline's records are.

GOLD lines are `{"id", "data"}` or `{"file", "data"}`, or `{"id", "unusable": true}` for a record
the review page marked unusable (left out, with its OUT record, and counted); OUT is what
`extractor run` writes. Records are paired by id, or a GOLD `file` by the path of OUT's
`source`/`id` (its basename, or a longer path suffix), then compared field by field as
`extractor.quality.evaluate` describes. Prints precision, recall, F1 and accuracy per field path and
overall, the exact-record rate, and the records missing from OUT or extra in it; `--json` prints
one JSON object instead.

Exit status: 0, or 1 when the overall accuracy is below `--min-accuracy`; 2 for bad usage (a file
that cannot be read, a line that is not a record, a schema that cannot be read or compiled).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click

from ..errors import ExtractorError
from ..quality.evaluate import Counts, EvalOptions, EvalReport, Evaluator, plain_json, read_records
from ._app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, cli
from ._text import printable
from .schemas import resolve_schema

__all__ = ["eval_command", "format_report"]

_SHOWN_IDS = 5  # ids of missing and extra records named in the text report
_SHOWN_VALUE = 60  # characters of a value shown in --details


def _usage_error(ctx: click.Context, message: str) -> NoReturn:
    click.echo(f"error: {printable(message)}", err=True)
    ctx.exit(EXIT_USAGE)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _row(name: str, c: Counts, width: int) -> str:
    return (
        f"{name:<{width}}  {c.n:>6}  {c.correct + c.both_null:>6}  {c.wrong:>6}  {c.missed:>6}  {c.spurious:>8}  "
        f"{c.absent:>6}  {_fraction(c.precision):>9}  {_fraction(c.recall):>6}  {_fraction(c.f1):>5}  "
        f"{_fraction(c.accuracy):>8}"
    )


def _ids(ids: list[str]) -> str:
    shown = ", ".join(printable(i) for i in ids[:_SHOWN_IDS])
    return f" ({shown}{', ...' if len(ids) > _SHOWN_IDS else ''})" if ids else ""


def _value(value: Any) -> str:
    text = printable(json.dumps(plain_json(value), ensure_ascii=False))
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 3] + "..."


def format_report(report: EvalReport, *, details: bool = False) -> str:
    """The text report: a table of fields, the overall row, then the records."""
    overall = report.overall
    width = max([len("field"), len("overall"), *(len(printable(name)) for name in report.fields)])
    header = (
        f"{'field':<{width}}  {'n':>6}  {'right':>6}  {'wrong':>6}  {'missed':>6}  {'spurious':>8}  {'absent':>6}  "
        f"{'precision':>9}  {'recall':>6}  {'F1':>5}  {'accuracy':>8}"
    )
    lines = [header]
    lines += [_row(printable(name), counts, width) for name, counts in report.fields.items()]
    lines.append(_row("overall", overall, width))
    rate = report.exact_rate
    exact = f"{report.exact} of {report.gold_records}" + ("" if rate is None else f" ({rate:.1%})")
    lines.append("")
    lines.append(
        f"records: {report.gold_records} in GOLD, {report.out_records} in OUT, {report.matched} matched, "
        f"{len(report.missing_ids)} missing from OUT{_ids(report.missing_ids)}, "
        f"{len(report.extra_ids)} extra in OUT{_ids(report.extra_ids)}"
    )
    if report.unusable_ids:
        count = len(report.unusable_ids)
        lines.append(
            f"left out: {count} GOLD record{'' if count == 1 else 's'} marked unusable{_ids(report.unusable_ids)}, "
            "and OUT's records of them"
        )
    lines.append(f"records with every field right: {exact}")
    for path, count in report.approximations.items():
        lists = "1 list" if count == 1 else f"{count:,} lists"
        lines.append(
            f"note: {lists} at {printable(path)} paired approximately (too long for an optimal assignment "
            "after pairing by identity): its counts may be slightly low"
        )
    if details and report.disagreements:
        lines.append("")
        lines.append("disagreements:")
        for d in report.disagreements:
            lines.append(
                f"  {printable(d.record)}: {printable(d.where)}: {d.kind}: gold {_value(d.gold)}, out {_value(d.out)}"
            )
    return "\n".join(lines)


def _check_fraction(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise click.BadParameter(f"{value} is not a fraction between 0 and 1 (e.g. 0.95)")
    return value


def _check_ratio(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 < value <= 1:
        raise click.BadParameter(f"{value} is not a similarity ratio in (0, 1] (e.g. 0.9)")
    return value


_NON_NEGATIVE = click.FloatRange(min=0)


@cli.command("eval")
@click.argument("gold", metavar="GOLD.jsonl")
@click.argument("out", metavar="OUT.jsonl")
@click.option(
    "--schema",
    "schema_spec",
    required=True,
    metavar="SCHEMA",
    help="JSON Schema file, package.module:Model, or a bundled schema name.",
)
@click.option(
    "--tolerance",
    type=_NON_NEGATIVE,
    default=0.005,
    show_default=True,
    metavar="ABS",
    help="Numbers agree within this absolute difference.",
)
@click.option(
    "--relative-tolerance",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    metavar="REL",
    help="...or within this fraction of the GOLD value (0.01: 1%), whichever allows more.",
)
@click.option(
    "--fuzzy",
    type=float,
    default=None,
    callback=_check_ratio,
    metavar="RATIO",
    help="Free-text strings agree at this similarity ratio or above (0.9); default: equal once normalised.",
)
@click.option(
    "--min-accuracy",
    type=float,
    default=None,
    callback=_check_fraction,
    metavar="FRACTION",
    help="Exit 1 when the overall field accuracy is below this (0.95).",
)
@click.option("--details", is_flag=True, help="List every disagreement (record, place, both values).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    gold: str,
    out: str,
    schema_spec: str,
    tolerance: float,
    relative_tolerance: float,
    fuzzy: float | None,
    min_accuracy: float | None,
    details: bool,
    as_json: bool,
) -> None:
    """Compare OUT.jsonl (from `extractor run`) with GOLD.jsonl, field by field.

    GOLD lines are {"id", "data"} or {"file", "data"}: an id pairs with OUT's id; a file pairs with
    the OUT record whose source (or id) is that path or ends with it (a basename works). Lines
    {"id", "unusable": true} (from `extractor review`'s export) are left out and counted. Prints
    precision, recall, F1 and accuracy per field and overall; exit 1 when the overall accuracy is
    below --min-accuracy, 2 for bad usage.
    """
    try:
        schema, label = resolve_schema(schema_spec)
        evaluator = Evaluator(schema, EvalOptions(tolerance, relative_tolerance, fuzzy))
        gold_records = read_records(gold, "GOLD")
        out_records = read_records(out, "OUT")
        report = evaluator.evaluate(gold_records, out_records, details=details)
    except ExtractorError as exc:
        _usage_error(ctx, str(exc))
    accuracy = report.overall.accuracy
    failed = min_accuracy is not None and (accuracy is None or accuracy < min_accuracy)
    if as_json:
        result: dict[str, Any] = {"gold": gold, "out": out, "schema": label}
        result["options"] = {"tolerance": tolerance, "relative_tolerance": relative_tolerance, "fuzzy": fuzzy}
        result.update(report.as_json(details=details))
        result["min_accuracy"] = min_accuracy
        result["passed"] = not failed
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        fuzzy_text = "off" if fuzzy is None else f"{fuzzy:g}"
        click.echo(
            f"GOLD {printable(gold)} vs OUT {printable(out)}, schema {printable(label)}; tolerance {tolerance:g}"
            f"{f' or {relative_tolerance:g} relative' if relative_tolerance else ''}, fuzzy {fuzzy_text}"
        )
        click.echo("")
        click.echo(format_report(report, details=details))
    if report.gold_records and out_records and not report.matched:
        click.echo(
            f"note: no GOLD record found its OUT record; GOLD names them like {printable(gold_records[0].label)!r}, "
            f"OUT like {printable(out_records[0].label)!r}",
            err=True,
        )
    if failed and min_accuracy is not None:
        shown = "undefined (no fields compared)" if accuracy is None else f"{accuracy:.4f}"
        click.echo(f"overall accuracy {shown} is below --min-accuracy {min_accuracy:g}", err=True)
        ctx.exit(EXIT_FAILED)
    ctx.exit(EXIT_OK)
