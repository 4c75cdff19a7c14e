"""Strict schemas a provider really accepts, and answers read back without silent loss.

Each case is an input, the compiled fragment or decoded value expected, or the refusal expected:
regex features the dialect lacks described (not sent), tags of discriminated unions required, a
field's description kept beside its model's, extra tuple items refused, member order in the compile
cache, and a root wrapper that no member's field is mistaken for.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from extractor import CompiledSchema, OutputInvalidError, compile_schema
from extractor.schema.dialects import Dialect, GeminiDialect

ZOD_EMAIL = r"^(?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$"


def strict_ok(cs: CompiledSchema[Any]) -> dict[str, Any]:
    """The compiled schema, after checking it is strict and inside the dialect's subset."""
    assert cs.strict, cs.reasons
    assert cs.dialect.violations(cs.json_schema) == []
    return cs.json_schema


def paths(exc: pytest.ExceptionInfo[OutputInvalidError]) -> list[str]:
    return [e.path for e in exc.value.errors]


# --- 1. regex features the provider's engine lacks ---------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (r"(?<=USD)\d+", "USD12", "EUR12"),  # lookbehind
        (r"^(?<!x)a$", "a", "b"),  # negative lookbehind
        (ZOD_EMAIL, "jane.doe@example.com", ".jane@example.com"),  # lookaheads
        (r"^(a+)-\1$", "aa-aa", "aa-a"),  # backreference
        (r"^(?<w>[a-z]+) \k<w>$", "ab ab", "ab cd"),  # named backreference
        (r"^a+?b$", "aab", "ba"),  # lazy quantifier
    ],
)
@pytest.mark.parametrize("dialect", ["openai", "gemini"])
def test_patterns_the_engine_cannot_run_are_described_and_checked_afterwards(
    pattern: str, good: str, bad: str, dialect: str
) -> None:
    source = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}, "required": ["code"]}
    cs = compile_schema(source, dialect=dialect)
    node = strict_ok(cs)["properties"]["code"]
    assert "pattern" not in node
    assert node["description"] == f"(must match the regular expression {pattern})"
    assert cs.validate({"code": good}) == {"code": good}
    with pytest.raises(OutputInvalidError) as exc:
        cs.validate({"code": bad})
    assert paths(exc) == ["$.code"]


def test_a_plain_pattern_is_still_sent() -> None:
    cs = compile_schema({"type": "string", "pattern": r"^[A-Z]{3}-\d{2,4}(?:x|y)?$"})
    assert strict_ok(cs)["properties"]["value"] == {"type": "string", "pattern": r"^[A-Z]{3}-\d{2,4}(?:x|y)?$"}


def test_escaped_and_bracketed_look_alikes_are_plain() -> None:
    dialect = Dialect()
    for pattern in (r"\(?=x", r"[(?=]+", r"[]?!]", r"(?:a)?b", r"(?P<n>a)", r"(?<n>a)b", r"a{2}", r"\\1"):
        assert dialect.regex_problems(pattern) == [], pattern
    assert dialect.regex_problems(ZOD_EMAIL) == ["lookahead"]
    assert dialect.regex_problems(r"(?<=a)(b)\1c*?") == ["backreference", "lazy quantifier", "lookbehind"]


def test_a_pydantic_pattern_with_a_lookahead_is_described() -> None:
    class Account(BaseModel):
        model_config = ConfigDict(regex_engine="python-re")
        email: str = Field(pattern=ZOD_EMAIL)

    cs = compile_schema(Account)
    node = strict_ok(cs)["properties"]["email"]
    assert "pattern" not in node
    assert ZOD_EMAIL in node["description"]
    assert cs.validate({"email": "jane@example.com"}) == Account(email="jane@example.com")
    with pytest.raises(OutputInvalidError) as exc:
        cs.validate({"email": "jane..doe@example.com"})
    assert paths(exc) == ["$.email"]


def test_a_map_key_pattern_with_a_lookahead_is_described() -> None:
    source = {
        "type": "object",
        "patternProperties": {"^(?!@@)[a-z@]+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    cs = compile_schema(source)
    key = strict_ok(cs)["properties"]["value"]["items"]["properties"]["key"]
    assert key == {"type": "string", "description": "(must match the regular expression ^(?!@@)[a-z@]+$)"}
    assert cs.validate({"value": [{"key": "ab", "value": 1}]}) == {"ab": 1}
    with pytest.raises(OutputInvalidError):
        cs.validate({"value": [{"key": "@@ab", "value": 1}]})


# --- 2. tags of discriminated unions ------------------------------------------------------------


class Cat(BaseModel):
    pet_type: Literal["cat"] = "cat"
    meow: int


class Dog(BaseModel):
    pet_type: Literal["dog"] = "dog"
    bark: int


class Owner(BaseModel):
    pet: Cat | Dog = Field(discriminator="pet_type")


def test_a_tag_with_a_default_is_a_required_non_null_const() -> None:
    cs = compile_schema(Owner)
    defs = strict_ok(cs)["$defs"]
    for name, tag in (("Cat", "cat"), ("Dog", "dog")):
        assert defs[name]["properties"]["pet_type"] == {"type": "string", "const": tag, "title": "Pet Type"}
        assert "pet_type" in defs[name]["required"]
    assert cs.validate({"pet": {"pet_type": "dog", "bark": 2}}) == Owner(pet=Dog(bark=2))
    assert cs.decode({"pet": {"pet_type": "cat", "meow": 1}}) == {"pet": {"pet_type": "cat", "meow": 1}}
    assert cs.encode(Owner(pet=Cat(meow=1))) == {"pet": {"pet_type": "cat", "meow": 1}}
    with pytest.raises(OutputInvalidError):  # a null tag is no longer an answer the schema allows
        cs.validate({"pet": {"pet_type": None, "meow": 1}})


def _pet_type(value: Any) -> str | None:
    return value.get("pet_type") if isinstance(value, dict) else getattr(value, "pet_type", None)


class CalledOwner(BaseModel):
    pet: Annotated[Annotated[Cat, Tag("cat")] | Annotated[Dog, Tag("dog")], Discriminator(_pet_type)]


class PlainOwner(BaseModel):
    pet: Cat | Dog


@pytest.mark.parametrize("model", [CalledOwner, PlainOwner], ids=["callable discriminator", "plain union"])
def test_a_literal_tag_with_a_default_is_required_whatever_picks_the_branch(model: type[BaseModel]) -> None:
    """A null tag ("use the default") cannot be read back when a function picks the branch, and leaves
    a plain union to guess: every answer the compiled schema allows must be readable, so none is allowed."""
    cs = compile_schema(model)
    validator = jsonschema.Draft202012Validator(strict_ok(cs))
    assert not validator.is_valid({"pet": {"pet_type": None, "meow": 1}})
    assert validator.is_valid({"pet": {"pet_type": "dog", "bark": 2}})
    assert cs.parse('{"pet": {"pet_type": "dog", "bark": 2}}') == model(pet=Dog(bark=2))


def test_a_tag_of_inline_json_schema_branches_is_required() -> None:
    source = {
        "type": "object",
        "properties": {
            "shape": {
                "oneOf": [
                    {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}},
                    {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}}},
                ],
                "discriminator": {"propertyName": "kind"},
            }
        },
        "required": ["shape"],
    }
    cs = compile_schema(source)
    branches = strict_ok(cs)["properties"]["shape"]["anyOf"]
    assert [b["properties"]["kind"] for b in branches] == [
        {"type": "string", "const": "circle"},
        {"type": "string", "const": "square"},
    ]
    assert cs.validate({"shape": {"kind": "square", "side": None}}) == {"shape": {"kind": "square"}}


# --- 3. a field's description beside its model's docstring -------------------------------------


class Foo(BaseModel):
    """doc of foo"""

    x: int


class Bar(BaseModel):
    foo: Foo = Field(description="field description")


def test_a_field_description_is_kept_with_the_model_docstring() -> None:
    cs = compile_schema(Bar)
    assert strict_ok(cs)["properties"]["foo"]["description"] == "field description\n\ndoc of foo"


def test_a_field_description_through_allof_is_kept_with_the_definition_one() -> None:
    source = {
        "type": "object",
        "properties": {"foo": {"allOf": [{"$ref": "#/$defs/Foo"}], "description": "field description"}},
        "required": ["foo"],
        "$defs": {"Foo": {"type": "object", "description": "doc of foo", "properties": {"x": {"type": "integer"}}}},
    }
    cs = compile_schema(source)
    assert strict_ok(cs)["properties"]["foo"]["description"] == "field description\n\ndoc of foo"


# --- 4. extra tuple items -----------------------------------------------------------------------


def test_extra_positions_of_a_tuple_are_refused_not_dropped() -> None:
    cs = compile_schema(tuple[int])
    assert strict_ok(cs)["properties"] == {"item_0": {"type": "integer"}}
    assert cs.validate({"item_0": 1}) == (1,)
    with pytest.raises(OutputInvalidError) as exc:
        cs.validate({"item_0": 1, "item_1": 2})
    assert paths(exc) == ["$"]
    with pytest.raises(OutputInvalidError) as exc:
        cs.parse('{"item_0": 1, "item_1": 2}')
    assert paths(exc) == ["$"]
    with pytest.raises(OutputInvalidError) as exc:
        cs.validate({"item_0": 1, "note": "x"})  # a key that is no position
    assert paths(exc) == ["$"]


def test_a_value_after_a_null_position_is_refused_not_dropped() -> None:
    cs = compile_schema({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}], "items": False})
    strict_ok(cs)
    assert cs.validate({"item_0": 1, "item_1": None}) == [1]  # a trailing null: the item is left out
    with pytest.raises(OutputInvalidError) as exc:
        cs.validate({"item_0": None, "item_1": 2})
    assert paths(exc) == ["$[0]"]
    open_tuple = compile_schema({"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"}})
    with pytest.raises(OutputInvalidError) as exc:
        open_tuple.validate({"item_0": None, "rest": ["a"]})
    assert paths(exc) == ["$[0]"]
    assert open_tuple.validate({"item_0": 1, "rest": ["a"]}) == [1, "a"]


def test_an_explicit_null_in_a_tuple_survives_encoding() -> None:
    cs = compile_schema({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}], "items": False})
    assert cs.decode(cs.encode([1, None])) == [1, None]
    assert cs.decode(cs.encode([1])) == [1]


def test_a_bare_list_longer_than_the_tuple_is_refused() -> None:
    cs = compile_schema(tuple[int])
    with pytest.raises(OutputInvalidError, match="at most 1 item"):
        cs.parse("[1, 2]")


# --- 5. member order in the compile cache -------------------------------------------------------


class First(BaseModel):
    a: int


class Second(BaseModel):
    b: int


def _members(cs: CompiledSchema[Any]) -> list[str]:
    return [m["$ref"].rsplit("/", 1)[-1] for m in cs.json_schema["properties"]["value"]["anyOf"]]


def test_the_cache_tells_member_orders_apart() -> None:
    ab = compile_schema(Union[First, Second])  # noqa: UP007 - the spelling of the report
    ba = compile_schema(Union[Second, First])  # noqa: UP007
    assert ab is not ba
    assert (_members(ab), _members(ba)) == (["First", "Second"], ["Second", "First"])
    assert compile_schema(Union[First, Second]) is ab  # noqa: UP007 - still cached
    assert _members(compile_schema(Second | First)) == ["Second", "First"]
    nested_ab = compile_schema(list[First | Second])
    nested_ba = compile_schema(list[Second | First])
    assert nested_ab is not nested_ba
    lit_ab, lit_ba = compile_schema(Literal["a", "b"]), compile_schema(Literal["b", "a"])
    assert lit_ab.json_schema["properties"]["value"]["enum"] == ["a", "b"]
    assert lit_ba.json_schema["properties"]["value"]["enum"] == ["b", "a"]


def test_the_cache_tells_property_orders_apart() -> None:
    xy = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}
    yx = {"type": "object", "properties": {"y": {"type": "integer"}, "x": {"type": "integer"}}}
    assert list(compile_schema(xy).json_schema["properties"]) == ["x", "y"]
    assert list(compile_schema(yx).json_schema["properties"]) == ["y", "x"]


# --- 6. the root wrapper and a member's own `value` field ----------------------------------------


class IntegerValue(BaseModel):
    value: int


class StringValue(BaseModel):
    value: str


ValueUnion = Union[IntegerValue, StringValue]  # noqa: UP007 - the spelling of the report


def test_the_wrapper_key_is_no_member_field() -> None:
    cs = compile_schema(ValueUnion)
    schema = strict_ok(cs)
    assert cs.wrapped and cs.wrapper_key == "result"
    assert schema["required"] == ["result"]
    assert schema["properties"]["result"]["anyOf"] == [
        {"$ref": "#/$defs/IntegerValue"},
        {"$ref": "#/$defs/StringValue"},
    ]
    assert cs.encode(StringValue(value="123")) == {"result": {"value": "123"}}


@pytest.mark.parametrize(
    "answer",
    [
        {"result": {"value": "123"}},  # the compiled shape
        {"value": "123"},  # the member itself, without the wrapper
    ],
)
def test_a_member_value_decodes_as_pydantic_chooses(answer: dict[str, Any]) -> None:
    cs = compile_schema(ValueUnion)
    expected = TypeAdapter(ValueUnion).validate_python({"value": "123"})
    assert expected == StringValue(value="123")
    assert cs.validate(answer) == expected
    assert cs.parse(json.dumps(answer)) == expected
    assert cs.validate_json(json.dumps(answer)) == expected
    assert cs.parse('{"result": {"value": 123}}') == IntegerValue(value=123)


def test_the_wrapper_key_avoids_every_member_field() -> None:
    class ValueAndResult(BaseModel):
        value: int
        result: int

    class Answer(BaseModel):
        answer: str

    cs = compile_schema(Annotated[ValueAndResult | Answer | None, "wrapper"])
    assert cs.wrapper_key == "output"
    assert cs.validate({"output": None}) is None
    assert cs.validate({"value": 1, "result": 2}) == ValueAndResult(value=1, result=2)


def test_roots_without_a_value_field_keep_the_value_wrapper() -> None:
    for tp in (list[int], First | Second, dict[str, int]):
        cs = compile_schema(tp)
        assert cs.wrapper_key == "value"
        assert strict_ok(cs)["required"] == ["value"]
    assert compile_schema(First).wrapper_key is None


def test_gemini_keeps_the_same_rules() -> None:
    cs = compile_schema(ValueUnion, dialect=GeminiDialect())
    assert cs.wrapper_key == "result"
    assert cs.validate({"value": "123"}) == StringValue(value="123")
