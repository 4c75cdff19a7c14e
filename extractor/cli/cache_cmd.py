"""`extractor cache info|clear`: what the cache folder holds, and emptying it.

The cache folder is `$EXTRACTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/extractor`, else `~/.cache/extractor`
(made mode 0700, its files 0600: they hold extracted data). It holds:

- `responses.sqlite` (with its `-wal` and `-shm` files): the response cache of `extractor run`, on by
  default (`--no-cache` neither reads nor writes it). Every answer that validated is stored under a hash
  of the endpoint and the whole request (model, messages, schema, settings; never the key); a request
  sent again is answered from it at no cost. A run's summary counts the inputs so answered:
  "from cache: N". In the library it is off unless `Extractor(cache=True)` (or a path).
- `models-<hash>.json`, one per endpoint: its model list (`GET /models`: limits, prices, parameters),
  kept a day; `modes-<hash>.json`: the modes its models rejected (auto mode's fallbacks), a day too.
  They stay bounded: older than a day they go, and at most 8 of loopback endpoints and 32 in all are
  kept of each kind.

`extractor cache clear` removes the responses and the endpoint files (`--responses` or `--models` for
one of the two); nothing else in the folder is touched.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from ..client.cache import ResponseCache
from ..client.catalog import ModelsFile, default_cache_dir, model_files, remove_model_files
from ._app import EXIT_OK, cli

__all__ = ["cache_group", "clear", "info"]

_RESPONSES = "responses.sqlite"
#: SQLite's files beside the database
_SIDE_FILES = ("-wal", "-shm")
#: endpoint files named one by one in `info`, newest first
_LISTED = 10


def _source() -> str:
    """Which setting places the cache folder: `EXTRACTOR_CACHE_DIR`, `XDG_CACHE_HOME` or `default`."""
    if os.environ.get("EXTRACTOR_CACHE_DIR"):
        return "EXTRACTOR_CACHE_DIR"
    return "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "default"


_SOURCES = {
    "EXTRACTOR_CACHE_DIR": "from $EXTRACTOR_CACHE_DIR",
    "XDG_CACHE_HOME": "$XDG_CACHE_HOME/extractor; set EXTRACTOR_CACHE_DIR to move it",
    "default": "the default, ~/.cache/extractor; set EXTRACTOR_CACHE_DIR to move it",
}


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at is not None else "-"


def _database_bytes(path: Path) -> int:
    """The bytes of the SQLite file `path` and its side files."""
    total = 0
    for candidate in (path, *(path.with_name(path.name + side) for side in _SIDE_FILES)):
        try:
            total += candidate.stat().st_size
        except OSError:
            continue
    return total


def _responses(folder: Path) -> dict[str, Any]:
    """What the response cache of `folder` holds (opened only if it exists: looking creates nothing)."""
    path = folder / _RESPONSES
    if not path.is_file():
        return {"path": str(path), "exists": False, "entries": 0, "bytes": 0, "oldest": None, "newest": None}
    with ResponseCache(path) as cache:
        stats = cache.stats()
    return {
        "path": str(path),
        "exists": True,
        "entries": stats.entries,
        "bytes": _database_bytes(path),
        "oldest": stats.oldest,
        "newest": stats.newest,
    }


def _file(file: ModelsFile) -> dict[str, Any]:
    return {"path": str(file.path), "base_url": file.base_url, "bytes": file.size, "written": file.written}


@cli.group("cache")
def cache_group() -> None:
    """The cache folder: `extractor run`'s response cache and the endpoints' model lists.

    The folder is $EXTRACTOR_CACHE_DIR, else $XDG_CACHE_HOME/extractor, else ~/.cache/extractor.
    `extractor run` stores every answer that validated in responses.sqlite there and answers the same
    request again from it at no cost (the summary's "from cache: N"; --no-cache turns it off).
    """


@cache_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(as_json: bool) -> int:
    """Where the cache folder is, how many answers it holds and how large it is, and its model lists."""
    folder = default_cache_dir()
    responses = _responses(folder)
    files = model_files(folder)
    if as_json:
        report = {
            "folder": str(folder),
            "from": _source(),
            "responses": responses,
            "models": [_file(f) for f in files if f.kind == "models"],
            "modes": [_file(f) for f in files if f.kind == "modes"],
        }
        click.echo(json.dumps(report, ensure_ascii=False))
        return EXIT_OK
    click.echo(f"cache folder: {folder} ({_SOURCES[_source()]})")
    if responses["exists"]:
        span = f", written {_when(responses['oldest'])} to {_when(responses['newest'])}" if responses["entries"] else ""
        click.echo(
            f"responses: {responses['entries']} answer(s), {_size(responses['bytes'])}{span} in {_RESPONSES}\n"
            "  extractor run stores each answer that validated and answers the same request again from it, "
            'at no cost: a run\'s "from cache: N" (--no-cache: neither read nor written)'
        )
    else:
        click.echo(f"responses: none ({_RESPONSES} does not exist yet)")
    for kind, title, what in (
        ("models", "model lists", "GET /models of each endpoint: limits, prices, parameters; kept a day"),
        ("modes", "mode fallbacks", "the modes each endpoint's models rejected; kept a day"),
    ):
        of_kind = [f for f in files if f.kind == kind]
        total = sum(f.size for f in of_kind)
        click.echo(f"{title}: {len(of_kind)} file(s), {_size(total)} ({what})")
        for file in of_kind[:_LISTED]:
            click.echo(f"  {_when(file.written)}  {file.base_url or '?'}  ({file.path.name}, {_size(file.size)})")
        if len(of_kind) > _LISTED:
            click.echo(f"  ... and {len(of_kind) - _LISTED} more")
    click.echo("extractor cache clear empties it (--responses or --models for one part)")
    return EXIT_OK


@cache_group.command("clear")
@click.option("--responses", "responses_only", is_flag=True, help="Only the cached answers (responses.sqlite).")
@click.option("--models", "models_only", is_flag=True, help="Only the model lists and mode fallbacks.")
def clear(responses_only: bool, models_only: bool) -> int:
    """Remove the cached answers and the endpoints' model lists (both unless one is named).

    The next run asks the endpoint again for everything (and pays for it).
    """
    folder = default_cache_dir()
    both = responses_only == models_only
    if both or responses_only:
        path = folder / _RESPONSES
        if path.is_file():
            before = _database_bytes(path)
            with ResponseCache(path) as cache:
                count = cache.clear()
            freed = max(before - _database_bytes(path), 0)
            click.echo(f"removed {count} cached answer(s) from {path} ({_size(freed)} freed)")
        else:
            click.echo(f"no cached answers ({path} does not exist)")
    if both or models_only:
        removed = remove_model_files(folder)
        lists = sum(1 for f in removed if f.kind == "models")
        modes = len(removed) - lists
        click.echo(f"removed {lists} model list(s) and {modes} mode fallback file(s) from {folder}")
    return EXIT_OK
