"""The schema compiler on pydantic types: the strict schema sent, and the way back to the user's shape."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from annotated_types import Gt
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from extractor import CompiledSchema, ErrorDetail, OutputInvalidError, compile_schema
from extractor.schema.sample import sample_instance


def strict_ok(cs: CompiledSchema[Any]) -> dict[str, Any]:
    """The compiled schema, after checking it is strict and inside the dialect's subset."""
    assert cs.strict, cs.reasons
    assert cs.dialect.violations(cs.json_schema) == []
    return cs.json_schema


def resolve(cs: CompiledSchema[Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return cs.json_schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else node


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    address: Address
    nickname: str | None = None
    age: int = 30


def test_nested_models_are_closed_objects_with_every_property_required() -> None:
    schema = strict_ok(compile_schema(Person))
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "address", "nickname", "age"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["address"] == {"$ref": "#/$defs/Address"}
    address = schema["$defs"]["Address"]
    assert address["required"] == ["street", "city"] and address["additionalProperties"] is False


def test_optional_and_defaulted_fields_become_nullable_and_null_means_default() -> None:
    cs = compile_schema(Person)
    props = cs.json_schema["properties"]
    assert props["nickname"]["anyOf"][1] == {"type": "null"}
    assert props["age"]["anyOf"] == [{"type": "integer", "title": "Age"}, {"type": "null"}]
    person = cs.validate({"name": "Ada", "address": {"street": "1 Main", "city": "X"}, "nickname": None, "age": None})
    assert person == Person(name="Ada", address=Address(street="1 Main", city="X"), nickname=None, age=30)


def test_no_default_survives_in_the_compiled_schema() -> None:
    assert '"default"' not in json.dumps(compile_schema(Person).json_schema)


def test_compiling_twice_returns_the_same_object() -> None:
    assert compile_schema(Person) is compile_schema(Person)
    assert compile_schema(list[Person]) is compile_schema(list[Person])
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert compile_schema(schema) is compile_schema(json.loads(json.dumps(schema)))


class Kinds(BaseModel):
    status: Literal["open", "closed"]
    single: Literal["only"]
    color: Color
    amount: Decimal
    when: dt.datetime
    day: dt.date
    ident: uuid.UUID


def test_literals_enums_decimals_dates_and_uuids() -> None:
    cs = compile_schema(Kinds)
    schema = strict_ok(cs)
    props = schema["properties"]
    assert props["status"] == {"type": "string", "enum": ["open", "closed"], "title": "Status"}
    assert props["single"] == {"type": "string", "const": "only", "title": "Single"}
    assert resolve(cs, props["color"]) == {"type": "string", "enum": ["red", "blue"], "title": "Color"}
    assert props["amount"]["anyOf"][0] == {"type": "number"}
    assert props["when"]["format"] == "date-time"
    assert props["day"]["format"] == "date"
    assert props["ident"]["format"] == "uuid"
    value = cs.validate(
        {
            "status": "open",
            "single": "only",
            "color": "blue",
            "amount": "12.30",
            "when": "2024-05-01T10:00:00Z",
            "day": "2024-05-01",
            "ident": "123e4567-e89b-42d3-a456-426614174000",
        }
    )
    assert value.color is Color.BLUE
    assert value.amount == Decimal("12.30")
    assert value.when == dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)
    assert value.ident == uuid.UUID("123e4567-e89b-42d3-a456-426614174000")


class Stats(BaseModel):
    counts: dict[str, int]
    pairs: list[tuple[int, str]]


def test_maps_become_key_value_lists_and_tuples_positional_objects() -> None:
    cs = compile_schema(Stats)
    schema = strict_ok(cs)
    counts = schema["properties"]["counts"]
    assert counts["type"] == "array"
    assert counts["items"]["properties"] == {"key": {"type": "string"}, "value": {"type": "integer"}}
    pair = schema["properties"]["pairs"]["items"]
    assert pair["properties"] == {"item_0": {"type": "integer"}, "item_1": {"type": "string"}}
    value = cs.validate(
        {
            "counts": [{"key": "a", "value": 1}, {"key": "b", "value": 2}],
            "pairs": [{"item_0": 1, "item_1": "x"}, {"item_0": 2, "item_1": "y"}],
        }
    )
    assert value == Stats(counts={"a": 1, "b": 2}, pairs=[(1, "x"), (2, "y")])
    assert cs.encode(value) == {
        "counts": [{"key": "a", "value": 1}, {"key": "b", "value": 2}],
        "pairs": [{"item_0": 1, "item_1": "x"}, {"item_0": 2, "item_1": "y"}],
    }


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    breed: str


class Owner(BaseModel):
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]


def test_discriminated_union_becomes_anyof_and_decodes_to_the_right_class() -> None:
    cs = compile_schema(Owner)
    schema = strict_ok(cs)
    assert schema["properties"]["pet"]["anyOf"] == [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]
    assert "oneOf" not in json.dumps(schema) and "discriminator" not in json.dumps(schema)
    assert cs.validate({"pet": {"kind": "dog", "breed": "collie"}}).pet == Dog(kind="dog", breed="collie")


class Tree(BaseModel):
    label: str
    children: list[Tree] = []


def test_recursive_model_stays_recursive_through_defs() -> None:
    cs = compile_schema(Tree)
    schema = strict_ok(cs)
    tree_def = schema["$defs"]["Tree"]
    assert tree_def["properties"]["children"]["anyOf"][0]["items"] == {"$ref": "#/$defs/Tree"}
    value = cs.validate({"label": "root", "children": [{"label": "leaf", "children": None}]})
    assert value == Tree(label="root", children=[Tree(label="leaf")])


class Constrained(BaseModel):
    code: str = Field(min_length=3, max_length=5, pattern=r"^[A-Z]+$")
    score: float = Field(ge=0, le=10)
    count: Annotated[int, Gt(0)]


def test_constraints_outside_the_subset_go_to_the_description_and_are_enforced() -> None:
    cs = compile_schema(Constrained)
    props = strict_ok(cs)["properties"]
    assert props["code"]["pattern"] == "^[A-Z]+$"
    assert "minLength" not in props["code"]
    assert props["code"]["description"] == "(at least 3 characters; at most 5 characters)"
    assert props["score"]["minimum"] == 0 and props["score"]["maximum"] == 10
    assert props["count"]["exclusiveMinimum"] == 0
    with pytest.raises(OutputInvalidError) as info:
        cs.validate({"code": "AB", "score": 11, "count": 0})
    assert [e.path for e in info.value.errors] == ["$.code", "$.score", "$.count"]
    assert info.value.errors[0] == ErrorDetail("$.code", "String should have at least 3 characters", "AB", True)


class Aliased(BaseModel):
    invoice_number: str = Field(alias="invoiceNumber")
    total: float = Field(alias="Total", description="Grand total")


def test_aliases_are_the_property_names_and_are_known_for_lenient_matching() -> None:
    cs = compile_schema(Aliased)
    props = strict_ok(cs)["properties"]
    assert list(props) == ["invoiceNumber", "Total"]
    assert props["Total"]["description"] == "Grand total"
    assert cs.aliases == {"invoice_number": "invoiceNumber", "total": "Total"}
    assert cs.validate({"invoiceNumber": "A-1", "Total": 3}).invoice_number == "A-1"


class Line(TypedDict):
    sku: str
    qty: int


@dataclasses.dataclass
class Point:
    x: float
    y: float


@pytest.mark.parametrize(
    ("tp", "answer", "expected"),
    [
        (int, {"value": 4}, 4),
        (list[int], {"value": [1, 2]}, [1, 2]),
        (Literal["a", "b"], {"value": "b"}, "b"),
        (int | str, {"value": "x"}, "x"),
        (list[Line], {"value": [{"sku": "A", "qty": 1}]}, [{"sku": "A", "qty": 1}]),
        (Point, {"x": 1.5, "y": 2}, Point(1.5, 2.0)),
        (dict[str, int], {"value": [{"key": "a", "value": 1}]}, {"a": 1}),
        (Any, {"value": '{"free": [1, "form"]}'}, {"free": [1, "form"]}),
    ],
)
def test_non_object_roots_are_wrapped_and_unwrapped(tp: Any, answer: Any, expected: Any) -> None:
    cs = compile_schema(tp)
    schema = strict_ok(cs)
    assert cs.wrapped == (tp is not Point)
    if cs.wrapped:
        assert schema["required"] == ["value"]
    assert cs.validate(answer) == expected
    assert cs.validate(cs.encode(expected)) == expected


def test_list_of_models_root() -> None:
    cs = compile_schema(list[Address])
    schema = strict_ok(cs)
    assert cs.name == "list_Address"
    assert schema["properties"]["value"] == {"type": "array", "items": {"$ref": "#/$defs/Address"}}
    assert cs.validate({"value": [{"street": "s", "city": "c"}]}) == [Address(street="s", city="c")]


def test_names_are_valid_schema_names() -> None:
    class A_very_long_model_name_that_keeps_going_and_going_well_past_the_limit_of_64(BaseModel):
        x: int

    for tp in (
        Person,
        list[Person],
        Literal["a b", "c/d"],
        dict[str, int],
        int | None,
        A_very_long_model_name_that_keeps_going_and_going_well_past_the_limit_of_64,
    ):
        name = compile_schema(tp).name
        assert 0 < len(name) <= 64
        assert all(c.isalnum() or c in "_-" for c in name), name


def test_validation_errors_are_ours_with_paths_and_not_pydantics() -> None:
    import pydantic

    cs = compile_schema(Person)
    with pytest.raises(OutputInvalidError) as info:
        cs.validate({"name": 5, "address": {"street": "s"}, "nickname": None, "age": "old"})
    assert not isinstance(info.value, pydantic.ValidationError)
    assert [e.path for e in info.value.errors] == ["$.name", "$.address.city", "$.age"]
    assert "$.address.city: Field required" in str(info.value)


def test_any_field_travels_as_a_json_string() -> None:
    class Loose(BaseModel):
        payload: Any
        meta: dict[str, Any]

    cs = compile_schema(Loose)
    props = strict_ok(cs)["properties"]
    assert props["payload"]["type"] == "string"
    assert props["payload"]["description"].startswith("Any JSON value, written as a JSON-encoded string.")
    assert props["meta"]["description"].startswith("A JSON object, written as a JSON-encoded string.")
    value = cs.validate({"payload": '[1, {"a": null}]', "meta": '{"k": true}'})
    assert value == Loose(payload=[1, {"a": None}], meta={"k": True})


def test_sample_instance_of_a_pydantic_schema_validates() -> None:
    for tp in (Person, Kinds, Stats, Owner, Tree, Aliased, list[Line]):
        cs = compile_schema(tp)
        for nulls in (False, True):
            cs.validate(sample_instance(cs.json_schema, nulls=nulls))


def test_a_string_is_not_a_schema() -> None:
    from extractor import SchemaCompileError

    with pytest.raises(SchemaCompileError, match=r"json\.load"):
        compile_schema("invoice.json")
    with pytest.raises(SchemaCompileError, match="not a schema"):
        compile_schema(42)
