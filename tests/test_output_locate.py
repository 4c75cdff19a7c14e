"""Locating the answer: reasoning blocks, fences, prose, doubly-encoded JSON, scalars, spans, speed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from extractor import OutputInvalidError
from extractor.output.locate import Candidate, find_candidates, strip_reasoning
from extractor.output.repairs import Repair, RepairKind

K = RepairKind


def _kinds(candidate: Candidate) -> list[tuple[RepairKind, str]]:
    return [(r.kind, r.path) for r in candidate.repairs]


def _only(text: str) -> Candidate:
    candidates = find_candidates(text)
    assert len(candidates) == 1, candidates
    return candidates[0]


# --- strip_reasoning ------------------------------------------------------------------------------


def test_strip_reasoning_removes_every_block_in_any_case() -> None:
    text = '<THINK>a {"x": 0}</THINK>{"a": 1}<thinking>b</thinking> <Reasoning type="x">c</reasoning>!'
    remaining, repairs, unterminated = strip_reasoning(text)
    assert remaining == '{"a": 1} !'
    assert [(r.kind, r.path, r.detail) for r in repairs] == [
        (K.REASONING_BLOCK, "$", "<think> block removed"),
        (K.REASONING_BLOCK, "$", "<thinking> block removed"),
        (K.REASONING_BLOCK, "$", "<reasoning> block removed"),
    ]
    assert unterminated is False


def test_strip_reasoning_unterminated_block_runs_to_the_end() -> None:
    remaining, repairs, unterminated = strip_reasoning('before <think>and {"a": 1} never closed')
    assert remaining == "before "
    assert repairs == [Repair(K.REASONING_BLOCK, "$", "unterminated <think> block removed to the end")]
    assert unterminated is True


def test_strip_reasoning_lone_closing_tag_removes_what_precedes_it() -> None:
    remaining, repairs, unterminated = strip_reasoning('the prompt opened the block\n</think>\n{"a": 1}')
    assert remaining == '\n{"a": 1}'
    assert [r.kind for r in repairs] == [K.REASONING_BLOCK]
    assert unterminated is False


def test_strip_reasoning_leaves_other_text_alone() -> None:
    text = 'a < b and <thought>not a reasoning tag</thought> {"a": 1}'
    assert strip_reasoning(text) == (text, [], False)


def test_strip_reasoning_closing_tag_must_match() -> None:
    remaining, _repairs, unterminated = strip_reasoning("<think>x</reasoning> y")
    assert remaining == ""
    assert unterminated is True


# --- whole answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ['{"a": 1}', "  [1, 2]\n", '"plain"', "42", "null", '{"deep": [[[{"x": "\\u00e9"}]]]}']
)
def test_valid_json_is_one_candidate_without_repairs(text: str) -> None:
    candidate = _only(text)
    assert candidate.value == json.loads(text)
    assert candidate.repairs == []
    assert candidate.complete is True
    assert (candidate.start, candidate.end) == (len(text) - len(text.lstrip()), len(text.rstrip()))


@pytest.mark.parametrize(
    ("text", "value", "repairs"),
    [
        ("True", True, [(K.PYTHON_LITERAL, "$")]),
        ("  -3.5 ", -3.5, []),
        ("'yes'", "yes", [(K.SINGLE_QUOTES, "$")]),
        ("NaN", None, [(K.NON_FINITE, "$")]),
    ],
)
def test_scalar_answers(text: str, value: Any, repairs: list[tuple[RepairKind, str]]) -> None:
    candidate = _only(text)
    assert candidate.value == value
    assert _kinds(candidate) == repairs


@pytest.mark.parametrize(
    "text", ["", "   ", "The answer is 42", "I cannot help with that.", "42 apples", "tru", "{placeholder}"]
)
def test_bare_text_is_no_candidate(text: str) -> None:
    assert find_candidates(text) == []


def test_limit() -> None:
    text = " ".join(f'{{"i": {i}}}' for i in range(30))
    assert [c.value["i"] for c in find_candidates(text)] == list(range(16))
    assert [c.value["i"] for c in find_candidates(text, limit=3)] == [0, 1, 2]
    assert find_candidates(text, limit=0) == []


# --- prose, fences, reasoning ---------------------------------------------------------------------


def test_prose_around_the_value() -> None:
    text = 'Sure! Here is the data:\n{"a": 1, "b": [2]}\nReasoning: because the text says so.'
    candidate = _only(text)
    assert candidate.value == {"a": 1, "b": [2]}
    assert _kinds(candidate) == [(K.PROSE, "$")]
    assert text[candidate.start : candidate.end] == '{"a": 1, "b": [2]}'
    assert candidate.complete is True


def test_braces_in_prose_do_not_hide_the_answer() -> None:
    text = "With $\\frac{a}{b}$ and {name} in a template, function f() { return 1; }\n{'a': 1}"
    candidate = _only(text)
    assert candidate.value == {"a": 1}
    assert text[candidate.start : candidate.end] == "{'a': 1}"


def test_starts_inside_a_found_value_are_skipped() -> None:
    text = 'Result: {"a": {"b": [1, {"c": 2}]}} ok'
    candidate = _only(text)
    assert candidate.value == {"a": {"b": [1, {"c": 2}]}}


def test_several_values_are_separate_candidates_in_order() -> None:
    text = 'Example: {"a": 0}. Answer: {"a": 1}'
    candidates = find_candidates(text)
    assert [c.value for c in candidates] == [{"a": 0}, {"a": 1}]
    assert [_kinds(c) for c in candidates] == [[(K.PROSE, "$")], [(K.PROSE, "$")]]
    assert [text[c.start : c.end] for c in candidates] == ['{"a": 0}', '{"a": 1}']


def test_ndjson_values_are_candidates_without_prose() -> None:
    text = '{"a":1}\n{"b":2}\n[3]'
    candidates = find_candidates(text)
    assert [c.value for c in candidates] == [{"a": 1}, {"b": 2}, [3]]
    assert all(c.repairs == [] for c in candidates)


@pytest.mark.parametrize("opener", ["```json", "```JSON", "```", "~~~json", "````json"])
def test_fence(opener: str) -> None:
    closer = opener.rstrip("jsonJSON")
    text = f"Here you go:\n{opener}\n{{'a': 1,}}\n{closer}\nAnything else?"
    candidate = _only(text)
    assert candidate.value == {"a": 1}
    assert _kinds(candidate) == [
        (K.FENCE, "$"),
        (K.PROSE, "$"),
        (K.SINGLE_QUOTES, "$.a"),
        (K.TRAILING_COMMA, "$"),
    ]
    assert text[candidate.start : candidate.end] == "{'a': 1,}"


def test_fence_alone_is_not_prose() -> None:
    text = '```json\n{"a": 1}\n```'
    candidate = _only(text)
    assert candidate.value == {"a": 1}
    assert candidate.repairs == [Repair(K.FENCE, "$", "```json fence")]
    assert (candidate.start, candidate.end) == (8, 16)


def test_fenced_values_come_before_values_outside_fences() -> None:
    text = 'The schema is {"type": "object"}.\n```json\n{"a": 1}\n```\n```json\n{"a": 2}\n```'
    candidates = find_candidates(text)
    assert [c.value for c in candidates] == [{"a": 1}, {"a": 2}]
    assert [[r.kind for r in c.repairs] for c in candidates] == [[K.FENCE, K.PROSE], [K.FENCE, K.PROSE]]


def test_fences_without_json_fall_back_to_the_whole_text() -> None:
    text = '```python\nx = 1\n```\n{"a": 1}'
    candidate = _only(text)
    assert candidate.value == {"a": 1}
    assert _kinds(candidate) == [(K.PROSE, "$")]


def test_fence_marks_inside_a_json_string_do_not_close_the_fence() -> None:
    text = 'Answer:\n```json\n{"code": "```py\\nx = 1\\n```", "n": 1,}\n```'
    candidate = _only(text)
    assert candidate.value == {"code": "```py\nx = 1\n```", "n": 1}


def test_unclosed_fence_runs_to_the_end_and_the_value_is_truncated() -> None:
    text = '```json\n{"a": 1, "b": [1, 2'
    candidate = _only(text)
    assert candidate.value == {"a": 1, "b": [1, 2]}
    assert candidate.complete is False
    assert _kinds(candidate) == [(K.FENCE, "$"), (K.TRUNCATED, "$.b")]
    assert candidate.repairs[0].detail == "```json fence, never closed"
    assert (candidate.start, candidate.end) == (8, len(text))


def test_reasoning_blocks_are_removed_and_spans_refer_to_the_original_text() -> None:
    text = '<think>maybe {"a": 0}?</think>\n<reasoning>\nno\n</reasoning>{"a": 1} <think>x</think>'
    candidate = _only(text)
    assert candidate.value == {"a": 1}
    assert _kinds(candidate) == [(K.REASONING_BLOCK, "$")] * 3
    assert text[candidate.start : candidate.end] == '{"a": 1}'


def test_value_split_by_a_reasoning_block_maps_its_span_across_it() -> None:
    text = '{"a": 1, <think>hmm</think>"b": 2,}'
    candidate = _only(text)
    assert candidate.value == {"a": 1, "b": 2}
    assert (candidate.start, candidate.end) == (0, len(text))


def test_reasoning_fence_and_prose_together() -> None:
    text = '<think>plan</think>\nHere it is:\n```json\n{"a": [1, 2, ...]}\n```'
    candidate = _only(text)
    assert _kinds(candidate) == [(K.REASONING_BLOCK, "$"), (K.FENCE, "$"), (K.PROSE, "$"), (K.ELLIPSIS, "$.a[2]")]
    assert text[candidate.start : candidate.end] == '{"a": [1, 2, ...]}'
    assert candidate.complete is True


def test_unterminated_reasoning_leaves_no_answer() -> None:
    assert find_candidates('<think>Let me produce {"a": 1} and') == []


def test_answer_before_an_unterminated_block_is_kept() -> None:
    candidate = _only('{"a": 1}\n<think>more')
    assert candidate.value == {"a": 1}
    assert candidate.repairs == [Repair(K.REASONING_BLOCK, "$", "unterminated <think> block removed to the end")]


def test_truncated_answer_after_prose() -> None:
    text = 'Here: {"answer": "The race was held on July 26, 2009, at the 1.973-mile (3.175 km'
    candidate = _only(text)
    assert candidate.complete is False
    assert _kinds(candidate) == [(K.PROSE, "$"), (K.TRUNCATED, "$.answer")]
    assert candidate.end == len(text)


def test_jsonp_wrapper_in_prose() -> None:
    text = 'Sure: callback({"a": 1}); done'
    candidate = _only(text)
    assert candidate.value == {"a": 1}
    assert _kinds(candidate) == [(K.PROSE, "$"), (K.WRAPPER_CALL, "$")]
    assert text[candidate.start : candidate.end] == 'callback({"a": 1});'


# --- doubly-encoded -------------------------------------------------------------------------------


def test_whole_answer_a_json_string_holding_an_object() -> None:
    text = json.dumps(json.dumps({"a": [1, "x"]}))
    candidate = _only(text)
    assert candidate.value == {"a": [1, "x"]}
    assert _kinds(candidate) == [(K.DOUBLE_ENCODED, "$")]
    assert (candidate.start, candidate.end) == (0, len(text))


def test_fenced_json_string_holding_an_array_with_repairs() -> None:
    text = '```json\n"[1, 2,]"\n```'
    candidate = _only(text)
    assert candidate.value == [1, 2]
    assert _kinds(candidate) == [(K.FENCE, "$"), (K.DOUBLE_ENCODED, "$"), (K.TRAILING_COMMA, "$")]


def test_a_string_of_bracketed_prose_stays_a_string() -> None:
    candidate = _only('"[citation needed]"')
    assert candidate.value == "[citation needed]"
    assert candidate.repairs == []


# --- corpora and speed ----------------------------------------------------------------------------


def _parity_cases(corpora: Path) -> list[dict[str, Any]]:
    data = json.loads((corpora / "json-repair-fixtures/jsonrepair-rs/parity_cases.json").read_text("utf-8"))
    cases: list[dict[str, Any]] = data["cases"]
    return cases


def test_parity_ndjson_case_gives_one_candidate_per_line(corpora: Path) -> None:
    (case,) = [c for c in _parity_cases(corpora) if c["category"] == "ndjson"]
    candidates = find_candidates(case["input"])
    assert [c.value for c in candidates] == json.loads(case["expected"])
    assert all(c.complete and not c.repairs for c in candidates)


def test_parity_markdown_cases(corpora: Path) -> None:
    cases = [c for c in _parity_cases(corpora) if c["category"] == "llm-markdown"]
    assert len(cases) == 2
    for case in cases:
        candidate = _only(case["input"])
        assert candidate.value == json.loads(case["expected"]), case["name"]
        assert candidate.repairs[0].kind is K.FENCE, case["name"]
        assert K.PROSE not in {r.kind for r in candidate.repairs}, case["name"]
        assert candidate.complete is True


def test_parity_cases_through_find_candidates(corpora: Path) -> None:
    for case in _parity_cases(corpora):
        values = [c.value for c in find_candidates(case["input"])]
        expected = json.loads(case["expected"])
        assert values == (expected if case["category"] == "ndjson" else [expected]), case["name"]


def _big_document() -> str:
    items = [
        {"id": i, "name": f"Item {i} \u201cq\u201d", "price": i * 1.25, "tags": ["a", "b"], "ok": i % 2 == 0}
        for i in range(1200)
    ]
    return json.dumps({"items": items, "total": 10**20})


def _best_seconds(text: str) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        find_candidates(text)
        best = min(best, time.perf_counter() - started)
    return best


def test_large_prose_wrapped_answer_is_fast() -> None:
    document = _big_document()
    assert len(document) > 100_000
    text = "Here is the extraction [as requested]:\n\n" + document + "\n\nReasoning: I read {every} line."
    candidates = find_candidates(text)
    assert [c.value for c in candidates] == [["as requested"], json.loads(document)]
    assert _best_seconds(text) < 0.05


def test_large_valid_answer_is_fast() -> None:
    document = _big_document()
    assert _only(document).repairs == []
    assert _best_seconds(document) < 0.05


def test_deep_nesting_is_located_without_recursion_error() -> None:
    text = "Answer: " + "[" * 100 + "1," + "]" * 100
    candidate = _only(text)
    assert _kinds(candidate) == [(K.PROSE, "$"), (K.TRAILING_COMMA, "$" + "[0]" * 99)]
    for deep in ("[" * 3000 + "]" * 3000, "Answer: " + "[" * 3000 + "1," + "]" * 3000):
        with pytest.raises(OutputInvalidError, match="nested deeper"):
            find_candidates(deep)  # the reader stops at the first level too deep
