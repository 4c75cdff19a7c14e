"""ResponseCache: keys, hits and misses, persistence, several processes, damaged files, and the API key."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from extractor.client.cache import CacheEntry, ResponseCache
from extractor.client.catalog import ModelCatalog, private_dir
from extractor.client.transport import Transport
from extractor.errors import ConfigurationError

BASE = "https://openrouter.ai/api/v1"
FAKE_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef"


def body(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Extract the invoice."},
            {"role": "user", "content": "Invoice 42, total 17.50 EUR"},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "Invoice", "schema": {"type": "object"}}},
        "temperature": 0,
        "max_tokens": 1000,
    }
    request.update(changes)
    return request


def response(text: str = '{"number": "42"}') -> dict[str, Any]:
    return {
        "id": "gen-1",
        "model": "openai/gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5},
    }


def db_bytes(path: Path) -> bytes:
    """The bytes of the database and of its WAL and shared-memory files, whichever exist."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


# --- keys -------------------------------------------------------------------------------------


def test_key_is_sha256_hex_and_ignores_key_order() -> None:
    key = ResponseCache.key_for(BASE, body())
    reordered = dict(reversed(list(body().items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in reordered["messages"]]
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert ResponseCache.key_for(BASE, reordered) == key
    assert ResponseCache.key_for(BASE + "/", body()) == key  # the trailing slash is not part of the endpoint


@pytest.mark.parametrize(
    "base_url, changed",
    [
        (BASE, body(model="openai/gpt-4o")),
        (BASE, body(temperature=0.2)),
        (BASE, body(max_tokens=1001)),
        (BASE, body(seed=1)),
        (BASE, body(messages=[{"role": "user", "content": "Invoice 42, total 17.50 EUR"}])),
        (
            BASE,
            body(messages=[{"role": "system", "content": "Extract the invoice."}, {"role": "user", "content": "x"}]),
        ),
        (BASE, body(response_format={"type": "json_object"})),
        (BASE, body(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])),
        ("https://api.openai.com/v1", body()),
    ],
)
def test_any_change_gives_another_key(base_url: str, changed: dict[str, Any]) -> None:
    assert ResponseCache.key_for(base_url, changed) != ResponseCache.key_for(BASE, body())


# --- reading and writing ----------------------------------------------------------------------


def test_miss_then_hit_then_replace(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "deep" / "dir" / "cache.sqlite") as cache:
        key = cache.key_for(BASE, body())
        assert cache.get(key) is None
        assert key not in cache
        assert len(cache) == 0
        cache.put(key, response(), meta={"elapsed": 1.5})
        assert cache.get(key) == response()
        assert key in cache
        assert len(cache) == 1
        entry = cache.get_entry(key)
        assert isinstance(entry, CacheEntry)
        assert entry.response == response()
        assert entry.meta == {"elapsed": 1.5}
        assert entry.created > 1.7e9
        cache.put(key, response("other"))
        assert cache.get(key) == response("other")
        assert cache.get_entry(key) == CacheEntry(response("other"), None, cache.get_entry(key).created)  # type: ignore[union-attr]
        assert len(cache) == 1
        assert cache.get(cache.key_for(BASE, body(seed=3))) is None


def test_persists_across_instances_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    keys = [ResponseCache.key_for(BASE, body(seed=i)) for i in range(20)]
    with ResponseCache(path) as cache:
        for i, key in enumerate(keys):
            cache.put(key, response(str(i)))
    with ResponseCache(str(path)) as cache:
        assert len(cache) == 20
        assert [cache.get(key) for key in keys] == [response(str(i)) for i in range(20)]
        cache.clear()
        assert len(cache) == 0
    with ResponseCache(path) as cache:
        assert cache.get(keys[0]) is None


def test_wal_mode_and_closed_cache_refuses(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k", response())
    with sqlite3.connect(tmp_path / "cache.sqlite") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cache.close()
    cache.close()
    with pytest.raises(ValueError, match="closed"):
        cache.get("k")


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(100):
                key = f"t{n}-{i}"
                cache.put(key, response(key))
                assert cache.get(key) == response(key)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(cache) == 400
    cache.close()


def _writer(path: str, worker: int, start: Any, count: int) -> None:
    """Child process: open the cache (racing to create it) and put `count` rows, half of them shared keys."""
    start.wait()
    with ResponseCache(path, timeout=30) as cache:
        for i in range(count):
            own = f"w{worker}-{i}"
            cache.put(own, response(own))
            cache.put(f"shared-{i}", response(f"shared-{i}"), meta={"worker": worker})
            assert cache.get(own) == response(own)


def test_several_processes_write_the_same_new_cache(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "cache.sqlite"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_writer, args=(str(path), n, start, 200)) for n in range(2)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(60)
    assert [p.exitcode for p in workers] == [0, 0]
    with ResponseCache(path) as cache:
        assert len(cache) == 2 * 200 + 200
        for n in range(2):
            assert cache.get(f"w{n}-199") == response(f"w{n}-199")
        entry = cache.get_entry("shared-7")
        assert entry is not None
        assert entry.response == response("shared-7")
        assert entry.meta in ({"worker": 0}, {"worker": 1})
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- damaged files ------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a cache\n" * 100)
    with pytest.raises(ConfigurationError, match=r"notes\.sqlite") as caught:
        ResponseCache(path)
    assert "delete it or choose another cache path" in str(caught.value)
    assert path.read_text() == "these are my notes, not a cache\n" * 100


def test_a_directory_at_the_path_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "cache.sqlite").mkdir()
    with pytest.raises(ConfigurationError, match=r"cache\.sqlite"):
        ResponseCache(tmp_path / "cache.sqlite")


def test_corrupt_pages_are_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ResponseCache(path) as cache:
        for i in range(300):
            cache.put(f"key-{i:04d}", response("x" * 500))
    assert not Path(f"{path}-wal").exists()  # the last close folded the WAL into the file
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : 3 * page] = b"\xa5" * (2 * page)  # the table's and the key index's root pages
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigurationError, match=r"cache\.sqlite.*malformed"):
        cache = ResponseCache(path)
        cache.get("key-0100")


def test_an_unreadable_value_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ResponseCache(path) as cache:
        cache.put("torn", response())
        cache.put("array", response())
        cache.put("good", response())
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE responses SET response = ? WHERE key = 'torn'", (b'{"id": "gen-1", "choi',))
            conn.execute("UPDATE responses SET response = ? WHERE key = 'array'", (b"[1, 2]",))
        assert cache.get("torn") is None
        assert cache.get_entry("torn") is None
        assert cache.get("array") is None
        assert cache.get("good") == response()
        cache.put("torn", response("again"))
        assert cache.get("torn") == response("again")


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    ResponseCache(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigurationError, match="newer version"):
        ResponseCache(path)


# --- the API key --------------------------------------------------------------------------------


def test_the_api_key_sent_in_headers_is_not_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    headers = {"Authorization": f"Bearer {FAKE_KEY}", "HTTP-Referer": "https://example.org"}
    request = body()
    marker = "UNIQUE-MARKER-7f3a9c"
    with ResponseCache(path) as cache:
        key = cache.key_for(BASE, request)  # the headers are not an argument: there is no way to pass them
        cache.put(key, response(marker), meta={"status": 200, "elapsed": 0.8}, secrets=[FAKE_KEY])
        stored = db_bytes(path)
        assert marker.encode() in stored  # the search below does find what is stored
        assert key.encode() in stored
        assert FAKE_KEY.encode() not in stored
        assert FAKE_KEY[:16].encode() not in stored
        assert headers["Authorization"].encode() not in stored
    assert FAKE_KEY.encode() not in db_bytes(path)


def test_put_refuses_a_response_or_meta_carrying_the_key(tmp_path: Path) -> None:
    from extractor.client.transport import Secret

    path = tmp_path / "cache.sqlite"
    with ResponseCache(path) as cache:
        with pytest.raises(ValueError, match="API key") as caught:
            cache.put("a", response(f"echo: Bearer {FAKE_KEY}"), secrets=[FAKE_KEY])
        assert FAKE_KEY not in str(caught.value)
        with pytest.raises(ValueError, match="API key"):
            cache.put("b", response(), meta={"auth": FAKE_KEY}, secrets=[None, Secret(FAKE_KEY)])
        assert len(cache) == 0
        assert FAKE_KEY.encode() not in db_bytes(path)


# --- locks ----------------------------------------------------------------------------------------


class _FlakyConnection:
    """A connection whose first `failures` statements fail as SQLite does when another process holds the lock."""

    def __init__(self, conn: sqlite3.Connection, failures: int) -> None:
        self.conn = conn
        self.failures = failures

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.conn.execute(sql, parameters)

    def close(self) -> None:
        self.conn.close()


def test_a_lock_error_is_retried(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    flaky = _FlakyConnection(cache._conn, 3)  # type: ignore[arg-type]
    cache._conn = flaky  # type: ignore[assignment]
    cache.put("k", response())
    assert flaky.failures == 0
    flaky.failures = 2
    assert cache.get("k") == response()
    assert flaky.failures == 0
    cache.close()


def test_a_lock_held_too_long_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, timeout=0.2)
    cache.put("a", response())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ConfigurationError, match=r"cache\.sqlite stayed locked by another process"):
            cache.put("b", response())
        assert cache.get("a") == response()  # readers are not blocked by a writer in WAL mode
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    cache.put("b", response())
    assert len(cache) == 2
    cache.close()


# --- privacy: the cache holds extracted data ----------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files readable by everyone (0644) while the test runs."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.usefixtures("open_umask")
def test_the_cache_folder_and_files_are_private(tmp_path: Path) -> None:
    parent_mode = mode(tmp_path)
    folder = tmp_path / "home" / "cache" / "extractor"
    path = folder / "responses.sqlite"
    with ResponseCache(path) as cache:
        cache.put(cache.key_for(BASE, body()), response())
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)  # WAL mode: both exist while the connection is open
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert mode(folder) == mode(folder.parent) == mode(folder.parent.parent) == 0o700  # the folders it created
    assert mode(tmp_path) == parent_mode  # a folder that existed is left as it was
    assert mode(path) == 0o600


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_private_even_under_a_umask_that_removes_owner_bits(tmp_path: Path) -> None:
    previous = os.umask(0o377)  # mkdir(0o700) alone would give 0o400: a folder its owner cannot enter
    try:
        private_dir(tmp_path / "a" / "b")
        assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    finally:
        os.umask(previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.usefixtures("open_umask")
def test_an_existing_cache_folder_and_file_keep_their_modes(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)
    path = folder / "responses.sqlite"
    ResponseCache(path).close()
    os.chmod(path, 0o640)  # opened up on purpose, say for a group
    with ResponseCache(path) as cache:
        cache.put("k", response())
        assert mode(Path(f"{path}-wal")) == 0o640
    assert (mode(folder), mode(path)) == (0o750, 0o640)


class _FakeTransport:
    base_url = "https://models.example/v1"
    host = "models.example"

    async def models(self) -> list[dict[str, Any]]:
        return [{"id": "vendor/model", "context_length": 1000}]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.usefixtures("open_umask")
def test_the_model_list_cache_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "extractor"
    catalog = ModelCatalog(cast(Transport, _FakeTransport()), cache_dir=folder)
    info = asyncio.run(catalog.info("vendor/model"))
    assert info.context_length == 1000
    written = list(folder.iterdir())
    assert len(written) == 1
    assert json.loads(written[0].read_text())["models"] == [{"id": "vendor/model", "context_length": 1000}]
    assert (mode(folder), mode(folder.parent), mode(written[0])) == (0o700, 0o700, 0o600)
