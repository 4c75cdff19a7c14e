"""Every mode against servers we did not write, as llama.cpp's `llama-server` behaves: a forced tool named
by an object it ignores, no usage chunk in a stream unless asked, a grammar it cannot build, patterns it
loosens; and the command line's sampling settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field
from test_cli_accounting import run

from extractor import Extractor, OutputInvalidError, RetryPolicy
from extractor.testing import ModelSpec, RecordedRequest, Reply, TestServer

MODEL = "gemma-3-270m"


class Invoice(BaseModel):
    number: str
    total: float


ANSWER = {"number": "A-17", "total": 12.5}


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
    return Extractor(base_url=server.base_url, model=MODEL, cache_dir=tmp_path / "cache", retry=retry, **kwargs)


def llama_like(request: RecordedRequest) -> Reply:
    """llama-server's tools: `tool_choice` must be a string; an object is ignored (then it answers in prose
    until the token limit, as a small model does without the tool in its prompt)."""
    body = request.json
    if body.get("tools") and body.get("tool_choice") == "required":
        return Reply.tool(ANSWER)
    if body.get("tools"):
        return Reply.truncated("Sure! Here is what I found in the invoice you sent me, " * 20)
    return Reply.json(ANSWER)


def test_tools_mode_forces_its_call_in_a_form_llama_server_takes(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.handler = llama_like
        result = make(server, tmp_path, mode="tools").extract_result(Invoice, "Invoice A-17, total 12.50")
        [request] = server.chat_requests
    assert result.value == Invoice(**ANSWER) and result.mode == "tools"
    assert request.json["tool_choice"] == "required"
    assert [t["function"]["name"] for t in request.json["tools"]] == ["Invoice"]


def ignoring(request: RecordedRequest) -> Reply:
    """A server that never calls a tool: prose to the token limit when asked for one, else the JSON."""
    if request.json.get("tools"):
        return Reply.truncated("I would be glad to help with this invoice. " * 30)
    return Reply.json(ANSWER)


def test_an_answer_without_the_forced_call_says_so_and_auto_tries_the_next_mode(tmp_path: Path) -> None:
    spec = ModelSpec(MODEL, supported_parameters=["tools", "tool_choice", "max_tokens"])  # no response_format
    with TestServer(models=[spec]) as server:
        server.handler = ignoring
        result = make(server, tmp_path).extract_result(Invoice, "Invoice A-17, total 12.50")
        modes = [r.mode for r in server.chat_requests]
    assert result.value == Invoice(**ANSWER)
    assert modes == ["tools", "json"]  # no length retry of a call that never came: the next mode at once
    assert result.attempts[0].problem == "no call of the tool came back"
    assert result.fallbacks == ["tools -> json: no call of the tool came back (finish_reason length)"]


def test_in_tools_mode_a_missing_call_is_its_own_error_not_a_cut_off_answer(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.handler = ignoring
        with pytest.raises(OutputInvalidError) as info:
            make(server, tmp_path, mode="tools", max_retries=1).extract(Invoice, "Invoice A-17, total 12.50")
        requests = server.chat_requests
    assert "no call of the tool came back in 2 attempts in tools mode" in str(info.value)
    assert "cut off" not in str(info.value)
    assert len(requests) == 2
    reask = requests[1].json["messages"][-1]["content"]
    assert "did not call the function `Invoice`" in reask


def test_a_text_answer_that_validates_is_taken_even_without_the_call(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.queue(Reply.json(ANSWER))  # content, no tool call
        result = make(server, tmp_path, mode="tools").extract_result(Invoice, "Invoice A-17, total 12.50")
        assert len(server.chat_requests) == 1
    assert result.value == Invoice(**ANSWER)


@pytest.mark.parametrize(
    ("policy", "asked", "estimated"), [("asked", True, False), ("never", True, True), ("refused", False, True)]
)
def test_a_stream_asks_for_its_usage_and_estimates_it_when_none_comes(
    tmp_path: Path, policy: str, asked: bool, estimated: bool
) -> None:
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.stream_usage = policy  # type: ignore[assignment]
        server.handler = lambda request: Reply.json(ANSWER)
        ex = make(server, tmp_path, mode="json_schema")
        items = list(ex.stream(Invoice, "Invoice A-17, total 12.50", with_result=True))
        streamed = [r for r in server.chat_requests if r.stream]
    result = items[-1]
    assert result.value == Invoice(**ANSWER)
    assert ("stream_options" in streamed[-1].json) is asked
    usage = result.usage
    assert usage.estimated is estimated
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cost > 0  # never free
    if not estimated:  # the server's own count
        assert usage.prompt_tokens == -(-len(streamed[-1].body) // 4)


def test_a_budget_counts_streams_without_a_usage_chunk(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.stream_usage = "never"
        server.handler = lambda request: Reply.json({"title": "x" * 400})

        class Note(BaseModel):
            title: str

        ex = make(server, tmp_path, mode="json_schema")
        records = [list(ex.stream_items(Note, "notes " * 50, with_result=True))[-1] for _ in range(3)]
    assert all(r.usage.estimated and r.usage.cost > 0 for r in records)


def test_auto_falls_back_when_the_server_cannot_build_a_grammar(tmp_path: Path) -> None:
    class Code(BaseModel):
        code: str = Field(pattern="^[A-Z]\u0000?[0-9]+$")

    def handler(request: RecordedRequest) -> Reply:
        if request.json.get("response_format", {}).get("type") == "json_schema":
            message = "Failed to initialize samplers: failed to parse grammar"
            return Reply.status_error(400, message)
        return Reply.json({"code": "A17"})

    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.handler = handler
        result = make(server, tmp_path).extract_result(Code, "code A17")
        modes = [r.mode for r in server.chat_requests]
    assert result.value == Code(code="A17")
    assert modes[0] == "json_schema" and modes[-1] != "json_schema"
    assert result.fallbacks and "failed to parse grammar" in result.fallbacks[0]


def test_a_value_a_loosened_grammar_let_through_is_still_checked_against_the_pattern(tmp_path: Path) -> None:
    # a lookahead, which grammars cannot hold: compiled into the description, checked after the answer
    code = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?=[A-Z])[A-Z][0-9]+$"}}}
    code["required"] = ["code"]
    with TestServer(models=[ModelSpec(MODEL)]) as server:
        server.queue(Reply.json({"code": "not a code"}), Reply.json({"code": "A17"}))
        result = make(server, tmp_path, mode="json_schema").extract_result(code, "code A17")
        sent = server.chat_requests[0].json["response_format"]["json_schema"]["schema"]["properties"]["code"]
        assert len(server.chat_requests) == 2
    assert "pattern" not in sent and "^(?=[A-Z])[A-Z][0-9]+$" in sent["description"]
    assert result.value == {"code": "A17"} and result.reasks == 1


def test_the_command_line_takes_max_tokens_and_sampling_settings(server: TestServer, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("Invoice A-17, total 12.50")
    (tmp_path / "invoice.json").write_text(json.dumps(Invoice.model_json_schema()))
    args = ["in.txt", "--schema", "invoice.json", "-o", "out.jsonl", "--base-url", server.base_url]
    args += ["--mode", "json_schema", "--max-tokens", "300", "--temperature", "0.2", "--top-p", "0.9", "--seed", "7"]
    done = run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    [request] = server.chat_requests
    body = request.json
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (300, 0.2, 0.9, 7)
