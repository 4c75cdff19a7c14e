"""API keys: which key goes to which endpoint, and what is left of one in a message once redacted."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from extractor import Extractor, RetryPolicy
from extractor.client.transport import api_key_for, redact
from extractor.testing import TestServer

KEY_VARIABLES = ("EXTRACTOR_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "EXTRACTOR_BASE_URL")
KEY = "sk-or-v1-" + hashlib.sha256(b"a test key").hexdigest()[:55]  # 64 characters, no run repeated


class Invoice(BaseModel):
    number: str


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def extract_once(server: TestServer, tmp_path: Path, **kwargs: str) -> dict[str, str]:
    """One extraction against `server`: the headers of the request it received."""
    ex = Extractor(
        base_url=server.base_url, mode="json_schema", retry=RetryPolicy(attempts=1), cache_dir=tmp_path, **kwargs
    )
    ex.extract(Invoice, "Invoice A-1")
    ex.close()
    [request] = server.chat_requests
    return request.headers


# --- where keys go -----------------------------------------------------------------------------


def test_the_openai_key_is_not_sent_to_a_local_server(no_keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_keys.setenv("OPENAI_API_KEY", "sk-openai-secret-1234567890")
    with TestServer() as server:
        headers = extract_once(server, tmp_path)
        assert "api_key=not set" in repr(Extractor(base_url=server.base_url))
    assert "authorization" not in headers  # today: "Bearer sk-openai-secret-1234567890"
    assert not any("sk-openai" in value for value in headers.values())


def test_the_openrouter_key_is_not_sent_to_a_local_server(no_keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_keys.setenv("OPENROUTER_API_KEY", "sk-or-secret-1234567890")
    with TestServer() as server:
        headers = extract_once(server, tmp_path)
    assert "authorization" not in headers


def test_the_extractor_key_is_sent_to_whatever_endpoint(no_keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_keys.setenv("EXTRACTOR_API_KEY", "sk-extractor-1234567890")
    no_keys.setenv("OPENAI_API_KEY", "sk-openai-secret-1234567890")
    with TestServer() as server:
        headers = extract_once(server, tmp_path)
    assert headers["authorization"] == "Bearer sk-extractor-1234567890"


def test_a_key_passed_in_is_sent_and_comes_first(no_keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_keys.setenv("EXTRACTOR_API_KEY", "sk-extractor-1234567890")
    with TestServer(api_key="sk-given-1234567890") as server:
        headers = extract_once(server, tmp_path, api_key="sk-given-1234567890")
    assert headers["authorization"] == "Bearer sk-given-1234567890"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://openrouter.ai/api/v1", "or-key"),
        ("https://OpenRouter.AI/api/v1", "or-key"),  # host names are case-blind
        ("https://api.openai.com/v1", "openai-key"),
        ("https://api.openai.com:443/v1", "openai-key"),
        ("http://127.0.0.1:8000/v1", None),
        ("http://localhost:11434/v1", None),
        ("https://api.together.xyz/v1", None),
        ("https://openai.com/v1", None),
        ("https://eu.api.openai.com/v1", None),
        ("https://api.openai.com.evil.example/v1", None),
        ("https://openrouter.ai.evil.example/api/v1", None),
        ("https://evil.example/openrouter.ai/api/v1", None),
        ("https://user:pw@evil.example/?h=api.openai.com", None),
        ("not a url", None),
        ("http://[::1/v1", None),  # unparseable: no provider's key
    ],
)
def test_provider_variables_go_only_to_their_own_host(
    no_keys: pytest.MonkeyPatch, base_url: str, expected: str | None
) -> None:
    no_keys.setenv("OPENROUTER_API_KEY", "or-key")
    no_keys.setenv("OPENAI_API_KEY", "openai-key")
    assert api_key_for(base_url) == expected
    no_keys.setenv("EXTRACTOR_API_KEY", "extractor-key")  # goes anywhere, before the provider's own
    assert api_key_for(base_url) == "extractor-key"
    assert api_key_for(base_url, "given-key") == "given-key"


def test_one_provider_variable_is_not_used_for_the_other(no_keys: pytest.MonkeyPatch) -> None:
    no_keys.setenv("OPENROUTER_API_KEY", "or-key")
    assert api_key_for("https://api.openai.com/v1") is None
    no_keys.delenv("OPENROUTER_API_KEY")
    no_keys.setenv("OPENAI_API_KEY", "openai-key")
    assert api_key_for("https://openrouter.ai/api/v1") is None
    assert "api_key=not set" in repr(Extractor())  # the default endpoint is OpenRouter
    assert "api_key=set" in repr(Extractor(base_url="https://api.openai.com/v1"))


def test_empty_variables_count_as_unset(no_keys: pytest.MonkeyPatch) -> None:
    no_keys.setenv("EXTRACTOR_API_KEY", "")
    no_keys.setenv("OPENROUTER_API_KEY", "or-key")
    assert api_key_for("https://openrouter.ai/api/v1", "") == "or-key"
    no_keys.setenv("OPENROUTER_API_KEY", "")
    assert api_key_for("https://openrouter.ai/api/v1") is None


# --- redaction ---------------------------------------------------------------------------------


def leaks(text: str, key: str) -> list[str]:
    """The runs of 8 characters of `key` found in `text`."""
    return [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in text]


def test_a_nine_character_slice_from_the_middle_is_removed() -> None:
    piece = KEY[30:39]
    assert redact(f"upstream rejected ...{piece}...", KEY) == "upstream rejected ...***..."


def test_a_key_with_a_character_changed_in_the_middle_leaves_nothing_of_it() -> None:
    changed = KEY[:32] + ("X" if KEY[32] != "X" else "Y") + KEY[33:]
    out = redact(f"invalid key {changed}.", KEY)
    assert out == f"invalid key ***{changed[32]}***."
    assert leaks(out, KEY) == []


@pytest.mark.parametrize("start", range(0, 57, 7))
@pytest.mark.parametrize("size", [8, 9, 15, 33, 64])
def test_every_run_of_eight_or_more_characters_is_removed(start: int, size: int) -> None:
    piece = KEY[start : start + size]
    if len(piece) < 8:
        pytest.skip("past the end of the key")
    out = redact(f"<{piece}>", KEY)
    assert out == "<***>"


def test_runs_shorter_than_eight_characters_and_other_text_are_kept() -> None:
    text = f"id {KEY[10:17]} at {KEY[40:47]}; model mistralai/mistral-small"
    assert redact(text, KEY) == text


def test_pieces_of_the_key_far_apart_are_removed_each() -> None:
    text = f"a {KEY[:10]} b {KEY[20:29]} c {KEY[50:]} d {KEY}"
    out = redact(text, KEY)
    assert out == "a *** b *** c *** d ***"


def test_short_keys_are_removed_only_whole() -> None:
    assert redact("token abc1234 and abc123 and abc1234", "abc1234") == "token *** and abc123 and ***"
    assert redact("key xyz!", "xyz") == "key ***!"
    assert redact("anything", None) == "anything"
    assert redact("anything", "") == "anything"
    assert redact("", KEY) == ""


def test_redacting_a_megabyte_with_a_long_key_is_quick() -> None:
    """No timing is asserted (a busy machine): the figure is printed for the record (`-s`)."""
    filler = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 18000  # ~1 MB
    text = filler[:300000] + KEY + filler[300000:600000] + KEY[5:40] + filler[600000:]
    started = time.perf_counter()
    out = redact(text, KEY)
    took = time.perf_counter() - started
    print(f"\nredact: {len(text) / 1e6:.2f} MB text, {len(KEY)}-character key: {took * 1000:.1f} ms")
    assert leaks(out, KEY) == []
    assert out == filler[:300000] + "***" + filler[300000:600000] + "***" + filler[600000:]


def test_a_text_made_of_the_key_repeated_is_removed_whole() -> None:
    assert redact(KEY * 1000, KEY) == "***"
    assert redact("a" * 100, "aaaaaaaaaaaa") == "***"
