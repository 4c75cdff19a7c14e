"""The model catalog: remembered mode fallbacks, and which `GET /models` answers are cached for how long."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from extractor import ConfigurationError, Extractor, RetryPolicy
from extractor.client import catalog as models_info
from extractor.client.catalog import _FAILED_TTL, ModelCatalog, ModelInfo
from extractor.client.transport import Transport
from extractor.testing import ModelSpec, Reply, TestServer

MODEL = "mistralai/mistral-small-2603"
OTHER = "vendor/other-model"
ONE_TRY = RetryPolicy(attempts=1)
REASON = "response_format json_schema is not supported by this provider"


class Clock:
    """A settable `time.time` for `extractor.client.catalog`."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The time `extractor.client.catalog` sees (only there), moved forward by hand."""
    fake = Clock()
    monkeypatch.setattr(models_info, "time", SimpleNamespace(time=fake.time))
    return fake


def catalog(base_url: str, cache_dir: Path | None, **kwargs: Any) -> ModelCatalog:
    """A new catalog for `base_url`, as a new process (or a new Extractor) would make it."""
    return ModelCatalog(Transport(base_url, None, retry=ONE_TRY), cache_dir=cache_dir, **kwargs)


# --- remembered fallbacks --------------------------------------------------------------------


def test_a_fallback_is_remembered_for_a_new_catalog_of_the_same_endpoint(server: TestServer, tmp_path: Path) -> None:
    first = catalog(server.base_url, tmp_path)
    assert first.preferred_mode(MODEL) is None
    first.remember_fallback(MODEL, "json_schema", "tools", REASON)
    assert first.preferred_mode(MODEL) == "tools"
    assert catalog(server.base_url, tmp_path).preferred_mode(MODEL) == "tools"
    [saved] = tmp_path.glob("modes-*.json")
    assert not list(tmp_path.glob("models-*.json"))  # the model list's file is its own
    assert not list(tmp_path.glob("*.tmp"))
    if sys.platform != "win32":
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["models"][MODEL]["rejected"] == {"json_schema": REASON}


def test_a_fallback_is_not_seen_for_another_model_or_endpoint(server: TestServer, tmp_path: Path) -> None:
    catalog(server.base_url, tmp_path).remember_fallback(MODEL, "json_schema", "tools", REASON)
    assert catalog(server.base_url, tmp_path).preferred_mode(OTHER) is None
    with TestServer() as other:
        assert catalog(other.base_url, tmp_path).preferred_mode(MODEL) is None
    assert catalog(server.base_url, tmp_path / "elsewhere").preferred_mode(MODEL) is None


def test_fallbacks_of_several_models_and_catalogs_are_kept_together(server: TestServer, tmp_path: Path) -> None:
    catalog(server.base_url, tmp_path).remember_fallback(MODEL, "json_schema", "tools", REASON)
    catalog(server.base_url, tmp_path).remember_fallback(OTHER, "tools", "json", "tools unsupported")
    later = catalog(server.base_url, tmp_path)
    assert (later.preferred_mode(MODEL), later.preferred_mode(OTHER)) == ("tools", "json")


def test_a_remembered_fallback_expires_on_disk_after_the_ttl(server: TestServer, tmp_path: Path, clock: Clock) -> None:
    learner = catalog(server.base_url, tmp_path, ttl=3600)
    learner.remember_fallback(MODEL, "json_schema", "tools", REASON)
    clock.now += 3600
    assert catalog(server.base_url, tmp_path, ttl=3600).preferred_mode(MODEL) == "tools"
    clock.now += 1
    assert catalog(server.base_url, tmp_path, ttl=3600).preferred_mode(MODEL) is None
    assert learner.preferred_mode(MODEL) == "tools"  # the catalog that learned it keeps it for its life


def test_a_loaded_fallback_expires_in_the_catalog_that_loaded_it(
    server: TestServer, tmp_path: Path, clock: Clock
) -> None:
    catalog(server.base_url, tmp_path, ttl=60).remember_fallback(MODEL, "json_schema", "tools", REASON)
    reader = catalog(server.base_url, tmp_path, ttl=60)
    assert reader.preferred_mode(MODEL) == "tools"
    clock.now += 61
    assert reader.preferred_mode(MODEL) is None


def test_a_fallback_from_the_future_is_not_trusted(server: TestServer, tmp_path: Path, clock: Clock) -> None:
    catalog(server.base_url, tmp_path).remember_fallback(MODEL, "json_schema", "tools", REASON)
    clock.now -= 3600
    assert catalog(server.base_url, tmp_path).preferred_mode(MODEL) is None


def test_without_a_cache_folder_a_fallback_lives_in_the_catalog_only(server: TestServer, tmp_path: Path) -> None:
    learner = catalog(server.base_url, None)
    learner.remember_fallback(MODEL, "json_schema", "tools", REASON)
    assert learner.preferred_mode(MODEL) == "tools"
    assert catalog(server.base_url, None).preferred_mode(MODEL) is None


def test_a_late_fallback_to_an_already_rejected_mode_changes_nothing(server: TestServer, tmp_path: Path) -> None:
    learner = catalog(server.base_url, tmp_path)
    learner.remember_fallback(MODEL, "json_schema", "tools", REASON)
    learner.remember_fallback(MODEL, "tools", "json", "tools unsupported")
    learner.remember_fallback(MODEL, "json_schema", "tools", REASON)  # an answer to a request sent before
    assert learner.preferred_mode(MODEL) == "json"
    assert catalog(server.base_url, tmp_path).preferred_mode(MODEL) == "json"


@pytest.mark.parametrize("content", ["not json", '{"base_url": "x"}', '{"models": []}', "[]"])
def test_a_broken_mode_cache_is_ignored_and_replaced(server: TestServer, tmp_path: Path, content: str) -> None:
    learner = catalog(server.base_url, tmp_path)
    path = learner._path("modes")
    assert path is not None
    path.write_text(content)
    assert learner.preferred_mode(MODEL) is None
    learner.remember_fallback(MODEL, "json_schema", "tools", REASON)
    assert catalog(server.base_url, tmp_path).preferred_mode(MODEL) == "tools"


class Invoice(BaseModel):
    number: str
    total: float


def test_an_extractor_remembers_the_fallback_its_attempt_loop_made(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.status_error(400, REASON))
    ex = Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", retry=ONE_TRY)
    assert ex.extract_result(Invoice, "text").mode == "tools"
    assert catalog(server.base_url, tmp_path / "cache").preferred_mode(MODEL) == "tools"


# --- which model lists are cached --------------------------------------------------------------


class FakeModels:
    """An httpx transport answering `GET /models` with `answer` (a body, or a callable making one)."""

    def __init__(self, answer: Any, status: int = 200) -> None:
        self.answer = answer
        self.status = status
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = self.answer() if callable(self.answer) else self.answer
        if isinstance(body, str):
            return httpx.Response(self.status, text=body, headers={"Content-Type": "text/html"})
        return httpx.Response(self.status, json=body)


BASE = "http://models.invalid/v1"


def fake_catalog(fake: FakeModels, cache_dir: Path | None, **kwargs: Any) -> ModelCatalog:
    transport = Transport(BASE, None, retry=ONE_TRY, http_transport=httpx.MockTransport(fake))
    return ModelCatalog(transport, cache_dir=cache_dir, **kwargs)


def info(cat: ModelCatalog, model: str = MODEL) -> ModelInfo:
    return asyncio.run(cat.info(model))


GOOD = {"data": [{"id": MODEL, "context_length": 1000, "supported_parameters": ["tools"]}]}
NOT_A_LIST: list[Any] = [
    "<html><body>Welcome to our gateway</body></html>",
    {"error": {"message": "no such route"}},
    {"data": "x"},
    ["a", "b"],
    {"data": [{"name": "no id"}]},
    {"data": []},
]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="extractor")
    yield caplog


@pytest.mark.parametrize("answer", NOT_A_LIST, ids=["html", "error", "data-str", "strings", "no-id", "empty"])
def test_an_answer_that_is_no_model_list_is_not_cached(
    tmp_path: Path, clock: Clock, logs: pytest.LogCaptureFixture, answer: Any
) -> None:
    fake = FakeModels(answer)
    cat = fake_catalog(fake, tmp_path)
    assert info(cat) == ModelInfo.known(MODEL)
    assert fake.calls == 1
    assert not list(tmp_path.glob("models-*.json"))
    assert "going by defaults" in logs.text
    clock.now += _FAILED_TTL - 1
    assert info(fake_catalog(fake, tmp_path)) == ModelInfo.known(MODEL)
    assert fake.calls == 1  # the defaults hold for the failed-lookup TTL
    clock.now += 2
    fake.answer = GOOD
    assert info(fake_catalog(fake, tmp_path)).context_length == 1000
    assert fake.calls == 2  # asked again
    assert len(list(tmp_path.glob("models-*.json"))) == 1


def test_a_failed_lookup_holds_for_the_failed_ttl_then_a_success_replaces_it(tmp_path: Path, clock: Clock) -> None:
    fake = FakeModels({"error": {"message": "busy"}}, status=503)
    cat = fake_catalog(fake, tmp_path)
    assert info(cat) == ModelInfo.known(MODEL)
    clock.now += _FAILED_TTL + 1
    fake.status, fake.answer = 200, GOOD
    assert info(cat).supported_parameters == frozenset({"tools"})
    assert fake.calls == 2
    models_info.forget_models()  # a new process: the disk answers
    clock.now += 3600
    assert info(fake_catalog(fake, tmp_path)).context_length == 1000
    assert fake.calls == 2


def test_an_old_cache_entry_that_is_no_model_list_is_not_trusted(tmp_path: Path, clock: Clock) -> None:
    fake = FakeModels(GOOD)
    cat = fake_catalog(fake, tmp_path)
    path = cat._disk_path
    assert path is not None
    path.write_text(json.dumps({"base_url": BASE, "fetched_at": clock.now, "models": []}))
    assert info(cat).context_length == 1000
    assert fake.calls == 1
    assert MODEL in path.read_text()


def test_a_cache_entry_from_the_future_is_not_trusted(tmp_path: Path, clock: Clock) -> None:
    fake = FakeModels(GOOD)
    cat = fake_catalog(fake, tmp_path)
    path = cat._disk_path
    assert path is not None
    saved = {"base_url": BASE, "fetched_at": clock.now + 10 * 86400, "models": [{"id": MODEL, "context_length": 5}]}
    path.write_text(json.dumps(saved))
    assert info(cat).context_length == 1000
    assert fake.calls == 1


def test_a_list_remembered_by_a_longer_lived_catalog_is_not_trusted_past_a_shorter_ttl(
    tmp_path: Path, clock: Clock
) -> None:
    fake = FakeModels(GOOD)
    info(fake_catalog(fake, None))
    clock.now += 120
    info(fake_catalog(fake, None))
    assert fake.calls == 1
    info(fake_catalog(fake, None, ttl=60))
    assert fake.calls == 2


def test_the_test_servers_model_list_is_cached(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL, context_length=4096)]) as server:
        assert info(catalog(server.base_url, tmp_path)).context_length == 4096
        models_info.forget_models()
        assert info(catalog(server.base_url, tmp_path)).context_length == 4096
        assert len([r for r in server.requests if r.path.endswith("/models")]) == 1


# --- answers that lack the model's prices or parameters ------------------------------------------------


class Inv(BaseModel):
    number: str


def bare(model: str) -> ModelSpec:
    """The model as an endpoint lists it without prices or supported parameters."""
    return ModelSpec(model, prompt_price_per_token=None, completion_price_per_token=None, supported_parameters=None)


@pytest.mark.parametrize("how", ["memory", "disk"])
def test_an_answer_lacking_the_models_prices_holds_for_the_failed_ttl_only(
    tmp_path: Path, clock: Clock, how: str
) -> None:
    """The bad answer was kept for a day: after /models was fixed, runs still went by `prompt` mode and
    unknown prices. Now the next lookup after the failed-lookup TTL asks again and sees the fix."""
    with TestServer(models=[bare(OTHER)]) as server:
        ex = Extractor(base_url=server.base_url, model=OTHER, cache_dir=tmp_path, retry=ONE_TRY)
        first = asyncio.run(ex.model_info())
        assert first.prompt_price is None and first.supported_parameters is None
        server.models = [ModelSpec(OTHER)]  # the endpoint is fixed
        clock.now += _FAILED_TTL - 1
        assert asyncio.run(ex.model_info()) == first  # still within the failed-lookup TTL
        clock.now += 2
        if how == "disk":
            models_info.forget_models()  # a new process: the disk holds the bad answer
        fixed = asyncio.run(Extractor(base_url=server.base_url, model=OTHER, cache_dir=tmp_path).model_info())
        assert fixed.prompt_price == 0.15e-6 and fixed.supported_parameters is not None
        assert "response_format" in fixed.supported_parameters
        lookups = [r for r in server.requests if r.path.endswith("/models")]
        assert len(lookups) == 2
        clock.now += 3600  # a complete answer holds for the day
        asyncio.run(Extractor(base_url=server.base_url, model=OTHER, cache_dir=tmp_path).model_info())
        assert len([r for r in server.requests if r.path.endswith("/models")]) == 2


def test_with_a_budget_unknown_prices_are_refused_and_the_fixed_answer_is_then_used(
    tmp_path: Path, clock: Clock
) -> None:
    with TestServer(models=[bare(OTHER)]) as server:
        ex = Extractor(base_url=server.base_url, model=OTHER, cache_dir=tmp_path, mode="auto")
        with pytest.raises(ConfigurationError, match=f"the prices of {OTHER} are not known"):
            list(ex.extract_many(Inv, ["one", "two", "three"], max_cost=0.000001))
        assert server.chat_requests == []  # refused before any request
        server.models = [ModelSpec(OTHER)]
        clock.now += _FAILED_TTL + 1
        results = list(ex.extract_many(Inv, ["one", "two", "three"], max_cost=1.0))
        assert [r.ok for r in results] == [True] * 3
        assert {r.mode for r in server.chat_requests} == {"json_schema"}  # from the fixed parameters


# --- the endpoint files stay bounded -----------------------------------------------------------------


def _endpoint_file(folder: Path, kind: str, base_url: str, age: float) -> Path:
    """An endpoint file of `kind` for `base_url` as the catalog writes it, last written `age` seconds ago."""
    path = folder / f"{kind}-{hashlib.sha256(base_url.encode()).hexdigest()[:16]}.json"
    when = time.time() - age
    body = {"base_url": base_url, "fetched_at": when, "models": [{"id": MODEL}]}
    if kind == "modes":
        body = {"base_url": base_url, "models": {MODEL: {"mode": "tools", "rejected": {}, "at": when}}}
    path.write_text(json.dumps(body))
    os.utime(path, (when, when))
    return path


def test_the_model_lists_of_local_servers_do_not_pile_up(server: TestServer, tmp_path: Path) -> None:
    # an afternoon of local servers, each on a new port (newest first), a remote endpoint, files a day old
    local = [_endpoint_file(tmp_path, "models", f"http://127.0.0.1:{40_000 + i}/v1", 60.0 * (i + 1)) for i in range(20)]
    local_modes = [_endpoint_file(tmp_path, "modes", f"http://localhost:{50_000 + i}/v1", 60.0 * i) for i in range(9)]
    remote = _endpoint_file(tmp_path, "models", "https://api.example.com/v1", 3600)
    stale = _endpoint_file(tmp_path, "models", "https://old.example.com/v1", 2 * 86_400)
    stale_modes = _endpoint_file(tmp_path, "modes", "https://old.example.com/v1", 2 * 86_400)
    leftover = tmp_path / "models-0123456789abcdef.4242-17.tmp"  # a write killed a day ago
    leftover.write_text("{")
    os.utime(leftover, (time.time() - 2 * 86_400,) * 2)
    other = tmp_path / "responses.sqlite"
    other.write_bytes(b"not ours to judge")

    info_of_new = catalog(server.base_url, tmp_path)

    async def look_up() -> None:  # a new local server's model list is written: the folder is pruned
        try:
            await info_of_new.info(MODEL)
        finally:
            await info_of_new.transport.aclose()

    asyncio.run(look_up())
    written = info_of_new._disk_path
    assert written is not None and written.exists()
    models = {p.name for p in tmp_path.glob("models-*.json")}
    assert models == {written.name, remote.name, *(p.name for p in local[:7])}  # 8 local ones, the newest
    modes = {p.name for p in tmp_path.glob("modes-*.json")}
    assert modes == {p.name for p in local_modes[:8]}  # each kind on its own: 8 local ones, the newest
    assert not stale.exists() and not stale_modes.exists() and not leftover.exists()
    assert other.read_bytes() == b"not ours to judge"

    learner = catalog(server.base_url, tmp_path)
    learner.remember_fallback(MODEL, "json_schema", "tools", REASON)  # a modes file written: pruned again
    modes = {p.name for p in tmp_path.glob("modes-*.json")}
    mine = learner._path("modes")
    assert mine is not None
    assert modes == {mine.name, *(p.name for p in local_modes[:7])}


def test_at_most_so_many_endpoint_files_are_kept(tmp_path: Path) -> None:
    files = [_endpoint_file(tmp_path, "models", f"https://api{i}.example.com/v1", 10.0 * i) for i in range(40)]
    removed = models_info.prune_model_files(tmp_path)
    assert sorted(removed) == sorted(files[models_info.MAX_ENDPOINTS :])
    assert sorted(tmp_path.iterdir()) == sorted(files[: models_info.MAX_ENDPOINTS])
