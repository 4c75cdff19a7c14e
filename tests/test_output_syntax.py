"""Lenient JSON parsing: valid JSON untouched, each repair exact, truncation, deep nesting, corpora."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extractor import OutputInvalidError
from extractor.output.limits import MAX_DEPTH
from extractor.output.repairs import LOSSY_KINDS, RepairKind
from extractor.output.syntax import LenientParseError, Parsed, decode_strict, parse_lenient

K = RepairKind


def _kinds(parsed: Parsed) -> list[tuple[RepairKind, str]]:
    return [(r.kind, r.path) for r in parsed.repairs]


def _same(value: Any, expected: Any) -> bool:
    """Equal, with the same types and key order (1 is not 1.0, {"a", "b"} is not {"b", "a"})."""
    return bool(value == expected) and json.dumps(value) == json.dumps(expected)


def _depth(value: Any) -> int:
    """How many lists or dicts are nested along the first item of each (iteratively)."""
    depth = 0
    while isinstance(value, (list, dict)):
        depth += 1
        if not value:
            break
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
    return depth


# --- valid JSON -----------------------------------------------------------------------------------

VALID = [
    '{"a":2}',
    "[]",
    "{}",
    '"text"',
    "0",
    "-0.0",
    "1.0",
    "12345678901234567890123456789",
    "true",
    "null",
    '{"n": [1, 2.5, -3e-2, 1E5, 0], "s": "\\u00e9\\ud83d\\ude00\\n\\"q\\"\\/", "b": [true, false, null]}',
    '{"unicode": "caf\u00e9 \u2013 \u201ccurly\u201d \U0001f600", "nested": {"a": [{"b": {"c": []}}]}}',
    '[{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": []}]',
]


@pytest.mark.parametrize("text", VALID)
def test_valid_json_comes_back_unchanged_without_repairs(text: str) -> None:
    parsed = parse_lenient(text)
    assert _same(parsed.value, json.loads(text))
    assert parsed.repairs == []
    assert parsed.complete is True
    assert (parsed.start, parsed.end) == (0, len(text))


def test_valid_json_span_skips_leading_whitespace_and_stops_at_its_end() -> None:
    text = '  \n {"a": [1, 2]}}] and more'
    parsed = parse_lenient(text)
    assert parsed.value == {"a": [1, 2]}
    assert (parsed.start, parsed.end) == (4, 17)
    assert parsed.repairs == []


def test_parse_from_a_position() -> None:
    text = 'Answer: {"a": 1} thanks'
    parsed = parse_lenient(text, 8)
    assert parsed.value == {"a": 1}
    assert (parsed.start, parsed.end) == (8, 16)


def test_lenient_path_reads_valid_parts_exactly_as_json_does() -> None:
    members = (
        '"f": 1.0, "i": 12345678901234567890, "neg": -0.0, "zero": -0, "e": 1E5, "small": 2.5e-3, '
        '"s": "\\u00e9\\ud83d\\ude00\\ud800x \\n\\"\\/\\b\\f\\r\\t", "l": [1, {"x": null}], '
        '"dup": 1, "mid": true'
    )
    parsed = parse_lenient("{" + members + ",}")
    assert _same(parsed.value, json.loads("{" + members + "}"))
    assert _kinds(parsed) == [(K.TRAILING_COMMA, "$")]


def test_lenient_string_reader_decodes_escapes_like_json() -> None:
    # a raw tab forces the lenient reader; all escapes must still decode as json decodes them
    escaped = '"\\u00e9\\ud83d\\ude00\\udc00\\ud800x \\n\\"\\/\\\\\\b\\f\\r\\t'
    parsed = parse_lenient(escaped + '\tend"')
    assert parsed.value == json.loads(escaped + '\\tend"')
    assert _kinds(parsed) == [(K.CONTROL_CHARACTER, "$")]


def test_decode_strict_reads_valid_json_and_refuses_non_finite_numbers() -> None:
    assert decode_strict(' [1, "a"] x', 1) == ([1, "a"], 9)
    with pytest.raises(ValueError):
        decode_strict("[NaN]")
    with pytest.raises(ValueError):
        decode_strict("{'a': 1}")


# --- lossless repairs -----------------------------------------------------------------------------

REPAIRED: list[tuple[str, Any, list[tuple[RepairKind, str]]]] = [
    # trailing commas, each recorded
    ('{"a": 1, "b": 2,}', {"a": 1, "b": 2}, [(K.TRAILING_COMMA, "$")]),
    ("[1, 2, ]", [1, 2], [(K.TRAILING_COMMA, "$")]),
    (
        '{"a": [1,], "b": {"c": 2,},}',
        {"a": [1], "b": {"c": 2}},
        [(K.TRAILING_COMMA, "$.a"), (K.TRAILING_COMMA, "$.b"), (K.TRAILING_COMMA, "$")],
    ),
    # missing commas
    ('{"a": 1 "b": 2}', {"a": 1, "b": 2}, [(K.MISSING_COMMA, "$.b")]),
    ("[1 2 3]", [1, 2, 3], [(K.MISSING_COMMA, "$[1]"), (K.MISSING_COMMA, "$[2]")]),
    ('[{"a": 1}\n{"b": 2}]', [{"a": 1}, {"b": 2}], [(K.MISSING_COMMA, "$[1]")]),
    ('{"x": {"a": "s"\n"b": [1]}}', {"x": {"a": "s", "b": [1]}}, [(K.MISSING_COMMA, "$.x.b")]),
    # comments
    ('{\n// comment\n"a": 1\n}', {"a": 1}, [(K.COMMENT, "$")]),
    ('{"a": /* why */ 1, "b": [2 /* two */]}', {"a": 1, "b": [2]}, [(K.COMMENT, "$"), (K.COMMENT, "$.b")]),
    ('# header\n{"a": 1, # note\n "b": 2}', {"a": 1, "b": 2}, [(K.COMMENT, "$"), (K.COMMENT, "$")]),
    ('{"a": # why\n 1}', {"a": 1}, [(K.COMMENT, "$")]),
    ("[1 # note\n, 2]", [1, 2], [(K.COMMENT, "$")]),
    # single and curly quotes
    ("{'name': 'Ada'}", {"name": "Ada"}, [(K.SINGLE_QUOTES, "$.name"), (K.SINGLE_QUOTES, "$.name")]),
    ("['it\\'s', 'don't']", ["it's", "don't"], [(K.SINGLE_QUOTES, "$[0]"), (K.SINGLE_QUOTES, "$[1]")]),
    ("['say \"hi\"']", ['say "hi"'], [(K.SINGLE_QUOTES, "$[0]")]),
    (
        "{\u201cname\u201d: \u201cAda\u201d}",
        {"name": "Ada"},
        [(K.CURLY_QUOTES, "$.name"), (K.CURLY_QUOTES, "$.name")],
    ),
    ("[\u2018it\u2019s\u2019]", ["it\u2019s"], [(K.CURLY_QUOTES, "$[0]")]),
    ('{"q": "say \u201chi\u201d", "a": 1,}', {"q": "say \u201chi\u201d", "a": 1}, [(K.TRAILING_COMMA, "$")]),
    # unquoted keys
    ("{name: 1}", {"name": 1}, [(K.UNQUOTED_KEY, "$.name")]),
    (
        "{$id: 1, first-name: 2}",
        {"$id": 1, "first-name": 2},
        [(K.UNQUOTED_KEY, '$["$id"]'), (K.UNQUOTED_KEY, '$["first-name"]')],
    ),
    ("{1: 'a'}", {"1": "a"}, [(K.UNQUOTED_KEY, '$["1"]'), (K.SINGLE_QUOTES, '$["1"]')]),
    # unquoted strings
    (
        "{url:https://www.bible.com/}",
        {"url": "https://www.bible.com/"},
        [(K.UNQUOTED_KEY, "$.url"), (K.UNQUOTED_STRING, "$.url")],
    ),
    ('{"name": Weiss Savage\n}', {"name": "Weiss Savage"}, [(K.UNQUOTED_STRING, "$.name")]),
    ('{"a":   some text   , "b": 1}', {"a": "some text", "b": 1}, [(K.UNQUOTED_STRING, "$.a")]),
    ('{"a": foo // note\n}', {"a": "foo"}, [(K.UNQUOTED_STRING, "$.a"), (K.COMMENT, "$")]),
    ('{"color": #fff}', {"color": "#fff"}, [(K.UNQUOTED_STRING, "$.color")]),
    ("[007, 12px, 1/2]", ["007", "12px", "1/2"], [(K.UNQUOTED_STRING, f"$[{i}]") for i in range(3)]),
    # Python and JavaScript literals
    (
        '{"t": True, "f": False, "n": None}',
        {"t": True, "f": False, "n": None},
        [(K.PYTHON_LITERAL, "$.t"), (K.PYTHON_LITERAL, "$.f"), (K.PYTHON_LITERAL, "$.n")],
    ),
    (
        "[undefined, NaN, Infinity, -Infinity]",
        [None, None, None, None],
        [(K.JS_LITERAL, "$[0]"), *[(K.NON_FINITE, f"$[{i}]") for i in range(1, 4)]],
    ),
    # control characters and invalid escapes inside strings
    ('{"a": "line1\nline2\tend"}', {"a": "line1\nline2\tend"}, [(K.CONTROL_CHARACTER, "$.a")]),
    ('{"p": "C:\\dir\\sub"}', {"p": "C:\\dir\\sub"}, [(K.INVALID_ESCAPE, "$.p")]),
    ('{"a": "it\\\'s"}', {"a": "it's"}, [(K.INVALID_ESCAPE, "$.a")]),
    ('["\\u12G4"]', ["\\u12G4"], [(K.INVALID_ESCAPE, "$[0]")]),
    # wrapper calls
    ('callback({"a": 1});', {"a": 1}, [(K.WRAPPER_CALL, "$")]),
    ('{"_id": ObjectId("123abc")}', {"_id": "123abc"}, [(K.WRAPPER_CALL, "$._id")]),
    ('{"count": NumberLong("42")}', {"count": "42"}, [(K.WRAPPER_CALL, "$.count")]),
    (
        '{"d": ISODate("2020-01-02T00:00:00Z"), "n": NumberInt(5), "x": NumberDecimal("1.5")}',
        {"d": "2020-01-02T00:00:00Z", "n": 5, "x": "1.5"},
        [(K.WRAPPER_CALL, "$.d"), (K.WRAPPER_CALL, "$.n"), (K.WRAPPER_CALL, "$.x")],
    ),
    # numbers in forms JSON does not allow
    ("[+1, .5, 5., -.5]", [1, 0.5, 5.0, -0.5], [(K.NUMBER_FORMAT, f"$[{i}]") for i in range(4)]),
    # ellipsis (lossy, but the text is not cut)
    ("[1,2,3,...]", [1, 2, 3], [(K.ELLIPSIS, "$[3]")]),
    ("[..., 4]", [4], [(K.ELLIPSIS, "$[0]")]),
    ("[1, \u2026]", [1], [(K.ELLIPSIS, "$[1]")]),
    ('{"a": 1, ...}', {"a": 1}, [(K.ELLIPSIS, "$")]),
    ('{"a": ..., "b": 2}', {"b": 2}, [(K.ELLIPSIS, "$.a")]),
    ('{"items": [{"id": 1}, ...]}', {"items": [{"id": 1}]}, [(K.ELLIPSIS, "$.items[1]")]),
    ('["..."]', ["..."], []),
]


@pytest.mark.parametrize(("text", "expected", "repairs"), REPAIRED)
def test_repairs(text: str, expected: Any, repairs: list[tuple[RepairKind, str]]) -> None:
    parsed = parse_lenient(text)
    assert _same(parsed.value, expected)
    assert _kinds(parsed) == repairs
    assert parsed.complete is True
    assert parsed.end == len(text)


def test_repair_details_say_what_was_read() -> None:
    parsed = parse_lenient('{"a": NaN, "b": undefined, "c": True, "d": "x\\d", "e": NumberLong("1")}')
    assert [r.detail for r in parsed.repairs] == [
        "NaN is no JSON number: write a number, or null",
        "undefined read as null",
        "True read as true",
        "kept literally: \\d",
        "NumberLong(...) unwrapped",
    ]


def test_lossless_repairs_are_not_flagged_lossy_and_ellipsis_is() -> None:
    parsed = parse_lenient("{a: 'x', b: [1 2,], c: None, ...}")
    assert [r.kind for r in parsed.repairs if r.lossy] == [K.ELLIPSIS]
    assert {r.kind for r in parsed.repairs} - LOSSY_KINDS == {
        K.UNQUOTED_KEY,
        K.SINGLE_QUOTES,
        K.MISSING_COMMA,
        K.TRAILING_COMMA,
        K.PYTHON_LITERAL,
    }


def test_jsonp_span_includes_the_semicolon() -> None:
    text = 'cb({"a": [1]}); // done'
    parsed = parse_lenient(text)
    assert parsed.value == {"a": [1]}
    assert parsed.end == text.index(";") + 1


def test_redundant_closers_are_not_consumed() -> None:
    parsed = parse_lenient("{'a': 1}}]")
    assert parsed.value == {"a": 1}
    assert parsed.end == 8


def test_top_level_scalars() -> None:
    assert _kinds(parse_lenient("True")) == [(K.PYTHON_LITERAL, "$")]
    assert parse_lenient("'hi'").value == "hi"
    nan = parse_lenient("NaN")
    assert nan.value is None
    assert _kinds(nan) == [(K.NON_FINITE, "$")]
    assert nan.repairs[0].lossy


@pytest.mark.parametrize("text", ["1e400", "[1, -1e400]", '{"a": 1E999}'])
def test_a_number_too_large_for_a_float_is_read_as_null_with_a_lossy_repair(text: str) -> None:
    parsed = parse_lenient(text)
    assert "inf" not in json.dumps(parsed.value).lower()
    assert [r.kind for r in parsed.repairs] == [K.NON_FINITE]
    assert parsed.repairs[0].lossy


def test_a_key_given_twice_is_read_once_or_marked_as_a_conflict() -> None:
    same = parse_lenient('{"dup": {"a": [1, 2]}, "other": 0, "dup": {"a": [1, 2.0]}}')
    assert same.value == {"dup": {"a": [1, 2]}, "other": 0}
    assert [(r.kind, r.path, r.lossy) for r in same.repairs] == [(K.DUPLICATE_KEY, "$.dup", False)]
    other = parse_lenient('{"dup": 1, "other": 0, "dup": true}')
    assert other.value == {"dup": True, "other": 0}  # the last kept, as JSON readers do
    assert [(r.kind, r.path, r.lossy) for r in other.repairs] == [(K.CONFLICTING_KEY, "$.dup", True)]
    assert other.repairs[0].detail == "given twice, as 1 and as true"


# --- truncation -----------------------------------------------------------------------------------

TRUNCATED: list[tuple[str, Any, list[tuple[RepairKind, str]]]] = [
    ('{"a": 1, "b": 2', {"a": 1, "b": 2}, [(K.TRUNCATED, "$")]),
    (
        '{"answer": "The race was held on July 26, 2009, at the 1.973-mile (3.175 km',
        {"answer": "The race was held on July 26, 2009, at the 1.973-mile (3.175 km"},
        [(K.TRUNCATED, "$.answer")],
    ),
    ('[{"a":1}, {"b": ', [{"a": 1}, {}], [(K.INCOMPLETE_ITEM, "$[1].b"), (K.TRUNCATED, "$[1]")]),
    ('{"a": 12', {"a": 12}, [(K.TRUNCATED, "$")]),
    ("[1, 2, 3", [1, 2, 3], [(K.TRUNCATED, "$")]),
    ('"hello', "hello", [(K.TRUNCATED, "$")]),
    ('{"a": [1, 2', {"a": [1, 2]}, [(K.TRUNCATED, "$.a")]),
    ('{"a": {"b": "xy', {"a": {"b": "xy"}}, [(K.TRUNCATED, "$.a.b")]),
    ('{"a": 1, "b', {"a": 1}, [(K.INCOMPLETE_ITEM, "$.b"), (K.TRUNCATED, "$")]),
    ('{"a": 1, "b"', {"a": 1}, [(K.INCOMPLETE_ITEM, "$.b"), (K.TRUNCATED, "$")]),
    ('{"a": 1, "b": ', {"a": 1}, [(K.INCOMPLETE_ITEM, "$.b"), (K.TRUNCATED, "$")]),
    ('{"a": 1,', {"a": 1}, [(K.TRUNCATED, "$")]),
    ('{"a": tru', {}, [(K.INCOMPLETE_ITEM, "$.a"), (K.TRUNCATED, "$")]),
    ("[true, nul", [True], [(K.INCOMPLETE_ITEM, "$[1]"), (K.TRUNCATED, "$")]),
    ("[1, -", [1], [(K.INCOMPLETE_ITEM, "$[1]"), (K.TRUNCATED, "$")]),
    ("[1, 1.", [1], [(K.INCOMPLETE_ITEM, "$[1]"), (K.TRUNCATED, "$")]),
    ("[1, 1e", [1], [(K.INCOMPLETE_ITEM, "$[1]"), (K.TRUNCATED, "$")]),
    ("[1, 2e-", [1], [(K.INCOMPLETE_ITEM, "$[1]"), (K.TRUNCATED, "$")]),
    ('{"a": true', {"a": True}, [(K.TRUNCATED, "$")]),
    ('{"a": "b\\', {"a": "b"}, [(K.TRUNCATED, "$.a")]),
    ('["\\u00', [""], [(K.TRUNCATED, "$[0]")]),
    ('{"a": 1 // note', {"a": 1}, [(K.COMMENT, "$"), (K.TRUNCATED, "$")]),
    ('{"a": 1 /* note', {"a": 1}, [(K.COMMENT, "$"), (K.TRUNCATED, "$")]),
    ("[1, 2, ...", [1, 2], [(K.ELLIPSIS, "$[2]"), (K.TRUNCATED, "$")]),
    ('{"name": Weiss Sav', {"name": "Weiss Sav"}, [(K.UNQUOTED_STRING, "$.name"), (K.TRUNCATED, "$")]),
    ('{"id": ObjectId("ab', {"id": "ab"}, [(K.WRAPPER_CALL, "$.id"), (K.TRUNCATED, "$.id")]),
    (
        '{"a": 1, "id": ObjectId(',
        {"a": 1},
        [(K.WRAPPER_CALL, "$.id"), (K.INCOMPLETE_ITEM, "$.id"), (K.TRUNCATED, "$.id")],
    ),
    ("{'a': 'it", {"a": "it"}, [(K.SINGLE_QUOTES, "$.a"), (K.SINGLE_QUOTES, "$.a"), (K.TRUNCATED, "$.a")]),
]


@pytest.mark.parametrize(("text", "expected", "repairs"), TRUNCATED)
def test_truncated_text_is_closed_and_flagged(text: str, expected: Any, repairs: list[tuple[RepairKind, str]]) -> None:
    parsed = parse_lenient(text)
    assert _same(parsed.value, expected)
    assert _kinds(parsed) == repairs
    assert parsed.complete is False
    assert parsed.end == len(text)


def test_truncation_detail_lists_what_was_closed() -> None:
    parsed = parse_lenient('{"answer": "The race was held on July 26, 2009, at the 1.973-mile (3.175 km')
    (repair,) = parsed.repairs
    assert repair.detail == "text ended; closed string, object"
    assert repair.lossy


# --- errors: no value, or a guess that would change meaning ---------------------------------------

ERRORS: list[tuple[str, int]] = [
    ('{"a": }', 6),
    ('{"a": ,"b": 1}', 6),
    ("hello", 0),
    ("", 0),
    ("   ", 0),
    ("tru", 0),
    ("-", 0),
    ('{"a" 1}', 5),
    ('{"a": 1 Thanks!}', 14),
    ("[1,,2]", 3),
    ("[,1]", 1),
    ("{,}", 1),
    ("]", 0),
    ("callback()", 9),
    ("ObjectId(", 0),
    ("[1, 2}", 5),
    ("{<b>: 1}", 1),
    ('{"a": \u00a0}', 6),
]


@pytest.mark.parametrize(("text", "pos"), ERRORS)
def test_no_value_raises_with_its_position(text: str, pos: int) -> None:
    with pytest.raises(LenientParseError) as caught:
        parse_lenient(text)
    assert caught.value.pos == pos
    assert isinstance(caught.value, ValueError)


# --- deep nesting ---------------------------------------------------------------------------------


def test_nesting_to_the_limit_is_read() -> None:
    parsed = parse_lenient("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert parsed.repairs == []
    assert _depth(parsed.value) == MAX_DEPTH


def test_deep_nesting_with_a_repair() -> None:
    parsed = parse_lenient("[" * 100 + "1," + "]" * 100)
    assert _kinds(parsed) == [(K.TRAILING_COMMA, "$" + "[0]" * 99)]
    assert _depth(parsed.value) == 100


def test_deep_truncated_nesting() -> None:
    parsed = parse_lenient('{"a":' * 100 + "[1")
    assert parsed.complete is False
    assert _kinds(parsed) == [(K.TRUNCATED, "$" + ".a" * 100)]
    assert _depth(parsed.value) == 101


def test_deep_single_quoted_objects_record_every_level() -> None:
    parsed = parse_lenient("{'a':" * 100 + "1" + "}" * 100)
    assert len(parsed.repairs) == 100
    assert parsed.repairs[-1].path == "$" + ".a" * 100
    assert _depth(parsed.value) == 100


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "[" * 3000 + "1," + "]" * 3000,
        '{"a":' * 3000 + "[1",
        "{'a':" * 3000 + "1" + "}" * 3000,
        "[" * 3000 + "}" + "]" * 3000,
        "f(" * 3000 + "1" + ")" * 3000,
    ],
    ids=["valid", "repaired", "cut", "single-quoted", "invalid", "calls"],
)
def test_nesting_deeper_than_the_limit_stops_the_reading_there(text: str) -> None:
    with pytest.raises(OutputInvalidError) as caught:
        parse_lenient(text)
    assert caught.value.errors[0].kind == "depth"
    stopped = int(caught.value.errors[0].message.split("reading stopped at character ")[1].split(")")[0])
    assert stopped < len(text) // 10  # at the first level too deep, not after reading the rest


# --- corpora --------------------------------------------------------------------------------------


def _parity_cases(corpora: Path) -> list[dict[str, Any]]:
    data = json.loads((corpora / "json-repair-fixtures/jsonrepair-rs/parity_cases.json").read_text("utf-8"))
    cases: list[dict[str, Any]] = data["cases"]
    return cases


def test_parity_cases(corpora: Path) -> None:
    cases = _parity_cases(corpora)
    checked = []
    for case in cases:
        if case["category"] in ("ndjson", "llm-markdown"):
            continue  # several values or a fence: see test_output_locate
        parsed = parse_lenient(case["input"])
        assert _same(parsed.value, json.loads(case["expected"])), case["name"]
        kinds = {r.kind for r in parsed.repairs}
        if case["category"] == "truncation":
            assert K.TRUNCATED in kinds, case["name"]
            assert parsed.complete is False, case["name"]
        elif case["category"] == "ellipsis":
            assert K.ELLIPSIS in kinds, case["name"]
            assert parsed.complete is True, case["name"]
        elif case["category"] == "valid-json":
            assert parsed.repairs == [], case["name"]
        else:
            assert parsed.complete is True, case["name"]
            assert parsed.repairs, case["name"]
            assert not kinds & LOSSY_KINDS, case["name"]
        checked.append(case["category"])
    assert len(checked) == 16
    assert checked.count("truncation") == 3


def test_json_repair_invalid_file(corpora: Path) -> None:
    folder = corpora / "json-repair-fixtures/json_repair"
    text = (folder / "invalid.json").read_text("utf-8")
    parsed = parse_lenient(text)
    assert _same(parsed.value, json.loads((folder / "valid.json").read_text("utf-8")))
    assert _kinds(parsed) == [(K.UNQUOTED_STRING, "$[5].friends[1].name"), (K.TRUNCATED, "$")]
    assert parsed.complete is False
    assert (parsed.start, parsed.end) == (0, len(text))
