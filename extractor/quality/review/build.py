"""Building the page from a run's files: records one at a time, written as they are made.

`write_review` keeps no more than one record's source text in memory: each record's HTML goes to a
temporary file as it is made, and the page (its head needs the counts) is then written to a file
beside `output` and moved over it, so a page is never left half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .load import Loaded, load_output
from .model import DEFAULT_MAX_CHARS, RecordView, ReviewPage, record_view
from .render import PAGE_END, page_head, record_html
from .texts import TextFinder

__all__ = ["ReviewSummary", "build_page", "iter_records", "write_review"]


@dataclass(frozen=True)
class ReviewSummary:
    """What a written page shows: how many records, failed and unsupported, and the lines not read."""

    output: Path
    records: int
    failed: int
    unsupported: int
    problems: list[str] = field(default_factory=list)


def iter_records(loaded: Loaded, finder: TextFinder, *, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[RecordView]:
    """OUT's records, then the failures, each with its source text found by `finder`."""
    for i, line in enumerate([*loaded.records, *loaded.failures]):
        source = line.get("source")
        text = finder.find(line["id"], str(source) if source is not None else line["id"])
        yield record_view(i, line, text, max_chars=max_chars)


def build_page(
    loaded: Loaded, finder: TextFinder, *, out: str, errors: str | None = None, max_chars: int = DEFAULT_MAX_CHARS
) -> ReviewPage:
    """The whole page in memory (for small outputs and tests; `write_review` streams)."""
    records = list(iter_records(loaded, finder, max_chars=max_chars))
    return ReviewPage(out=out, errors=errors, records=records, problems=loaded.problems, max_chars=max_chars)


def write_review(
    out: Path,
    output: Path,
    *,
    errors: Path | None = None,
    inputs: list[Path] | None = None,
    password: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    source_roots: list[Path] | None = None,
) -> ReviewSummary:
    """Read OUT (and the errors file, when given) and write the page to `output`. Sources are shown only
    from the current folder, OUT's, and `source_roots`. A file that cannot be read raises
    `ConfigurationError`; one that cannot be written, `OSError`."""
    loaded = load_output(out, errors)
    base = out.resolve().parent
    roots = [Path.cwd(), base, *(source_roots or [])]
    finder = TextFinder(inputs=inputs, base=base, password=password, roots=roots)
    total = failed = unsupported = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as body:
        for record in iter_records(loaded, finder, max_chars=max_chars):
            body.write(record_html(record) + "\n")
            total += 1
            failed += record.failed
            unsupported += record.unsupported
        body.seek(0)
        partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            with partial.open("w", encoding="utf-8", errors="replace") as page:
                head = page_head(
                    str(out), str(errors) if errors else None, (total, failed, unsupported), loaded.problems
                )
                page.write(head)
                shutil.copyfileobj(body, page)
                page.write(PAGE_END)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    return ReviewSummary(output, total, failed, unsupported, loaded.problems)
