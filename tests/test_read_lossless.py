"""The reader never loses data silently: cases taken from other libraries' public test suites.

Each test gives the exact answer text and asserts the exact value read, or the refusal: its error
type and that its message names the problem. With `allow_partial=True` a lossy reading is applied
and reported as lossy; without it, it is refused with an error a re-ask can act on.
"""

from __future__ import annotations

import asyncio
import json
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from extractor import (
    Extractor,
    OutputInvalidError,
    Partial,
    RepairKind,
    RetryPolicy,
    compile_schema,
)
from extractor.output.syntax import parse_lenient
from extractor.testing import Reply, TestServer

K = RepairKind


def kinds(repairs: list[Any]) -> list[tuple[str, str]]:
    return [(r.kind.value, r.path) for r in repairs]


def lossy(repairs: list[Any]) -> list[str]:
    return [r.kind.value for r in repairs if r.lossy]


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    kwargs.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", **kwargs)


# --- 1. list items are never dropped ---------------------------------------------------------------


class Transaction(BaseModel):
    date: str
    description: str
    transaction_amount: float


TRANSACTIONS = """[
  {"date": "2024-01-01", "description": "Rent", "transaction_amount": -2,000.00},
  {"date": "2024-01-02", "description": "Coffee", "transaction_amount": -4.5},
  {"date": "2024-01-03", "description": "Salary", "transaction_amount": 3,250.75},
  {"date": "2024-01-04", "description": "Books", "transaction_amount": -30},
  {"date": "2024-01-05", "description": "Car", "transaction_amount": -12,500.00}
]"""


def test_unquoted_amounts_with_separators_keep_every_record() -> None:
    result = compile_schema(list[Transaction]).parse_result(TRANSACTIONS)
    assert [t.transaction_amount for t in result.value] == [-2000.0, -4.5, 3250.75, -30.0, -12500.0]
    assert [t.description for t in result.value] == ["Rent", "Coffee", "Salary", "Books", "Car"]
    assert kinds(result.repairs) == [
        ("number format", "$[0].transaction_amount"),
        ("number format", "$[2].transaction_amount"),
        ("number format", "$[4].transaction_amount"),
    ]
    assert [r.detail for r in result.repairs] == [
        "-2,000.00 read as -2000.00",
        "3,250.75 read as 3250.75",
        "-12,500.00 read as -12500.00",
    ]


AMBIGUOUS = """[
  {"date": "2024-01-01", "description": "Rent", "transaction_amount": 1,234},
  {"date": "2024-01-02", "description": "Coffee", "transaction_amount": -4.5},
  {"date": "2024-01-03", "description": "Books", "transaction_amount": -30}
]"""


def test_an_ambiguous_unquoted_amount_is_refused_never_its_record_dropped() -> None:
    cs = compile_schema(list[Transaction])
    with pytest.raises(OutputInvalidError) as info:
        cs.parse(AMBIGUOUS)
    assert info.value.message == "the answer's JSON cannot be read as one value"
    (detail,) = info.value.errors
    assert detail.kind == "fragment"
    assert "ambiguous number '1,234': 1234 if ',' separates thousands, 1.234 if" in detail.message
    # allowed to be partial: the records that can be read, reported as a lossy fragment
    result = cs.parse_result(AMBIGUOUS, allow_partial=True)
    assert [t.description for t in result.value] == ["Coffee", "Books"]
    assert lossy(result.repairs) == ["fragment", "fragment"]


def test_an_unquoted_number_with_separators_in_a_list_is_refused() -> None:
    """In a list the commas may separate items: "-2,000.00" is one number, or -2 and "000.00"."""
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(list[float]).parse('{"value": [-2,000.00, 15.5]}')
    assert "-2,000.00 in a list is one number with separators or several items" in str(info.value)


def test_a_record_that_cannot_be_read_is_never_dropped_silently() -> None:
    text = '[{"n": 1}, {"n" 2}, {"n": 3}]'  # the second record has no colon
    cs = compile_schema(list[dict[str, int]])
    with pytest.raises(OutputInvalidError) as info:
        cs.parse(text)
    assert info.value.message == "the answer's JSON cannot be read as one value"
    assert [e.kind for e in info.value.errors] == ["fragment"]
    assert "expected ':' after key 'n' at character 16" in info.value.errors[0].message
    assert "the value at characters 0-29 cannot be read, only part of it taken" in info.value.errors[0].message
    result = cs.parse_result(text, allow_partial=True)
    assert result.value == [{"n": 1}, {"n": 3}]
    assert lossy(result.repairs) == ["fragment", "fragment"]


def test_a_list_that_cannot_be_read_beside_one_that_can_is_not_left_out_silently() -> None:
    text = (
        "Part 1:\n```json\n"
        + TRANSACTIONS.replace("3,250.75", "3,250")  # ambiguous: 3250 or 3.25
        + "\n```\nPart 2:\n```json\n"
        + json.dumps([{"date": "2024-02-01", "description": "Gift", "transaction_amount": 50}])
        + "\n```"
    )
    cs = compile_schema(list[Transaction])
    with pytest.raises(OutputInvalidError) as info:
        cs.parse(text)
    assert [e.kind for e in info.value.errors] == ["fragment"]
    assert "ambiguous number '3,250'" in info.value.errors[0].message
    assert "cannot be read and was left out" in info.value.errors[0].message
    result = cs.parse_result(text, allow_partial=True)
    assert [t.description for t in result.value] == ["Gift"]
    assert lossy(result.repairs) == ["fragment"]


def test_an_object_that_cannot_be_read_is_refused_with_where_and_why() -> None:
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(dict[str, int]).parse('{"total" 12}')
    assert info.value.message == "the answer's JSON cannot be read"
    assert info.value.errors[0].message == "expected ':' after key 'total' at character 9: ...{\"total\" 12}..."


class Note(BaseModel):
    s: str


def test_a_triple_quoted_string_is_read_as_the_string_it_holds() -> None:
    text = '[{"s": "first"}, {"s": """second, with "quotes" and\na newline"""}, {"s": "third"}]'
    result = compile_schema(list[Note]).parse_result(text)
    assert [n.s for n in result.value] == ["first", 'second, with "quotes" and\na newline', "third"]
    assert kinds(result.repairs) == [("triple quotes", "$[1].s")]


def test_a_triple_quoted_string_with_a_backslash_is_refused() -> None:
    """Its escapes are Python's, not JSON's: reading them either way would be a guess."""
    with pytest.raises(OutputInvalidError) as info:
        compile_schema(list[Note]).parse('[{"s": "a"}, {"s": """C:\\temp"""}, {"s": "c"}]')
    assert 'a """...""" string with a backslash' in str(info.value)


# --- 2. an unescaped quote does not split a value losslessly ----------------------------------------


def test_an_unescaped_quote_inside_a_string_is_read_there_when_no_split_reads() -> None:
    """Split at the quote, the rest is bare text holding a quote: no reading; inside the string, JSON."""
    text = '["first item", "somet"string with quotes"]'
    cs = compile_schema(list[str])
    for allow_partial in (False, True):
        result = cs.parse_result(text, allow_partial=allow_partial)
        assert result.value == ["first item", 'somet"string with quotes']
        assert kinds(result.repairs) == [("unescaped quote", "$[1]")]


def test_two_strings_glued_at_a_quote_are_a_lossy_split() -> None:
    with pytest.raises(OutputInvalidError, match="split value"):
        compile_schema(list[str]).parse('["a""b"]')
    with pytest.raises(OutputInvalidError, match="split value"):
        compile_schema(dict[str, Any]).parse('{"a": "x"y: 1}')


def test_a_missing_comma_between_whole_values_stays_lossless() -> None:
    """Guards the other direction: values that each end where they say are two items."""
    result = compile_schema(list[str]).parse_result('["a" "b"]')
    assert result.value == ["a", "b"]
    assert kinds(result.repairs) == [("missing comma", "$[1]")]


# --- 3. stream_items reads answers the way parse does -------------------------------------------------


class Task(BaseModel):
    title: str


TASKS = [{"title": "write"}, {"title": "test"}, {"title": "ship"}]


def test_stream_items_yields_nothing_from_an_answer_parse_refuses(server: TestServer, tmp_path: Path) -> None:
    text = json.dumps({"done": [], "tasks": TASKS})  # two lists: which one is the answer?
    with pytest.raises(OutputInvalidError):
        compile_schema(list[Task]).parse(text)
    server.queue(Reply(content=text, chunk_size=5))
    got: list[Task] = []
    with pytest.raises(OutputInvalidError) as info:
        for task in make(server, tmp_path, max_retries=0).stream_items(Task, "text"):
            got.append(task)
    assert got == []
    assert "valid array" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"Value": TASKS}),  # the root's key in another case
        "Here are the tasks:\n```json\n" + json.dumps(TASKS, indent=1) + "\n```",
        json.dumps({"tasks": TASKS}),  # the list inside an object with one key
    ],
    ids=["key case", "fenced", "named list"],
)
def test_stream_items_streams_what_parse_accepts(server: TestServer, tmp_path: Path, text: str) -> None:
    """The other direction: an answer parse reads is streamed record by record, before it ends."""
    assert [t.title for t in compile_schema(list[Task]).parse(text)] == ["write", "test", "ship"]
    server.queue(Reply(content=text, chunk_size=8, cut_after=8), Reply(content=text, chunk_size=8))
    ex = make(server, tmp_path)

    async def main() -> tuple[int, list[str]]:
        stream = ex.astream_items(Task, "text")
        first = await stream.__anext__()
        requests_at_first = len(server.chat_requests)  # the cut stream has not been retried yet
        rest = [task async for task in stream]
        await ex.aclose()
        return requests_at_first, [first.title] + [t.title for t in rest]

    requests, titles = asyncio.run(main())
    assert titles == ["write", "test", "ship"]
    assert requests == 1


# --- 4. deep answers and unfinished numbers ---------------------------------------------------------------

DEEP = "[" * 1001 + "]" * 1001
# a double quote inside single quotes: the bracket count of the text sees a string running to the end
HIDDEN_DEEP = "['\"', " + "[" * 1000 + "]" * 1000 + "]"


@pytest.mark.parametrize("text", [DEEP, HIDDEN_DEEP], ids=["deep", "hidden by a quote"])
def test_a_deep_answer_is_refused_on_every_reading_path(text: str) -> None:
    cs = compile_schema(list[Any])
    for allow_partial in (False, True):
        with pytest.raises(OutputInvalidError) as info:
            cs.parse(text, allow_partial=allow_partial)
        assert info.value.message == "the answer is nested deeper than 128 levels"
        assert "more than 128 levels of nested arrays and objects" in info.value.errors[0].message
    assert cs.parse_partial(text) is None
    with pytest.raises(OutputInvalidError, match="nested deeper"):
        parse_lenient(text)  # the syntax repairer itself stops at the first level too deep, without recursion


def test_stream_items_and_stream_refuse_a_deep_answer(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content=DEEP, chunk_size=64))
    with pytest.raises(OutputInvalidError, match="more than 128 levels of nested arrays and objects"):
        list(make(server, tmp_path, max_retries=0).stream_items(Task, "text"))
    server.queue(Reply(content=HIDDEN_DEEP, chunk_size=64))
    with pytest.raises(OutputInvalidError, match="more than 128 levels of nested arrays and objects"):
        list(make(server, tmp_path, max_retries=0).stream(list[Any], "text"))


class Invoice(BaseModel):
    total: float
    items: list[int] = []


def test_a_partial_never_shows_a_number_still_being_written() -> None:
    cs = compile_schema(Invoice)
    answer = '{"total": 1234, "items": [10, 2048]}'
    seen = [cs.parse_partial(answer[:end]) for end in range(1, len(answer) + 1)]
    totals = {p["total"] for p in seen if p and isinstance(p.get("total"), int | float)}
    items = [p["items"] for p in seen if p and "items" in p]
    assert totals == {1234}
    assert all(i in ([], [10], [10, 2048]) for i in items), items
    assert cs.parse_partial('{"total": "12') != {"total": 12}  # a string being written: "12" may be "1234"
    assert cs.parse_partial('{"total": 12, ') == {"total": 12}  # a delimiter arrived: finished
    number = compile_schema(int)
    assert [number.parse_partial(t) for t in ("1", "12", "123", "1234", "1234\n")] == [None] * 4 + [1234]


def test_stream_partials_never_show_an_unfinished_leading_number(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply(content="1234", chunk_size=1, chunk_delay=0.07))
    events = list(make(server, tmp_path).stream(int, "text"))
    assert [e.data for e in events if isinstance(e, Partial)] == []
    assert events[-1] == 1234


# --- 5. lossless readings other readers make ---------------------------------------------------------


class Coded(BaseModel):
    code: str
    note: str | None = None


@pytest.mark.parametrize(
    ("number", "text"), [("1.50", "1.50"), ("1e3", "1e3"), ("-0", "-0"), ("12", "12"), ("0.10", "0.10")]
)
@pytest.mark.parametrize("schema", [Coded, {"type": "object", "properties": {"code": {"type": "string"}}}])
def test_a_number_where_a_string_is_wanted_is_its_own_text(schema: Any, number: str, text: str) -> None:
    cs = compile_schema(schema)
    for answer in (f'{{"code": {number}, "note": null}}', f"{{'code': {number}, 'note': None,}}"):
        result = cs.parse_result(answer)
        assert cs.dump(result.value)["code"] == text
        assert ("number text", "$.code") in kinds(result.repairs)
        assert not lossy(result.repairs)


def test_numbers_in_a_list_of_strings_are_their_texts() -> None:
    result = compile_schema(list[str]).parse_result("[1, 2.50, 3]")
    assert result.value == ["1", "2.50", "3"]
    assert kinds(result.repairs) == [
        ("wrapped list", "$.value"),
        ("number text", "$.value[0]"),
        ("number text", "$.value[1]"),
        ("number text", "$.value[2]"),
    ]


def test_a_number_is_read_as_a_string_only_where_the_schema_takes_it() -> None:
    class Sized(BaseModel):
        size: Literal["1", "2"]
        count: int | str

    assert compile_schema(Sized).parse('{"size": 2, "count": 3}') == Sized(size="2", count=3)
    with pytest.raises(OutputInvalidError):
        compile_schema(Sized).parse('{"size": 3, "count": 3}')  # "3" is no size either


class Level(str, Enum):
    ONE = "ONE"
    TWO = "TWO"


class Leveled(BaseModel):
    level: Level
    label: str


def test_a_list_of_one_item_where_one_value_is_wanted_is_the_item() -> None:
    result = compile_schema(Leveled).parse_result('{"level": ["two"], "label": ["x"]}')
    assert result.value == Leveled(level=Level.TWO, label="x")
    assert kinds(result.repairs) == [
        ("single item", "$.level"),
        ("enum case", "$.level"),
        ("single item", "$.label"),
    ]
    for answer in ('{"level": ["ONE", "TWO"], "label": "x"}', '{"level": [], "label": "x"}'):
        with pytest.raises(OutputInvalidError):
            compile_schema(Leveled).parse(answer)  # two values, or none: which one is meant?


def test_a_list_root_inside_an_object_is_the_list() -> None:
    result = compile_schema(list[Task]).parse_result(json.dumps({"tasks": TASKS}))
    assert [t.title for t in result.value] == ["write", "test", "ship"]
    assert kinds(result.repairs) == [("named list", "$.value")]
    result = compile_schema(list[Task]).parse_result(json.dumps({"tasks": TASKS, "count": 3}))
    assert [t.title for t in result.value] == ["write", "test", "ship"]
    assert kinds(result.repairs) == [("named list", "$.value"), ("extra key", "$.count")]
    assert compile_schema(list[Task]).parse_partial(json.dumps({"tasks": TASKS})[:-20]) == TASKS[:2]


def test_a_list_root_inside_an_object_is_refused_where_the_object_fits_too() -> None:
    class Project(BaseModel):
        tasks: list[Task]

    class Named(BaseModel):
        title: str | None = None
        tasks: list[Task] = []

    # as one project the object fits once reshaped, the tasks as projects only reshaped: one reading
    result = compile_schema(list[Project]).parse_result(json.dumps({"tasks": TASKS}))
    assert result.value == [Project(tasks=[Task(**t) for t in TASKS])]
    with pytest.raises(OutputInvalidError):  # the tasks fit as named lists, the object as one: two readings
        compile_schema(list[Named]).parse(json.dumps({"tasks": TASKS}))


class Paraphrases(BaseModel):
    paraphrased_questions: list[str]


class Answered(BaseModel):
    answer: str
    confidence: int


@pytest.mark.parametrize(
    ("model", "text", "value", "paths"),
    [
        (
            Paraphrases,
            '{"paraphrased_questions": ["What are the lyrics of "Gemini Dream"?", '
            '"Can you tell me the words of "Gemini Dream"?"]}',
            Paraphrases(
                paraphrased_questions=[
                    'What are the lyrics of "Gemini Dream"?',
                    'Can you tell me the words of "Gemini Dream"?',
                ]
            ),
            ["$.paraphrased_questions[0]", "$.paraphrased_questions[1]"],
        ),
        (
            Answered,
            '```json\n{"answer": "The Moody Blues sang "Gemini Dream", then toured", "confidence": 4}\n```',
            Answered(answer='The Moody Blues sang "Gemini Dream", then toured', confidence=4),
            ["$.answer"],
        ),
    ],
    ids=["questions", "answer"],
)
def test_unescaped_quotes_inside_a_string_are_read_when_one_reading_fits(
    model: type[BaseModel], text: str, value: BaseModel, paths: list[str]
) -> None:
    result = compile_schema(model).parse_result(text)
    assert result.value == value
    assert [p for k, p in kinds(result.repairs) if k == "unescaped quote"] == paths
    assert not lossy(result.repairs)


def test_unescaped_quotes_are_refused_where_no_reading_or_two_fit() -> None:
    with pytest.raises(OutputInvalidError):  # the one reading gives a string where a number is wanted
        compile_schema(Answered).parse('{"answer": "x", "confidence": "4 "high""}')
    with pytest.raises(OutputInvalidError, match="split value"):  # ["a", "b"] or ['a""b']
        compile_schema(list[str]).parse('["a""b"]')
    with pytest.raises(OutputInvalidError):  # a quote that ends a key: the string cannot run past it
        compile_schema(dict[str, str]).parse('{"a": "x "y": "z"}')
