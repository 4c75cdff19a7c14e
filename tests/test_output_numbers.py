"""Numbers and booleans written as strings, deeply nested answers, and the size of errors.

- A number or boolean written as a string is read by one rule for pydantic types and JSON Schemas:
  converted with the same repair record, or refused with the same error (never coerced silently).
- An answer nested deeper than `limits.MAX_DEPTH` levels is refused with `OutputInvalidError`, never
  a `RecursionError`, wherever it is read.
- Errors repeat at most a few hundred characters of each value, path and message.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, BeforeValidator

from extractor import OutputInvalidError, compile_schema
from extractor.output.limits import MAX_DEPTH, nesting_depth
from extractor.output.numbers import read_number
from extractor.output.repairs import Repair


def records(repairs: list[Repair]) -> list[str]:
    return [str(r) for r in repairs]


# --- one rule for numbers written as strings -----------------------------------------------------


class Total(BaseModel):
    total: float


class Count(BaseModel):
    total: int


class Amount(BaseModel):
    total: Decimal


class MaybeTotal(BaseModel):
    total: float | None = None


def _json(kind: str, nullable: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"type": [kind, "null"] if nullable else kind}
    return {"type": "object", "properties": {"total": node}, "required": ["total"]}


NUMBER = _json("number")
INTEGER = _json("integer")
NULLABLE = {"type": "object", "properties": {"total": {"anyOf": [{"type": "number"}, {"type": "null"}]}}}

# the text, and the number it says (None: refused)
READABLE = [
    ("12.50", 12.5),
    ("1,234.50", 1234.5),
    ("1.234,50", 1234.5),
    ("$1,234.50", 1234.5),
    ("-3", -3),
    ("1e3", 1000.0),
    ("0.125", 0.125),
    ("1,234,567", 1234567),
    (" 42 ", 42),
]


@pytest.mark.parametrize(("raw", "number"), READABLE)
@pytest.mark.parametrize(("model", "schema"), [(Total, NUMBER), (MaybeTotal, NULLABLE)])
def test_a_number_string_is_converted_alike_for_pydantic_and_json_schema(
    model: type[BaseModel], schema: dict[str, Any], raw: str, number: float
) -> None:
    text = json.dumps({"total": raw})
    from_model = compile_schema(model).parse_result(text)
    from_schema = compile_schema(schema).parse_result(text)
    assert getattr(from_model.value, "total") == number  # noqa: B009
    assert from_schema.value == {"total": number}
    assert (
        records(from_model.repairs)
        == records(from_schema.repairs)
        == [f"number string at $.total ({raw!r} -> {number!r})"]
    )


@pytest.mark.parametrize(("raw", "number"), READABLE)
def test_a_decimal_string_is_read_exactly_with_the_same_record(raw: str, number: float) -> None:
    result = compile_schema(Amount).parse_result(json.dumps({"total": raw}))
    assert result.value.total == Decimal(str(number))
    assert [(r.kind.value, r.path) for r in result.repairs] == [("number string", "$.total")]


def test_a_decimal_keeps_every_digit() -> None:
    result = compile_schema(Amount).parse_result('{"total": "12,345,678,901,234,567.89"}')
    assert result.value.total == Decimal("12345678901234567.89")
    assert records(result.repairs) == ["number string at $.total ('12,345,678,901,234,567.89' -> 12345678901234567.89)"]


@pytest.mark.parametrize("raw", ["1.234", "1,234", "12.500", "-1.234", "$1,234"])
@pytest.mark.parametrize(
    "schema", [Total, Count, Amount, MaybeTotal, NUMBER, INTEGER, NULLABLE, _json("number", nullable=True)]
)
def test_an_ambiguous_number_is_refused_everywhere(schema: Any, raw: str) -> None:
    text = json.dumps({"total": raw})
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(schema).parse(text)
    [error] = info.value.errors
    assert error.path == "$.total"
    assert error.message.startswith(f"ambiguous number {raw!r}")
    assert error.value == raw
    assert error.kind == "number"
    assert info.value.raw == text


def test_the_ambiguity_error_says_both_readings() -> None:
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(Total).parse('{"total": "1.234"}')
    assert str(info.value.errors[0]) == (
        "$.total: ambiguous number '1.234': 1234 if '.' separates thousands, 1.234 if it is the decimal mark; "
        "write the number as a JSON number (got '1.234')"
    )
    assert read_number("1,234").readings == ("1234", "1.234")
    assert read_number("12.500").readings == ("12500", "12.500")


@pytest.mark.parametrize("schema", [Count, INTEGER])
def test_an_integer_is_read_from_a_whole_number_only(schema: Any) -> None:
    cs = compile_schema(schema)
    result = cs.parse_result('{"total": "12.0"}')
    assert getattr(result.value, "total", None) == 12 or result.value == {"total": 12}
    assert records(result.repairs) == ["number string at $.total ('12.0' -> 12)"]
    with pytest.raises(OutputInvalidError) as info:
        cs.parse('{"total": "12.5"}')
    assert [str(e) for e in info.value.errors] == ["$.total: '12.5' is not a whole number (got '12.5')"]


@pytest.mark.parametrize("raw", ["twelve", "inf", "NaN", "1e400", "1_000", "0x1F", "12%"])
@pytest.mark.parametrize("schema", [Total, Count, Amount, NUMBER, INTEGER])
def test_a_string_that_is_no_number_is_refused_even_where_pydantic_would_take_it(schema: Any, raw: str) -> None:
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(schema).parse(json.dumps({"total": raw}))
    assert [(e.path, e.kind) for e in info.value.errors] == [("$.total", "number")]


class Line(BaseModel):
    qty: int
    price: Decimal


class Order(BaseModel):
    lines: list[Line]
    weights: list[float]
    paid: bool


ORDER = {
    "type": "object",
    "properties": {
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"qty": {"type": "integer"}, "price": {"type": "number"}},
                "required": ["qty", "price"],
            },
        },
        "weights": {"type": "array", "items": {"type": "number"}},
        "paid": {"type": "boolean"},
    },
    "required": ["lines", "weights", "paid"],
}


def test_numbers_in_lists_and_nested_models_are_read_alike() -> None:
    text = json.dumps(
        {"lines": [{"qty": "2", "price": "1,234.50"}, {"qty": 3, "price": "0.5"}], "weights": ["1.5", 2], "paid": "yes"}
    )
    from_model = compile_schema(Order).parse_result(text)
    from_schema = compile_schema(ORDER).parse_result(text)
    assert from_model.value == Order(
        lines=[Line(qty=2, price=Decimal("1234.50")), Line(qty=3, price=Decimal("0.5"))], weights=[1.5, 2.0], paid=True
    )
    assert from_schema.value == {
        "lines": [{"qty": 2, "price": 1234.5}, {"qty": 3, "price": 0.5}],
        "weights": [1.5, 2],
        "paid": True,
    }
    expected = {
        "number string at $.lines[0].qty ('2' -> 2)",
        "number string at $.weights[0] ('1.5' -> 1.5)",
        "bool string at $.paid ('yes' -> True)",
    }
    assert expected <= set(records(from_model.repairs))
    assert set(records(from_schema.repairs)) == {
        *expected,
        "number string at $.lines[0].price ('1,234.50' -> 1234.5)",
        "number string at $.lines[1].price ('0.5' -> 0.5)",
    }
    # the decimal's record says the exact text it was read as
    assert {"number string at $.lines[0].price ('1,234.50' -> 1234.50)"} <= set(records(from_model.repairs))


def test_an_ambiguous_number_deep_inside_is_refused_at_its_path() -> None:
    text = json.dumps({"lines": [{"qty": 1, "price": 2}, {"qty": 1, "price": "1.234"}], "weights": [], "paid": True})
    for schema in (Order, ORDER):
        with pytest.raises(OutputInvalidError) as info:
            compile_schema(schema).parse(text)
        assert [e.path for e in info.value.errors] == ["$.lines[1].price"]
        assert "ambiguous" in info.value.errors[0].message


class Flag(BaseModel):
    ok: bool


FLAG = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@pytest.mark.parametrize(("raw", "flag"), [("true", True), ("Yes", True), ("false", False), ("no", False)])
def test_a_boolean_string_is_converted_alike(raw: str, flag: bool) -> None:
    text = json.dumps({"ok": raw})
    from_model = compile_schema(Flag).parse_result(text)
    from_schema = compile_schema(FLAG).parse_result(text)
    assert from_model.value == Flag(ok=flag)
    assert from_schema.value == {"ok": flag}
    assert records(from_model.repairs) == records(from_schema.repairs) == [f"bool string at $.ok ({raw!r} -> {flag})"]


@pytest.mark.parametrize("raw", ["on", "1", "t", "y", "off"])
def test_a_string_pydantic_would_read_as_a_boolean_is_refused_like_json_schema_does(raw: str) -> None:
    for schema in (Flag, FLAG):
        with pytest.raises(OutputInvalidError) as info:
            compile_schema(schema).parse(json.dumps({"ok": raw}))
        assert [e.path for e in info.value.errors] == ["$.ok"]


def test_valid_json_with_a_number_string_is_never_taken_silently() -> None:
    """The fast path for valid JSON (pydantic reading the text directly) takes no number as a string."""
    as_float = compile_schema(Total).parse_result('{"total": "12.50"}')
    assert records(as_float.repairs) == ["number string at $.total ('12.50' -> 12.5)"]
    as_decimal = compile_schema(Amount).parse_result('{"total": "12.50"}')
    assert records(as_decimal.repairs) == ["number string at $.total ('12.50' -> 12.50)"]
    assert compile_schema(Amount).parse_result('{"total": 12.5}').repairs == []


def test_validate_refuses_what_the_compiled_shape_does_not_allow() -> None:
    """`validate` takes values in the compiled shape: a float as a string is not one (pydantic and
    jsonschema alike), a decimal's text is (pydantic's own JSON form), unless it is ambiguous."""
    for schema in (Total, NUMBER):
        with pytest.raises(OutputInvalidError):
            compile_schema(schema).validate({"total": "12.50"})
    assert compile_schema(Amount).validate({"total": "12.30"}).total == Decimal("12.30")
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(Amount).validate({"total": "1.234"})
    assert "ambiguous" in info.value.errors[0].message


def _eu_number(value: Any) -> Any:
    return float(value.replace(".", "").replace(",", ".")) if isinstance(value, str) else value


def test_a_value_a_validator_of_the_users_own_reads_first_is_left_to_it() -> None:
    class European(BaseModel):
        total: Annotated[float, BeforeValidator(_eu_number)]

    assert compile_schema(European).parse('{"total": "1.234"}').total == 1234.0


def test_a_union_with_a_string_branch_keeps_the_string() -> None:
    class Loose(BaseModel):
        total: float | str

    result = compile_schema(Loose).parse_result('{"total": "1.234"}')
    assert result.value.total == "1.234"
    assert result.repairs == []


# --- deeply nested answers -----------------------------------------------------------------------


class Holder(BaseModel):
    a: Any = None


class Items(BaseModel):
    items: list[Any]


DEEP_LIST = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
DEEP = [
    DEEP_LIST,
    DEEP_OBJECT,
    "[" * 1000,  # cut off
    '{"a":' * 1000,
    "Here it is:\n```json\n" + DEEP_LIST + "\n```",
    json.dumps(DEEP_LIST),  # doubly encoded
]
SCHEMAS = [
    Holder,
    Items,
    list[Any],
    {"type": "object"},
    {"type": "array"},
    {"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"},
]


@pytest.mark.parametrize("text", DEEP, ids=["list", "object", "cut list", "cut object", "fenced", "double"])
@pytest.mark.parametrize("schema", SCHEMAS, ids=["model", "list field", "list root", "object", "array", "tree"])
def test_an_answer_nested_too_deep_is_refused_wherever_it_is_read(schema: Any, text: str) -> None:
    cs = compile_schema(schema)
    for allow_partial in (False, True):
        with pytest.raises(OutputInvalidError) as info:
            cs.parse(text, allow_partial=allow_partial)
        assert info.value.message == f"the answer is nested deeper than {MAX_DEPTH} levels"
        assert [(e.path, e.kind) for e in info.value.errors] == [("$", "depth")]
        assert info.value.raw == text
    with pytest.raises(OutputInvalidError) as info:
        cs.validate_json(text)  # strict JSON: a doubly-encoded answer is a string there, not an object
    assert ("nested deeper" in info.value.message) == (text[0] != '"')
    assert cs.parse_partial(text) is None  # "no value yet": a stream never shows it


def test_deep_json_in_a_string_standing_for_any_value_is_refused() -> None:
    """An `Any` field is compiled as a string holding JSON: the depth of that JSON is checked too."""
    text = json.dumps({"a": DEEP_OBJECT})
    with pytest.raises(OutputInvalidError, match="nested deeper"):
        compile_schema(Holder).parse(text)
    assert compile_schema(Holder).parse_partial(text) is None


@pytest.mark.parametrize("text", [DEEP_LIST, DEEP_OBJECT])
def test_deep_answers_are_refused_for_objects_and_lists(text: str) -> None:
    for schema in (Holder, Items, {"type": "object"}, {"type": "array"}):
        with pytest.raises(OutputInvalidError, match=f"nested deeper than {MAX_DEPTH} levels"):
            compile_schema(schema).parse(text)
        with pytest.raises(OutputInvalidError, match="nested deeper"):
            compile_schema(schema).validate_json(text)


def test_an_answer_at_the_depth_limit_is_read() -> None:
    text = '{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    assert nesting_depth(text) == MAX_DEPTH
    value, depth = compile_schema(Holder).parse(text).a, 1
    while isinstance(value, dict):
        value, depth = value["a"], depth + 1
    assert (value, depth) == (1, MAX_DEPTH)
    with pytest.raises(OutputInvalidError, match="nested deeper"):
        compile_schema(Holder).parse('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1))


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert nesting_depth('["\\"[[[", []]') == 2
    assert nesting_depth("]]] [[ ]") == 2

    class Note(BaseModel):
        text: str

    assert compile_schema(Note).parse(json.dumps({"text": "[" * 5000})).text == "[" * 5000


def test_the_depth_scan_stays_linear_on_pathological_quotes() -> None:
    text = "[" * 200 + '"' + '\\"[' * 100_000  # a string that never closes, full of escaped quotes
    started = time.perf_counter()
    assert nesting_depth(text) == 200
    assert time.perf_counter() - started < 1.0


# --- the size of errors --------------------------------------------------------------------------


class Item(BaseModel):
    sku: str
    qty: int


class Shipment(BaseModel):
    id: str
    total: float
    items: list[Item]


SHIPMENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "total": {"type": "number"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["sku", "qty"],
            },
        },
    },
    "required": ["id", "total", "items"],
}
BIG = "x" * 200_000
BIG_ANSWERS = [
    json.dumps({"id": "A", "total": BIG, "items": []}),
    json.dumps({"id": {"note": BIG}, "total": 1, "items": []}),
    json.dumps({"id": "A", "total": 1, "items": [{"sku": 5, "qty": "many" * 10} for _ in range(5000)]}),
    json.dumps({"id": ["y" * 1000] * 200, "total": {"k" * 100_000: 1}, "items": []}),
    "no JSON here, " * 15_000,
]


@pytest.mark.parametrize("text", BIG_ANSWERS, ids=["long string", "long object", "many errors", "long key", "prose"])
@pytest.mark.parametrize("schema", [Shipment, SHIPMENT], ids=["pydantic", "json schema"])
def test_errors_about_a_huge_answer_stay_small(schema: Any, text: str) -> None:
    assert len(text) >= 200_000
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(schema).parse(text)
    error = info.value
    assert len(str(error)) < 10_000
    assert error.raw == text  # the whole answer is kept, for whoever wants it
    for detail in error.errors:
        assert len(repr(detail.value)) <= 200
        assert len(detail.message) <= 240
        assert len(detail.path) <= 200


def test_a_shortened_value_says_its_length() -> None:
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(Shipment).parse(BIG_ANSWERS[0])
    [detail] = info.value.errors
    assert detail.path == "$.total"
    assert str(detail).endswith("... (200,000 characters))")
    assert repr(detail.value).startswith("'xxxx")
