"""The INPUT arguments of `extractor run`: files, folders, globs, JSONL files, `-` for JSONL on stdin.

Inputs are produced lazily, in a stable order, each with a stable id: the path as given (a folder's
files as `folder/sub/file.pdf`), the JSONL line's `id`, or `FILE#line=N` (`-#line=N` for stdin).

Nothing given vanishes. Every file in a folder whose name says we read it (PDF, image, text) or whose bytes
are a PDF or an image is an input; when it cannot be read (wrong bytes behind the name, unreadable,
a dangling symlink, a FIFO or a device, deleted meanwhile) it is an input that fails with the reason.
A folder that cannot be listed, and a JSONL line that is not UTF-8, not JSON, has no text or repeats
an id with another text, are failed inputs too. Only files whose names and bytes say nothing we read
(`.DS_Store`, `.zip`, `.docx`, hidden files) are skipped, and each is named in `InputStats.skipped`;
so are `.jsonl` files met in a folder (often expected values or earlier outputs): a JSONL file is
read as inputs when named as an INPUT.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from ..errors import ConfigurationError, DocumentError, ExtractorError, InputError
from ..runs.runner import BatchItem
from ..sources import read_head
from ..sources._sniff import TEXT_SUFFIXES, describe, find_pdf_header, image_format
from ..sources.files import describe_mode

__all__ = ["InputStats", "Skip", "check_inputs", "count_inputs", "expand_inputs"]

_GLOB_CHARS: Final = frozenset("*?[")
#: file name endings that make a file in a folder an input, whatever its bytes turn out to be
_PDF_SUFFIXES: Final = frozenset({".pdf"})
_IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp"})
_INPUT_SUFFIXES: Final = _PDF_SUFFIXES | _IMAGE_SUFFIXES | frozenset(TEXT_SUFFIXES)
#: how many skipped names are kept for the summary (the count is always exact)
_KEPT_SKIPS: Final = 200


@dataclass(frozen=True)
class Skip:
    """A file left out by name, and why."""

    path: str
    reason: str


@dataclass
class InputStats:
    """What expanding the inputs met: inputs given, files skipped by name, inputs given again."""

    given: int = 0
    skipped: list[Skip] = field(default_factory=list)
    skipped_count: int = 0
    repeats: int = 0

    def skip(self, path: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < _KEPT_SKIPS:
            self.skipped.append(Skip(path, reason))


def _failed(ident: str, error: ExtractorError, label: str | None = None) -> BatchItem:
    return BatchItem(id=ident, source=ident, label=label, error=error)


# --- folders -----------------------------------------------------------------------------------


class _Walker:
    """The inputs under one folder, recursively, sorted by name; symlinked folders followed once."""

    def __init__(
        self, stats: InputStats, exclude: frozenset[str], password: str | None, named: frozenset[str] = frozenset()
    ) -> None:
        self.stats = stats
        self.exclude = exclude
        self.named = named  # JSONL files named as INPUTs (real paths): read as named, not skipped in a folder
        self.password = password
        self.visited: set[tuple[int, int]] = set()

    def walk(self, folder: str) -> Iterator[BatchItem]:
        try:
            info = os.stat(folder)
        except OSError as exc:
            yield _failed(folder, InputError(f"{folder}: cannot read the folder: {exc.strerror or exc}"))
            return
        self.visited.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(folder) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as exc:
            yield _failed(folder, InputError(f"{folder}: cannot list the folder: {exc.strerror or exc}"))
            return
        for name in names:
            yield from self._entry(os.path.join(folder, name), name)

    def _entry(self, path: str, name: str) -> Iterator[BatchItem]:
        if name.startswith("."):
            self.stats.skip(path, "hidden")
            return
        try:
            info = os.stat(path)  # follows symlinks
        except FileNotFoundError:
            if os.path.islink(path):
                target = os.readlink(path)
                yield _failed(path, DocumentError(f"dangling symlink: its target {target} does not exist", source=path))
            else:
                yield _failed(path, DocumentError("cannot read: it was deleted while the folder was read", source=path))
            return
        except OSError as exc:
            yield _failed(path, DocumentError(f"cannot read: {exc.strerror or exc}", source=path))
            return
        if stat.S_ISDIR(info.st_mode):
            if (info.st_dev, info.st_ino) in self.visited:
                self.stats.skip(path, "a folder already read (a symlink loop)")
                return
            yield from self.walk(path)
            return
        if os.path.realpath(path) in self.exclude:
            self.stats.skip(path, "this run's own output")
            return
        if not stat.S_ISREG(info.st_mode):
            yield _failed(
                path, DocumentError(f"not a regular file: {describe_mode(info.st_mode)}; not read", source=path)
            )
            return
        suffix = os.path.splitext(name)[1].lower()
        if suffix == ".jsonl":
            if os.path.realpath(path) not in self.named:
                self.stats.skip(path, "a JSONL file in a folder: name it as an INPUT to read its lines as inputs")
        elif suffix in _INPUT_SUFFIXES:
            yield BatchItem(id=path, source=Path(path), password=self.password)
        else:
            yield from self._by_bytes(path)

    def _by_bytes(self, path: str) -> Iterator[BatchItem]:
        """A file whose name says nothing we read: an input if its bytes are a PDF or an image, else skipped."""
        try:
            head = read_head(path)
        except DocumentError as exc:  # cannot tell what it is: fail it rather than drop it
            yield _failed(path, exc)
            return
        if find_pdf_header(head) >= 0 or image_format(head) is not None:
            yield BatchItem(id=path, source=Path(path), password=self.password)
        else:
            what = describe(head)
            self.stats.skip(path, f"not a PDF, image, text or JSONL file ({what})")


# --- JSONL ---------------------------------------------------------------------------------------


def _id_of(value: Any) -> str:
    """An id as a string: strings as written, numbers as JSON writes them (so 7 and "7" are one id)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise ValueError


def _jsonl(lines: Iterable[bytes], name: str) -> Iterator[BatchItem]:
    """One item per non-blank line; a line that cannot be an input is a failed item naming the line."""
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{name}:{number}"
        fallback = f"{name}#line={number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = raw[exc.start]
            message = f"{where}: not valid UTF-8 (byte 0x{byte:02x} at column {exc.start + 1})"
            yield _failed(fallback, InputError(message), where)
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            yield _failed(fallback, InputError(f"{where}: not JSON ({exc})"), where)
            continue
        except RecursionError:
            yield _failed(fallback, InputError(f"{where}: not JSON this reader accepts (nested too deeply)"), where)
            continue
        if not isinstance(record, dict):
            yield _failed(fallback, InputError(f"{where}: not a JSON object"), where)
            continue
        ident = fallback
        if record.get("id") is not None:
            try:
                ident = _id_of(record["id"])
            except ValueError:
                shown = json.dumps(record["id"])[:60]
                yield _failed(fallback, InputError(f'{where}: "id" must be a string or a number, not {shown}'), where)
                continue
        if not isinstance(record.get("text"), str):
            yield _failed(ident, InputError(f'{where}: no "text" string'), where)
            continue
        meta = {k: v for k, v in record.items() if k not in ("id", "text")}
        yield BatchItem(id=ident, source=record["text"], label=where, meta=meta)


def _jsonl_path(path: str) -> Iterator[BatchItem]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed when the generator ends
    except OSError as exc:
        yield _failed(path, DocumentError(f"cannot read: {exc.strerror or exc}", source=path))
        return
    with handle:
        try:
            yield from _jsonl(handle, path)
        except OSError as exc:
            yield _failed(f"{path}#read", DocumentError(f"stopped reading: {exc.strerror or exc}", source=path))


# --- arguments -----------------------------------------------------------------------------------


def _is_glob(arg: str) -> bool:
    return bool(_GLOB_CHARS & set(arg)) and not os.path.lexists(arg)


def check_inputs(args: Iterable[str], *, outputs: Iterable[str | Path] = ()) -> None:
    """Raise `ConfigurationError` for an INPUT that does not exist, a glob that matches nothing, or an
    output file that is also named as an input; nothing is read."""
    guarded = {os.path.realpath(p): str(p) for p in outputs}
    for arg in args:
        if arg == "-":
            continue
        if _is_glob(arg):
            matches = glob.glob(arg, recursive=True)
            if not matches:
                raise ConfigurationError(f"{arg}: no file matches")
        elif not os.path.exists(arg):
            what = "a dangling symlink" if os.path.islink(arg) else "no such file or folder"
            raise ConfigurationError(f"input {arg}: {what}")
        else:
            matches = [arg]
        for match in matches:
            if os.path.realpath(match) in guarded:
                raise ConfigurationError(
                    f"{guarded[os.path.realpath(match)]} is both an input and this run's output: choose another -o"
                )


def _items(arg: str, walker: _Walker, stdin: IO[bytes] | None) -> Iterator[BatchItem]:
    if arg == "-":
        yield from _jsonl(stdin if stdin is not None else sys.stdin.buffer, "-")
    elif _is_glob(arg):
        for match in sorted(glob.glob(arg, recursive=True)):
            yield from _items(match, walker, stdin)
    elif os.path.isdir(arg):
        yield from walker.walk(arg)
    elif arg.endswith(".jsonl") and os.path.isfile(arg):
        yield from _jsonl_path(arg)
    else:
        yield BatchItem(id=arg, source=Path(arg), password=walker.password)  # read (or failed) when its turn comes


def _named_jsonl(args: Iterable[str]) -> frozenset[str]:
    """The real paths of the JSONL files the arguments name, themselves or by a glob (`_items` reads them)."""
    named = set()
    for arg in args:
        if arg == "-":
            continue
        for match in sorted(glob.glob(arg, recursive=True)) if _is_glob(arg) else [arg]:
            if match.endswith(".jsonl") and os.path.isfile(match):
                named.add(os.path.realpath(match))
    return frozenset(named)


def _fingerprint(item: BatchItem) -> bytes:
    content = item.source if isinstance(item.source, str) and item.error is None else f"\0path:{item.source}"
    return hashlib.blake2b(str(content).encode("utf-8", "surrogatepass"), digest_size=12).digest()


def expand_inputs(
    args: Iterable[str],
    *,
    password: str | None = None,
    stdin: IO[bytes] | None = None,
    stats: InputStats | None = None,
    exclude: Iterable[str | Path] = (),
) -> Iterator[BatchItem]:
    """The batch items the INPUT arguments stand for, lazily, each id once.

    `exclude`: files (this run's OUT and errors file) never read as inputs when met in a folder. An
    id given again with the same content is done once (`stats.repeats`); with another text, the later
    line is a failed input saying where the id was first seen.
    """
    stats = stats if stats is not None else InputStats()
    args = list(args)
    walker = _Walker(stats, frozenset(os.path.realpath(p) for p in exclude), password, _named_jsonl(args))
    seen: dict[str, tuple[bytes, str]] = {}
    for arg in args:
        for item in _items(arg, walker, stdin):
            fingerprint = _fingerprint(item)
            first = seen.get(item.id)
            if first is not None:
                if first[0] == fingerprint:
                    stats.repeats += 1
                    continue
                where = item.label or item.id
                file, _, line = where.rpartition(":")
                line_id = f"{file}#line={line}" if item.label and line.isdigit() else f"{item.id}#again"
                message = (
                    f'{where}: duplicate id "{item.id}" with another text, first seen at {first[1]} '
                    '(ids are compared as strings: 7 and "7" are the same id)'
                )
                item = _failed(line_id, InputError(message), where)
                if item.id in seen:
                    stats.repeats += 1
                    continue
            seen[item.id] = (fingerprint, item.label or item.id)
            stats.given += 1
            yield item


def count_inputs(args: Iterable[str], *, exclude: Iterable[str | Path] = ()) -> int | None:
    """How many inputs the arguments stand for (None when stdin is among them), exactly as `expand_inputs`."""
    args = list(args)
    if "-" in args:
        return None
    return sum(1 for _ in expand_inputs(args, exclude=exclude))
