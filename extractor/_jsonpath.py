"""JSON paths for messages: `$`, `$.items[2].sku`, `$["a key"]`."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["format_path", "join_path"]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def join_path(base: str, part: str | int) -> str:
    """`base` extended by one key or index."""
    if isinstance(part, int):
        return f"{base}[{part}]"
    if _PLAIN_KEY.match(part):
        return f"{base}.{part}"
    escaped = part.replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{escaped}"]'


def format_path(parts: Iterable[str | int]) -> str:
    """The JSON path of a sequence of keys and indexes, starting at the root `$`."""
    path = "$"
    for part in parts:
        path = join_path(path, part)
    return path
