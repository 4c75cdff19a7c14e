"""The INPUT arguments of `extractor run`: files, folders, globs, JSONL files, `-` for JSONL on stdin.

Inputs are produced lazily, in a stable order, each with a stable id: the path as given (a folder's
files as `folder/sub/file.pdf`), the JSONL line's `id`, or `FILE#line=N` (`-#line=N` for stdin).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..batch import BatchItem
from ..errors import ConfigurationError
from ..sources import file_kind

__all__ = ["InputStats", "count_inputs", "expand_inputs"]

log = logging.getLogger("extractor")

_GLOB_CHARS = frozenset("*?[")


@dataclass
class InputStats:
    """What expanding the inputs met besides inputs: files skipped in folders, bad JSONL lines, repeats."""

    skipped_files: int = 0
    bad_lines: list[str] = field(default_factory=list)
    duplicates: int = 0


def _walk(folder: str) -> Iterator[str]:
    """The files under `folder`, recursively, sorted, hidden ones left out."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def _kind(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return None
    return file_kind(head, Path(path).suffix)


def _jsonl(lines: IO[str], name: str, stats: InputStats) -> Iterator[BatchItem]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            stats.bad_lines.append(f"{name}:{number}: not JSON")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            stats.bad_lines.append(f'{name}:{number}: no "text" string')
            continue
        ident = record.get("id")
        item_id = str(ident) if ident is not None else f"{name}#line={number}"
        meta = {k: v for k, v in record.items() if k not in ("id", "text")}
        yield BatchItem(id=item_id, source=record["text"], label=f"{name}:{number}", meta=meta)


def _paths(arg: str, stats: InputStats) -> Iterator[str]:
    path = Path(arg)
    if path.is_dir():
        for file in _walk(arg):
            if _kind(file) is None:
                stats.skipped_files += 1
                log.info("%s: not a PDF, image or text file; skipped", file)
                continue
            yield file
    elif not path.exists() and _GLOB_CHARS & set(arg):
        matches = sorted(glob.glob(arg, recursive=True))
        if not matches:
            raise ConfigurationError(f"{arg}: no file matches")
        for match in matches:
            yield from _paths(match, stats) if Path(match).is_dir() else [match]
    else:
        yield arg  # a missing or unreadable file fails as that one input, with a clear error


def expand_inputs(
    args: Iterable[str], *, password: str | None = None, stdin: IO[str] | None = None, stats: InputStats | None = None
) -> Iterator[BatchItem]:
    """The batch items the INPUT arguments stand for, lazily, without repeats (by id)."""
    stats = stats if stats is not None else InputStats()
    seen: set[str] = set()
    for arg in args:
        if arg == "-":
            items: Iterator[BatchItem] = _jsonl(stdin or sys.stdin, "-", stats)
        elif arg.endswith(".jsonl") and Path(arg).is_file():
            handle = open(arg, encoding="utf-8")  # noqa: SIM115 - closed when the generator ends
            items = _jsonl_file(handle, arg, stats)
        else:
            items = (BatchItem(id=p, source=Path(p), password=password) for p in _paths(arg, stats))
        for item in items:
            if item.id in seen:
                stats.duplicates += 1
                log.warning("%s: given more than once; done once", item.id)
                continue
            seen.add(item.id)
            yield item


def _jsonl_file(handle: IO[str], name: str, stats: InputStats) -> Iterator[BatchItem]:
    with handle:
        yield from _jsonl(handle, name, stats)


def count_inputs(args: Iterable[str]) -> int | None:
    """How many inputs the arguments stand for (None when stdin is among them), without reading files."""
    total = 0
    stats = InputStats()
    for arg in args:
        if arg == "-":
            return None
        if arg.endswith(".jsonl") and Path(arg).is_file():
            with open(arg, encoding="utf-8", errors="replace") as handle:
                total += sum(1 for line in handle if line.strip())
        else:
            total += sum(1 for _ in _paths(arg, stats))
    return total
