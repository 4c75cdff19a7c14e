"""The source text of each record, read again at review time.

A record's `source` is what `extractor run` named the input: a file path (read with
`Document.from_path`, relative paths from the current folder, else from OUT's folder), or, for a line
of a JSONL input, `FILE.jsonl:N` (line N is read again when FILE is still there and the line still has
the record's id). `--inputs FILE.jsonl` files (`{"id", "text"}` lines) are looked up by id first. A
text that cannot be found or read says why (`SourceText.note`); nothing here raises.

OUT files travel between people, and the page is meant to be passed on: a source is read only when it
lies under one of the allowed folders (`roots`: by default the current folder and OUT's), with
symlinks and `..` resolved first. Any other is "not shown: outside the allowed folders" and never
opened, so that not a byte of it (nor whether it exists) reaches the page.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ...errors import ExtractorError
from ...sources import Document

__all__ = ["OUTSIDE_ROOTS", "ReviewText", "TextFinder"]

#: what the page says of a source outside the allowed folders
OUTSIDE_ROOTS: Final = "not shown: outside the allowed folders (--source-root to allow)"

_JSONL_LINE: Final = re.compile(r"(?P<file>.+\.jsonl):(?P<line>[1-9]\d*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ReviewText:
    """A record's source text (None when not available), its pages (`(number, offset)` pairs, for PDFs),
    where it was read from (`origin`), and why it is missing or what else to know (`note`)."""

    text: str | None
    pages: list[tuple[int, int]] = field(default_factory=list)
    origin: str = ""
    note: str | None = None


def _line_id(record: dict[str, Any], fallback: str) -> str:
    ident = record.get("id")
    if isinstance(ident, str):
        return ident
    if isinstance(ident, int | float) and not isinstance(ident, bool):
        return json.dumps(ident)
    return fallback


class _JsonlFile:
    """A JSONL input read again: where each line starts, to read one line when asked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.starts: list[int] = []
        with path.open("rb") as handle:
            at = 0
            for raw in handle:
                self.starts.append(at)
                at += len(raw)

    def line(self, number: int) -> dict[str, Any] | None:
        if number > len(self.starts):
            return None
        with self.path.open("rb") as handle:
            handle.seek(self.starts[number - 1])
            raw = handle.readline()
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is one; RecursionError: nested too deeply
            return None
        return record if isinstance(record, dict) else None


class TextFinder:
    """Finds records' source texts: `inputs` (JSONL files of `{"id", "text"}`) by id, then the `source`.

    `base` is a second folder relative paths are tried in (OUT's); `password` opens encrypted PDFs.
    Sources are read only under `roots` (default: the current folder and `base`), once resolved.
    """

    def __init__(
        self,
        *,
        inputs: list[Path] | None = None,
        base: Path | None = None,
        password: str | None = None,
        roots: list[Path] | None = None,
    ):
        self.base = base
        self.password = password
        chosen = roots if roots is not None else [Path.cwd(), *([base] if base is not None else [])]
        #: the folders sources may be read from, resolved (symlinks and `..`)
        self.roots = [Path(os.path.realpath(root)) for root in chosen]
        self.by_id: dict[str, tuple[str, str]] = {}  # id -> (text, where)
        self.jsonl: dict[str, _JsonlFile | None] = {}
        for path in inputs or []:
            self._index(path)

    def _index(self, path: Path) -> None:
        """Every `{"id", "text"}` line of an inputs file (a line without an id is `FILE#line=N`, as in a run)."""
        file = self._jsonl(path)
        if file is None:
            return
        for number in range(1, len(file.starts) + 1):
            record = file.line(number)
            if record is not None and isinstance(record.get("text"), str):
                ident = _line_id(record, f"{path}#line={number}")
                self.by_id.setdefault(ident, (record["text"], f"{path}:{number}"))

    def _jsonl(self, path: Path) -> _JsonlFile | None:
        key = os.fspath(path)
        if key not in self.jsonl:
            try:
                self.jsonl[key] = _JsonlFile(path) if path.is_file() else None
            except OSError:
                self.jsonl[key] = None
        return self.jsonl[key]

    def allowed(self, path: Path) -> bool:
        """Whether `path`, resolved (symlinks, `..`), lies under one of the allowed folders."""
        real = Path(os.path.realpath(path))
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def _where(self, name: str) -> tuple[Path | None, bool]:
        """The file `name` stands for (as given, else, relative, in `base`) if one is found under the
        allowed folders; and whether it is to be refused instead: one outside them exists, or there is
        no place within them to look (whether such a file exists is not told)."""
        candidates = [Path(name)]
        if self.base is not None and not os.path.isabs(name):
            candidates.append(self.base / name)
        inside = [c for c in candidates if self.allowed(c)]
        found = next((c for c in inside if c.exists()), None)
        if found is not None:
            return found, False
        return None, not inside or any(c.exists() for c in candidates if c not in inside)

    def find(self, ident: str, source: str) -> ReviewText:
        """The text of the record `ident` read from `source`."""
        if ident in self.by_id:
            text, where = self.by_id[ident]
            return ReviewText(text, origin=where)
        match = _JSONL_LINE.fullmatch(source)
        path, outside = self._where(source)
        if match is not None and path is None:
            return self._from_line(ident, match["file"], int(match["line"]))
        if source == "-" or source.startswith("-:") or source.startswith("-#"):
            return ReviewText(None, note="read from standard input: not available (give it with --inputs FILE.jsonl)")
        if outside:
            return ReviewText(None, note=OUTSIDE_ROOTS)
        if path is None:
            return ReviewText(None, note=f"source not found: {source}")
        return self._from_file(path)

    def _from_line(self, ident: str, name: str, number: int) -> ReviewText:
        path, outside = self._where(name)
        if outside:
            return ReviewText(None, note=OUTSIDE_ROOTS)
        file = self._jsonl(path) if path is not None else None
        if file is None:
            return ReviewText(None, note=f"the text was line {number} of {name}, not found (give it with --inputs)")
        record = file.line(number)
        if record is None or not isinstance(record.get("text"), str):
            return ReviewText(None, note=f"line {number} of {name} has no text now (give it with --inputs)")
        if _line_id(record, f"{name}#line={number}") != ident:
            return ReviewText(None, note=f"line {number} of {name} now holds another id (give it with --inputs)")
        return ReviewText(record["text"], origin=f"{name}:{number}")

    def _from_file(self, path: Path) -> ReviewText:
        try:
            doc = Document.from_path(path, password=self.password, images="never")
        except (ExtractorError, OSError) as exc:
            return ReviewText(None, origin=str(path), note=f"cannot read {path}: {exc}")
        if not doc.text.strip():
            what = "an image" if doc.kind == "image" else f"a {doc.kind} without text (scanned?)"
            return ReviewText(None, origin=str(path), note=f"no text to show: {what}")
        return ReviewText(doc.text, pages=doc.page_offsets, origin=str(path))
