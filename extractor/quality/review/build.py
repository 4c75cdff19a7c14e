"""Building the page from a run's files: records one at a time, written as they are made.

`write_review` keeps no more than one record's source text in memory: each record's HTML goes to a
temporary file as it is made, and the page (its head needs the counts) is then written to a file
beside `output` and moved over it, so a page is never left half-written.

With a `schema`, the page types its inputs by it and checks the labels against it before it exports
them; with `gold` (a GOLD file, as `extractor eval` reads it), it opens with those labels applied
(`labels.gold_labels`). The page's work is kept in the browser under a key made from OUT's resolved
path (`run_key`), so that each run's page has its own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...schema import compile_schema
from ..evaluate import Evaluator
from .labels import GoldLabels, gold_labels
from .load import Loaded, load_output
from .model import DEFAULT_MAX_CHARS, RecordView, ReviewPage, record_view
from .render import PAGE_END, page_head, record_html
from .texts import TextFinder

__all__ = ["ReviewSummary", "build_page", "iter_records", "run_key", "write_review"]


@dataclass(frozen=True)
class ReviewSummary:
    """What a written page shows: how many records, failed and unsupported, and the lines not read;
    with gold labels, how many records they label and how many of those OUT disagrees with."""

    output: Path
    records: int
    failed: int
    unsupported: int
    problems: list[str] = field(default_factory=list)
    labelled: int = 0
    disagreeing: int = 0


def run_key(out: Path) -> str:
    """The key the page keeps its work under in the browser: a digest of OUT's resolved path."""
    return hashlib.sha256(os.fsencode(os.path.realpath(out))).hexdigest()[:16]


def _json_schema(schema: Any) -> Any:
    """The JSON Schema the page types its inputs by and checks labels against (None: none given)."""
    if schema is None or isinstance(schema, dict | bool):
        return schema
    return compile_schema(schema).original_schema


def _prepare(loaded: Loaded, out: Path, schema: Any, gold: Path | None) -> tuple[dict[str, Any], GoldLabels | None]:
    """The page script's settings, and the gold labels (their notes added to `loaded.problems`)."""
    labels = gold_labels(gold, loaded, out, Evaluator(schema)) if gold is not None else None
    config: dict[str, Any] = {"run": run_key(out), "schema": _json_schema(schema), "carried": []}
    if labels is not None:
        loaded.problems.extend(labels.notes)
        config["carried"] = labels.carried
    return config, labels


def iter_records(loaded: Loaded, finder: TextFinder, *, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[RecordView]:
    """OUT's records, then the failures, each with its source text found by `finder`."""
    for i, line in enumerate([*loaded.records, *loaded.failures]):
        source = line.get("source")
        text = finder.find(line["id"], str(source) if source is not None else line["id"])
        yield record_view(i, line, text, max_chars=max_chars)


def build_page(
    loaded: Loaded,
    finder: TextFinder,
    *,
    out: str,
    errors: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    schema: Any = None,
    gold: Path | None = None,
) -> ReviewPage:
    """The whole page in memory (for small outputs and tests; `write_review` streams)."""
    config, labels = _prepare(loaded, Path(out), schema, gold)
    records = list(iter_records(loaded, finder, max_chars=max_chars))
    return ReviewPage(
        out=out,
        errors=errors,
        records=records,
        problems=loaded.problems,
        max_chars=max_chars,
        labels=labels,
        config=config,
    )


def write_review(
    out: Path,
    output: Path,
    *,
    errors: Path | None = None,
    inputs: list[Path] | None = None,
    password: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    source_roots: list[Path] | None = None,
    schema: Any = None,
    gold: Path | None = None,
) -> ReviewSummary:
    """Read OUT (and the errors file, when given) and write the page to `output`. Sources are shown only
    from the current folder, OUT's, and `source_roots`; `schema` types the page's inputs and checks its
    labels; `gold` opens it with those labels applied. A file that cannot be read raises
    `ConfigurationError` (`EvalInputError` for GOLD); one that cannot be written, `OSError`."""
    loaded = load_output(out, errors)
    config, labels = _prepare(loaded, out, schema, gold)
    found = labels.records if labels is not None else {}
    disagreeing = sum(bool(r.disagreements) for r in found.values())
    base = out.resolve().parent
    roots = [Path.cwd(), base, *(source_roots or [])]
    finder = TextFinder(inputs=inputs, base=base, password=password, roots=roots)
    total = failed = unsupported = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as body:
        for record in iter_records(loaded, finder, max_chars=max_chars):
            body.write(record_html(record, found.get(record.id)) + "\n")
            total += 1
            failed += record.failed
            unsupported += record.unsupported
        body.seek(0)
        partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            with partial.open("w", encoding="utf-8", errors="replace") as page:
                head = page_head(
                    str(out),
                    str(errors) if errors else None,
                    (total, failed, unsupported),
                    loaded.problems,
                    config=config,
                    disagreeing=disagreeing if labels is not None else None,
                )
                page.write(head)
                shutil.copyfileobj(body, page)
                page.write(PAGE_END)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    return ReviewSummary(output, total, failed, unsupported, loaded.problems, len(found), disagreeing)
