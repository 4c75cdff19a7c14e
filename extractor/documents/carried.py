"""What a later chunk of a long document cannot see by itself, carried into it, bounded: the document's
opening lines (its title block: who issued it, what it is; not for a list, see `carried_context`) and
the header row of a table the chunk continues ("Item Qty Rate Amount" on page 1, rows going on over
page 2).

A table header row is a line of two to twelve words without digits, followed by three lines that
end in a number or an amount (rows of the table).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_CARRIED_CHARS", "carried_context", "is_row", "table_headers", "title_block"]

#: At most this many characters are carried into a chunk (title block and table header together).
MAX_CARRIED_CHARS: Final = 600
_TITLE_CHARS: Final = 400
_TITLE_LINES: Final = 8
_HEADER_CHARS: Final = 160
_WORD: Final = re.compile(r"[^\W\d_][\w.&/()#%-]*")
_AMOUNT_END: Final = re.compile(r"(?:^|\s)[-+(]?[$€£¥]?\d[\d.,']*%?\)?(?:\s?[$€£¥]|\s[A-Z]{3})?$")
_ROWS: Final = 3


def title_block(text: str) -> str:
    """The document's opening lines: up to the first blank line after some text, at most 8 lines and
    about 400 characters (cut at a line's end)."""
    lines: list[str] = []
    size = 0
    for line in text.lstrip().splitlines():
        if not line.strip():
            if lines:
                break
            continue
        if len(lines) >= _TITLE_LINES or (lines and size + len(line) > _TITLE_CHARS):
            break
        lines.append(line.rstrip())
        size += len(line) + 1
    return "\n".join(lines)[:_TITLE_CHARS]


def is_row(line: str) -> bool:
    """Whether `line` (stripped) reads as a row of a table or a list: it ends in a number or an amount
    (`12.50`, `-3.50 EUR`, `1,234`, `(40.00)`, `2019.`)."""
    return bool(line) and _AMOUNT_END.search(line) is not None


def _is_header(line: str) -> bool:
    words = line.split()
    return (
        2 <= len(words) <= 12
        and len(line) <= _HEADER_CHARS
        and not any(c.isdigit() for c in line)
        and all(_WORD.fullmatch(word) for word in words)
    )


def table_headers(text: str) -> list[tuple[int, str]]:
    """`(offset, line)` of each line of `text` that heads a table (see the module's docstring)."""
    found: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    offset = 0
    starts: list[int] = []
    for line in lines:
        starts.append(offset)
        offset += len(line)
    stripped = [line.strip() for line in lines]
    for i, line in enumerate(stripped):
        if not _is_header(line):
            continue
        rows = [row for row in stripped[i + 1 : i + 2 * _ROWS + 1] if row][:_ROWS]
        if len(rows) == _ROWS and all(is_row(row) for row in rows):
            found.append((starts[i], line))
    return found


def carried_context(text: str, start: int, headers: list[tuple[int, str]] | None = None, *, title: bool = True) -> str:
    """What is carried into the chunk of `text` starting at `start`: the title block (unless the chunk
    holds it, or `title` is False) and the last table header row before `start`, at most
    `MAX_CARRIED_CHARS` characters. `headers` are `table_headers(text)`, when already found.

    Parts of a document read for a list carry no title block (`title=False`): lines repeated into every
    part could be read as items again by each; a header row holds no values."""
    if start <= 0:
        return ""
    block = title_block(text) if title else ""
    parts: list[str] = []
    block_end = text.find(block.splitlines()[-1]) + len(block.splitlines()[-1]) if block else 0
    if block and block_end > start:
        block = ""  # the chunk starts inside the title block: it holds the rest of it
    if block:
        parts.append(block)
    before = [(at, line) for at, line in (headers if headers is not None else table_headers(text)) if at < start]
    if before and before[-1][0] >= block_end:
        parts.append(f"Table columns: {before[-1][1]}")
    carried = "\n".join(parts)
    return carried if len(carried) <= MAX_CARRIED_CHARS else carried[:MAX_CARRIED_CHARS].rsplit("\n", 1)[0]
