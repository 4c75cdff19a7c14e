"""An on-disk cache of chat-completions responses, in one SQLite file.

Re-running a batch (or a test) costs nothing: the response to a request identical to one already
answered is read from disk instead of being bought again. `extractor run` uses `responses.sqlite` in
the cache folder (`$EXTRACTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/extractor`, else `~/.cache/extractor`)
unless `--no-cache`, and counts the inputs answered from it in its summary ("from cache: N");
`extractor cache info` shows what it holds, `extractor cache clear` empties it. The library uses one
only when asked (`Extractor(cache=True)` or a path). The key is `key_for(base_url, body)`, a
SHA-256 of the endpoint and the full request body (model, messages, response format or tools,
sampling parameters). Request headers are not part of it, so the API key never is.

What is stored, and nothing else: the key (a hex digest), the response JSON, an optional `meta`
JSON given by the caller, and the time the row was written. The cache never sees headers; `put`
can also be handed the API key (`secrets=`) and then refuses any response or meta that contains it.

Privacy: the cache holds extracted data. The folders it creates are made mode 0700 and the database
file 0600 (SQLite gives its -wal and -shm files the database's mode), whatever the umask; existing
folders and an existing database keep their modes.

Concurrency: one connection per cache object, guarded by a lock, so threads may share it; several
processes may use the same file at once (WAL journal, a busy timeout, and brief retries when SQLite
still answers "database is locked"). A process that forks opens its own connection on first use.

Durability and speed: every `put` is its own transaction, committed at once (no batching, so a
SIGKILLed run loses nothing it stored). The journal is WAL with `synchronous=NORMAL`: a commit is a
write to the WAL file without an fsync; SQLite fsyncs at checkpoints. A process crash loses no
committed row; a power loss may lose the last rows committed before it, never the file's
consistency. That trade (a lost row costs one request) keeps `get` and `put` in the tens of
microseconds for responses of a few KB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pydantic_core

from .._secret import Secret
from ..errors import ConfigurationError
from .catalog import create_private_file, private_dir

__all__ = ["CacheEntry", "CacheStats", "ResponseCache", "open_cache"]

log = logging.getLogger("extractor")
T = TypeVar("T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY NOT NULL,
    response BLOB NOT NULL,
    meta BLOB,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CacheStats:
    """What a response cache holds: `entries` responses, written from `oldest` to `newest` (unix times; None
    when it is empty)."""

    entries: int
    oldest: float | None
    newest: float | None


@dataclass(frozen=True)
class CacheEntry:
    """One cached response, with the caller's `meta` (None when none was given) and its unix write time."""

    response: dict[str, Any]
    meta: dict[str, Any] | None
    created: float


def _busy(exc: sqlite3.Error) -> bool:
    """Whether `exc` is SQLite saying another connection holds the lock (worth retrying)."""
    name = getattr(exc, "sqlite_errorname", "")
    if isinstance(name, str) and name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _decode_object(blob: Any) -> dict[str, Any] | None:
    """The JSON object stored in `blob`, or None for a value that is torn, corrupt or not an object."""
    if not isinstance(blob, bytes | str):
        return None
    try:
        value = pydantic_core.from_json(blob)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class ResponseCache:
    """Chat-completions responses keyed by request, in the SQLite file `path` (created with its parents).

    >>> with ResponseCache("~/.cache/extractor/responses.sqlite") as cache:   # doctest: +SKIP
    ...     key = cache.key_for(base_url, body)
    ...     response = cache.get(key)
    ...     if response is None:
    ...         response = send(body)
    ...         cache.put(key, response)

    A file that is not a SQLite database, or one whose pages are corrupt, raises `ConfigurationError`
    naming the file; a single stored value that does not parse is a miss (the next `put` replaces it).
    `timeout` is how long to wait for another process's lock before giving up.
    """

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._closed = False
        with self._lock:
            self._connection()  # open now: a bad path or file fails here, not at the first request

    # --- keys ---------------------------------------------------------------------------

    @staticmethod
    def key_for(base_url: str, body: Mapping[str, Any]) -> str:
        """The cache key of POSTing `body` to `base_url`: SHA-256 hex of canonical JSON.

        Exactly `sha256(json.dumps([base_url.rstrip("/"), body], sort_keys=True, separators=(",", ":")))`,
        so the order of keys does not matter and any change of endpoint, model, message or parameter
        does. The body is taken as sent: pass it without `stream` (a streamed and a plain request get
        different keys). Values JSON does not know (pydantic models, dates, bytes) are converted as
        pydantic would.
        """
        text = json.dumps(
            [base_url.rstrip("/"), body],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            default=pydantic_core.to_jsonable_python,
        )
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    # --- reading and writing ------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        """The response stored under `key`, or None (not stored, or stored value unreadable)."""
        row = self._execute(
            lambda conn: conn.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        )
        if row is None:
            return None
        response = _decode_object(row[0])
        if response is None:
            log.warning(
                "response cache %s: the value stored for %s... is unreadable; treated as a miss", self.path, key[:12]
            )
        return response

    def get_entry(self, key: str) -> CacheEntry | None:
        """The response stored under `key` with its meta and write time, or None."""
        row = self._execute(
            lambda conn: conn.execute("SELECT response, meta, created FROM responses WHERE key = ?", (key,)).fetchone()
        )
        if row is None:
            return None
        response = _decode_object(row[0])
        if response is None:
            return None
        meta = _decode_object(row[1]) if row[1] is not None else None
        return CacheEntry(response, meta, float(row[2]))

    def put(
        self,
        key: str,
        response: Mapping[str, Any],
        *,
        meta: Mapping[str, Any] | None = None,
        secrets: Iterable[str | Secret | None] = (),
    ) -> None:
        """Store `response` (and `meta`) under `key`, replacing what was there; committed on return.

        `secrets` (typically the API key): refuse, with a `ValueError` that does not quote it, a
        response or meta whose JSON contains one of them. Nothing is stored then.
        """
        blob = pydantic_core.to_json(response)
        meta_blob = pydantic_core.to_json(meta) if meta is not None else None
        for secret in secrets:
            text = secret.get() if isinstance(secret, Secret) else secret
            if not text:
                continue
            needle = text.encode("utf-8")
            if needle in blob or (meta_blob is not None and needle in meta_blob) or text in key:
                raise ValueError("refusing to cache a response or meta that contains the API key")
        created = time.time()
        self._execute(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO responses (key, response, meta, created) VALUES (?, ?, ?, ?)",
                (key, blob, meta_blob, created),
            )
        )

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        row = self._execute(lambda conn: conn.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone())
        return row is not None

    def __len__(self) -> int:
        row = self._execute(lambda conn: conn.execute("SELECT COUNT(*) FROM responses").fetchone())
        return int(row[0])

    def stats(self) -> CacheStats:
        """How many responses are stored, and when the oldest and the newest were written."""
        row = self._execute(
            lambda conn: conn.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM responses").fetchone()
        )
        return CacheStats(int(row[0]), *(float(v) if v is not None else None for v in row[1:]))

    def clear(self) -> int:
        """Delete every stored response and give their space back to the file system; how many there were.

        The space is given back (`VACUUM`) only while no other process uses the file; the rows go either way.
        """
        count = len(self)
        self._execute(lambda conn: conn.execute("DELETE FROM responses"))
        try:
            self._execute(lambda conn: conn.execute("VACUUM"))
            self._execute(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        except ConfigurationError as exc:
            log.info("response cache %s: emptied, its space not given back yet (%s)", self.path, exc)
        return count

    # --- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file). Idempotent."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    # --- internals ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open connection (caller holds the lock); opened, or reopened in a forked child, on demand."""
        if self._closed:
            raise ValueError(f"response cache {self.path} is closed")
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn = None  # a connection inherited through fork() is abandoned, never used nor closed
        self._conn = self._retrying(self._open)
        self._pid = os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            private_dir(self.path.parent)
        except OSError as exc:
            raise ConfigurationError(f"response cache {self.path}: cannot create its directory: {exc}") from None
        try:
            create_private_file(self.path)  # before SQLite creates it with the umask's mode
        except OSError as exc:
            raise ConfigurationError(f"response cache {self.path}: cannot create the file: {exc}") from None
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])  # reads the header: fails on a non-DB
            if version > _SCHEMA_VERSION:
                raise ConfigurationError(
                    f"response cache {self.path} was written by a newer version of extractor (format {version})"
                )
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
            if version < _SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _execute(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._connection()
            return self._retrying(lambda: operation(conn))

    def _retrying(self, operation: Callable[[], T]) -> T:
        """`operation()`, tried again for up to `timeout` s while SQLite reports a lock; other errors made clear."""
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                return operation()
            except sqlite3.Error as exc:
                if _busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.05)
                    continue
                raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> ConfigurationError:
        if _busy(exc):
            return ConfigurationError(
                f"response cache {self.path} stayed locked by another process for {self.timeout:g} s ({exc})"
            )
        return ConfigurationError(
            f"response cache {self.path} cannot be used: {exc}. If it is not a cache file (or is damaged), "
            "delete it or choose another cache path"
        )


def open_cache(cache: bool | str | Path | ResponseCache | None, folder: Path) -> ResponseCache | None:
    """The response cache a `cache=` setting asks for: None/False none, True the default file in
    `folder` (`responses.sqlite`), a path that file, or a `ResponseCache` as it is."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    if cache is True:
        return ResponseCache(folder / "responses.sqlite")
    return ResponseCache(cache)
