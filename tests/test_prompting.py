"""Prompts that work on real models: a validation context, instruction templates, few-shot examples in
every mode, the compact schema of the `json`/`prompt` modes, the re-ask of an answer that echoes the
schema, and compiled schemas that repeat no description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationInfo, field_validator

from extractor import ConfigurationError, Extractor, OutputInvalidError, RetryPolicy, compile_schema
from extractor.bundled import bundled_schema, bundled_schema_names
from extractor.client.attempts import SCHEMA_ECHO
from extractor.testing import Reply, TestServer


class Order(BaseModel):
    customer: str
    total: float

    @field_validator("customer")
    @classmethod
    def known_customer(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("customers")
        if known is not None and value not in known:
            raise ValueError(f"{value!r} is not one of our customers {sorted(known)}")
        return value


class Tagged(BaseModel):
    name: str
    tags: dict[str, int] = {}


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", retry=RetryPolicy(attempts=2), **kwargs)


def test_validators_see_the_context_and_a_wrong_value_is_re_asked(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"customer": "Globex", "total": 5}), Reply.json({"customer": "ACME", "total": 5}))
    result = make(server, tmp_path).extract_result(Order, "ACME ordered 5", context={"customers": {"ACME"}})
    assert result.value == Order(customer="ACME", total=5)
    assert len(result.attempts) == 2
    reask = server.chat_requests[1].json["messages"][-1]["content"]
    assert "$.customer: Value error, 'Globex' is not one of our customers ['ACME']" in reask
    server.reset()
    server.queue(Reply.json({"customer": "Globex", "total": 5}))
    assert make(server, tmp_path).extract(Order, "Globex ordered 5") == Order(customer="Globex", total=5)  # no context


def test_instructions_are_filled_from_the_context(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"customer": "ACME", "total": 5}))
    ex = make(server, tmp_path, instructions='Orders for {shop.name} in {currency}; JSON like {{"total": 1}}.')
    ex.extract(Order, "ACME ordered 5", context={"shop": {"name": "Corner Shop"}, "currency": "EUR"})
    system = server.chat_requests[0].json["messages"][0]
    assert system == {"role": "system", "content": 'Orders for Corner Shop in EUR; JSON like {"total": 1}.'}


def test_a_placeholder_the_context_does_not_fill_is_refused_before_any_request(
    server: TestServer, tmp_path: Path
) -> None:
    ex = make(server, tmp_path, instructions="Orders for {shop} in {currency}.")
    with pytest.raises(ConfigurationError, match=r"the instructions name \{currency\}, which context= does not give"):
        ex.extract(Order, "ACME ordered 5", context={"shop": "Corner Shop"})
    with pytest.raises(ConfigurationError, match=r"\{shop\}, \{currency\}.*\(it gives: no context\)"):
        ex.extract(Order, "ACME ordered 5")
    assert server.chat_requests == []


EXAMPLE = ("Invoice from Initech, tags: urgent=2", Tagged(name="Initech", tags={"urgent": 2}))
ENCODED = '{"name": "Initech", "tags": [{"key": "urgent", "value": 2}]}'  # a map goes as key/value pairs


@pytest.mark.parametrize("mode", ["json_schema", "json", "prompt"])
def test_examples_are_sent_as_earlier_turns_in_the_compiled_shape(
    server: TestServer, tmp_path: Path, mode: str
) -> None:
    server.queue(Reply(content='{"name": "Hooli", "tags": []}'))
    value = make(server, tmp_path, mode=mode).extract(Tagged, "From Hooli", examples=[EXAMPLE])
    assert value == Tagged(name="Hooli")
    messages = server.chat_requests[0].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1] == {"role": "user", "content": "Invoice from Initech, tags: urgent=2"}
    assert messages[2] == {"role": "assistant", "content": ENCODED}
    assert messages[3] == {"role": "user", "content": "From Hooli"}


def test_examples_are_tool_calls_in_tools_mode(server: TestServer, tmp_path: Path) -> None:
    plain = ("Invoice from Umbrella", {"name": "Umbrella", "tags": {}})  # plain data works as well as a model
    make(server, tmp_path, mode="tools").extract(Tagged, "From Hooli", examples=[EXAMPLE, plain])
    messages = server.chat_requests[0].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user", "assistant", "tool", "user"]
    call = messages[2]["tool_calls"][0]
    assert call["function"] == {"name": "Tagged", "arguments": ENCODED}
    assert messages[3] == {"role": "tool", "tool_call_id": call["id"], "content": "Recorded."}
    assert messages[5]["tool_calls"][0]["function"]["arguments"] == '{"name": "Umbrella", "tags": []}'
    assert messages[5]["tool_calls"][0]["id"] != call["id"]


def test_a_wrong_example_is_refused_before_any_request(server: TestServer, tmp_path: Path) -> None:
    ex = make(server, tmp_path)
    with pytest.raises(
        ConfigurationError, match=r"(?s)example 2: its output does not fit the schema.*\$\.name: Field required"
    ):
        ex.extract(Tagged, "From Hooli", examples=[EXAMPLE, ("Invoice", {"tags": {"a": 1}})])
    with pytest.raises(ConfigurationError, match=r"example 1: give an \(input, output\) pair"):
        ex.extract(Tagged, "From Hooli", examples=["just a text"])  # type: ignore[list-item]
    assert server.chat_requests == []


def test_an_answer_that_echoes_the_schema_is_re_asked_saying_so(server: TestServer, tmp_path: Path) -> None:
    echo = json.dumps({"type": "object", "properties": {"customer": {"type": "string"}, "total": {"type": "number"}}})
    server.queue(Reply(content=echo), Reply(content='{"customer": "ACME", "total": 5}'))
    result = make(server, tmp_path, mode="json").extract_result(Order, "ACME ordered 5")
    assert result.value == Order(customer="ACME", total=5)
    assert [a.problem for a in result.attempts] == [SCHEMA_ECHO, None]
    reask = server.chat_requests[1].json["messages"][-1]
    assert reask["role"] == "user"
    assert reask["content"].startswith('Your previous answer repeated the schema (its "type" and "properties")')
    assert reask["content"].endswith('{\n  "customer": string,\n  "total": number\n}')
    server.reset()
    server.queue(*[Reply(content=echo)] * 3)
    with pytest.raises(OutputInvalidError, match="not the values found in the input") as info:
        make(server, tmp_path, mode="json").extract(Order, "ACME ordered 5")
    assert [a.problem for a in info.value.attempts] == [SCHEMA_ECHO] * 3


def test_a_field_named_like_a_schema_keyword_is_not_taken_for_an_echo(server: TestServer, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"type": {"type": "string"}, "properties": {"type": "object"}},
        "required": ["type", "properties"],
    }
    server.queue(Reply(content='{"type": "house", "properties": {"rooms": 4}}'))
    result = make(server, tmp_path, mode="json").extract_result(schema, "a house with 4 rooms")
    assert result.value == {"type": "house", "properties": {"rooms": 4}}
    assert [a.problem for a in result.attempts] == [None]


def _repeats(node: Any) -> list[str]:
    """Unions whose branches repeat the union's own description or title."""
    found: list[str] = []
    if isinstance(node, dict):
        for branch in node.get("anyOf", []):
            for key in ("description", "title"):
                if key in node and isinstance(branch, dict) and branch.get(key) == node[key]:
                    found.append(f"{key} {node[key]!r}")
        for value in node.values():
            found += _repeats(value)
    elif isinstance(node, list):
        for value in node:
            found += _repeats(value)
    return found


def _strictness(node: Any) -> int:
    """Characters strict output adds: every object closed with all its properties required, optional
    fields made nullable (a null branch)."""
    extra = 0
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            extra += len(',"additionalProperties":false,"required":') + len(
                json.dumps(node["properties"] and list(node["properties"]), separators=(",", ":"))
            )
        if {"type": "null"} in node.get("anyOf", []):
            extra += len('{"anyOf":[,{"type":"null"}]}')
        extra += sum(_strictness(value) for value in node.values())
    elif isinstance(node, list):
        extra += sum(_strictness(value) for value in node)
    return extra


@pytest.mark.parametrize("name", bundled_schema_names())
def test_compiled_schemas_repeat_no_description_and_add_only_what_strictness_needs(name: str) -> None:
    original = bundled_schema(name)
    compiled = compile_schema(original).json_schema
    assert _repeats(compiled) == []

    def size(schema: Any) -> int:
        return len(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))

    assert size(compiled) <= size(original) + _strictness(compiled)
