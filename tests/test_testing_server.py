"""`extractor.testing`: the loopback OpenAI-compatible server, exercised with real httpx clients."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from extractor import compile_schema
from extractor.schema.sample import sample_instance
from extractor.testing import DEFAULT_MODEL, ModelSpec, RecordedRequest, Reply, TestServer

pytest_plugins = ["pytester"]


class Line(BaseModel):
    description: str
    quantity: int = Field(ge=1)
    unit: Literal["kg", "pcs"]


class Invoice(BaseModel):
    number: str = Field(pattern=r"^INV-\d{4}$")
    issued: date
    total: float | None
    lines: list[Line]


COMPILED = compile_schema(Invoice)
SCHEMA = COMPILED.json_schema
OTHER_SCHEMA = {"type": "object", "properties": {"wrong": {"type": "string"}}, "required": ["wrong"]}
MESSAGES = [{"role": "user", "content": "Invoice INV-0042, 3 kg of flour."}]


def fenced(schema: Any) -> str:
    return f"```json\n{json.dumps(schema, indent=2)}\n```"


def json_schema_body(**extra: Any) -> dict[str, Any]:
    response_format = {"type": "json_schema", "json_schema": {"name": COMPILED.name, "strict": True, "schema": SCHEMA}}
    return {"model": DEFAULT_MODEL, "messages": MESSAGES, "response_format": response_format, **extra}


def tools_body(**extra: Any) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "record_invoice", "parameters": SCHEMA}}
    choice = {"type": "function", "function": {"name": "record_invoice"}}
    return {"model": DEFAULT_MODEL, "messages": MESSAGES, "tools": [tool], "tool_choice": choice, **extra}


def json_body(**extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": f"Answer with JSON following this schema:\n{fenced(SCHEMA)}"}
    return {
        "model": DEFAULT_MODEL,
        "messages": [system, *MESSAGES],
        "response_format": {"type": "json_object"},
        **extra,
    }


def prompt_body(**extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": f"Follow this schema:\n{fenced(SCHEMA)}"}
    return {"model": DEFAULT_MODEL, "messages": [system, *MESSAGES], **extra}


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as running:
        yield running


@pytest.fixture
def client(server: TestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


def chat(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/chat/completions", json=body)


def message(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["choices"][0]["message"]
    return result


def events(text: str) -> list[str]:
    """The server-sent events of a stream body, each without its blank-line terminator."""
    assert text.endswith("\n\n")
    return text[:-2].split("\n\n")


def data(event: str) -> Any:
    assert event.startswith("data: ")
    return json.loads(event[len("data: ") :])


# --- default answers ---------------------------------------------------------------------------


def test_default_answer_in_json_schema_mode_is_an_instance_of_the_schema(client: httpx.Client) -> None:
    response = chat(client, json_schema_body())
    body = response.json()
    answer = message(response)
    assert answer["role"] == "assistant"
    assert answer["refusal"] is None and "tool_calls" not in answer
    assert isinstance(COMPILED.validate(json.loads(answer["content"])), Invoice)
    assert json.loads(answer["content"]) == sample_instance(SCHEMA)
    assert body["object"] == "chat.completion"
    assert body["model"] == DEFAULT_MODEL
    assert body["id"] == "gen-1"
    assert body["choices"][0]["finish_reason"] == "stop"


def test_default_answer_in_tools_mode_is_a_call_of_the_requested_tool(client: httpx.Client) -> None:
    response = chat(client, tools_body())
    answer = message(response)
    assert answer["content"] is None
    assert response.json()["choices"][0]["finish_reason"] == "tool_calls"
    [call] = answer["tool_calls"]
    assert call["id"] == "call_1" and call["type"] == "function"
    assert call["function"]["name"] == "record_invoice"
    assert isinstance(COMPILED.validate(json.loads(call["function"]["arguments"])), Invoice)


def test_tools_mode_answers_the_tool_that_tool_choice_forces(client: httpx.Client) -> None:
    body = tools_body()
    body["tools"].insert(0, {"type": "function", "function": {"name": "other", "parameters": OTHER_SCHEMA}})
    [call] = message(chat(client, body))["tool_calls"]
    assert call["function"]["name"] == "record_invoice"
    assert isinstance(COMPILED.validate(json.loads(call["function"]["arguments"])), Invoice)
    del body["tool_choice"]
    [call] = message(chat(client, body))["tool_calls"]
    assert call["function"]["name"] == "other"
    assert json.loads(call["function"]["arguments"]) == {"wrong": "text"}


def test_default_answer_in_json_mode_follows_the_schema_in_the_system_message(client: httpx.Client) -> None:
    answer = message(chat(client, json_body()))
    assert isinstance(COMPILED.validate(json.loads(answer["content"])), Invoice)


def test_default_answer_in_prompt_mode_follows_the_schema_in_the_system_message(client: httpx.Client) -> None:
    answer = message(chat(client, prompt_body()))
    assert isinstance(COMPILED.validate(json.loads(answer["content"])), Invoice)


def test_the_last_fenced_json_object_in_system_and_developer_messages_is_the_schema(client: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": f"Old schema:\n{fenced(OTHER_SCHEMA)}"},
        {"role": "user", "content": f"Not this one:\n{fenced(OTHER_SCHEMA)}"},
        {
            "role": "developer",
            "content": [
                {"type": "text", "text": f"Schema:\n{fenced(SCHEMA)}\nNot an object:\n```json\n[1, 2]\n```"},
                {"type": "text", "text": "Broken:\n```json\n{not json\n```"},
            ],
        },
    ]
    answer = message(chat(client, {"model": DEFAULT_MODEL, "messages": messages}))
    assert json.loads(answer["content"]) == sample_instance(SCHEMA)
    assert isinstance(COMPILED.validate(json.loads(answer["content"])), Invoice)


def test_a_request_without_a_schema_gets_an_empty_object(client: httpx.Client) -> None:
    assert message(chat(client, {"model": DEFAULT_MODEL, "messages": MESSAGES}))["content"] == "{}"
    body = {"model": DEFAULT_MODEL, "messages": MESSAGES, "response_format": {"type": "json_object"}}
    assert message(chat(client, body))["content"] == "{}"


def test_any_path_prefix_is_served(server: TestServer) -> None:
    root = server.base_url.removesuffix("/v1")
    with httpx.Client(timeout=30) as http:
        for prefix in ("", "/v1", "/api/v1"):
            answer = message(http.post(f"{root}{prefix}/chat/completions", json=json_schema_body()))
            assert json.loads(answer["content"]) == sample_instance(SCHEMA)
            assert http.get(f"{root}{prefix}/models").json()["data"][0]["id"] == DEFAULT_MODEL
        missing = http.get(f"{root}/v1/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": 404, "message": "Not Found"}}


def test_a_body_that_is_not_a_json_object_is_a_400(client: httpx.Client) -> None:
    response = client.post("/chat/completions", content=b"{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "message": "the request body is not a JSON object"}}


# --- scripting ---------------------------------------------------------------------------------------


def test_queued_replies_are_consumed_in_order_then_defaults_resume(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.json({"n": 1}), Reply(content="second"))
    server.queue(Reply.truncated('{"n": 3'))
    assert server.pending == 3
    assert message(chat(client, json_schema_body()))["content"] == '{"n": 1}'
    assert message(chat(client, json_schema_body()))["content"] == "second"
    third = chat(client, json_schema_body())
    assert message(third)["content"] == '{"n": 3'
    assert third.json()["choices"][0]["finish_reason"] == "length"
    assert server.pending == 0
    assert json.loads(message(chat(client, json_schema_body()))["content"]) == sample_instance(SCHEMA)


def test_the_handler_comes_before_the_queue_and_none_falls_through(server: TestServer, client: httpx.Client) -> None:
    seen: list[RecordedRequest] = []

    def handler(request: RecordedRequest) -> Reply | None:
        seen.append(request)
        return Reply(content="from handler") if request.json["messages"][-1]["content"] == "special" else None

    server.handler = handler
    server.queue(Reply(content="from queue"))
    special = json_schema_body(messages=[{"role": "user", "content": "special"}])
    assert message(chat(client, special))["content"] == "from handler"
    assert server.pending == 1
    assert message(chat(client, json_schema_body()))["content"] == "from queue"
    assert json.loads(message(chat(client, json_schema_body()))["content"]) == sample_instance(SCHEMA)
    assert [r.json["messages"][-1]["content"] for r in seen] == [
        "special",
        MESSAGES[0]["content"],
        MESSAGES[0]["content"],
    ]


def test_a_raising_handler_is_a_500_with_its_message(server: TestServer, client: httpx.Client) -> None:
    def handler(request: RecordedRequest) -> Reply | None:
        raise KeyError("boom")

    server.handler = handler
    response = chat(client, json_schema_body())
    assert response.status_code == 500
    assert response.json() == {"error": {"code": 500, "message": "the test server's handler raised KeyError: 'boom'"}}


def test_a_reply_without_an_answer_keeps_the_default_answer(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(reasoning="thinking", id="gen-custom", model="acme/model"))
    response = chat(client, tools_body())
    answer = message(response)
    assert answer["reasoning"] == "thinking"
    assert isinstance(COMPILED.validate(json.loads(answer["tool_calls"][0]["function"]["arguments"])), Invoice)
    assert response.json()["id"] == "gen-custom"
    assert response.json()["model"] == "acme/model"


def test_scripted_tool_arguments_are_sent_as_a_call_of_the_requested_tool(
    server: TestServer, client: httpx.Client
) -> None:
    server.queue(Reply.tool({"number": "INV-0001"}), Reply(tool_arguments='{"broken'))
    first = chat(client, tools_body())
    [call] = message(first)["tool_calls"]
    assert call == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "record_invoice", "arguments": '{"number": "INV-0001"}'},
    }
    assert first.json()["choices"][0]["finish_reason"] == "tool_calls"
    [call] = message(chat(client, tools_body()))["tool_calls"]
    assert call["id"] == "call_2" and call["function"]["arguments"] == '{"broken'


def test_invalid_replies_are_refused() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        Reply(chunk_size=0)
    with pytest.raises(ValueError, match="status"):
        Reply(status=42)
    with pytest.raises(ValueError, match="negative"):
        Reply(delay=-1)
    with pytest.raises(ValueError, match="cut_after"):
        Reply(cut_after=-1)


# --- recording ---------------------------------------------------------------------------------------


def test_every_request_is_recorded_with_headers_json_and_mode(server: TestServer, client: httpx.Client) -> None:
    client.get("/models", headers={"X-Title": "tests"})
    bodies = [json_schema_body(), tools_body(), json_body(), prompt_body()]
    for body in bodies:
        chat(client, body)
    requests = server.requests
    assert [(r.method, r.path) for r in requests] == [("GET", "/v1/models")] + [("POST", "/v1/chat/completions")] * 4
    assert requests[0].headers["x-title"] == "tests"
    assert requests[0].json is None and requests[0].body == b""
    chats = server.chat_requests
    assert chats == requests[1:]
    assert [r.mode for r in chats] == ["json_schema", "tools", "json", "prompt"]
    assert [r.json for r in chats] == bodies
    assert json.loads(chats[0].body) == bodies[0]
    assert chats[0].headers["content-type"] == "application/json"
    assert chats[0].model == DEFAULT_MODEL and not chats[0].stream
    assert all(name == name.lower() for r in requests for name in r.headers)


def test_reset_forgets_queue_handler_and_requests(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content="x"))
    server.handler = lambda request: Reply(content="y")
    chat(client, json_schema_body())
    server.reset()
    assert server.requests == [] and server.pending == 0 and server.handler is None
    assert json.loads(message(chat(client, json_schema_body()))["content"]) == sample_instance(SCHEMA)
    assert len(server.requests) == 1


def test_recorded_mode_follows_the_request_body() -> None:
    def mode(payload: Any) -> str:
        return RecordedRequest("POST", "/v1/chat/completions", json=payload).mode

    schema_format = {"type": "json_schema", "json_schema": {"schema": {}}}
    assert mode({"response_format": schema_format, "tools": [{"type": "function"}]}) == "json_schema"
    assert mode({"response_format": {"type": "json_object"}, "tools": [{"type": "function"}]}) == "tools"
    assert mode({"response_format": {"type": "json_object"}, "tools": []}) == "json"
    assert mode({"response_format": {"type": "text"}}) == "prompt"
    assert mode(None) == "prompt"


# --- auth ----------------------------------------------------------------------------------------------


def test_an_api_key_is_required_on_chat_completions_only() -> None:
    with TestServer(api_key="sk-test") as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        server.queue(Reply(content="scripted"))
        missing = chat(http, json_schema_body())
        wrong = http.post("/chat/completions", json=json_schema_body(), headers={"Authorization": "Bearer nope"})
        for response in (missing, wrong):
            assert response.status_code == 401
            assert response.json() == {"error": {"code": 401, "message": "No auth credentials found"}}
        assert http.get("/models").status_code == 200
        good = http.post("/chat/completions", json=json_schema_body(), headers={"Authorization": "Bearer sk-test"})
        assert message(good)["content"] == "scripted"  # a refused request consumes no reply
        assert len(server.chat_requests) == 3


# --- faults ----------------------------------------------------------------------------------------------


def test_status_errors_carry_openrouter_bodies_and_headers(server: TestServer, client: httpx.Client) -> None:
    server.queue(
        Reply.status_error(429, "Rate limit exceeded: slow down", retry_after=2),
        Reply.status_error(503, headers={"X-RateLimit-Reset": "1700000000000"}),
        Reply(status=402, error={"code": 402, "message": "Insufficient credits", "metadata": {"x": 1}}),
    )
    limited = chat(client, json_schema_body())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json() == {"error": {"code": 429, "message": "Rate limit exceeded: slow down"}}
    unavailable = chat(client, json_schema_body())
    assert unavailable.status_code == 503
    assert unavailable.headers["x-ratelimit-reset"] == "1700000000000"
    assert "retry-after" not in unavailable.headers
    assert unavailable.json() == {"error": {"code": 503, "message": "Service Unavailable"}}
    payment = chat(client, json_schema_body())
    assert payment.status_code == 402
    assert payment.json() == {"error": {"code": 402, "message": "Insufficient credits", "metadata": {"x": 1}}}


def test_a_200_can_carry_an_error_body(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.provider_error("Upstream timed out", code=504))
    response = chat(client, json_schema_body())
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == {"code": 504, "message": "Upstream timed out"}
    assert body["choices"][0]["finish_reason"] == "error"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert "usage" not in body


def test_malformed_bodies_are_sent_as_is(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.malformed(), Reply.malformed(b"<html>Bad gateway</html>", status=502))
    first = chat(client, json_schema_body())
    assert first.status_code == 200
    assert first.content == b"{not json"
    assert first.headers["content-type"] == "application/json"
    second = chat(client, json_schema_body())
    assert second.status_code == 502 and second.content == b"<html>Bad gateway</html>"


def test_a_dropped_connection_is_a_protocol_error_and_the_server_carries_on(
    server: TestServer, client: httpx.Client
) -> None:
    server.queue(Reply.dropped())
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, json_schema_body())
    assert json.loads(message(chat(client, json_schema_body()))["content"]) == sample_instance(SCHEMA)
    assert len(server.chat_requests) == 2


def test_reply_delay_and_server_latency_add_up() -> None:
    with TestServer(latency=0.2) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        server.queue(Reply(content="slow", delay=0.15))
        started = time.perf_counter()
        assert message(chat(http, json_schema_body()))["content"] == "slow"
        assert time.perf_counter() - started >= 0.33
        started = time.perf_counter()
        chat(http, json_schema_body())
        assert time.perf_counter() - started >= 0.18


def test_a_refusal_has_null_content(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.refuse("I can't process this document."))
    response = chat(client, json_schema_body())
    answer = message(response)
    assert answer["refusal"] == "I can't process this document."
    assert answer["content"] is None
    assert response.json()["choices"][0]["finish_reason"] == "stop"


def test_reasoning_and_reasoning_details_are_returned_exactly(server: TestServer, client: httpx.Client) -> None:
    details = [
        {"type": "reasoning.encrypted", "data": "gAAAA==", "id": "rs_1", "format": "openai-responses-v1", "index": 0},
        {"type": "reasoning.summary", "summary": "Read the total.", "index": 1},
    ]
    server.queue(Reply.json({"total": 1}, reasoning="Let me look at the total.", reasoning_details=details))
    answer = message(chat(client, json_schema_body()))
    assert answer["reasoning"] == "Let me look at the total."
    assert answer["reasoning_details"] == details
    assert answer["content"] == '{"total": 1}'


# --- usage and models ------------------------------------------------------------------------------------


def test_usage_and_cost_are_computed_from_sizes_and_prices() -> None:
    spec = ModelSpec("acme/priced", prompt_price_per_token=1e-6, completion_price_per_token=2e-6)
    with TestServer(models=[ModelSpec("acme/other"), spec]) as server:
        server.queue(Reply(content="x" * 41, reasoning="r" * 9), Reply(content="abc", include_cost=False))
        usage_given = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cost": 0.5}
        server.queue(Reply(content="abc", usage=usage_given))
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            first = chat(http, json_schema_body(model="acme/priced")).json()
            second = chat(http, json_schema_body()).json()
            third = chat(http, json_schema_body()).json()
        prompt = math.ceil(len(server.chat_requests[0].body) / 4)
        assert first["model"] == "acme/priced"
        assert first["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": 11 + 3,  # the answer's tokens and the reasoning tokens
            "total_tokens": prompt + 14,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 3},
            "cost": pytest.approx(prompt * 1e-6 + 14 * 2e-6, rel=1e-9),
        }
        assert "cost" not in second["usage"]
        assert second["usage"]["completion_tokens"] == 1
        assert second["usage"]["prompt_tokens"] == math.ceil(len(server.chat_requests[1].body) / 4)
        assert third["usage"] == usage_given


def test_unknown_models_are_priced_like_the_first_listed_model(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content="abcd"))
    usage = chat(client, json_schema_body(model="someone/else")).json()["usage"]
    assert usage["cost"] == pytest.approx(usage["prompt_tokens"] * 0.15e-6 + 1 * 0.60e-6, rel=1e-9)


def test_models_are_listed_in_openrouter_shape(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "id": "mistralai/mistral-small-2603",
                "name": "mistralai/mistral-small-2603",
                "context_length": 262144,
                "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
                "top_provider": {"context_length": 262144, "max_completion_tokens": None, "is_moderated": False},
                "supported_parameters": [
                    "structured_outputs",
                    "response_format",
                    "tools",
                    "tool_choice",
                    "reasoning",
                    "include_reasoning",
                    "max_tokens",
                    "temperature",
                    "top_p",
                    "stop",
                    "frequency_penalty",
                    "presence_penalty",
                    "seed",
                ],
                "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
            }
        ]
    }


def test_custom_models_are_listed() -> None:
    spec = ModelSpec(
        "acme/tiny",
        context_length=8192,
        max_completion_tokens=1024,
        prompt_price_per_token=0.0,
        completion_price_per_token=2.5e-6,
        supported_parameters=["max_tokens"],
        input_modalities=["text"],
        name="Acme: Tiny",
    )
    with TestServer(models=[spec]) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        [model] = http.get("/models").json()["data"]
    assert model["name"] == "Acme: Tiny"
    assert model["pricing"] == {"prompt": "0", "completion": "0.0000025"}
    assert model["top_provider"] == {"context_length": 8192, "max_completion_tokens": 1024, "is_moderated": False}
    assert model["supported_parameters"] == ["max_tokens"]
    assert model["architecture"]["input_modalities"] == ["text"]


# --- streaming ---------------------------------------------------------------------------------------------


def test_a_stream_is_sse_with_content_finish_usage_and_done(server: TestServer, client: httpx.Client) -> None:
    content = '{"number": "INV-0042", "lines": []}'
    server.queue(Reply(content=content, chunk_size=10))
    response = chat(client, json_schema_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    stream = events(response.text)
    assert stream[0] == ": OPENROUTER PROCESSING"
    assert stream[-1] == "data: [DONE]"
    chunks = [data(event) for event in stream[1:-1]]
    *deltas, finish, usage = chunks
    assert [c["choices"][0]["delta"]["content"] for c in deltas] == [
        content[i : i + 10] for i in range(0, len(content), 10)
    ]
    assert all(c["choices"][0]["finish_reason"] is None for c in deltas)
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert usage["choices"] == []
    prompt = math.ceil(len(server.chat_requests[0].body) / 4)
    assert usage["usage"]["prompt_tokens"] == prompt
    assert usage["usage"]["completion_tokens"] == math.ceil(len(content) / 4)
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == "gen-1" and chunk["model"] == DEFAULT_MODEL
        assert isinstance(chunk["created"], int)


def test_a_default_stream_reassembles_to_a_schema_instance(client: httpx.Client) -> None:
    for body in (json_schema_body(stream=True), prompt_body(stream=True)):
        chunks = [data(e) for e in events(chat(client, body).text)[1:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert isinstance(COMPILED.validate(json.loads(text)), Invoice)


def test_a_stream_sends_reasoning_first(server: TestServer, client: httpx.Client) -> None:
    details = [{"type": "reasoning.text", "text": "hmm", "index": 0}]
    server.queue(Reply(content="abcdef", reasoning="thinking hard", reasoning_details=details, chunk_size=5))
    chunks = [data(e) for e in events(chat(client, json_schema_body(stream=True)).text)[1:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    assert deltas == [
        {"role": "assistant", "reasoning": "think"},
        {"role": "assistant", "reasoning": "ing h"},
        {"role": "assistant", "reasoning": "ard"},
        {"role": "assistant", "reasoning_details": details},
        {"role": "assistant", "content": "abcde"},
        {"role": "assistant", "content": "f"},
    ]
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}


def test_a_stream_sends_tool_call_argument_pieces(server: TestServer, client: httpx.Client) -> None:
    arguments = '{"number": "INV-0001"}'
    server.queue(Reply(tool_arguments=arguments, chunk_size=8))
    chunks = [data(e) for e in events(chat(client, tools_body(stream=True)).text)[1:-1]]
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in chunks[:-2]]
    assert calls[0] == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "record_invoice", "arguments": arguments[:8]},
        }
    ]
    assert calls[1:] == [[{"index": 0, "function": {"arguments": arguments[i : i + 8]}}] for i in (8, 16)]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_stream_refusal_comes_as_refusal_deltas(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.refuse("No way.", chunk_size=4))
    chunks = [data(e) for e in events(chat(client, json_schema_body(stream=True)).text)[1:-1]]
    assert [c["choices"][0]["delta"] for c in chunks[:-2]] == [
        {"role": "assistant", "refusal": "No w"},
        {"role": "assistant", "refusal": "ay."},
    ]


def test_cut_after_drops_the_stream_without_done(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content="x" * 40, chunk_size=4, cut_after=3))
    lines: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/chat/completions", json=json_schema_body(stream=True)) as response,
    ):
        for line in response.iter_lines():
            lines.append(line)
    received = [line for line in lines if line.startswith("data: ")]
    assert [data(line)["choices"][0]["delta"]["content"] for line in received] == ["xxxx"] * 3
    assert "data: [DONE]" not in lines
    assert json.loads(message(chat(client, json_schema_body()))["content"]) == sample_instance(SCHEMA)


def test_error_after_ends_the_stream_with_an_error_chunk(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content="abcdefghijkl", chunk_size=4, error_after=2))
    stream = events(chat(client, json_schema_body(stream=True)).text)
    assert stream[0] == ": OPENROUTER PROCESSING"
    assert [data(e)["choices"][0]["delta"]["content"] for e in stream[1:3]] == ["abcd", "efgh"]
    assert len(stream) == 4
    last = data(stream[3])
    assert last["error"] == {"code": 502, "message": "Provider disconnected"}
    assert last["choices"] == [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    assert last["object"] == "chat.completion.chunk" and last["id"] == "gen-1"


def test_a_streamed_provider_error_is_an_immediate_error_chunk(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.provider_error("Overloaded", code=529))
    stream = events(chat(client, json_schema_body(stream=True)).text)
    assert stream[0] == ": OPENROUTER PROCESSING"
    assert len(stream) == 2
    assert data(stream[1])["error"] == {"code": 529, "message": "Overloaded"}
    server.queue(Reply.provider_error("Overloaded", code=529, content="abcdefgh", chunk_size=4, error_after=1))
    stream = events(chat(client, json_schema_body(stream=True)).text)
    assert [data(e)["choices"][0]["delta"]["content"] for e in stream[1:]] == ["abcd", ""]
    assert data(stream[2])["error"] == {"code": 529, "message": "Overloaded"}


def test_a_stream_fault_count_beyond_the_chunks_faults_before_done(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content="ab", error_after=99))
    stream = events(chat(client, json_schema_body(stream=True)).text)
    assert data(stream[1])["choices"][0]["delta"]["content"] == "ab"
    assert data(stream[2])["choices"][0]["finish_reason"] == "stop"
    assert data(stream[3])["choices"] == []
    assert data(stream[4])["error"]["code"] == 502
    assert len(stream) == 5


def test_status_errors_are_not_streamed(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.status_error(500))
    response = chat(client, json_schema_body(stream=True))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": 500, "message": "Internal Server Error"}}


def test_chunk_delay_spaces_the_chunks(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content="abcdefgh", chunk_size=2, chunk_delay=0.05))
    started = time.perf_counter()
    stream = events(chat(client, json_schema_body(stream=True)).text)
    assert time.perf_counter() - started >= 0.2  # 5 gaps between 4 content, 1 finish and 1 usage chunks
    assert [data(e)["choices"][0]["delta"].get("content") for e in stream[1:5]] == ["ab", "cd", "ef", "gh"]
    assert stream[-1] == "data: [DONE]"


# --- async use -------------------------------------------------------------------------------------------


def test_async_clients_and_the_async_context_manager() -> None:
    async def main() -> list[str]:
        async with TestServer(latency=0.05) as server, httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            server.queue(*(Reply(content=f"answer {i}", id=f"gen-{i}") for i in range(20)))
            responses = await asyncio.gather(*(http.post("/chat/completions", json=json_body()) for _ in range(40)))
            assert len(server.chat_requests) == 40
            return [r.json()["choices"][0]["message"]["content"] for r in responses]

    contents = asyncio.run(main())
    scripted = sorted(c for c in contents if c.startswith("answer "))
    assert scripted == sorted(f"answer {i}" for i in range(20))
    defaults = [c for c in contents if not c.startswith("answer ")]
    assert len(defaults) == 20
    assert all(isinstance(COMPILED.validate(json.loads(c)), Invoice) for c in defaults)


def test_recording_can_be_turned_off_while_the_handler_still_sees_requests() -> None:
    seen: list[str] = []

    def handler(request: RecordedRequest) -> Reply | None:
        seen.append(request.mode)
        return None

    with TestServer(record=False) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        server.handler = handler
        assert isinstance(COMPILED.validate(json.loads(message(chat(http, json_body()))["content"])), Invoice)
        http.get("/models")
        assert server.requests == [] and server.chat_requests == []
    assert seen == ["json"]


def test_a_server_can_stop_and_start_again() -> None:
    server = TestServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    first = server.base_url
    server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first}/models", timeout=5)
    with server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/models").status_code == 200


def test_a_busy_port_fails_start_and_leaves_the_server_stopped(server: TestServer) -> None:
    second = TestServer(port=server.port)
    with pytest.raises(OSError):
        second.start()
    assert not second.running
    second.stop()


# --- standalone and fixture --------------------------------------------------------------------------


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_the_standalone_server_prints_its_url_and_stops_on_a_signal(stop_with: signal.Signals) -> None:
    command = [sys.executable, "-m", "extractor.testing", "--port", "0", "--latency", "0.01", "--api-key", "k1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=60), "the server printed nothing"
        line = process.stdout.readline()
        prefix = "extractor test server at "
        assert line.startswith(prefix) and line.endswith("/v1\n"), line
        base_url = line[len(prefix) : -1]
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=30) as http:
            response = http.post("/chat/completions", json=json_schema_body(), headers={"Authorization": "Bearer k1"})
            assert isinstance(COMPILED.validate(json.loads(message(response)["content"])), Invoice)
            assert http.post("/chat/completions", json=json_schema_body()).status_code == 401
        process.send_signal(stop_with)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_pytest_plugin_provides_a_started_server_stopped_after(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        pytest_plugins = ["extractor.testing.fixtures"]
        SEEN = []

        def test_uses_the_server(llm_server):
            assert llm_server.running
            SEEN.append(llm_server)
            llm_server.queue(llm_server_reply())
            response = httpx.post(llm_server.base_url + "/chat/completions", json={"messages": []})
            assert response.json()["choices"][0]["message"]["content"] == "hello"
            assert len(llm_server.chat_requests) == 1

        def test_the_previous_server_was_stopped(llm_server):
            assert not SEEN[0].running
            assert llm_server is not SEEN[0] and llm_server.running

        def llm_server_reply():
            from extractor.testing import Reply
            return Reply(content="hello")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_repeat_makes_an_endless_stream_until_the_client_goes_away(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply(content='{"value": [', repeat='{"n": 1}, ', chunk_size=4, chunk_delay=0.001))
    pieces: list[str] = []
    with client.stream("POST", "/chat/completions", json=json_schema_body(stream=True)) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                pieces.append(data(line)["choices"][0]["delta"]["content"])
            if len(pieces) >= 200:
                break
    assert pieces[:3] == ['{"va', 'lue"', ": ["]
    assert set(pieces[3:]) == {'{"n": 1}, '}  # no finish, no usage, no [DONE]: it goes on
    assert chat(client, json_schema_body()).status_code == 200  # the server is still serving


def test_repeat_must_be_a_text() -> None:
    with pytest.raises(ValueError, match="repeat"):
        Reply(repeat="")


def test_a_client_that_goes_away_mid_request_is_not_logged_as_an_error(
    server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The body cut short, then the connection reset: aiohttp logged a ConnectionResetError traceback."""
    import socket
    import struct

    caplog.set_level(logging.DEBUG)
    body = json.dumps(json_schema_body()).encode()
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(body) + 1000)
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body)
        time.sleep(0.2)  # the server is waiting for the rest of the body
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    with httpx.Client(base_url=server.base_url) as after:
        assert chat(after, json_schema_body()).status_code == 200  # served after it, so the reset was handled
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
