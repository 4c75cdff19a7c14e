"""One canonical form of a JSON-like value: two values are the same exactly when their forms are equal.

`canonical(value)` is the strict reading: numbers by their exact decimal value (`1`, `1.0` and
`Decimal("1.00")` alike; a float as the shortest text that reads back as it; booleans never numbers),
strings and list order as they are. The merge of a long document's parts asks it whether two parts
hold the same value.

`canonical(value, text=...)` is the loose reading on the same numbers: strings through `text` (case,
spacing...), empty values (None, "", {}, []) dropped, lists as multisets. `extractor eval` asks it
whether OUT holds what GOLD holds, whatever the order.
"""

from __future__ import annotations

import decimal
import json
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["canonical", "canonical_key", "exact_number"]

#: the largest magnitude a float holds: numbers beyond it (1e309) are the same as no float
_FLOAT_MAX = Decimal(sys.float_info.max)
#: exact arithmetic for canonical forms
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def exact_number(value: Any) -> Decimal | None:
    """A number as an exact decimal (a float as the shortest text that reads back as it); None for a
    number no float holds: not finite, or beyond the float range (integers of any size are exact)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal) and value.is_finite() and abs(value) <= _FLOAT_MAX:
        return value
    return None


def canonical(value: Any, *, text: Callable[[str], str] | None = None) -> Any:
    """The canonical form of `value`: strict, or with `text` the loose reading (see the module)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int | float | Decimal):
        exact = exact_number(value)
        if exact is None:
            return ["x", repr(value)]
        return ["n", "0" if exact == 0 else str(exact.normalize(_EXACT))]
    if isinstance(value, str):
        if text is None:
            return ["s", value]
        normal = text(value)
        return ["s", normal] if normal else None
    if isinstance(value, dict):
        if text is None:
            return ["o", {str(k): canonical(v) for k, v in value.items()}]
        kept = {str(k): c for k, v in value.items() if (c := canonical(v, text=text)) is not None}
        return ["o", kept] if kept else None
    if isinstance(value, list | tuple):
        if text is None:
            return ["a", [canonical(v) for v in value]]
        parts = sorted(json.dumps(c, sort_keys=True) for v in value if (c := canonical(v, text=text)) is not None)
        return ["a", parts] if parts else None
    return ["x", repr(value)]


def canonical_key(value: Any, *, text: Callable[[str], str] | None = None) -> str:
    """`canonical(value)` as one string, to compare or group values by."""
    return json.dumps(canonical(value, text=text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
