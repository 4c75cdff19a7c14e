"""Hostile answers: impossible numbers, duplicate keys, nesting without end, strict models, null tags,
fences inside strings. Each test gives the exact answer and asserts the exact value or refusal."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from extractor import (
    Extractor,
    OutputInvalidError,
    RepairKind,
    RetryPolicy,
    compile_schema,
)
from extractor.output.limits import MAX_DEPTH
from extractor.testing import Reply, TestServer

K = RepairKind
KEY = "sk-test-hostile-0123456789abcdefghij"


def kinds(repairs: list[Any]) -> list[tuple[str, str]]:
    return [(r.kind.value, r.path) for r in repairs]


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    return Extractor(base_url=server.base_url, api_key=KEY, cache_dir=tmp_path / "cache", **kwargs)


class Invoice(BaseModel):
    number: str
    total: float
    tax: float | None = None


INVOICE_SCHEMA = {
    "type": "object",
    "properties": {"number": {"type": "string"}, "total": {"type": "number"}},
    "required": ["number", "total"],
}


# --- 1. NaN, Infinity and numbers too large for a float are no JSON numbers --------------------------

NOT_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("token", NOT_NUMBERS)
@pytest.mark.parametrize("schema", [Invoice, INVOICE_SCHEMA], ids=["pydantic", "json-schema"])
def test_a_number_json_cannot_hold_is_refused_at_its_path(token: str, schema: Any) -> None:
    cs = compile_schema(schema)
    for text in (f'{{"number": "A-1", "total": {token}}}', f"```json\n{{'number': 'A-1', 'total': {token},}}\n```"):
        with pytest.raises(OutputInvalidError) as caught:
            cs.parse_result(text)
        assert [e.path for e in caught.value.errors] == ["$.total"], text
        assert caught.value.errors[0].kind == "non-finite number"
        assert token.lstrip("-") in caught.value.errors[0].message


def test_a_number_json_cannot_hold_is_a_lossy_repair_with_allow_partial() -> None:
    result = compile_schema(Invoice).parse_result('{"number": "A-1", "total": 12.5, "tax": NaN}', allow_partial=True)
    assert result.value == Invoice(number="A-1", total=12.5, tax=None)
    assert kinds(result.repairs) == [("non-finite number", "$.tax")]
    assert result.repairs[0].lossy


def test_a_partial_value_never_shows_an_impossible_number() -> None:
    partial = compile_schema(Invoice).parse_partial('{"number": "A-1", "total": 1e999, "tax"')
    assert partial == {"number": "A-1", "total": None}


def test_extract_refuses_infinity_and_tells_the_model_where(tmp_path: Path) -> None:
    with TestServer(api_key=KEY) as server:
        bad = Reply(content='{"number": "A-1", "total": 1e999, "tax": null}')
        server.queue(bad, Reply(content='{"number": "A-1", "total": 1234.5, "tax": null}'))
        with make(server, tmp_path) as ex:
            result = ex.extract_result(Invoice, "Invoice A-1, total 1,234.50")
        reask = server.chat_requests[1].json["messages"][-1]["content"]
    assert result.value == Invoice(number="A-1", total=1234.5)
    assert len(result.attempts) == 2
    assert "$.total" in reask and "1e999" in reask


def test_extractor_run_writes_no_impossible_number_as_null(server: TestServer, tmp_path: Path) -> None:
    """The command in a subprocess: an answer with `1e999` for the required total fails its input (after
    the re-asks), never a record with `"total": null` that `extractor validate` would then refuse."""
    from test_cli_run import lines, run

    server.handler = lambda request: Reply(content='{"invoice_number": "A-1", "total": 1e999}')
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Invoice A-1, total 1,234.50 EUR")
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], tmp_path)
    assert done.returncode == 1, done.stderr
    assert lines(tmp_path / "out.jsonl") == []
    [failed] = lines(tmp_path / "out.errors.jsonl")
    assert failed["id"] == "in/a.txt" and failed["error"]["type"] == "OutputInvalidError"
    assert "$.total" in failed["error"]["message"] and "1e999" in failed["error"]["message"]


# --- 2. duplicate keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [Invoice, INVOICE_SCHEMA], ids=["pydantic", "json-schema"])
def test_a_key_given_twice_with_one_value_is_read_once_and_recorded(schema: Any) -> None:
    for text in ('{"number": "A-1", "total": 12.5, "total": 12.5}', '{"number": "A-1", "total": 12.5, "total": 12.50}'):
        result = compile_schema(schema).parse_result(text)
        assert result.value == (Invoice(number="A-1", total=12.5) if schema is Invoice else json.loads(text))
        assert kinds(result.repairs) == [("duplicate key", "$.total")]


@pytest.mark.parametrize("schema", [Invoice, INVOICE_SCHEMA], ids=["pydantic", "json-schema"])
@pytest.mark.parametrize(
    "text",
    [
        '{"number": "A-1", "total": 1, "total": 2}',
        '{"number": "A-1", "total": 1, "total": true}',
        "{'number': 'A-1', 'total': 1, 'total': 2,}",
        '```json\n{"number": "A-1", "total": 1, "total": 2}\n```',
        '{"number": "12:30", "total": 1, "total": 2}',  # a `:` in a string: the quick count cannot tell
    ],
)
def test_a_key_given_twice_with_two_values_is_refused_as_ambiguous(schema: Any, text: str) -> None:
    with pytest.raises(OutputInvalidError) as caught:
        compile_schema(schema).parse_result(text)
    assert [e.path for e in caught.value.errors] == ["$.total"]
    assert "twice" in caught.value.errors[0].message


def test_a_nested_duplicate_is_refused_at_its_path() -> None:
    class Line(BaseModel):
        sku: str

    class Order(BaseModel):
        lines: list[Line]

    text = '{"lines": [{"sku": "a"}, {"sku": "b", "sku": "c"}]}'
    with pytest.raises(OutputInvalidError) as caught:
        compile_schema(Order).parse_result(text)
    assert [e.path for e in caught.value.errors] == ["$.lines[1].sku"]


# --- 3. nesting without end is stopped at the limit, while reading ----------------------------------

DEEP = [
    "[" * 10**6,
    '{"key": ' * 10**5,
    # a quote the first count takes for a string hides the brackets from it: the reader meets them
    "{'a': '\"', 'b': " + "[" * 10**6,
    "{'a': '\"', 'b': " + '{"k": ' * 10**5,
]


@pytest.mark.parametrize("text", DEEP, ids=["brackets", "keys", "hidden-brackets", "hidden-keys"])
def test_deep_nesting_is_refused_at_the_limit_in_bounded_memory(text: str) -> None:
    cs = compile_schema(Invoice)
    tracemalloc.start()
    try:
        with pytest.raises(OutputInvalidError) as caught:
            cs.parse_result(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.errors[0].kind == "depth"
    assert f"more than {MAX_DEPTH} levels" in caught.value.errors[0].message
    assert peak < 40 * len(text) + 10**6  # a few copies of the text at most, not one object per level


@pytest.mark.parametrize("text", DEEP[:2], ids=["brackets", "keys"])
def test_extract_refuses_deep_nesting_with_the_library_error(tmp_path: Path, text: str) -> None:
    with TestServer(api_key=KEY) as server:
        server.queue(*[Reply(content=text)] * 3)
        with make(server, tmp_path) as ex, pytest.raises(OutputInvalidError) as caught:
            ex.extract(Invoice, "Invoice A-1")
    assert caught.value.errors[0].kind == "depth"
    assert len(caught.value.attempts) == 3


# --- 4. strict models and fields get no coercing repair ---------------------------------------------


class StrictCount(BaseModel):
    model_config = ConfigDict(strict=True)
    count: int
    label: str = "x"


class MixedCount(BaseModel):
    exact: int = Field(strict=True)
    loose: int
    flag: StrictBool = False


def test_a_strict_model_sees_the_string_it_was_given() -> None:
    cs = compile_schema(StrictCount)
    with pytest.raises(OutputInvalidError) as caught:
        cs.parse_result('{"count": "1", "label": "x"}')
    assert [(e.path, e.message) for e in caught.value.errors] == [("$.count", "Input should be a valid integer")]
    assert caught.value.repairs == []
    with pytest.raises(OutputInvalidError):
        cs.parse_result('{"count": 1, "label": 2}')  # no number read as a string for a strict str either


def test_strict_fields_get_no_coercion_and_the_others_still_do() -> None:
    cs = compile_schema(MixedCount)
    with pytest.raises(OutputInvalidError) as caught:
        cs.parse_result('{"exact": "1", "loose": "2", "flag": "true"}')
    assert sorted(e.path for e in caught.value.errors) == ["$.exact", "$.flag"]
    result = cs.parse_result('{"exact": 1, "loose": "2", "flag": true}')
    assert result.value == MixedCount(exact=1, loose=2, flag=True)
    assert kinds(result.repairs) == [("number string", "$.loose")]


# --- 5. few-shot examples are validated with the call's context -------------------------------------


class Priced(BaseModel):
    price: float

    @field_validator("price")
    @classmethod
    def within_budget(cls, value: float, info: ValidationInfo) -> float:
        budget = (info.context or {}).get("budget")
        if budget is None or value > budget:
            raise ValueError(f"over the budget {budget}")
        return value


def test_examples_are_checked_with_the_context_of_the_call(tmp_path: Path) -> None:
    with TestServer(api_key=KEY) as server:
        server.queue(Reply(content='{"price": 9.5}'))
        with make(server, tmp_path) as ex:
            value = ex.extract(Priced, "It costs 9.50", examples=[("It costs 7", {"price": 7})], context={"budget": 10})
        sent = server.chat_requests[0].json["messages"]
    assert isinstance(value, Priced) and value.price == 9.5
    assert [m["content"] for m in sent if m["role"] == "assistant"] == ['{"price": 7.0}']


# --- 7. a fence inside a JSON string does not end the fence -----------------------------------------


class Snippet(BaseModel):
    language: str
    code: str


def test_a_fence_inside_a_string_inside_a_fence_is_text() -> None:
    text = 'Here it is:\n```json\n{"language": "md", "code": "```\nprint(1)\n```"}\n```\nAnything else?'
    result = compile_schema(Snippet).parse_result(text)
    assert result.value == Snippet(language="md", code="```\nprint(1)\n```")
    assert [r.kind for r in result.repairs] == [K.FENCE, K.PROSE, K.CONTROL_CHARACTER]


def test_a_fence_that_closes_inside_a_cut_string_still_reads_as_cut() -> None:
    from extractor import OutputTruncatedError

    with pytest.raises(OutputTruncatedError):
        compile_schema(Snippet).parse_result('```json\n{"language": "md", "code": "abc\n```\n')


def test_json_dumps_round_trip_of_the_snippet_is_unchanged() -> None:
    value = {"language": "md", "code": "```\nprint(1)\n```"}
    assert compile_schema(Snippet).parse(f"```json\n{json.dumps(value)}\n```") == Snippet(**value)
