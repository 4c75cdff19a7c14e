"""The schema compiler on JSON Schema dicts (any draft): the strict subset out, the original enforced back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from extractor import CompiledSchema, GeminiDialect, OutputInvalidError, compile_schema
from extractor.schema.sample import sample_instance


def strict(schema: dict[str, Any]) -> CompiledSchema[Any]:
    cs = compile_schema(schema)
    assert cs.strict, cs.reasons
    assert cs.dialect.violations(cs.json_schema) == []
    return cs


def test_optional_property_null_is_omitted_and_the_original_is_checked() -> None:
    cs = strict(
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
            "required": ["name"],
        }
    )
    assert cs.json_schema["properties"]["email"] == {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]}
    assert cs.validate({"name": "Ada", "email": None}) == {"name": "Ada"}
    with pytest.raises(OutputInvalidError) as info:
        cs.validate({"name": "Ada", "email": "not an email"})
    assert info.value.errors[0].path == "$.email"
    assert "is not a 'email'" in info.value.errors[0].message


def test_draft4_boolean_exclusive_bounds_and_array_form_items() -> None:
    cs = strict(
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {
                "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1},
                "point": {"type": "array", "items": [{"type": "number"}, {"type": "string"}], "additionalItems": False},
            },
            "required": ["ratio", "point"],
        }
    )
    props = cs.json_schema["properties"]
    assert props["ratio"] == {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
    # positions of a tuple without minItems may be missing: nullable, null ends the tuple
    assert props["point"]["properties"]["item_0"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert cs.validate({"ratio": 0.5, "point": {"item_0": 1, "item_1": None}}) == {"ratio": 0.5, "point": [1]}
    assert cs.validate({"ratio": 0.5, "point": {"item_0": 1, "item_1": "a"}}) == {"ratio": 0.5, "point": [1, "a"]}
    with pytest.raises(OutputInvalidError):
        cs.validate({"ratio": 0, "point": {"item_0": 1, "item_1": "a"}})


def test_refs_into_definitions_and_defs_and_pointers() -> None:
    cs = strict(
        {
            "type": "object",
            "definitions": {"money": {"type": "number", "minimum": 0}},
            "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
            "properties": {
                "total": {"$ref": "#/definitions/money"},
                "currency": {"$ref": "#/$defs/code"},
                "again": {"$ref": "#/properties/total"},
            },
            "required": ["total", "currency", "again"],
        }
    )
    props = cs.json_schema["properties"]
    assert props["total"] == {"$ref": "#/$defs/money"}
    assert props["currency"] == {"$ref": "#/$defs/code"}
    assert cs.json_schema["$defs"]["money"] == {"type": "number", "minimum": 0}
    assert cs.json_schema["$defs"]["code"] == {"type": "string", "pattern": "^[A-Z]{3}$"}
    assert cs.validate({"total": 1, "currency": "EUR", "again": 2}) == {"total": 1, "currency": "EUR", "again": 2}


def test_ref_with_siblings_is_resolved_inline() -> None:
    cs = strict(
        {
            "type": "object",
            "definitions": {"name": {"type": "string"}},
            "properties": {"first": {"$ref": "#/definitions/name", "description": "Given name", "maxLength": 5}},
            "required": ["first"],
        }
    )
    assert cs.json_schema["properties"]["first"] == {
        "type": "string",
        "description": "Given name (at most 5 characters)",
    }
    assert "$defs" not in cs.json_schema


def test_root_ref_and_recursion() -> None:
    cs = strict(
        {
            "$ref": "#/definitions/node",
            "definitions": {
                "node": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                    },
                    "required": ["name", "kids"],
                }
            },
        }
    )
    assert cs.json_schema["type"] == "object"
    assert cs.json_schema["properties"]["kids"]["items"] == {"$ref": "#/$defs/node"}
    tree = {"name": "a", "kids": [{"name": "b", "kids": []}]}
    assert cs.validate(tree) == tree


def test_allof_is_merged_and_oneof_becomes_anyof() -> None:
    cs = strict(
        {
            "definitions": {"base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
            "allOf": [
                {"$ref": "#/definitions/base"},
                {"properties": {"kind": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}, "required": ["kind"]},
            ],
        }
    )
    assert cs.json_schema["required"] == ["id", "kind"]
    assert cs.json_schema["properties"]["kind"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert "allOf" not in json.dumps(cs.json_schema) and "oneOf" not in json.dumps(cs.json_schema)


def test_anyof_of_required_lists_is_distributed_over_the_base_object() -> None:
    cs = strict(
        {
            "type": "object",
            "properties": {"email": {"type": "string"}, "phone": {"type": "string"}},
            "anyOf": [{"required": ["email"]}, {"required": ["phone"]}],
        }
    )
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert cs.wrapped  # a union at the root travels as {"value": ...}
    assert cs.json_schema["properties"]["value"]["anyOf"] == [
        {
            "type": "object",
            "properties": {"email": {"type": "string"}, "phone": nullable},
            "required": ["email", "phone"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"email": nullable, "phone": {"type": "string"}},
            "required": ["email", "phone"],
            "additionalProperties": False,
        },
    ]
    assert cs.validate({"value": {"email": None, "phone": "123"}}) == {"phone": "123"}
    assert cs.validate(cs.encode({"phone": "123"})) == {"phone": "123"}
    with pytest.raises(OutputInvalidError):
        cs.validate(cs.encode({}))


def test_branches_that_only_add_rules_keep_the_base_shape_and_are_described() -> None:
    cs = strict(
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"not": {"required": ["a"]}}, {"not": {"required": ["b"]}}],
        }
    )
    assert not cs.wrapped
    assert cs.json_schema["description"] == '(oneOf: [{"not":{"required":["a"]}},{"not":{"required":["b"]}}])'
    assert cs.validate({"a": "x", "b": None}) == {"a": "x"}
    with pytest.raises(OutputInvalidError):
        cs.validate({"a": "x", "b": "y"})


def test_type_lists_enums_of_mixed_types_and_const() -> None:
    cs = strict(
        {
            "type": "object",
            "properties": {
                "maybe": {"type": ["string", "null"], "minLength": 2},
                "mixed": {"enum": ["a", 1, None]},
                "fixed": {"const": "v1"},
            },
            "required": ["maybe", "mixed", "fixed"],
        }
    )
    props = cs.json_schema["properties"]
    assert props["maybe"] == {"anyOf": [{"type": "string", "description": "(at least 2 characters)"}, {"type": "null"}]}
    assert props["mixed"] == {
        "anyOf": [{"type": "string", "enum": ["a"]}, {"type": "integer", "enum": [1]}, {"type": "null", "enum": [None]}]
    }
    assert props["fixed"] == {"type": "string", "const": "v1"}
    assert cs.validate({"maybe": None, "mixed": 1, "fixed": "v1"}) == {"maybe": None, "mixed": 1, "fixed": "v1"}


def test_additional_properties_schema_becomes_a_key_value_list() -> None:
    cs = strict(
        {
            "type": "object",
            "properties": {
                "tags": {"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 3},
                "env": {
                    "type": "object",
                    "patternProperties": {"^[A-Z_]+$": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "required": ["tags", "env"],
        }
    )
    tags = cs.json_schema["properties"]["tags"]
    assert tags["type"] == "array" and tags["maxItems"] == 3
    assert tags["items"]["properties"]["value"] == {"type": "integer"}
    env = cs.json_schema["properties"]["env"]
    assert env["items"]["properties"]["key"] == {"type": "string", "pattern": "^[A-Z_]+$"}
    answer = {"tags": [{"key": "a", "value": 1}], "env": [{"key": "HOME", "value": "/root"}]}
    assert cs.validate(answer) == {"tags": {"a": 1}, "env": {"HOME": "/root"}}
    with pytest.raises(OutputInvalidError) as info:
        cs.validate({"tags": [{"key": "a", "value": 1}], "env": [{"key": "home", "value": "/root"}]})
    assert info.value.errors[0].path == "$.env.home"
    assert info.value.errors[0].kind == "extra"


def test_untyped_values_travel_as_json_strings() -> None:
    cs = strict(
        {"type": "object", "properties": {"anything": {}, "blob": {"type": "object"}}, "required": ["anything", "blob"]}
    )
    assert cs.json_schema["properties"]["anything"]["type"] == "string"
    assert cs.validate({"anything": "[1, 2]", "blob": '{"a": {"b": null}}'}) == {
        "anything": [1, 2],
        "blob": {"a": {"b": None}},
    }
    assert cs.encode({"anything": [1, 2], "blob": {"a": 1}}) == {"anything": "[1, 2]", "blob": '{"a": 1}'}


def test_everything_outside_the_subset_is_described_and_enforced() -> None:
    cs = strict(
        {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string", "format": "uri"}, "uniqueItems": True},
                "code": {"type": "string", "not": {"const": "XXX"}},
                "size": {"type": "object", "properties": {"w": {"type": "number"}}, "minProperties": 1},
            },
            "required": ["tags", "code", "size"],
        }
    )
    props = cs.json_schema["properties"]
    assert props["tags"]["description"] == "(items must be unique)"
    assert props["tags"]["items"] == {"type": "string", "description": "(format: uri)"}
    assert props["code"]["description"] == '(not: {"const":"XXX"})'
    assert props["size"]["description"] == "(at least 1 entries)"
    with pytest.raises(OutputInvalidError) as info:
        cs.validate({"tags": ["https://a/", "https://a/"], "code": "XXX", "size": {"w": None}})
    assert sorted(e.path for e in info.value.errors) == ["$.code", "$.size", "$.tags"]


def test_a_property_no_value_satisfies_can_only_be_absent() -> None:
    cs = strict({"type": "object", "properties": {"a": {"type": "string"}, "gone": False}, "required": ["a"]})
    assert cs.json_schema["properties"]["gone"]["type"] == "null"
    assert cs.validate({"a": "x", "gone": None}) == {"a": "x"}


def test_unsatisfiable_required_property_is_not_strict_with_a_reason() -> None:
    cs = compile_schema({"type": "object", "properties": {"a": {"type": "string", "enum": [1, 2]}}, "required": ["a"]})
    assert not cs.strict
    assert cs.reason == "$: no value satisfies this schema"


def test_remote_refs_are_noted_and_accepted_as_any_value() -> None:
    cs = compile_schema(
        {"type": "object", "properties": {"x": {"$ref": "https://example.com/other.json#/defs/x"}}, "required": ["x"]}
    )
    assert cs.strict
    assert any("points outside this schema" in note for note in cs.notes)
    assert cs.validate({"x": "42"}) == {"x": 42}


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (
            {"type": "object", "properties": {"e": {"enum": [f"v{i}" for i in range(1001)]}}, "required": ["e"]},
            "1001 enum values in all exceed 1000",
        ),
        (
            {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5001)}},
            "5001 properties in all exceed 5000",
        ),
        (
            {"type": "object", "properties": {"e": {"enum": ["x" * 60 for _ in range(300)]}}},
            "an enum of more than 250 values holds 18000 characters (limit 15000)",
        ),
    ],
)
def test_limits_make_a_schema_non_strict_with_the_reason(schema: dict[str, Any], reason: str) -> None:
    cs = compile_schema(schema)
    assert not cs.strict
    assert reason in cs.reasons


def test_nesting_deeper_than_ten_is_not_strict() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(11):
        node = {"type": "object", "properties": {"x": node}, "required": ["x"]}
    cs = compile_schema(node)
    assert cs.reasons == ("nesting depth 11 exceeds 10",)
    ten = node["properties"]["x"]
    assert compile_schema(ten).strict


def test_non_object_json_schema_roots_are_wrapped() -> None:
    cs = strict({"type": "array", "items": {"type": "integer"}, "minItems": 1})
    assert cs.wrapped
    assert cs.json_schema["properties"]["value"] == {"type": "array", "items": {"type": "integer"}, "minItems": 1}
    assert cs.validate({"value": [3]}) == [3]
    with pytest.raises(OutputInvalidError):
        cs.validate({"value": []})


def test_named_groups_in_patterns_are_checked_in_python() -> None:
    cs = strict(
        {
            "type": "object",
            "patternProperties": {"^(?<name>[a-z]+)$": {"type": "integer"}, "^(?<name>[A-Z]+)$": {"type": "string"}},
            "additionalProperties": False,
        }
    )
    assert cs.validate({"value": [{"key": "abc", "value": 1}]}) == {"abc": 1}
    with pytest.raises(OutputInvalidError):
        cs.validate({"value": [{"key": "abc", "value": "no"}]})


def test_gemini_dialect_inlines_refs_and_orders_properties() -> None:
    schema = {
        "type": "object",
        "definitions": {"p": {"type": "object", "properties": {"n": {"const": "x"}}, "required": ["n"]}},
        "properties": {"a": {"$ref": "#/definitions/p"}, "b": {"type": "string", "minLength": 2}},
        "required": ["a", "b"],
    }
    cs = compile_schema(schema, dialect="gemini")
    assert isinstance(cs.dialect, GeminiDialect)
    out = cs.json_schema
    assert "$defs" not in out and "additionalProperties" not in json.dumps(out)
    assert out["propertyOrdering"] == ["a", "b"]
    assert out["properties"]["a"]["properties"]["n"] == {"type": "string", "enum": ["x"]}
    assert out["properties"]["b"] == {"type": "string", "minLength": 2}
    assert cs.dialect.violations(out) == []
    recursive = {"$defs": {"t": {"type": "object", "properties": {"k": {"$ref": "#/$defs/t"}}}}, "$ref": "#/$defs/t"}
    assert not compile_schema(recursive, dialect="gemini").strict
    assert compile_schema(recursive).strict


def test_generated_instances_decode_to_valid_originals() -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "pattern": "^INV-[0-9]{4}$"},
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"q": {"type": "integer", "minimum": 1}}},
            },
            "extra": {"type": "object", "additionalProperties": {"type": "number"}},
        },
        "required": ["when", "id", "lines"],
    }
    cs = strict(schema)
    for nulls in (False, True):
        value = cs.validate(sample_instance(cs.json_schema, nulls=nulls))
        assert value["id"] == "INV-0000"
