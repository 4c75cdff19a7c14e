"""Field accuracy of an extracted record against an expected one, for the benchmarks that run real models.

Every leaf of the expected record (list items by position) counts once: right when the extracted
record holds an equal value at the same path (numbers within 0.005, strings equal after collapsing
whitespace and case).
"""

from __future__ import annotations

import math
import re
from typing import Any


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [(path, value)]


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def same(got: Any, want: Any) -> bool:
    """Whether an extracted value counts as the expected one."""
    if isinstance(want, int | float) and isinstance(got, int | float) and not isinstance(got, bool | str):
        return math.isclose(float(got), float(want), abs_tol=0.005)
    if isinstance(want, str) and isinstance(got, str):
        return re.sub(r"\s+", " ", got).strip().casefold() == re.sub(r"\s+", " ", want).strip().casefold()
    return bool(got == want)


def field_accuracy(got: Any, want: Any) -> tuple[int, int]:
    """`(right, total)` leaves of `want` that `got` holds at the same path."""
    leaves = _leaves(want)
    return sum(same(_at(got, path), value) for path, value in leaves), len(leaves)
