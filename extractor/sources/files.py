"""Reading input files safely: regular files only, never a blocking read, never more than a size limit.

A FIFO, a socket or a device (or a symlink to one, such as `/dev/zero`) would block or never end;
a file larger than the limit would be read into memory whole. Each is refused with a
`DocumentError` naming the file and the reason, before any of its bytes are read.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

from ..errors import DocumentError

__all__ = ["DEFAULT_MAX_FILE_BYTES", "describe_mode", "read_file", "read_head"]

DEFAULT_MAX_FILE_BYTES: Final = 200 * 1024 * 1024
"""The largest input file read by default (200 MB); larger files fail alone with a clear error."""

_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_BINARY: Final = getattr(os, "O_BINARY", 0)


def describe_mode(mode: int) -> str:
    """What a non-regular file is, from its `st_mode`: "a FIFO (named pipe)", "a socket", ..."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _size_text(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def _reason(exc: OSError, path: str) -> str:
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return "dangling symlink: its target does not exist"
    if exc.errno == errno.ELOOP:
        return "cannot read: a symlink loop"
    return f"cannot read: {exc.strerror or exc}"


def _open_regular(path: str, source: str, max_bytes: int | None) -> tuple[int, int]:
    """(a descriptor of `path`, its size), after checking it is a regular file within `max_bytes`."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)  # a FIFO opens without waiting for a writer
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise DocumentError("is a directory, not a file", source=source) from None
        raise DocumentError(_reason(exc, path), source=source) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DocumentError("is a directory, not a file", source=source)
        if not stat.S_ISREG(info.st_mode):
            what = describe_mode(info.st_mode)
            raise DocumentError(f"not a regular file: {what}; not read", source=source)
        if max_bytes is not None and info.st_size > max_bytes:
            raise DocumentError(
                f"too large: {_size_text(info.st_size)}, over the limit of {_size_text(max_bytes)} "
                "(raise --max-file-size / max_file_size to read it)",
                source=source,
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_file(path: str | os.PathLike[str], *, max_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """All bytes of the regular file at `path`, at most `max_bytes` (else `DocumentError`)."""
    source = os.fspath(path)
    fd, size = _open_regular(source, source, max_bytes)
    try:
        chunks: list[bytes] = []
        total = 0
        limit = max_bytes if max_bytes is not None else None
        while True:
            piece = os.read(fd, max(size - total, 1 << 16))
            if not piece:
                break
            chunks.append(piece)
            total += len(piece)
            if limit is not None and total > limit:  # it grew while being read
                raise DocumentError(f"too large: grew past the limit of {_size_text(limit)} while read", source=source)
    except OSError as exc:
        raise DocumentError(_reason(exc, source), source=source) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_head(path: str | os.PathLike[str], size: int = 1024, *, max_bytes: int | None = None) -> bytes:
    """The first `size` bytes of the regular file at `path` (`DocumentError` for anything else)."""
    source = os.fspath(path)
    fd, _ = _open_regular(source, source, max_bytes)
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise DocumentError(_reason(exc, source), source=source) from None
    finally:
        os.close(fd)
