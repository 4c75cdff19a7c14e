"""Numbers written as text ("1,234.50", "$12", "1.234,5 EUR"): read where the text says one number only.

A string is read as a number when one reading alone is possible: "1,234.50" (both marks: the last one
is the decimal mark), "1.234,50", "12.50" (a decimal tail that is not three digits long), "0.125"
(a zero before the mark groups nothing), "1,234,567" (the same mark twice groups thousands), "$12",
"-3", "1e3". A single mark followed by exactly three digits ("1,234", "1.234", "12.500") is
ambiguous: it groups thousands in one convention and is the decimal mark in the other, so such a
string is never read as either.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["NumberReading", "ambiguity_message", "parse_number", "read_bool", "read_number"]

_CURRENCY_PREFIX = re.compile(r"^(?:[A-Z]{3}|US\$|R\$|[$€£¥₹₩₽¢₺₫฿₴₦])\s*")
_CURRENCY_SUFFIX = re.compile(r"\s*(?:[A-Z]{3}|[$€£¥₹₩₽¢₺₫฿₴₦])$")
_JSON_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_THREE_DECIMALS = re.compile(r"^[1-9]\d*\.\d{3}$")
_GROUPED = re.compile(r"^\d[\d.,' \u00a0\u202f]*$")
_SEPARATORS = re.compile(r"[.,' \u00a0\u202f]")


@dataclass(frozen=True)
class NumberReading:
    """What a string says as a number.

    `number` is the number (None when the text is not one, or is ambiguous); `text` the same number
    as exact JSON number text ("-1234.50"), for readers that keep every digit (decimals). For an
    ambiguous text, `mark` is the mark in question and `readings` its two readings ("1234", "1.234").
    """

    number: int | float | None
    text: str = ""
    mark: str = ""
    readings: tuple[str, str] | None = None

    @property
    def ambiguous(self) -> bool:
        """True when the text is a number in two conventions, with two different values."""
        return self.readings is not None


_NOT_A_NUMBER = NumberReading(None)


def read_number(text: str) -> NumberReading:
    """The number `text` spells, with its sign, currency and thousands separators; see the module."""
    s = text.strip().replace("\u2212", "-")
    sign = ""
    if s and s[0] in "+-":
        sign, s = s[0], s[1:].lstrip()
    s = _CURRENCY_PREFIX.sub("", s)
    if s and s[0] in "+-" and not sign:
        sign, s = s[0], s[1:].lstrip()
    s = _CURRENCY_SUFFIX.sub("", s).strip()
    if not s:
        return _NOT_A_NUMBER
    minus = "-" if sign == "-" else ""
    if _JSON_NUMBER.match(s) and not _THREE_DECIMALS.match(s):
        plain: int | float = float(s) if any(c in s for c in ".eE") else int(s)
        if isinstance(plain, float) and not math.isfinite(plain):
            return _NOT_A_NUMBER  # "1e400": no finite number
        return NumberReading(-plain if minus else plain, minus + s)
    if not _GROUPED.match(s):
        return _NOT_A_NUMBER
    marks = [c for c in s if not c.isdigit()]
    decimal = ""
    if "," in marks and "." in marks:
        decimal = marks[-1]  # the last of the two is the decimal mark; the other groups thousands
        if marks.count(decimal) > 1:
            return _NOT_A_NUMBER
    elif "," in marks or "." in marks:
        mark = "," if "," in marks else "."
        head, tail = s.rsplit(mark, 1)
        if marks.count(mark) == 1 and len(tail) != 3:
            decimal = mark  # "1,5" or "12.50": a thousands group would have three digits
        elif marks.count(mark) == 1 and head.strip("0 ") == "":
            decimal = mark  # "0.125"
        elif marks.count(mark) == 1:
            return _ambiguous(minus, head, tail, mark)  # "1,234" / "1.234": either convention could be meant
    whole, _, fraction = s.partition(decimal) if decimal else (s, "", "")
    groups = _SEPARATORS.split(whole)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        return _NOT_A_NUMBER
    digits = "".join(groups)
    if not digits.isdigit() or (fraction and not fraction.isdigit()):
        return _NOT_A_NUMBER
    if decimal:
        exact = f"{digits}.{fraction or '0'}"
        if not math.isfinite(float(exact)):
            return _NOT_A_NUMBER
        return NumberReading(-float(exact) if minus else float(exact), minus + exact)
    return NumberReading(-int(digits) if minus else int(digits), minus + digits)


def _ambiguous(minus: str, head: str, tail: str, mark: str) -> NumberReading:
    """The reading of `head<mark>tail` where the mark may group thousands or be the decimal mark."""
    whole = "".join(_SEPARATORS.split(head))
    if not whole.isdigit() or not tail.isdigit():
        return _NOT_A_NUMBER
    grouped, decimal = f"{minus}{int(whole + tail)}", f"{minus}{int(whole)}.{tail}"
    return NumberReading(None, mark=mark, readings=(grouped, decimal))


_BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def read_bool(text: str) -> bool | None:
    """The boolean a string spells ("true", " Yes", "FALSE", "no"), or None when it spells none."""
    return _BOOL_WORDS.get(text.strip().casefold())


def parse_number(text: str) -> int | float | None:
    """The number a string spells ("1,234.50", "$12", "1.234,5 EUR"), or None when it is not one or
    when it is ambiguous ("1,234" could be 1234 or 1.234)."""
    return read_number(text).number


def ambiguity_message(raw: str, reading: NumberReading) -> str:
    """What to say about an ambiguous number, for the error and the re-ask."""
    assert reading.readings is not None
    grouped, decimal = reading.readings
    return (
        f"ambiguous number {raw!r}: {grouped} if {reading.mark!r} separates thousands, {decimal} if it is "
        "the decimal mark; write the number as a JSON number"
    )
