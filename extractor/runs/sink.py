"""Crash-safe, resumable JSONL output: one line per input, successes in one file, failures in another.

`extractor run INPUT... -o OUT.jsonl` writes one line per successful input to OUT,
`{"id", "source", "data", "meta"}`, and one per failed input to the errors file (by default
`OUT.errors.jsonl`), `{"id", "source", "error": {"type", "message"}, "meta"}`. Running the same
command again skips every id already in OUT, and every id in the errors file unless
`retry_errors=True`.

How a line is written: the record is serialised to one line of compact UTF-8 JSON (newlines and the
other characters some readers split lines on are escaped) and appended with a single `os.write` to a
file opened `O_APPEND`, without Python buffering. A killed process therefore leaves each record wholly
written or, at worst, the very last one torn at the end of the file. Opening repairs that: a last
line without its newline, or one that is not JSON, is cut off (`dropped_bytes` says how much), and its
input is simply done again.

Durability: a line is in the operating system's hands when `write_ok`/`write_error` returns, so it
survives SIGKILL or any crash of the process. Against power loss or a kernel crash, the files are
fsynced (`fdatasync`) at most every `fsync_interval` seconds, by a timer that runs within that time
of the first unsynced write, and on `close()`: at most the last `fsync_interval` seconds of lines can
be lost (they are then done again on the next run); a line cut by the power loss is repaired as above.
`fsync_interval=0` syncs after every line.

Exactly one line per id: a record whose id is already done is refused (`ValueError`). With
`retry_errors=True` an id of the errors file may be written once more; if it now succeeds, its error
line is removed when the sink closes; if it fails again, its new error line replaces the old one. The
errors file is then rewritten (a temporary file in the same directory, fsynced, then `os.replace`),
so after `close()` no id is in both files and none has two error lines. A run killed before closing
may leave such an id behind; the next `open()` finishes the job before anything else.

One process at a time: `open()` takes an exclusive `flock` on OUT and one on the errors file (released
by the kernel when the process dies), and raises `ConfigurationError` when another sink holds either:
two runs with different outputs cannot share an errors file. The errors file's lock survives its
rewrites (the new file is locked before it replaces the old one).

Only files with records stay: `open()` creates a missing file (so that it can be locked before anything
is sent), and `close()` removes a file it created if nothing was written to it (a run stopped before its
first record, a run with no failure leaves no empty errors file), while still holding its lock. A lock
is always taken on the file the path names once it is held: a sink that opened a file its holder then
removed (or replaced) opens the path again, so it never writes to a file no longer there.

Only its own files: before it touches anything (no repair, no append, no file created), `open()`
checks that each of the two files, if it exists, was written by a sink, and raises
`ConfigurationError` naming the file otherwise, so that `-o settings.json` or `-o inputs.jsonl` cannot
damage a file that is not an output. Blank lines, and lines of NUL bytes (what a power loss leaves),
are skipped; then the first line that is valid JSON (the unterminated last line included) decides: the
file is a sink's if that line is an object with a string `"id"` and a `"data"` key (OUT) or an
`"error"` key (the errors file), and is not otherwise (an input line `{"id", "text"}`, an array, a
number...). Lines that are not JSON before it are tolerated (damage), but a file without any JSON line
is a sink's only if it holds nothing else than a last line without its newline that begins a JSON
object: the first record, torn by a kill. Empty files are a sink's. Later lines are not judged: a
damaged output keeps opening as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pydantic_core

from ..errors import ConfigurationError

if sys.platform != "win32":
    import fcntl

__all__ = ["JsonlSink", "ScanReport", "errors_path_for"]

log = logging.getLogger("extractor")

_O_BINARY: int = getattr(os, "O_BINARY", 0)
_SHOWN_LINE_NUMBERS = 20
# Characters that JSON may leave raw inside a string but that `str.splitlines()` (and some other
# readers) treat as line breaks: NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR, in UTF-8, and their escapes.
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def errors_path_for(out: str | Path) -> Path:
    """The default errors file of an output: `out.jsonl` -> `out.errors.jsonl`, `out.txt` -> `out.txt.errors.jsonl`."""
    out = Path(out)
    if out.suffix == ".jsonl":
        return out.with_name(out.name[: -len(".jsonl")] + ".errors.jsonl")
    return out.with_name(out.name + ".errors.jsonl")


@dataclass
class ScanReport:
    """What opening found in one file: its records, the lines it could not read, the bytes it cut off.

    `records` counts lines that are JSON objects with a string `id` (`duplicates` of them repeat an
    id seen earlier in the file); `invalid_lines` counts complete lines that are not (their 1-based
    numbers, the first 20, in `invalid_line_numbers`); they are kept and skipped. `dropped_bytes` is
    what was cut from the end: a torn last line, or a last line that is not JSON.
    """

    path: Path
    exists: bool = False
    records: int = 0
    duplicates: int = 0
    invalid_lines: int = 0
    invalid_line_numbers: list[int] = field(default_factory=list)
    dropped_bytes: int = 0


def _record_id(line: bytes) -> tuple[bool, str | None]:
    """(whether `line` is JSON, its string `id` or None); a blank line counts as JSON without an id."""
    if not line.strip():
        return True, None
    try:
        value = pydantic_core.from_json(line, cache_strings="keys")
    except ValueError:
        return False, None
    ident = value.get("id") if isinstance(value, dict) else None
    return True, ident if isinstance(ident, str) else None


def _is_blank(line: bytes) -> bool:
    """Whether `line` holds nothing: whitespace only, or NUL bytes (what a power loss leaves where lines were)."""
    return not line.replace(b"\x00", b"").strip()


def _foreign(path: Path, key: str) -> str | None:
    """Why `path` is not a file of records `{"id": str, key: ...}` by a sink; None when it is, is empty or missing.

    Reads only up to the first line that is JSON (see the module's docstring for the rule); modifies nothing.
    """
    shape = f'record with "id" and "{key}"'
    try:
        reader = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
    except FileNotFoundError:
        return None
    first: int | None = None  # number of the first line that is not blank
    with reader:
        for number, line in enumerate(reader, 1):
            if _is_blank(line):
                continue
            if first is None:
                first = number
            try:
                value = pydantic_core.from_json(line)
            except ValueError:
                if line.endswith(b"\n"):
                    continue  # not JSON: damage, or a file that is not JSON lines at all; look further
                # the last line, unterminated and not JSON: a torn record if it begins an object and is alone
                if first == number and _begins_object(line):
                    return None
                break
            if isinstance(value, dict) and isinstance(value.get("id"), str) and key in value:
                return None
            if first < number:
                return f"line {first} is not JSON, and line {number}, the first that is, is not a {shape}"
            return f"line {number} is JSON but not a {shape}"
    if first is None:
        return None
    return f"line {first} is not a JSON {shape}, nor is any other line"


def _begins_object(data: bytes) -> bool:
    """Whether `data` is the beginning of a JSON object (as a record cut anywhere, even inside a character, is)."""
    try:
        value = pydantic_core.from_json(data, allow_partial=True)
    except ValueError:
        return False
    return isinstance(value, dict)


def _collect_ids(path: Path) -> tuple[set[str], ScanReport]:
    """The ids of a file's complete records, and the scan's report (repeated ids counted)."""
    ids: set[str] = set()
    repeated = 0

    def add(ident: str) -> None:
        nonlocal repeated
        if ident in ids:
            repeated += 1
        ids.add(ident)

    report = _scan(path, add)
    report.duplicates = repeated
    return ids, report


def _scan(path: Path, seen: Callable[[str], None]) -> ScanReport:
    """Read the ids of `path` line by line (calling `seen` for each), cutting off a torn or non-JSON last line."""
    report = ScanReport(path)
    try:
        reader = open(path, "rb")  # noqa: SIM115 - closed below, before the file is truncated
    except FileNotFoundError:
        return report
    report.exists = True
    offset = 0
    cut: int | None = None
    number = 0
    last_bad: int | None = None  # start of the last line when that line is not JSON
    with reader:
        for number, line in enumerate(reader, 1):
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):  # only the last line can lack its newline: torn
                cut = start
                break
            is_json, ident = _record_id(line)
            last_bad = None if is_json else start
            if ident is not None:
                report.records += 1
                seen(ident)
            elif line.strip():
                report.invalid_lines += 1
                if len(report.invalid_line_numbers) < _SHOWN_LINE_NUMBERS:
                    report.invalid_line_numbers.append(number)
        size = reader.seek(0, os.SEEK_END)
    if cut is None and last_bad is not None:
        cut = last_bad
        report.invalid_lines -= 1
        if report.invalid_line_numbers and report.invalid_line_numbers[-1] == number:
            report.invalid_line_numbers.pop()
    if cut is not None and cut < size:
        with open(path, "r+b") as writer:
            writer.truncate(cut)
            writer.flush()
            os.fsync(writer.fileno())
        report.dropped_bytes = size - cut
    return report


def _encode(record: Mapping[str, Any]) -> tuple[str, bytes]:
    """(the record's id, the record as one line of compact UTF-8 JSON ending in a newline)."""
    if not isinstance(record, Mapping):
        raise TypeError(f"a record is a mapping, not {type(record).__name__}")
    ident = record.get("id")
    if not isinstance(ident, str):
        raise ValueError(f"a record needs a string 'id', got {type(ident).__name__}")
    try:
        data = pydantic_core.to_json(record, inf_nan_mode="null")
    except ValueError as exc:
        raise ValueError(f"record {ident!r} cannot be written as JSON: {exc}") from None
    for raw, escaped in _LINE_BREAKS:
        if raw in data:  # only inside strings: JSON allows none of them elsewhere
            data = data.replace(raw, escaped)
    if b"\n" in data:  # pragma: no cover - JSON escapes newlines; a guard for the one-line promise
        raise ValueError(f"record {ident!r} does not serialise to a single line")
    return ident, data + b"\n"


def _datasync(fd: int) -> None:
    (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(fd)


def _fsync_dir(directory: Path) -> None:
    """Make a file's creation or replacement in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock(fd: int, path: Path) -> None:
    """Take the exclusive `flock` of the open file `fd` (`path`); `ConfigurationError` when another holds it."""
    if sys.platform == "win32":  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigurationError(f"{path} is being written by another run (it holds the file's lock)") from None
    except OSError as exc:  # a file system without locks (some network mounts): go on without
        log.debug("cannot lock %s (%s); going on without the lock", path, exc)


@dataclass
class _Appender:
    """One output file opened for appending: its descriptor, size as written, and whether it needs a sync."""

    path: Path
    fd: int
    size: int
    dirty: bool = False


def _open_append(path: Path) -> tuple[_Appender, bool]:
    """(`path` opened O_APPEND, created if missing; whether it was created)."""
    flags = os.O_WRONLY | os.O_APPEND | _O_BINARY
    while True:
        try:
            fd, created = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            try:
                fd, created = os.open(path, flags), False
            except FileNotFoundError:  # removed just now (by the sink that held it): create it then
                continue
        return _Appender(path, fd, os.fstat(fd).st_size), created


def _names(fd: int, path: Path) -> bool:
    """Whether `path` names the open file `fd` (not one put in its place since, nor nothing)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _remove_if_empty(fd: int, path: Path) -> None:
    """Remove `path`, the file open as `fd` whose lock this process holds, if nothing was ever written to it."""
    if os.fstat(fd).st_size == 0 and _names(fd, path):
        with contextlib.suppress(OSError):
            os.unlink(path)


class JsonlSink:
    """The output of a batch run: successes appended to `out`, failures to `errors`, each id once.

    >>> with JsonlSink(Path("out.jsonl")) as sink:          # doctest: +SKIP
    ...     for item in inputs:
    ...         if sink.is_done(item.id):
    ...             continue
    ...         sink.write_ok({"id": item.id, "source": item.path, "data": data, "meta": meta})

    Safe to call from several threads (one lock); records are never logged.
    """

    def __init__(
        self,
        out: str | Path,
        errors: str | Path | None = None,
        *,
        retry_errors: bool = False,
        fsync_interval: float = 1.0,
    ) -> None:
        self.out_path = Path(out)
        self.errors_path = Path(errors) if errors is not None else errors_path_for(self.out_path)
        if os.path.abspath(self.out_path) == os.path.abspath(self.errors_path):
            raise ConfigurationError(f"the output and the errors file are the same file: {self.out_path}")
        if fsync_interval < 0:
            raise ValueError("fsync_interval is a number of seconds, 0 or more")
        self.retry_errors = retry_errors
        self.fsync_interval = fsync_interval
        self.out_scan = ScanReport(self.out_path)
        self.errors_scan = ScanReport(self.errors_path)
        self.ok_existing = 0
        self.failed_existing = 0
        self.ok_written = 0
        self.failed_written = 0
        self._lock = threading.Lock()
        self._out: _Appender | None = None
        self._err: _Appender | None = None
        self._done: set[str] = set()
        self._failed: set[str] = set()  # ids whose line is in the errors file (retry_errors: until rewritten)
        self._retry_pending: set[str] = set()  # error ids that may be written once more (retry_errors)
        self._superseded: set[str] = set()  # such ids since written to OUT: their error line goes
        self._refailed = 0  # such ids written to the errors file again: their old line goes
        self._timer: threading.Timer | None = None
        self._errors_lock: int | None = None  # a descriptor of the errors file holding its lock
        self._created = (False, False)  # whether this sink created OUT, the errors file (removed at close if empty)
        self._sync_error: OSError | None = None
        self._broken: str | None = None

    # --- what is done -------------------------------------------------------------------

    @property
    def done_ids(self) -> frozenset[str]:
        """A snapshot of the ids that have their line: those of OUT, and of the errors file unless retried."""
        with self._lock:
            return frozenset(self._done)

    def is_done(self, id: str) -> bool:
        """Whether `id` already has its line (and so must not be written again)."""
        return id in self._done

    def status(self, id: str) -> Literal["ok", "failed"] | None:
        """Where `id` has its line: "ok" in OUT, "failed" in the errors file, None in neither.

        With `retry_errors=True`, an id of the errors file is "failed" (though not done) until it is
        written again; then it is "ok" or "failed" as that write says.
        """
        with self._lock:
            if id in self._failed:
                return "failed"
            return "ok" if id in self._done else None

    @property
    def dropped_bytes(self) -> int:
        """Bytes cut from the end of the two files on opening (torn or unreadable last lines)."""
        return self.out_scan.dropped_bytes + self.errors_scan.dropped_bytes

    @property
    def invalid_lines(self) -> int:
        """Complete lines of the two files that are not records (kept, skipped)."""
        return self.out_scan.invalid_lines + self.errors_scan.invalid_lines

    @property
    def is_open(self) -> bool:
        return self._out is not None

    # --- lifetime -----------------------------------------------------------------------

    def open(self) -> JsonlSink:
        """Lock OUT, repair both files, read their ids; creates the files (and their directories); `close`
        removes a file created here that is still empty.

        Raises `ConfigurationError`, having changed nothing, when a file exists that is not a sink's
        (see the module's docstring), or when another sink holds OUT.
        """
        with self._lock:
            if self._out is not None:
                raise ValueError(f"{self.out_path} is already open")
            self._reset()
            self._refuse_foreign()
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            self.errors_path.parent.mkdir(parents=True, exist_ok=True)
            out, created = self._lock_out()
            try:
                if created:
                    _fsync_dir(self.out_path.parent)
                had_errors = os.path.lexists(self.errors_path)
                self._errors_lock = self._lock_errors()  # creates the errors file
                if not had_errors:
                    _fsync_dir(self.errors_path.parent)
                self._created = (created, not had_errors)
                self._load()
                out.size = os.fstat(out.fd).st_size  # after any repair
                err, _ = _open_append(self.errors_path)
            except BaseException:
                self._unlock_errors()
                os.close(out.fd)
                raise
            self._out, self._err = out, err
        return self

    def close(self) -> None:
        """Sync and close both files; with retried ids, rewrite the errors file. Idempotent.

        Raises the `OSError` of a failed background sync, if one happened since the last write.
        """
        with self._lock:
            if self._out is None:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            out, err = self._out, self._err
            self._out = self._err = None
            try:
                for appender in (out, err):
                    if appender is not None and appender.dirty and self._broken is None:
                        _datasync(appender.fd)
                if err is not None:
                    os.close(err.fd)
                    err = None
                if (self._superseded or self._refailed) and self._broken is None:
                    self._rewrite_errors(self._superseded)
                # a file this sink created and never wrote to goes (a run that stopped before any record leaves
                # nothing behind), removed while its lock is held; a sink waiting to lock it opens it anew
                out_created, errors_created = self._created
                if out_created:
                    _remove_if_empty(out.fd, self.out_path)
                if errors_created and self._errors_lock is not None:
                    _remove_if_empty(self._errors_lock, self.errors_path)
            finally:
                if err is not None:
                    os.close(err.fd)
                self._unlock_errors()
                os.close(out.fd)  # releases the lock, last
            error, self._sync_error = self._sync_error, None
            if error is not None:
                raise error

    def __enter__(self) -> JsonlSink:
        if self._out is None:
            self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._out is not None else "closed"
        return f"JsonlSink({str(self.out_path)!r}, errors={str(self.errors_path)!r}, {state})"

    # --- writing ------------------------------------------------------------------------

    def write_ok(self, record: Mapping[str, Any]) -> None:
        """Append `record` (`{"id", "source", "data", "meta"}`) to OUT as one line.

        Raises `ValueError` if its id is already done (or it has no string `id`, or is not JSON-able).
        """
        self._write(record, ok=True)

    def write_error(self, record: Mapping[str, Any]) -> None:
        """Append `record` (`{"id", "source", "error": {"type", "message"}, "meta"}`) to the errors file."""
        self._write(record, ok=False)

    def sync(self) -> None:
        """fdatasync both files now (close does it too)."""
        with self._lock:
            self._sync_locked()
            self._raise_sync_error()

    def _write(self, record: Mapping[str, Any], *, ok: bool) -> None:
        ident, line = _encode(record)  # outside the lock: serialising is the costly part
        with self._lock:
            appender = self._out if ok else self._err
            if appender is None:
                raise ValueError(f"{self.out_path} is not open")
            if self._broken is not None:
                raise OSError(errno.EIO, f"{self._broken}; reopen the sink to repair the file")
            self._raise_sync_error()
            if ident in self._done:
                raise ValueError(f"id {ident!r} already has its line in {self.out_path.name} or its errors file")
            self._append(appender, line)
            self._done.add(ident)
            if ok:
                self._failed.discard(ident)  # a retried id: its error line goes when the sink closes
            else:
                self._failed.add(ident)
            if ident in self._retry_pending:
                self._retry_pending.discard(ident)
                if ok:
                    self._superseded.add(ident)
                else:
                    self._refailed += 1
            if ok:
                self.ok_written += 1
            else:
                self.failed_written += 1
            self._schedule_sync()

    def _append(self, appender: _Appender, data: bytes) -> None:
        """Write all of `data` at the end of the file, or none of it (a failed write is cut off again)."""
        written = 0
        try:
            while written < len(data):  # one write, unless the OS wrote short (then the rest follows)
                count = os.write(appender.fd, data[written:] if written else data)
                if count <= 0:
                    raise OSError(errno.EIO, f"no progress writing to {appender.path}")
                written += count
        except OSError:
            if written:
                try:
                    os.ftruncate(appender.fd, appender.size)
                except OSError as exc:
                    self._broken = f"{appender.path} ends with a partly written line that could not be cut ({exc})"
            raise
        appender.size += written
        appender.dirty = True

    # --- syncing ------------------------------------------------------------------------

    def _schedule_sync(self) -> None:
        if self.fsync_interval == 0:
            self._sync_locked()
            self._raise_sync_error()
        elif self._timer is None:
            self._timer = threading.Timer(self.fsync_interval, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._sync_locked()

    def _sync_locked(self) -> None:
        for appender in (self._out, self._err):
            if appender is not None and appender.dirty:
                try:
                    _datasync(appender.fd)
                except OSError as exc:  # raised to the writer at its next write (or close)
                    self._sync_error = exc
                    return
                appender.dirty = False

    def _raise_sync_error(self) -> None:
        error, self._sync_error = self._sync_error, None
        if error is not None:
            raise error

    # --- opening ------------------------------------------------------------------------

    def _reset(self) -> None:
        self.out_scan = ScanReport(self.out_path)
        self.errors_scan = ScanReport(self.errors_path)
        self.ok_written = self.failed_written = self._refailed = 0
        self._done = set()
        self._failed = set()
        self._retry_pending = set()
        self._superseded = set()
        self._sync_error = None
        self._broken = None

    def _refuse_foreign(self) -> None:
        """Raise `ConfigurationError` if OUT or the errors file exists and is not a sink's (nothing is modified)."""
        for path, key, what, option in (
            (self.out_path, "data", "output", "-o"),
            (self.errors_path, "error", "errors", "--errors"),
        ):
            reason = _foreign(path, key)
            if reason is not None:
                raise ConfigurationError(
                    f"{path} is not an extractor {what} file ({reason}): "
                    f"refusing to write to it; choose another {option}"
                )

    def _lock_out(self) -> tuple[_Appender, bool]:
        """OUT opened for appending (created if missing; whether it was) and holding its lock, taken on the file
        the path names now (not on one its last sink has just removed: see `close`)."""
        while True:
            out, created = _open_append(self.out_path)
            try:
                _lock(out.fd, self.out_path)
                if _names(out.fd, self.out_path):
                    return out, created
            except BaseException:
                os.close(out.fd)
                raise
            os.close(out.fd)  # removed or replaced by the sink that held it meanwhile: open the file there now

    def _lock_errors(self) -> int:
        """A descriptor of the errors file (created if missing) holding its lock, taken on the file the
        path names now (not on one a rewrite has just replaced)."""
        while True:
            fd = os.open(self.errors_path, os.O_RDONLY | os.O_CREAT | _O_BINARY, 0o666)
            try:
                _lock(fd, self.errors_path)
                if _names(fd, self.errors_path):
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # replaced by its owner's rewrite, or removed by it, meanwhile: lock the file there now

    def _unlock_errors(self) -> None:
        if self._errors_lock is not None:
            os.close(self._errors_lock)
            self._errors_lock = None

    def _load(self) -> None:
        """Scan both files into `_done`; finish an interrupted retry (ids in both files, doubled error lines)."""
        ok_ids, self.out_scan = _collect_ids(self.out_path)
        error_ids, self.errors_scan = _collect_ids(self.errors_path)

        both = ok_ids & error_ids
        dup_err = self.errors_scan.duplicates
        if both or dup_err:
            log.info(
                "%s: removing %d error line(s) left by an interrupted run (%d id(s) since done, %d repeated)",
                self.errors_path,
                len(both) + dup_err,
                len(both),
                dup_err,
            )
            self._rewrite_errors(both)
            error_ids -= both
        for report in (self.out_scan, self.errors_scan):
            if report.dropped_bytes:
                log.warning("%s: cut %d byte(s) of a torn last line", report.path, report.dropped_bytes)
            if report.invalid_lines:
                log.warning(
                    "%s: %d line(s) are not records and were skipped (lines %s)",
                    report.path,
                    report.invalid_lines,
                    ", ".join(map(str, report.invalid_line_numbers)),
                )
        self.ok_existing = len(ok_ids)
        self.failed_existing = len(error_ids)
        self._done = ok_ids
        self._failed = set(error_ids)
        if self.retry_errors:
            self._retry_pending = error_ids
        else:
            self._done |= error_ids

    def _rewrite_errors(self, drop: set[str]) -> None:
        """Rewrite the errors file without the ids in `drop`, keeping only the last line of every other id.

        Lines that are not records are kept. The new file is written beside the old one, fsynced, and
        swapped in with `os.replace`, so a crash leaves either file whole.
        """
        path = self.errors_path
        last: dict[str, int] = {}
        with open(path, "rb") as reader:
            for number, line in enumerate(reader):
                ident = _record_id(line)[1]
                if ident is not None:
                    last[ident] = number
        temporary = path.with_name(path.name + ".rewrite.tmp")
        try:
            with open(path, "rb") as reader, open(temporary, "wb") as writer:
                for number, line in enumerate(reader):
                    ident = _record_id(line)[1]
                    if ident is None or (ident not in drop and last[ident] == number):
                        writer.write(line)
                writer.flush()
                os.fsync(writer.fileno())
            lock = os.open(temporary, os.O_RDONLY | _O_BINARY)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        try:
            _lock(lock, path)  # the new file is locked before it is in place: no moment without the lock
            os.replace(temporary, path)
        except BaseException:
            os.close(lock)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        if self._errors_lock is not None:
            os.close(self._errors_lock)
            self._errors_lock = lock
        else:
            os.close(lock)
        _fsync_dir(path.parent)
