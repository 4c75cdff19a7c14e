"""The API key as a value that never shows (`Secret`), and the one redaction every message, log line,
event and file passes through (`redact`)."""

from __future__ import annotations

from typing import Any

__all__ = ["REDACT_RUN", "Secret", "redact"]

#: the shortest run of a key's characters that `redact` removes (a key shorter than this: only whole)
REDACT_RUN = 8


class Secret:
    """A value (the API key) that shows as `***` in every repr, str and `vars()` dump."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not pickled")


def redact(text: str, secret: str | None) -> str:
    """`text` with every run of 8 or more consecutive characters of `secret` replaced by `***`: the key
    itself, and whatever a provider's message kept of it (a half, a slice, the key with a character
    changed). A key shorter than 8 characters is replaced only as a whole."""
    if not secret or not text:
        return text
    if len(secret) < REDACT_RUN:
        return text.replace(secret, "***")
    # every place where some 8 characters of the key occur; overlapping places make one run
    spans: list[tuple[int, int]] = []
    for window in {secret[i : i + REDACT_RUN] for i in range(len(secret) - REDACT_RUN + 1)}:
        found = text.find(window)
        while found != -1:
            spans.append((found, found + REDACT_RUN))
            found = text.find(window, found + 1)
    if not spans:
        return text
    spans.sort()
    parts: list[str] = []
    kept = 0  # text before this index is handled
    run_start, run_end = spans[0]
    for start, end in spans[1:]:
        if start <= run_end:
            run_end = max(run_end, end)
            continue
        parts += (text[kept:run_start], "***")
        kept, run_start, run_end = run_end, start, end
    parts += (text[kept:run_start], "***", text[run_end:])
    return "".join(parts)
