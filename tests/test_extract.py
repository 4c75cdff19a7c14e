"""The extraction client against the project's own OpenAI-compatible server (`extractor.testing`)."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extractor import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    Extractor,
    ModerationError,
    NotFoundError,
    OutputInvalidError,
    OutputTruncatedError,
    PaymentRequiredError,
    RateLimitError,
    RefusalError,
    RetryPolicy,
    ServerError,
)
from extractor.client.catalog import forget_models
from extractor.testing import ModelSpec, Reply, TestServer

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
MODEL = "mistralai/mistral-small-2603"


class Invoice(BaseModel):
    number: str
    total: float
    currency: str | None = None


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("retry", FAST)
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", **kwargs)


# --- modes -----------------------------------------------------------------------------------


def test_json_schema_mode_sends_the_compiled_schema(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"number": "A-1", "total": 12.5, "currency": None}))
    value = make(server, tmp_path, mode="json_schema").extract(Invoice, "Invoice A-1, total 12.50")
    assert value == Invoice(number="A-1", total=12.5)
    body = server.chat_requests[0].json
    assert body["model"] == MODEL
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Invoice"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["number", "total", "currency"]
    assert body["messages"][-1] == {"role": "user", "content": "Invoice A-1, total 12.50"}
    assert "tools" not in body


def test_tools_mode_forces_one_function_call(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.tool({"number": "A-2", "total": 3, "currency": "EUR"}))
    value = make(server, tmp_path, mode="tools").extract(Invoice, "text")
    assert value == Invoice(number="A-2", total=3, currency="EUR")
    body = server.chat_requests[0].json
    assert body["tools"][0]["function"]["name"] == "Invoice"
    assert body["tools"][0]["function"]["parameters"]["properties"]["total"] == {"type": "number", "title": "Total"}
    assert len(body["tools"]) == 1 and body["tool_choice"] == "required"  # the one tool, forced
    assert "response_format" not in body


def test_json_mode_puts_the_schema_in_the_instructions(server: TestServer, tmp_path: Path) -> None:
    value = make(server, tmp_path, mode="json").extract(Invoice, "text")  # the server's default answer
    assert isinstance(value, Invoice)
    body = server.chat_requests[0].json
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert system["role"] == "system"
    # a compact type signature, not the JSON Schema document (small models copy that back)
    assert system["content"].endswith(
        '```\n{\n  "number": string,\n  "total": number,\n  "currency": string | null\n}\n```'
    )
    assert '"properties"' not in system["content"] and '"type"' not in system["content"]


def test_prompt_mode_uses_instructions_only(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content='Sure!\n```json\n{"number": "B", "total": 1, "currency": null}\n```'))
    result = make(server, tmp_path, mode="prompt").extract_result(Invoice, "text")
    assert result.value == Invoice(number="B", total=1)
    assert [r.kind.value for r in result.repairs] == ["fence", "prose"]
    body = server.chat_requests[0].json
    assert "response_format" not in body and "tools" not in body
    assert body["messages"][0]["content"].endswith(
        '```\n{\n  "number": string,\n  "total": number,\n  "currency": string | null\n}\n```'
    )


def test_a_json_schema_dict_gives_back_a_validated_dict(server: TestServer, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    server.queue(Reply.json({"city": "Lyon"}))
    assert make(server, tmp_path, mode="json_schema").extract(schema, "Lyon") == {"city": "Lyon"}


@pytest.mark.parametrize(
    ("params", "mode"),
    [
        (["structured_outputs", "response_format", "tools"], "json_schema"),
        (["tools", "response_format"], "tools"),
        (["response_format"], "json"),
        (["temperature"], "prompt"),
    ],
)
def test_auto_mode_follows_the_models_supported_parameters(tmp_path: Path, params: list[str], mode: str) -> None:
    with TestServer(models=[ModelSpec(MODEL, supported_parameters=params)]) as server:
        result = make(server, tmp_path).extract_result(Invoice, "text")
        assert result.mode == mode
        assert server.chat_requests[0].mode == mode


def test_model_list_is_cached_in_memory_and_on_disk(server: TestServer, tmp_path: Path) -> None:
    ex = make(server, tmp_path)
    ex.extract(Invoice, "one")
    ex.extract(Invoice, "two")
    gets = [r for r in server.requests if r.path.endswith("/models")]
    assert len(gets) == 1
    forget_models()  # a new process: memory is empty, the disk cache answers
    make(server, tmp_path).extract(Invoice, "three")
    assert len([r for r in server.requests if r.path.endswith("/models")]) == 1
    cached = list((tmp_path / "cache").glob("models-*.json"))
    assert len(cached) == 1 and MODEL in cached[0].read_text()


def test_rejected_mode_falls_back_once_and_says_so(
    server: TestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.queue(Reply.status_error(400, "response_format json_schema is not supported by this provider"))
    caplog.set_level(logging.WARNING, logger="extractor")
    result = make(server, tmp_path).extract_result(Invoice, "text")
    assert result.mode == "tools"
    assert result.fallbacks == ["json_schema -> tools: response_format json_schema is not supported by this provider"]
    assert [r.mode for r in server.chat_requests] == ["json_schema", "tools"]
    assert "falling back to tools" in caplog.text


def test_a_second_rejection_is_not_fallen_back_again(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.status_error(400, "json_schema unsupported"), Reply.status_error(400, "tools unsupported"))
    with pytest.raises(BadRequestError, match="tools unsupported"):
        make(server, tmp_path).extract(Invoice, "text")
    assert len(server.chat_requests) == 2


def test_other_bad_requests_are_not_fallen_back(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.status_error(400, "context length exceeded"))
    with pytest.raises(BadRequestError):
        make(server, tmp_path).extract(Invoice, "text")
    assert len(server.chat_requests) == 1


# --- errors and retries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, ModerationError),
        (404, NotFoundError),
    ],
)
def test_client_errors_raise_their_type_without_retry(
    server: TestServer, tmp_path: Path, status: int, error: type[Exception]
) -> None:
    server.queue(Reply.status_error(status, "nope"))
    with pytest.raises(error) as info:
        make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    assert info.value.status == status  # type: ignore[attr-defined]
    assert f"{status} from 127.0.0.1" in str(info.value)
    assert len(server.chat_requests) == 1


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 524, 529])
def test_transient_statuses_are_retried(server: TestServer, tmp_path: Path, status: int) -> None:
    server.queue(Reply.status_error(status, "busy"))
    assert make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    assert len(server.chat_requests) == 2


def test_rate_limit_and_server_errors_raise_after_the_retries(server: TestServer, tmp_path: Path) -> None:
    server.queue(*[Reply.status_error(429, "slow down")] * 4)
    with pytest.raises(RateLimitError):
        make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    assert len(server.chat_requests) == 4
    server.reset()
    server.queue(*[Reply.status_error(503, "down")] * 4)
    with pytest.raises(ServerError):
        make(server, tmp_path, mode="json_schema").extract(Invoice, "text")


def test_retry_after_is_honoured(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.status_error(429, "wait", retry_after=1))
    started = time.monotonic()
    make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    assert time.monotonic() - started >= 0.9
    assert len(server.chat_requests) == 2


def test_ratelimit_reset_header_is_honoured(server: TestServer, tmp_path: Path) -> None:
    reset_ms = int((time.time() + 1.0) * 1000)
    server.queue(Reply.status_error(429, "wait", headers={"X-RateLimit-Reset": str(reset_ms)}))
    started = time.monotonic()
    make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    assert time.monotonic() - started >= 0.7


@pytest.mark.parametrize(
    "fault",
    [
        Reply.provider_error("upstream failed"),
        Reply.malformed(),
        Reply(content="{}", finish_reason="error"),
        Reply.dropped(),
    ],
    ids=["200-with-error", "malformed-body", "finish-reason-error", "dropped-connection"],
)
def test_transient_answers_are_retried(server: TestServer, tmp_path: Path, fault: Reply) -> None:
    server.queue(fault)
    assert isinstance(make(server, tmp_path, mode="json_schema").extract(Invoice, "text"), Invoice)
    assert len(server.chat_requests) == 2


def test_connection_drops_and_timeouts_raise_after_the_retries(tmp_path: Path) -> None:
    with TestServer() as server:
        server.queue(*[Reply.dropped()] * 4)
        with pytest.raises(APIConnectionError):
            make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
        server.reset()
        server.queue(*[Reply(delay=1.0)] * 2)
        ex = make(server, tmp_path, mode="json_schema", timeout=0.2, retry=RetryPolicy(attempts=2, base_delay=0.01))
        with pytest.raises(APITimeoutError, match=r"within 0\.2 s"):
            ex.extract(Invoice, "text")


def test_refusal_is_raised_at_once_with_its_text(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.refuse("I can't help with that request."))
    with pytest.raises(RefusalError) as info:
        make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    assert info.value.refusal == "I can't help with that request."
    assert len(server.chat_requests) == 1
    assert info.value.usage.total_tokens > 0


# --- re-asks --------------------------------------------------------------------------------


def test_invalid_answer_is_reasked_with_the_errors(server: TestServer, tmp_path: Path) -> None:
    bad = json.dumps({"number": "A-1", "total": "twelve", "currency": None})
    details = [{"type": "reasoning.encrypted", "data": "opaque==", "id": "r1", "format": "anthropic-claude-v1"}]
    server.queue(Reply(content=bad, reasoning_details=details), Reply.json({"number": "A-1", "total": 12}))
    messages = [{"role": "user", "content": "Invoice A-1 for twelve euros"}]
    original = copy.deepcopy(messages)
    result = make(server, tmp_path, mode="json_schema").extract_result(Invoice, messages)
    assert result.value == Invoice(number="A-1", total=12)
    assert messages == original  # the caller's list is not touched
    second = server.chat_requests[1].json["messages"]
    assert second[:2] == server.chat_requests[0].json["messages"]
    assert second[2] == {"role": "assistant", "content": bad, "reasoning_details": details}
    assert second[3]["role"] == "user"
    assert (
        "$.total: Input should be a valid number, unable to parse string as a number (got 'twelve')"
        in second[3]["content"]
    )
    assert result.reasks == 1
    assert [a.problem for a in result.attempts] == ["the answer does not match the schema", None]


def test_only_the_latest_failure_stays_in_the_conversation(server: TestServer, tmp_path: Path) -> None:
    server.queue(
        Reply(content="not json at all"), Reply(content='{"number": 1}'), Reply.json({"number": "x", "total": 1})
    )
    make(server, tmp_path, mode="json_schema").extract(Invoice, "text")
    third = server.chat_requests[2].json["messages"]
    assert len(third) == 4  # system, user, the latest assistant answer, its errors
    assert third[2]["content"] == '{"number": 1}'


def test_still_invalid_after_all_reasks(server: TestServer, tmp_path: Path) -> None:
    server.queue(*[Reply(content='{"number": "A", "total": "lots"}')] * 3)
    with pytest.raises(OutputInvalidError) as info:
        make(server, tmp_path, mode="json_schema", max_retries=2).extract(Invoice, "text")
    assert "after 3 attempts (2 re-asks)" in str(info.value)
    assert info.value.raw == '{"number": "A", "total": "lots"}'
    assert [e.path for e in info.value.errors] == ["$.total"]
    assert len(server.chat_requests) == 3
    assert len(info.value.attempts) == 3


def test_tools_mode_reasks_with_a_tool_message(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(tool_arguments='{"number": "A"}'), Reply.tool({"number": "A", "total": 2}))
    make(server, tmp_path, mode="tools").extract(Invoice, "text")
    followup = server.chat_requests[1].json["messages"][-2:]
    assert followup[0]["role"] == "assistant" and followup[0]["tool_calls"][0]["id"] == "call_1"
    assert followup[1]["role"] == "tool" and followup[1]["tool_call_id"] == "call_1"
    assert "'total' is a required property" in followup[1]["content"] or "Field required" in followup[1]["content"]


def test_length_cut_is_retried_once_with_twice_the_tokens(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=3000)]) as server:
        server.queue(Reply.truncated('{"number": "A", "tot'), Reply.json({"number": "A", "total": 1}))
        result = make(server, tmp_path, mode="json_schema", max_tokens=2000).extract_result(Invoice, "t")
        assert result.value.total == 1
        assert [r.json["max_tokens"] for r in server.chat_requests] == [2000, 3000]  # doubled, within the limit
        assert result.attempts[0].problem == "cut off at max_tokens"


def test_length_cut_twice_is_a_truncated_error(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.truncated('{"number": "A", "tot'), Reply.truncated('{"number": "A", "total": 1'))
    with pytest.raises(OutputTruncatedError, match="cut off by the token limit twice"):
        make(server, tmp_path, mode="json_schema", max_tokens=100).extract(Invoice, "text")
    assert [r.json["max_tokens"] for r in server.chat_requests] == [100, 200]


# --- usage, cost, result -----------------------------------------------------------------------


def test_usage_and_cost_are_summed_over_attempts(server: TestServer, tmp_path: Path) -> None:
    usage1 = {"prompt_tokens": 100, "completion_tokens": 10, "cost": 0.001}
    usage2 = {"prompt_tokens": 150, "completion_tokens": 20, "cost": 0.002,
              "completion_tokens_details": {"reasoning_tokens": 7}}  # fmt: skip
    server.queue(
        Reply(content="{}", usage=usage1, id="gen-a"), Reply.json({"number": "1", "total": 2}, usage=usage2, id="gen-b")
    )
    result = make(server, tmp_path, mode="json_schema").extract_result(Invoice, "text")
    assert result.usage.prompt_tokens == 250
    assert result.usage.completion_tokens == 30
    assert result.usage.reasoning_tokens == 7
    assert result.cost == pytest.approx(0.003)
    assert result.generation_id == "gen-b"
    assert result.finish_reason == "stop"
    assert result.latency > 0


def test_cost_from_the_models_prices_when_the_answer_has_none(server: TestServer, tmp_path: Path) -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    server.queue(Reply.json({"number": "1", "total": 2}, usage=usage))
    result = make(server, tmp_path, mode="json_schema").extract_result(Invoice, "text")
    assert result.cost == pytest.approx(0.15 + 0.60)
    assert result.usage.cost_known


# --- parameters, keys, configuration ---------------------------------------------------------


def test_parameters_and_headers_reach_the_endpoint(server: TestServer, tmp_path: Path) -> None:
    ex = make(
        server,
        tmp_path,
        mode="json_schema",
        temperature=0.2,
        top_p=0.9,
        max_tokens=500,
        stop=["END"],
        seed=7,
        frequency_penalty=0.1,
        presence_penalty=0.3,
        reasoning={"effort": "low", "exclude": True},
        provider={"require_parameters": True},
        plugins=[{"id": "response-healing"}],
        extra_body={"transforms": ["middle-out"]},
        app_url="https://example.org/etl",
        app_name="Nightly ETL",
        instructions="Extract invoices.",
    )
    ex.extract(Invoice, "text", temperature=0.0, seed=None)
    request = server.chat_requests[0]
    body = request.json
    assert body["temperature"] == 0.0  # the call's own value wins
    assert "seed" not in body  # None in a call removes the default
    assert body["top_p"] == 0.9 and body["max_tokens"] == 500 and body["stop"] == ["END"]
    assert body["frequency_penalty"] == 0.1 and body["presence_penalty"] == 0.3
    assert body["reasoning"] == {"effort": "low", "exclude": True}
    assert body["provider"] == {"require_parameters": True}
    assert body["plugins"] == [{"id": "response-healing"}]
    assert body["transforms"] == ["middle-out"]
    assert body["messages"][0] == {"role": "system", "content": "Extract invoices."}
    assert request.headers["http-referer"] == "https://example.org/etl"
    assert request.headers["x-title"] == "Nightly ETL"


def test_unknown_options_and_modes_are_configuration_errors(server: TestServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown mode 'xml'"):
        make(server, tmp_path, mode="xml")
    with pytest.raises(ConfigurationError, match="unknown option"):
        make(server, tmp_path).extract(Invoice, "text", temprature=0.1)  # type: ignore[call-arg]


def test_base_url_and_key_from_the_environment(
    server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTOR_BASE_URL", server.base_url)
    monkeypatch.setenv("EXTRACTOR_API_KEY", "sk-env-1234567890")
    Extractor(mode="json_schema", cache_dir=tmp_path).extract(Invoice, "text")
    assert server.chat_requests[0].headers["authorization"] == "Bearer sk-env-1234567890"


def test_openrouter_key_variable_is_used_for_openrouter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXTRACTOR_API_KEY", raising=False)
    monkeypatch.delenv("EXTRACTOR_BASE_URL", raising=False)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-abcdef123456")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-zzzz")
    assert "api_key=set" in repr(Extractor())
    monkeypatch.delenv("OPENROUTER_API_KEY")
    assert "api_key=not set" in repr(Extractor())  # OPENAI_API_KEY is for other hosts
    assert "api_key=set" in repr(Extractor(base_url="https://api.openai.com/v1"))


def test_missing_key_for_a_remote_host_fails_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EXTRACTOR_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "EXTRACTOR_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match=r"no API key for openrouter\.ai"):
        Extractor().extract(Invoice, "text")


def test_the_api_key_never_leaks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "sk-or-v1-0123456789abcdef0123456789abcdef"
    caplog.set_level(logging.DEBUG)
    with TestServer(api_key=key) as server:
        ex = Extractor(base_url=server.base_url, api_key=key, mode="json_schema", retry=FAST, cache_dir=tmp_path)
        assert isinstance(ex.extract(Invoice, "text"), Invoice)
        assert server.chat_requests[0].headers["authorization"] == f"Bearer {key}"
        server.queue(
            Reply.status_error(401, f"Invalid key {key}"),
            *[Reply.status_error(500, f"upstream rejected key {key[:20]}")] * 4,
        )
        texts = [repr(ex), str(vars(ex)), str(vars(ex._transport)), repr(ex._transport)]
        for _ in range(2):
            with pytest.raises((AuthenticationError, ServerError)) as info:
                ex.extract(Invoice, "text")
            texts += [str(info.value), repr(info.value), str(info.value.body)]  # type: ignore[attr-defined]
    out = capsys.readouterr()
    texts += [caplog.text, out.out, out.err]
    texts += [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    leaked = [t for t in texts if key in t or key[:20] in t or key[-16:] in t]
    assert leaked == []


def test_sync_call_from_inside_a_running_event_loop(server: TestServer, tmp_path: Path) -> None:
    ex = make(server, tmp_path, mode="json_schema")

    async def main() -> Invoice:
        return ex.extract(Invoice, "text")  # a notebook does this: blocking, but it works

    assert isinstance(asyncio.run(main()), Invoice)


def test_async_api(server: TestServer, tmp_path: Path) -> None:
    ex = make(server, tmp_path, mode="json_schema")

    async def main() -> list[Invoice]:
        async with ex:
            return list(await asyncio.gather(*(ex.aextract(Invoice, f"text {i}") for i in range(20))))

    values = asyncio.run(main())
    assert len(values) == 20 and all(isinstance(v, Invoice) for v in values)
    assert len(server.chat_requests) == 20
