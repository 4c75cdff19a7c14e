"""Reading model output end to end: `CompiledSchema.parse` with its schema-aligned repairs."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from extractor import OutputInvalidError, OutputTruncatedError, compile_schema
from extractor.output.align import parse_number
from extractor.output.repairs import Repair, RepairKind, summarize_repairs


class Answer(BaseModel):
    answer: str


class Answers(BaseModel):
    answers: list[str]


class Invoice(BaseModel):
    invoice_number: str = Field(alias="invoiceNumber")
    total: Decimal
    paid: bool
    status: Literal["PAID", "DUE"]
    count: int = 0


def kinds(repairs: list[Repair]) -> list[tuple[str, str]]:
    return [(r.kind.value, r.path) for r in repairs]


def test_valid_json_comes_back_unchanged_with_no_repair() -> None:
    cs = compile_schema(Invoice)
    text = '{"invoiceNumber": "A-1", "total": 12.5, "paid": false, "status": "DUE", "count": 3}'
    result = cs.parse_result(text)
    assert result.repairs == []
    assert result.value == Invoice.model_validate_json(text)


def test_null_for_a_defaulted_field_means_its_default() -> None:
    result = compile_schema(Invoice).parse_result(
        '{"invoiceNumber": "A-1", "total": 1, "paid": false, "status": "DUE", "count": null}'
    )
    assert result.value.count == 0
    assert result.repairs == []


def test_valid_json_schema_input_comes_back_unchanged() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "number"}, "s": {"type": "string"}}, "required": ["n"]}
    cs = compile_schema(schema)
    for text in ('{"n": 1.0, "s": "x"}', '{"n": 10000000000000000000001, "s": null}', '{"n": -0.5, "s": "é"}'):
        result = cs.parse_result(text)
        assert result.repairs == []
        expected = {k: v for k, v in json.loads(text).items() if v is not None}
        assert result.value == expected
        assert type(result.value["n"]) is type(json.loads(text)["n"])


def test_reasoning_fence_and_prose_are_stripped() -> None:
    text = (
        '<think>maybe {"answer": "no"}</think>\nHere is the JSON:\n```json\n{"answer": "yes"}\n```\nReasoning: it is.'
    )
    result = compile_schema(Answer).parse_result(text)
    assert result.value == Answer(answer="yes")
    assert kinds(result.repairs) == [("reasoning block", "$"), ("fence", "$"), ("prose", "$")]


def test_key_case_and_style_and_alias_are_matched() -> None:
    cs = compile_schema(Invoice)
    result = cs.parse_result('{"invoice_number": "A-1", "Total": 5, "PAID": true, "status": "DUE", "Count": 2}')
    assert result.value == Invoice(invoiceNumber="A-1", total=Decimal(5), paid=True, status="DUE", count=2)
    assert sorted(kinds(result.repairs)) == [
        ("key case", "$.count"),
        ("key case", "$.invoiceNumber"),
        ("key case", "$.paid"),
        ("key case", "$.total"),
    ]


def test_bare_array_is_wrapped_into_the_only_field() -> None:
    result = compile_schema(Answers).parse_result('["a", "b"]')
    assert result.value == Answers(answers=["a", "b"])
    assert kinds(result.repairs) == [("wrapped list", "$.answers")]


def test_bare_scalar_is_wrapped_into_the_only_field() -> None:
    result = compile_schema(Answer).parse_result('"Paris"')
    assert result.value == Answer(answer="Paris")
    assert kinds(result.repairs) == [("wrapped scalar", "$.answer")]
    assert compile_schema(int).parse_result("42").value == 42


def test_single_object_where_a_list_is_expected() -> None:
    result = compile_schema(list[Answer]).parse_result('{"value": {"answer": "x"}}')
    assert result.value == [Answer(answer="x")]
    assert kinds(result.repairs) == [("single to list", "$.value")]


def test_enum_values_match_ignoring_case_and_whitespace() -> None:
    result = compile_schema(Invoice).parse_result(
        '{"invoiceNumber": "A", "total": 1, "paid": true, "status": "  paid ", "count": 0}'
    )
    assert result.value.status == "PAID"
    assert kinds(result.repairs) == [("enum case", "$.status")]


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("4", 4),
        ("1,234.50", 1234.5),
        ("$12.00", 12.0),
        ("1.234,50", 1234.5),
        ("-1,234,567", -1234567),
        ("1 234,5 EUR", 1234.5),
        ("€ 7,25", 7.25),
        ("0.125", 0.125),
        ("12.5", 12.5),
        ("1e3", 1000.0),
    ],
)
def test_parse_number(raw: str, number: float) -> None:
    assert parse_number(raw) == number


@pytest.mark.parametrize("raw", ["1,234", "1.234", "12.500", "1.234.5", "12%", "twelve", "1,23,4", ""])
def test_parse_number_refuses_ambiguous_or_non_numbers(raw: str) -> None:
    assert parse_number(raw) is None


def test_numeric_and_boolean_strings_are_coerced_where_the_schema_wants_them() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "x": {"type": "number"}, "ok": {"type": "boolean"}},
        "required": ["n", "x", "ok"],
    }
    result = compile_schema(schema).parse_result('{"n": "1,200,000", "x": "$3.50", "ok": "Yes"}')
    assert result.value == {"n": 1200000, "x": 3.5, "ok": True}
    assert kinds(result.repairs) == [("number string", "$.n"), ("number string", "$.x"), ("bool string", "$.ok")]


def test_decimal_strings_are_coerced_from_the_validation_error() -> None:
    result = compile_schema(Invoice).parse_result(
        '{"invoiceNumber": "A", "total": "$1,234.50", "paid": true, "status": "DUE", "count": 0}'
    )
    assert result.value.total == Decimal("1234.5")
    assert kinds(result.repairs) == [("number string", "$.total")]


def test_ambiguous_number_is_not_guessed() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(schema).parse('{"x": "1,234"}')
    assert info.value.errors[0].path == "$.x"
    assert info.value.raw == '{"x": "1,234"}'


def test_extra_keys_are_dropped_with_a_record() -> None:
    closed = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    result = compile_schema(closed).parse_result('{"a": "x", "confidence": 0.9}')
    assert result.value == {"a": "x"}
    assert kinds(result.repairs) == [("extra key", "$.confidence")]


def test_extra_keys_the_original_schema_allows_are_kept() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    result = compile_schema(schema).parse_result('{"a": "x", "confidence": 0.9}')
    assert result.value == {"a": "x", "confidence": 0.9}
    assert result.repairs == []


def test_a_map_written_as_an_object_and_a_tuple_as_a_list() -> None:
    class Stats(BaseModel):
        counts: dict[str, int]
        pair: tuple[int, str]

    result = compile_schema(Stats).parse_result('{"counts": {"a": 1, "b": 2}, "pair": [1, "x"]}')
    assert result.value == Stats(counts={"a": 1, "b": 2}, pair=(1, "x"))
    assert kinds(result.repairs) == [("map as object", "$.counts"), ("tuple as list", "$.pair")]


def test_an_object_given_inline_where_the_schema_wants_json_text() -> None:
    class Loose(BaseModel):
        meta: dict[str, Any]

    result = compile_schema(Loose).parse_result('{"meta": {"k": [1, 2]}}')
    assert result.value == Loose(meta={"k": [1, 2]})
    assert kinds(result.repairs) == [("inline json", "$.meta")]


def test_syntax_repairs_are_recorded_end_to_end() -> None:
    result = compile_schema(Answers).parse_result("{answers: ['a', 'b',], /* note */}")
    assert result.value == Answers(answers=["a", "b"])
    assert [k for k, _ in kinds(result.repairs)] == [
        "unquoted key",
        "single quotes",
        "single quotes",
        "trailing comma",
        "comment",
        "trailing comma",
    ]


def test_doubly_encoded_json_is_decoded() -> None:
    result = compile_schema(Answer).parse_result(json.dumps(json.dumps({"answer": "x"})))
    assert result.value == Answer(answer="x")
    assert kinds(result.repairs) == [("double encoded", "$")]


def test_the_candidate_that_fits_the_schema_is_chosen() -> None:
    text = 'An example: {"foo": 1}. The answer: {"answer": "real"}'
    result = compile_schema(Answer).parse_result(text)
    assert result.value == Answer(answer="real")
    assert ("chosen candidate", "$") in kinds(result.repairs)


def test_ndjson_lines_are_all_kept_for_a_list_schema() -> None:
    result = compile_schema(list[Answer]).parse_result('{"answer": "a"}\n{"answer": "b"}\n')
    assert result.value == [Answer(answer="a"), Answer(answer="b")]


TRUNCATED = '{"answer": "The race was held on July 26, 2009, at the 1.973-mile (3.175 km'


def test_truncated_answer_is_refused_by_default() -> None:
    with pytest.raises(OutputTruncatedError) as info:
        compile_schema(Answer).parse(TRUNCATED)
    assert "cut off" in str(info.value)
    assert info.value.raw == TRUNCATED
    assert [e.path for e in info.value.errors] == ["$.answer"]


def test_truncated_answer_is_accepted_and_reported_with_allow_partial() -> None:
    result = compile_schema(Answer).parse_result(TRUNCATED, allow_partial=True)
    assert result.value == Answer(answer="The race was held on July 26, 2009, at the 1.973-mile (3.175 km")
    assert kinds(result.repairs) == [("truncated", "$.answer")]
    assert result.repairs[0].lossy


def test_elided_items_are_refused_by_default() -> None:
    with pytest.raises(OutputTruncatedError, match="incomplete"):
        compile_schema(Answers).parse('{"answers": ["a", "b", ...]}')
    result = compile_schema(Answers).parse_result('{"answers": ["a", "b", ...]}', allow_partial=True)
    assert result.value == Answers(answers=["a", "b"])
    assert kinds(result.repairs) == [("ellipsis", "$.answers[2]")]


def test_missing_required_field_is_filled_only_with_allow_partial() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": ["string", "null"]}},
        "required": ["a", "b"],
    }
    cs = compile_schema(schema)
    with pytest.raises(OutputInvalidError) as info:
        cs.parse('{"a": "x"}')
    assert info.value.errors[0].kind == "missing"
    result = cs.parse_result('{"a": "x"}', allow_partial=True)
    assert result.value == {"a": "x", "b": None}
    assert kinds(result.repairs) == [("missing field", "$.b")]


def test_unterminated_reasoning_is_a_truncated_answer() -> None:
    with pytest.raises(OutputTruncatedError, match="reasoning block"):
        compile_schema(Answer).parse("<think>Let me think about the answer {")


def test_no_json_at_all_is_an_invalid_answer() -> None:
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(Answer).parse("I cannot help with that.")
    assert not isinstance(info.value, OutputTruncatedError)
    assert info.value.errors[0].message == "no JSON value found in the answer"


def test_a_value_of_the_right_type_is_never_changed() -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "tag": {"type": "string", "enum": ["a", "B"]}},
        "required": ["code", "tag"],
    }
    cs = compile_schema(schema)
    # "007" stays a string; "B" stays as it is (not case-folded to a sibling value)
    result = cs.parse_result('Answer: {"code": "007", "tag": "B"}')
    assert result.value == {"code": "007", "tag": "B"}
    assert kinds(result.repairs) == [("prose", "$")]


def test_repairs_summary_counts_kinds() -> None:
    repairs = [Repair(RepairKind.FENCE), Repair(RepairKind.FENCE), Repair(RepairKind.KEY_CASE, "$.a")]
    assert summarize_repairs(repairs) == {"fence": 2, "key case": 1}


def test_cut_anywhere_inside_an_answer_is_never_accepted() -> None:
    """Every strict prefix of a valid answer is refused (0 truncated answers accepted)."""

    class Line(BaseModel):
        sku: str
        qty: int
        note: str | None = None

    class Order(BaseModel):
        id: str
        lines: list[Line]
        total: float

    cs = compile_schema(Order)
    text = json.dumps(
        {
            "id": "PO-7",
            "lines": [{"sku": 'A}]\\"x', "qty": 2, "note": None}, {"sku": "B", "qty": 10, "note": "é, ok"}],
            "total": 12.5,
        }
    )
    for cut in range(1, len(text)):
        with pytest.raises((OutputTruncatedError, OutputInvalidError)):
            cs.parse(text[:cut])
    assert cs.parse(text).total == 12.5


def test_json_repair_fixture_document(corpora: Path) -> None:
    folder = corpora / "json-repair-fixtures" / "json_repair"
    broken = (folder / "invalid.json").read_text()
    expected = json.loads((folder / "valid.json").read_text())
    cs = compile_schema({"type": "array", "items": {"type": "object"}})
    with pytest.raises(OutputTruncatedError):
        cs.parse(broken)
    assert [json.loads(json.dumps(v)) for v in cs.parse(broken, allow_partial=True)] == expected


def test_parity_fixtures_through_parse(corpora: Path) -> None:
    cases = json.loads((corpora / "json-repair-fixtures" / "jsonrepair-rs" / "parity_cases.json").read_text())["cases"]
    cs = compile_schema({})  # any JSON value
    lossy = {"truncation", "ellipsis"}
    for case in cases:
        expected = json.loads(case["expected"])
        if case["category"] in lossy:
            with pytest.raises(OutputTruncatedError):
                cs.parse(case["input"])
        got = cs.parse(case["input"], allow_partial=case["category"] in lossy)
        assert got == expected, case["name"]


def test_random_noise_around_valid_answers_is_recovered() -> None:
    rng = random.Random(7)
    cs = compile_schema(Invoice)
    wrappers = [
        "{}",
        "Sure! Here is the JSON:\n{}",
        "```json\n{}\n```",
        "<think>The total is {{...}}</think>{}",
        "{}\n\nReasoning: the invoice says so.",
        "Output:\n```\n{}\n```\nLet me know if you need more.",
    ]
    for _ in range(60):
        value = {
            "invoiceNumber": f"INV-{rng.randint(1, 999)}",
            "total": rng.randint(1, 10**6) / 100,
            "paid": rng.random() < 0.5,
            "status": rng.choice(["PAID", "DUE"]),
            "count": rng.randint(0, 9),
        }
        text = rng.choice(wrappers).replace("{}", json.dumps(value), 1)
        got = cs.parse(text)
        assert got.model_dump(by_alias=True) == {**value, "total": Decimal(str(value["total"]))}


def test_a_key_in_another_case_is_matched_even_where_the_schema_tolerates_it() -> None:
    """{"Name": ...} is valid for a schema with no required field and open objects, yet means `name`."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    result = compile_schema(schema).parse_result('{"Name": "Ada", "AGE": 36}')
    assert result.value == {"name": "Ada", "age": 36}
    assert kinds(result.repairs) == [("key case", "$.name"), ("key case", "$.age")]


def test_a_value_the_original_accepts_is_not_reshaped() -> None:
    """`properties` without `type` accepts a string; the compiler asks for an object, but a string
    answer is kept as it is rather than wrapped."""
    schema = {
        "type": "object",
        "properties": {"description": {"properties": {"basic": {"type": "string"}}}},
        "required": ["description"],
    }
    cs = compile_schema(schema)
    assert cs.json_schema["properties"]["description"]["type"] == "object"
    result = cs.parse_result('```json\n{"description": "plain text"}\n```')
    assert result.value == {"description": "plain text"}
    assert kinds(result.repairs) == [("fence", "$")]


def test_recovery_benchmark_on_a_sample_of_real_schemas(corpora: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "parse_recovery.py"
    out = subprocess.run(
        [sys.executable, str(script), "--sample", "150", "--json"], capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout)
    assert report["answers"] > 1000
    assert report["recovered_share"] >= 0.99, report["failures"]
    assert report["cut_accepted"] == 0, report["failures"]
