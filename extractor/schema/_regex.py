"""The regular-expression features a `pattern` uses, for dialects whose regex engine lacks some.

JSON Schema patterns are ECMA-262 regular expressions (pydantic writes Python ones); providers run
them with engines of their own (Rust's `regex` crate and the like), which lack lookarounds,
backreferences and other backtracking features. A scan, not a parse: it finds those features in
any of these syntaxes without judging whether the rest of the pattern is valid.
"""

from __future__ import annotations

import re

__all__ = ["BACKTRACKING_FEATURES", "regex_features"]

#: the features a backtracking-free engine (an automaton, as constrained decoding needs) cannot run
BACKTRACKING_FEATURES = frozenset(
    {
        "lookahead", "lookbehind", "backreference", "lazy quantifier", "possessive quantifier",
        "atomic group", "conditional group", "recursion",
    }
)  # fmt: skip

#: group openings after "(" and the feature each one is
_GROUPS = (
    ("?<=", "lookbehind"),
    ("?<!", "lookbehind"),
    ("?=", "lookahead"),
    ("?!", "lookahead"),
    ("?>", "atomic group"),
    ("?(", "conditional group"),
    ("?P=", "backreference"),
    ("?P>", "recursion"),
    ("?&", "recursion"),
    ("?R", "recursion"),
)
_GROUP_RECURSION = re.compile(r"\?[+-]?[0-9]+\)")
_COUNTED = re.compile(r"\{[0-9]*,?[0-9]*\}")


def regex_features(pattern: str) -> frozenset[str]:
    """The features of `BACKTRACKING_FEATURES` that `pattern` uses (empty for a plain pattern)."""
    found: set[str] = set()
    index, end = 0, len(pattern)
    in_class = False
    quantified = False  # the previous token is a quantifier (a "?" or "+" after it is lazy or possessive)
    while index < end:
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            if not in_class and (
                escaped in tuple("123456789") or (escaped in ("k", "g") and pattern[index + 2 : index + 3] in "<{'")
            ):
                found.add("backreference")
            index += 2
            quantified = False
            continue
        if in_class:
            in_class = char != "]"
            index += 1
            continue
        if char == "[":
            in_class = True
            index += 1
            if pattern[index : index + 1] == "^":
                index += 1
            if pattern[index : index + 1] == "]":  # a "]" first in a class is a literal in most engines
                index += 1
            quantified = False
            continue
        if char == "(":
            rest = pattern[index + 1 : index + 5]
            for opening, feature in _GROUPS:
                if rest.startswith(opening):
                    found.add(feature)
                    break
            else:
                if _GROUP_RECURSION.match(pattern, index + 1):
                    found.add("recursion")
            index += 2 if rest.startswith("?") else 1  # the "?" of a group's syntax is no quantifier
            quantified = False
            continue
        if char in "*+?":
            if quantified:
                found.add("lazy quantifier" if char == "?" else "possessive quantifier")
                quantified = False
            else:
                quantified = True
            index += 1
            continue
        if char == "{":
            counted = _COUNTED.match(pattern, index)
            if counted is not None and counted.group() not in ("{}", "{,}"):
                quantified = True
                index = counted.end()
                continue
        quantified = False
        index += 1
    return frozenset(found)
