"""`extractor cache info|clear`: the real commands in subprocesses, on the cache a real `extractor run` made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from extractor.testing import TestServer


def _env(folder: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "XDG_CACHE_HOME"}
    out["EXTRACTOR_CACHE_DIR"] = str(folder)
    return out


def extractor(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extractor", *args],
        cwd=cwd,
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=180,
    )


def info(cwd: Path, cache: Path) -> dict[str, Any]:
    done = extractor("cache", "info", "--json", cwd=cwd, cache=cache)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_cache_info_and_clear_on_what_a_run_left(server: TestServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for i in range(3):
        (tmp_path / f"note{i}.txt").write_text(f"Invoice INV-{i}, total {i}.50 EUR", encoding="utf-8")
    run = ["run", "note0.txt", "note1.txt", "note2.txt", "--schema", "invoice", "--base-url", server.base_url]
    first = extractor(*run, "-o", "first.jsonl", cwd=tmp_path, cache=cache)
    assert first.returncode == 0, first.stderr
    assert "from cache: 0" in first.stderr

    report = info(tmp_path, cache)
    assert report["folder"] == str(cache) and report["from"] == "EXTRACTOR_CACHE_DIR"
    assert report["responses"]["path"] == str(cache / "responses.sqlite")
    assert report["responses"]["entries"] == 3 and report["responses"]["bytes"] > 0
    assert [f["base_url"] for f in report["models"]] == [server.base_url]
    assert report["modes"] == []
    text = extractor("cache", "info", cwd=tmp_path, cache=cache)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"cache folder: {cache} (from $EXTRACTOR_CACHE_DIR)"
    assert lines[1].startswith("responses: 3 answer(s), ")
    assert lines[1].endswith(" in responses.sqlite")
    assert '"from cache: N"' in lines[2]
    assert lines[3].startswith("model lists: 1 file(s), ")
    assert lines[4].endswith(f"  {server.base_url}  ({report['models'][0]['path'].rsplit('/', 1)[1]}, "
                              f"{report['models'][0]['bytes']} B)")  # fmt: skip

    sent = len(server.chat_requests)
    again = extractor(*run, "-o", "second.jsonl", cwd=tmp_path, cache=cache)
    assert again.returncode == 0, again.stderr
    assert "from cache: 3" in again.stderr  # the same requests: answered from the cache
    assert len(server.chat_requests) == sent

    cleared = extractor("cache", "clear", "--responses", cwd=tmp_path, cache=cache)
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.startswith(f"removed 3 cached answer(s) from {cache / 'responses.sqlite'} (")
    report = info(tmp_path, cache)
    assert report["responses"]["entries"] == 0
    assert len(report["models"]) == 1  # only the responses were asked for

    third = extractor(*run, "-o", "third.jsonl", cwd=tmp_path, cache=cache)
    assert "from cache: 0" in third.stderr
    assert len(server.chat_requests) == sent + 3

    cleared = extractor("cache", "clear", cwd=tmp_path, cache=cache)
    assert cleared.returncode == 0, cleared.stderr
    first_line, second_line = cleared.stdout.splitlines()
    assert first_line.startswith(f"removed 3 cached answer(s) from {cache / 'responses.sqlite'} (")
    assert second_line == f"removed 1 model list(s) and 0 mode fallback file(s) from {cache}"
    assert not list(cache.glob("models-*.json"))
    assert info(tmp_path, cache)["responses"]["entries"] == 0


def test_looking_at_a_cache_that_is_not_there_creates_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "nothing-yet"
    report = info(tmp_path, cache)
    assert report["responses"]["exists"] is False and report["models"] == []
    cleared = extractor("cache", "clear", cwd=tmp_path, cache=cache)
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.splitlines() == [
        f"no cached answers ({cache / 'responses.sqlite'} does not exist)",
        f"removed 0 model list(s) and 0 mode fallback file(s) from {cache}",
    ]
    assert not cache.exists()


def test_the_help_says_where_the_cache_lives(tmp_path: Path) -> None:
    helped = extractor("cache", "--help", cwd=tmp_path, cache=tmp_path)
    assert "$EXTRACTOR_CACHE_DIR" in helped.stdout and "~/.cache/extractor" in helped.stdout
    assert '"from cache: N"' in helped.stdout
    run_help = extractor("run", "--help", cwd=tmp_path, cache=tmp_path)
    assert "extractor cache info|clear" in " ".join(run_help.stdout.split())
