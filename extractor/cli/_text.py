"""What the command line prints and parses: text from elsewhere made harmless, logging, byte sizes."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Final

import click

__all__ = ["byte_size", "printable", "setup_logging"]

# C0 and C1 control characters (newlines too: one message, one line), DEL, and the Unicode
# bidirectional overrides that can make a line read differently from what it holds
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`, `\\n`, ...): text from a server or a file cannot clear
    the terminal, set the clipboard (OSC 52), move the cursor or start a fake log line."""
    return _UNSAFE.sub(_escape, text)


class _SafeFormatter(logging.Formatter):
    """Log lines whose message is `printable`: one record, one line, no terminal control sequences."""

    def format(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.msg = printable(record.getMessage())
        safe.args = None
        return super().format(safe)


def setup_logging(verbose: int) -> None:
    """Log to stderr: warnings, or more with -v (info) and -vv (debug); messages escaped."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])


_UNITS: Final = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
_SIZE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def byte_size(ctx: click.Context, param: click.Parameter, value: Any) -> int:
    """A click callback reading a size in bytes: `200MB`, `1.5GB`, `512k`, `1000000`."""
    match = _SIZE.match(str(value))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise click.BadParameter(f"{value!r} is not a size (e.g. 200MB, 2GB, 512k)")
    return int(float(match.group(1)) * _UNITS[unit])
