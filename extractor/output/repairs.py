"""The record of a local repair applied to a model's answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = ["LOSSY_KINDS", "UNREADABLE_KINDS", "Repair", "RepairKind", "summarize_repairs"]


class RepairKind(str, Enum):
    """What was changed. Lossless kinds only remove noise or fix syntax; lossy kinds guess."""

    # finding the answer in the text
    REASONING_BLOCK = "reasoning block"  # <think>...</think>, <reasoning>...</reasoning> removed
    FENCE = "fence"  # ```json ... ``` removed
    PROSE = "prose"  # text before or after the JSON value removed
    CHOSEN_CANDIDATE = "chosen candidate"  # several JSON values in the text; the best fit was taken
    DOUBLE_ENCODED = "double encoded"  # a JSON string holding the JSON value
    # lossless syntax repairs
    TRAILING_COMMA = "trailing comma"
    MISSING_COMMA = "missing comma"
    COMMENT = "comment"
    SINGLE_QUOTES = "single quotes"
    CURLY_QUOTES = "curly quotes"
    UNQUOTED_KEY = "unquoted key"
    UNQUOTED_STRING = "unquoted string"
    PYTHON_LITERAL = "python literal"  # True/False/None
    JS_LITERAL = "js literal"  # undefined
    CONTROL_CHARACTER = "control character"  # raw newline or tab inside a string escaped
    INVALID_ESCAPE = "invalid escape"  # a backslash before a character JSON does not escape, kept literally
    WRAPPER_CALL = "wrapper call"  # callback({...}), ObjectId("..."), NumberLong("...")
    NUMBER_FORMAT = "number format"  # +1, .5, 5., -2,000.00 (in an object) read as the numbers they spell
    TRIPLE_QUOTES = "triple quotes"  # """abc""" read as "abc"
    DUPLICATE_KEY = "duplicate key"  # {"a": 1, "a": 1}: a key given twice with the same value, read once
    UNESCAPED_QUOTE = "unescaped quote"  # "the words of "Gemini Dream"?": the one reading that fits the schema
    # schema-aligned repairs
    KEY_CASE = "key case"  # "Answer" -> "answer", camelCase/snake_case/spaces, aliases
    WRAPPED_LIST = "wrapped list"  # a bare array put into the object's only required field
    WRAPPED_SCALAR = "wrapped scalar"  # a bare scalar put into the object's only required field
    SINGLE_TO_LIST = "single to list"  # one object where a list is expected
    ENUM_CASE = "enum case"  # " paid" -> "PAID"
    NUMBER_STRING = "number string"  # "1,234.50" -> 1234.5
    BOOL_STRING = "bool string"  # "yes" -> true
    NULL_STRING = "null string"  # "null" -> null where the schema allows null
    EXTRA_KEY = "extra key"  # a key the schema does not have, dropped
    WRAPPED_OBJECT = "wrapped object"  # an object put into the object's only field (e.g. the root's `value`)
    MAP_OBJECT = "map as object"  # {"a": 1} where the compiled map wants [{"key": "a", "value": 1}]
    TUPLE_LIST = "tuple as list"  # [1, "a"] where the compiled tuple wants {"item_0": 1, "item_1": "a"}
    INLINE_JSON = "inline json"  # an object where the schema wants it written as a JSON string
    NUMBER_TEXT = "number text"  # 1.50 where the schema wants a string: its text as written, "1.50"
    SINGLE_ITEM = "single item"  # ["TWO"] where one value is wanted: the one item
    NAMED_LIST = "named list"  # {"tasks": [...]} where the list itself is wanted: the list
    # lossy repairs: only with allow_partial=True
    TRUNCATED = "truncated"  # a string, array or object cut off and closed
    INCOMPLETE_ITEM = "incomplete item"  # an incomplete trailing array item dropped
    ELLIPSIS = "ellipsis"  # "..." standing for elided items dropped
    MISSING_FIELD = "missing field"  # a required field absent, filled with null
    FRAGMENT = "fragment"  # a value inside a larger one that cannot be read: the rest of that one dropped
    SPLIT_VALUE = "split value"  # text glued to a closing quote read as one more item: the quote may be the string's
    NON_FINITE = "non-finite number"  # NaN, Infinity, 1e999: no JSON number (nor a float), read as null
    CONFLICTING_KEY = "conflicting key"  # {"a": 1, "a": 2}: a key given twice with two values, the last kept


#: lossy kinds where the text as written cannot be read as one JSON value (not a cut-off answer)
UNREADABLE_KINDS = frozenset(
    {RepairKind.FRAGMENT, RepairKind.SPLIT_VALUE, RepairKind.NON_FINITE, RepairKind.CONFLICTING_KEY}
)
#: every lossy kind: applied only with allow_partial=True
LOSSY_KINDS = UNREADABLE_KINDS | {
    RepairKind.TRUNCATED,
    RepairKind.INCOMPLETE_ITEM,
    RepairKind.ELLIPSIS,
    RepairKind.MISSING_FIELD,
}


@dataclass(frozen=True)
class Repair:
    """One change made to the answer: its kind, where (a JSON path, `$` for the whole answer) and a note."""

    kind: RepairKind
    path: str = "$"
    detail: str = ""

    @property
    def lossy(self) -> bool:
        """True when the repair guessed (closing a cut-off value, filling a missing field)."""
        return self.kind in LOSSY_KINDS

    def __str__(self) -> str:
        note = f" ({self.detail})" if self.detail else ""
        return f"{self.kind.value} at {self.path}{note}"


def summarize_repairs(repairs: Iterable[Repair]) -> dict[str, int]:
    """Counts per repair kind, most frequent first: `{"fence": 30, "key case": 5}`."""
    counts = Counter(r.kind.value for r in repairs)
    return dict(counts.most_common())
