"""JsonlSink: lines written and read back, resuming, the errors file, repairs on opening, and SIGKILL."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import extractor
import extractor.runs.sink as sink_module
from extractor.errors import ConfigurationError
from extractor.runs.sink import JsonlSink, errors_path_for


def ok(ident: str, **data: Any) -> dict[str, Any]:
    return {"id": ident, "source": f"{ident}.pdf", "data": data or {"total": 1}, "meta": {"cost": 0.001}}


def failed(ident: str, message: str = "no answer") -> dict[str, Any]:
    return {"id": ident, "source": f"{ident}.pdf", "error": {"type": "APITimeoutError", "message": message}, "meta": {}}


def lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return data.splitlines(keepends=True)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(path)]


def ids(path: Path) -> list[str]:
    return [r["id"] for r in records(path)]


# --- writing and reading back -----------------------------------------------------------------


def test_default_errors_path() -> None:
    assert errors_path_for(Path("/data/results.jsonl")) == Path("/data/results.errors.jsonl")
    assert errors_path_for("out.txt") == Path("out.txt.errors.jsonl")
    assert JsonlSink(Path("a/b.jsonl")).errors_path == Path("a/b.errors.jsonl")
    assert JsonlSink(Path("a/b.jsonl"), Path("elsewhere.jsonl")).errors_path == Path("elsewhere.jsonl")


def test_the_same_file_for_both_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="same file"):
        JsonlSink(tmp_path / "out.jsonl", tmp_path / "out.jsonl")


def test_write_and_read_back(tmp_path: Path) -> None:
    out = tmp_path / "run" / "out.jsonl"
    with JsonlSink(out) as sink:
        assert sink.is_open
        assert sink.ok_existing == 0
        assert sink.failed_existing == 0
        sink.write_ok(ok("a", name="Café\nZürich", note="line\u2028sep\u2029para\x85nel", ratio=float("nan")))
        sink.write_error(failed("b", "timed out\nafter 120 s"))
        sink.write_ok(ok("c"))
        assert sink.ok_written == 2
        assert sink.failed_written == 1
        assert sink.done_ids == frozenset({"a", "b", "c"})
    assert not sink.is_open
    raw = lines(out)
    assert len(raw) == 2
    assert (
        raw[0]
        == (
            '{"id":"a","source":"a.pdf","data":{"name":"Café\\nZürich","note":"line\\u2028sep\\u2029para\\u0085nel",'
            '"ratio":null},"meta":{"cost":0.001}}\n'
        ).encode()
    )
    assert len(raw[0].decode().splitlines()) == 1  # even str.splitlines sees one line
    assert records(out)[0]["data"]["note"] == "line\u2028sep\u2029para\x85nel"
    assert ids(out) == ["a", "c"]
    assert records(tmp_path / "run" / "out.errors.jsonl") == [failed("b", "timed out\nafter 120 s")]


def test_bad_records_are_refused_and_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = JsonlSink(out)
    with pytest.raises(ValueError, match="not open"):
        sink.write_ok(ok("a"))
    with sink:
        with pytest.raises(ValueError, match="string 'id'"):
            sink.write_ok({"source": "x.pdf", "data": {}})
        with pytest.raises(ValueError, match="string 'id'"):
            sink.write_ok({"id": 7, "data": {}})
        with pytest.raises(TypeError, match="mapping"):
            sink.write_ok(["id", "a"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cannot be written as JSON"):
            sink.write_ok(ok("a", thing=object()))
        assert not sink.is_done("a")
        sink.write_ok(ok("a"))
    assert ids(out) == ["a"]


def test_a_done_id_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as sink:
        sink.write_ok(ok("a"))
        sink.write_error(failed("b"))
        with pytest.raises(ValueError, match="'a' already has its line"):
            sink.write_ok(ok("a"))
        with pytest.raises(ValueError, match="'a' already has its line"):
            sink.write_error(failed("a"))
        with pytest.raises(ValueError, match="'b' already has its line"):
            sink.write_ok(ok("b"))
    with JsonlSink(out) as sink:
        with pytest.raises(ValueError, match="'a' already"):
            sink.write_ok(ok("a"))
        with pytest.raises(ValueError, match="'b' already"):
            sink.write_error(failed("b"))
    assert ids(out) == ["a"]
    assert ids(errors_path_for(out)) == ["b"]


def test_resume_skips_done_ids(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as sink:
        for i in range(5):
            sink.write_ok(ok(f"ok-{i}"))
        sink.write_error(failed("bad-0"))
        sink.write_error(failed("bad-1"))
    with JsonlSink(out) as sink:
        assert sink.ok_existing == 5
        assert sink.failed_existing == 2
        assert sink.done_ids == {f"ok-{i}" for i in range(5)} | {"bad-0", "bad-1"}
        assert sink.is_done("ok-3")
        assert sink.is_done("bad-1")
        assert not sink.is_done("ok-5")
        todo = [f"ok-{i}" for i in range(8)] + ["bad-0"]
        for ident in todo:
            if not sink.is_done(ident):
                sink.write_ok(ok(ident))
        assert sink.ok_written == 3
    assert ids(out) == [f"ok-{i}" for i in range(8)]
    assert ids(errors_path_for(out)) == ["bad-0", "bad-1"]


def test_a_second_sink_on_the_same_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as first:
        with pytest.raises(ConfigurationError, match="another run"):
            JsonlSink(out).open()
        first.write_ok(ok("a"))
    with JsonlSink(out) as again:
        assert again.ok_existing == 1


def test_threads_writing_at_once_each_get_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    refused: list[str] = []
    with JsonlSink(out) as sink:

        def work(n: int) -> None:
            for i in range(200):
                ident = f"{i % 150}"  # ids 0..49 are written by every thread: only the first may win
                try:
                    if i % 3:
                        sink.write_ok(ok(ident, thread=n, text="y" * (i * 50)))
                    else:
                        sink.write_error(failed(ident))
                except ValueError:
                    refused.append(ident)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sink.ok_written + sink.failed_written == 150
    written = ids(out) + ids(errors_path_for(out))
    assert sorted(written, key=int) == [str(i) for i in range(150)]
    assert len(refused) == 4 * 200 - 150


# --- retrying errors --------------------------------------------------------------------------


def test_retry_errors_moves_successes_out_of_the_errors_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    errors = tmp_path / "failures.jsonl"
    with JsonlSink(out, errors) as sink:
        sink.write_ok(ok("a"))
        for ident in ("b", "c", "d"):
            sink.write_error(failed(ident, "first try"))
    with JsonlSink(out, errors, retry_errors=True) as sink:
        assert sink.ok_existing == 1
        assert sink.failed_existing == 3
        assert sink.done_ids == {"a"}
        assert not sink.is_done("b")
        sink.write_ok(ok("b"))  # retried and succeeded
        sink.write_error(failed("c", "second try"))  # retried and failed again
        # "d" not retried in this run
        with pytest.raises(ValueError, match="'c' already"):
            sink.write_error(failed("c", "third try"))
        with pytest.raises(ValueError, match="'b' already"):
            sink.write_error(failed("b"))
        assert sink.done_ids == {"a", "b", "c"}
    assert ids(out) == ["a", "b"]
    assert records(errors) == [failed("d", "first try"), failed("c", "second try")]
    with JsonlSink(out, errors) as sink:
        assert (sink.ok_existing, sink.failed_existing) == (2, 2)
        assert sink.done_ids == {"a", "b", "c", "d"}


def test_without_retry_errors_the_errors_file_is_only_appended(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as sink:
        sink.write_error(failed("a"))
    before = errors_path_for(out).read_bytes()
    inode = errors_path_for(out).stat().st_ino
    with JsonlSink(out) as sink:
        sink.write_error(failed("b"))
    assert errors_path_for(out).read_bytes() == before + lines(errors_path_for(out))[1]
    assert errors_path_for(out).stat().st_ino == inode
    assert ids(errors_path_for(out)) == ["a", "b"]


def test_opening_finishes_an_interrupted_retry(tmp_path: Path) -> None:
    """A retry run killed before closing leaves ids in both files and doubled error lines: opening removes them."""
    out = tmp_path / "out.jsonl"
    errors = errors_path_for(out)
    out.write_bytes(b"".join(json.dumps(ok(i)).encode() + b"\n" for i in ("a", "b")))
    errors.write_bytes(
        b"".join(
            json.dumps(r).encode() + b"\n"
            for r in (failed("b", "old"), failed("c", "old"), failed("d", "only"), failed("c", "new"))
        )
        + b"not json at all\n"
        + json.dumps(failed("e")).encode()
        + b"\n"
    )
    with JsonlSink(out) as sink:
        assert sink.ok_existing == 2
        assert sink.failed_existing == 3
        assert sink.errors_scan.duplicates == 1
        assert sink.errors_scan.invalid_lines == 1
        assert sink.done_ids == {"a", "b", "c", "d", "e"}
    assert lines(errors) == [
        json.dumps(failed("d", "only")).encode() + b"\n",
        json.dumps(failed("c", "new")).encode() + b"\n",
        b"not json at all\n",
        json.dumps(failed("e")).encode() + b"\n",
    ]
    assert ids(out) == ["a", "b"]
    assert not errors.with_name(errors.name + ".rewrite.tmp").exists()


# --- repairs on opening -----------------------------------------------------------------------


def test_a_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as sink:
        for ident in ("a", "b", "c"):
            sink.write_ok(ok(ident))
    whole = out.read_bytes()
    torn = json.dumps(ok("d"), separators=(",", ":")).encode()[:25]
    with open(out, "ab") as f:
        f.write(torn)
    with JsonlSink(out) as sink:
        assert sink.dropped_bytes == len(torn) == 25
        assert sink.out_scan.dropped_bytes == 25
        assert sink.ok_existing == 3
        assert sink.invalid_lines == 0
        assert not sink.is_done("d")
        assert out.read_bytes() == whole
        sink.write_ok(ok("d"))
    assert ids(out) == ["a", "b", "c", "d"]


def test_a_whole_last_record_without_its_newline_is_cut_off_too(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = json.dumps(ok("a")).encode() + b"\n"
    out.write_bytes(first + json.dumps(ok("b")).encode())
    with JsonlSink(out) as sink:
        assert sink.dropped_bytes == len(json.dumps(ok("b")))
        assert sink.done_ids == {"a"}
    assert out.read_bytes() == first


def test_a_last_line_that_is_not_json_is_cut_off(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    errors = errors_path_for(out)
    good = json.dumps(ok("a")).encode() + b"\n"
    out.write_bytes(good + b"\x00" * 40 + b"\n")  # what a power loss can leave: zeros where a line was
    errors.write_bytes(json.dumps(failed("b")).encode() + b"\n" + b'{"id": "c", "err')
    with JsonlSink(out) as sink:
        assert sink.out_scan.dropped_bytes == 41
        assert sink.errors_scan.dropped_bytes == 16
        assert sink.dropped_bytes == 57
        assert sink.invalid_lines == 0
        assert sink.done_ids == {"a", "b"}
    assert out.read_bytes() == good
    assert ids(errors) == ["b"]


def test_lines_that_are_not_records_in_the_middle_are_counted_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    content = (
        json.dumps(ok("a")).encode()
        + b"\n"
        + b'{"id": "b", "data": {"trunc\n'  # garbage in the middle
        + b"\n"  # a blank line: neither a record nor an error
        + b'["an", "array"]\n'  # JSON, but not a record
        + b'{"id": 12}\n'  # an id that is not a string
        + b"\xff\xfe not utf-8\n"
        + json.dumps(ok("c")).encode()
        + b"\n"
    )
    out.write_bytes(content)
    with JsonlSink(out) as sink:
        assert sink.invalid_lines == 4
        assert sink.out_scan.invalid_line_numbers == [2, 4, 5, 6]
        assert sink.out_scan.records == 2
        assert sink.dropped_bytes == 0
        assert sink.done_ids == {"a", "c"}
        sink.write_ok(ok("b"))
    assert out.read_bytes() == content + json.dumps(ok("b"), separators=(",", ":")).encode() + b"\n"


def test_an_empty_output_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"")
    with JsonlSink(out) as sink:
        assert (sink.ok_existing, sink.failed_existing, sink.dropped_bytes, sink.invalid_lines) == (0, 0, 0, 0)
    assert out.read_bytes() == b""  # there before: kept
    assert not errors_path_for(out).exists()  # created for the run and never written to: removed


# --- files that are not the sink's ------------------------------------------------------------

PRETTY = json.dumps({"id": "settings", "data": {"model": "m", "retries": [1, 2]}, "debug": True}, indent=2)
FOREIGN_OUTPUTS = {
    "pretty-printed JSON": PRETTY.encode(),
    "pretty-printed JSON with its newline": PRETTY.encode() + b"\n",
    "one-line JSON document without newline": json.dumps({"model": "m", "retries": 3}).encode(),
    "JSON array": b'[{"id": "a", "data": {}}]\n',
    "CSV": b"id,text\na,one\nb,two\n",
    "CSV without last newline": b"id,total\n1,17.50\n2,3",
    "input JSONL": b'{"id": "a", "text": "one"}\n{"id": "b", "text": "two"}\n',
    "input JSONL after a blank line": b'\n{"id": "a", "text": "one"}\n',
    "an errors file": json.dumps(failed("a")).encode() + b"\n",
    "record with a number for id": b'{"id": 1, "data": {}}\n',
    "plain text": b"Dear diary,\ntoday I ran extractor.\n",
    "plain text without newline": b"a note",
    "bare number": b"42\n",
    "binary": bytes(range(256)) * 8,
    "binary without newline": bytes(range(11, 256)) * 4,
    "damage and then a torn record": b'{"id": "a", "data": {"trunc\n{"id": "b", "so',
}


@pytest.mark.parametrize("content", FOREIGN_OUTPUTS.values(), ids=FOREIGN_OUTPUTS.keys())
def test_an_output_that_is_not_the_sinks_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "settings.json"
    out.write_bytes(content)
    sink = JsonlSink(out)
    with pytest.raises(ConfigurationError) as caught:
        sink.open()
    message = str(caught.value)
    assert message.startswith(f"{out} is not an extractor output file (")
    assert "refusing to write to it; choose another -o" in message
    assert "\n" not in message
    assert out.read_bytes() == content
    assert not errors_path_for(out).exists()
    assert not sink.is_open
    assert sink.status("a") is None


def test_the_refusal_says_which_line_and_why(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text(PRETTY)
    with pytest.raises(ConfigurationError) as caught:
        JsonlSink(out).open()
    assert str(caught.value) == (
        f"{out} is not an extractor output file (line 1 is not JSON, and line 7, the first that is, is not a record "
        'with "id" and "data"): refusing to write to it; choose another -o'
    )
    out.write_text(json.dumps({"model": "m", "debug": "yes"}, indent=2))
    with pytest.raises(
        ConfigurationError, match=r'\(line 1 is not a JSON record with "id" and "data", nor is any other'
    ):
        JsonlSink(out).open()
    out.write_bytes(b"\n\n" + FOREIGN_OUTPUTS["input JSONL"])
    with pytest.raises(ConfigurationError, match=r'\(line 3 is JSON but not a record with "id" and "data"\)'):
        JsonlSink(out).open()


@pytest.mark.parametrize(
    "content",
    [FOREIGN_OUTPUTS["input JSONL"], FOREIGN_OUTPUTS["plain text"], json.dumps(ok("a")).encode() + b"\n"],
    ids=["input JSONL", "plain text", "an output file"],
)
def test_an_errors_file_that_is_not_the_sinks_is_refused_before_anything_changes(
    tmp_path: Path, content: bytes
) -> None:
    out = tmp_path / "out.jsonl"
    torn_output = json.dumps(ok("a")).encode() + b"\n" + b'{"id": "b", "sou'  # would be repaired on opening
    out.write_bytes(torn_output)
    errors = tmp_path / "inputs.jsonl"
    errors.write_bytes(content)
    with pytest.raises(ConfigurationError, match=r"inputs\.jsonl is not an extractor errors file \(.*--errors$"):
        JsonlSink(out, errors).open()
    assert errors.read_bytes() == content
    assert out.read_bytes() == torn_output  # not cut: refused before any repair


def test_a_foreign_errors_file_creates_no_output(tmp_path: Path) -> None:
    errors = tmp_path / "notes.txt"
    errors.write_bytes(b"not mine\n")
    with pytest.raises(ConfigurationError, match=r"notes\.txt"):
        JsonlSink(tmp_path / "new" / "out.jsonl", errors).open()
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "content, kept",
    [
        (b'{"id": "a", "sou', b""),  # a SIGKILL during the first write
        (b'{"id":"a","source":"a.pdf","data":{"name":"Caf\xc3', b""),  # ... inside a character
        (b"{", b""),
        (b"\n  \n", b"\n  \n"),
        (b"\x00" * 300, b""),  # a power loss after the first write: zeros where the line was
        (b"\x00" * 40 + b"\n" + b'{"id": "a", "so', b"\x00" * 40 + b"\n"),
    ],
    ids=["torn first record", "torn inside a character", "one brace", "blank lines", "zeros", "zeros and torn"],
)
def test_an_output_holding_only_a_torn_first_record_opens(tmp_path: Path, content: bytes, kept: bytes) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(content)
    with JsonlSink(out) as sink:
        assert sink.ok_existing == 0
        assert sink.dropped_bytes == len(content) - len(kept)
        sink.write_ok(ok("a"))
    assert out.read_bytes() == kept + json.dumps(ok("a"), separators=(",", ":")).encode() + b"\n"


def test_damage_before_the_first_record_is_tolerated(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    content = b"\x00\x00\n" + b'{"id": "z", "data": {"trunc\n' + json.dumps(ok("a")).encode() + b"\n"
    out.write_bytes(content)
    with JsonlSink(out) as sink:
        assert sink.done_ids == {"a"}
        assert sink.invalid_lines == 2
    assert out.read_bytes() == content


def test_status_says_which_file_holds_an_id(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = JsonlSink(out)
    assert sink.status("a") is None
    with sink:
        sink.write_ok(ok("a"))
        sink.write_error(failed("b"))
        sink.write_error(failed("c"))
        assert (sink.status("a"), sink.status("b"), sink.status("x")) == ("ok", "failed", None)
    with JsonlSink(out) as sink:
        assert [sink.status(i) for i in "abcx"] == ["ok", "failed", "failed", None]
    with JsonlSink(out, retry_errors=True) as sink:
        assert not sink.is_done("b")
        assert [sink.status(i) for i in "abc"] == ["ok", "failed", "failed"]  # failed until rewritten
        sink.write_ok(ok("b"))
        sink.write_error(failed("c", "again"))
        sink.write_ok(ok("x"))
        assert [sink.status(i) for i in "abcx"] == ["ok", "ok", "failed", "ok"]
    assert sink.status("b") == "ok"  # still answers once closed
    with JsonlSink(out) as sink:
        assert [sink.status(i) for i in "abcx"] == ["ok", "ok", "failed", "ok"]


# --- durability mechanics ---------------------------------------------------------------------


def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = sink_module._datasync

    def counted(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(sink_module, "_datasync", counted)
    with JsonlSink(tmp_path / "every.jsonl", fsync_interval=0) as sink:
        sink.write_ok(ok("a"))
        sink.write_ok(ok("b"))
        sink.write_error(failed("c"))
        assert len(synced) == 3
    assert len(synced) == 3  # nothing left unsynced to close
    synced.clear()
    with JsonlSink(tmp_path / "hourly.jsonl", fsync_interval=3600) as sink:
        for i in range(50):
            sink.write_ok(ok(str(i)))
        sink.write_error(failed("x"))
        assert synced == []  # no sync before the interval
    assert len(synced) == 2  # close syncs both files


def test_a_failed_write_leaves_no_partial_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.jsonl"
    real_write = os.write
    calls = {"n": 0}

    def half_then_full_disk(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    with JsonlSink(out) as sink:
        sink.write_ok(ok("a"))
        before = out.read_bytes()
        monkeypatch.setattr(os, "write", half_then_full_disk)
        with pytest.raises(OSError, match="No space left"):
            sink.write_ok(ok("b", text="x" * 1000))
        monkeypatch.setattr(os, "write", real_write)
        assert calls["n"] == 2
        assert out.read_bytes() == before
        assert not sink.is_done("b")
        sink.write_ok(ok("b"))
    assert ids(out) == ["a", "b"]


# --- SIGKILL ------------------------------------------------------------------------------------

# The writer imports the sink module alone: the package's __init__ pulls in the HTTP stack, which
# would cost more than a second per restart. After `limit` records in one run it waits on stdin, so
# that however late the SIGKILL comes, it comes before the run is over.
WRITER = textwrap.dedent(
    """
    import sys, time, types

    package, out, count, phase = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pause, limit = float(sys.argv[5]), int(sys.argv[6])
    for name, sub in (("extractor", ""), ("extractor.runs", "/runs")):
        module = types.ModuleType(name)
        module.__path__ = [package + sub]
        sys.modules[name] = module
    from extractor.runs.sink import JsonlSink

    retry = phase == "retry"
    written = 0
    with JsonlSink(out, retry_errors=retry, fsync_interval=0.05) as sink:
        print("open", sink.dropped_bytes, flush=True)
        for i in range(count):
            ident = f"doc-{i:04d}"
            if sink.is_done(ident):
                continue
            if written == limit:
                sys.stdin.read()  # parked until killed
            if (i % 15 == 0) if retry else (i % 5 == 0):
                error = {"type": "APITimeoutError", "message": f"{phase} failure"}
                sink.write_error({"id": ident, "source": ident + ".pdf", "error": error, "meta": {"phase": phase}})
            else:
                text = "x" * (500 + (i * 7919) % 40000)  # up to 40 KB: a write spans pages
                sink.write_ok({"id": ident, "source": ident + ".pdf", "data": {"text": text}, "meta": {"phase": phase}})
            written += 1
            time.sleep(pause)
    print("done", flush=True)
    """
)


def _run_writer(script: Path, out: Path, phase: str, *, pause: float, limit: int, kill_after: float | None) -> int:
    """Run the writer; SIGKILL it `kill_after` s after it opened the sink, or let it finish.

    Returns the bytes it reported cutting off on opening, after checking how it ended.
    """
    package = str(Path(extractor.__file__).parent)
    command = [sys.executable, str(script), package, str(out), "400", phase, str(pause), str(limit)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        opened = process.stdout.readline().split()
        assert opened[0] == "open"
        if kill_after is None:
            assert process.stdout.read() == "done\n"
            assert process.wait(30) == 0
        else:
            time.sleep(kill_after)
            process.send_signal(signal.SIGKILL)
            assert process.wait(30) == -signal.SIGKILL
        return int(opened[1])


def _complete_ids(path: Path) -> list[str]:
    """Ids of the complete, valid lines of `path` (a killed writer may have left a torn last line)."""
    found = []
    for line in path.read_bytes().splitlines(keepends=True):
        if line.endswith(b"\n"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line)["id"])
    return found


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_writers_resume_to_exactly_one_line_per_id(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "out.jsonl"
    errors = errors_path_for(out)
    every = [f"doc-{i:04d}" for i in range(400)]
    rng = random.Random(20240611)
    torn = b'{"id":"doc-9999","source":"doc-9999.pdf","data":{"text":"xxxx'

    # First pass, a failure every 5th id: three runs killed at random times (at most 100 ids each).
    progress = []
    for kill in range(3):
        dropped = _run_writer(script, out, "first", pause=0.002, limit=100, kill_after=rng.uniform(0.01, 0.3))
        if kill == 2:
            assert dropped >= len(torn)
        done = _complete_ids(out) + _complete_ids(errors)
        assert len(done) == len(set(done))  # a restart never writes an id twice
        progress.append(len(done))
        if kill == 1:  # as if the kill had torn a write: half a line at the end
            with open(out, "ab") as f:
                f.write(torn)
    assert progress == sorted(progress)
    assert _run_writer(script, out, "first", pause=0.0, limit=10**6, kill_after=None) >= 0
    assert ids(out) == sorted(ids(out))
    assert sorted(ids(out)) == [x for i, x in enumerate(every) if i % 5 != 0]
    assert sorted(ids(errors)) == [x for i, x in enumerate(every) if i % 5 == 0]

    # Second pass, retrying the 80 errors, a failure again every 15th id: two runs killed (at most 30 ids each).
    for _ in range(2):
        _run_writer(script, out, "retry", pause=0.005, limit=30, kill_after=rng.uniform(0.01, 0.2))
        assert len(_complete_ids(out)) == len(set(_complete_ids(out)))
    _run_writer(script, out, "retry", pause=0.0, limit=10**6, kill_after=None)

    final_ok, final_errors = records(out), records(errors)
    ok_ids = [r["id"] for r in final_ok]
    error_ids = [r["id"] for r in final_errors]
    assert len(ok_ids) == len(set(ok_ids))
    assert len(error_ids) == len(set(error_ids))
    assert set(ok_ids).isdisjoint(error_ids)
    assert sorted(ok_ids + error_ids) == every
    assert sorted(error_ids) == [x for i, x in enumerate(every) if i % 15 == 0]
    assert {r["meta"]["phase"] for r in final_errors} == {"retry"}
    retried = {r["id"] for r in final_ok if r["meta"]["phase"] == "retry"}
    assert retried == {x for i, x in enumerate(every) if i % 5 == 0 and i % 15 != 0}
    for record in final_ok:
        i = int(record["id"][4:])
        assert record["data"]["text"] == "x" * (500 + (i * 7919) % 40000)


# --- one run at a time: OUT and the errors file are locked -------------------------------------------


def test_a_second_sink_on_the_same_out_is_refused(tmp_path: Path) -> None:
    second = JsonlSink(tmp_path / "out.jsonl")
    with (
        JsonlSink(tmp_path / "out.jsonl"),
        pytest.raises(ConfigurationError, match=r"out\.jsonl is being written by another run"),
    ):
        second.open()


def test_two_outputs_cannot_share_an_errors_file(tmp_path: Path) -> None:
    """Two runs with their own OUT and one `--errors` file appended both: 994 lines for 500 ids."""
    shared = tmp_path / "errors.jsonl"
    with JsonlSink(tmp_path / "a.jsonl", shared) as first:
        first.write_error(failed("x"))
        second = JsonlSink(tmp_path / "b.jsonl", shared)
        with pytest.raises(ConfigurationError, match=r"errors\.jsonl is being written by another run"):
            second.open()
        assert not second.is_open
        second_out = JsonlSink(tmp_path / "b.jsonl")  # its OUT was let go when it was refused
        second_out.open()
        second_out.close()
    with JsonlSink(tmp_path / "b.jsonl", shared) as later:  # once the first has closed
        later.write_error(failed("y"))
    assert [json.loads(line)["id"] for line in lines(shared)] == ["x", "y"]


def test_the_errors_file_stays_locked_across_its_rewrite(tmp_path: Path) -> None:
    """Opening with a doubled error line rewrites the errors file (a new file swapped in): the lock is on
    the new file before it is in place."""
    shared = tmp_path / "errors.jsonl"
    shared.write_bytes(json.dumps(failed("x")).encode() + b"\n" + json.dumps(failed("x")).encode() + b"\n")
    before = os.stat(shared).st_ino
    with JsonlSink(tmp_path / "a.jsonl", shared, retry_errors=True) as first:
        assert os.stat(shared).st_ino != before  # rewritten on opening
        with pytest.raises(ConfigurationError, match="being written by another run"):
            JsonlSink(tmp_path / "b.jsonl", shared).open()
        first.write_ok(ok("x"))
    assert lines(shared) == []  # rewritten at closing: x succeeded
    with JsonlSink(tmp_path / "b.jsonl", shared):
        pass


# --- files are left behind only with records in them ---------------------------------------------


def test_a_sink_that_writes_nothing_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as sink:
        assert out.exists() and errors_path_for(out).exists()  # held (and locked) while the run is on
        assert sink.done_ids == frozenset()
    assert not out.exists()
    assert not errors_path_for(out).exists()


def test_only_the_file_written_to_stays(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out) as sink:
        sink.write_ok(ok("a"))
    assert ids(out) == ["a"]
    assert not errors_path_for(out).exists()
    with JsonlSink(out) as sink:  # resumes from OUT alone
        assert sink.is_done("a")
        sink.write_error(failed("b"))
    assert ids(out) == ["a"]
    assert ids(errors_path_for(out)) == ["b"]
    with JsonlSink(out, retry_errors=True) as sink:  # both there before: both kept
        assert sink.status("b") == "failed"
    assert ids(out) == ["a"] and ids(errors_path_for(out)) == ["b"]


@pytest.mark.parametrize("which", ["out", "errors"])
def test_a_sink_waiting_for_a_file_its_holder_removes_writes_to_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    """The second sink opens the file, the first (holding its lock, having written nothing) removes it and
    closes, then the second takes the lock: on the removed file, which it must see, and open the new one.
    `errors`: two outputs sharing one errors file, the case where only that file is contended."""
    shared = tmp_path / "errors.jsonl"
    first = JsonlSink(tmp_path / "a.jsonl", shared).open()
    out = tmp_path / ("a.jsonl" if which == "out" else "b.jsonl")
    target = out if which == "out" else shared
    real_lock = sink_module._lock

    def lock_after_the_first_closes(fd: int, path: Path) -> None:
        if path == target and first.is_open:
            first.close()  # removes the (empty) files and releases their locks, the second holding `fd`
        real_lock(fd, path)

    monkeypatch.setattr(sink_module, "_lock", lock_after_the_first_closes)
    with JsonlSink(out, shared) as second:
        assert not first.is_open
        third = JsonlSink(out if which == "out" else tmp_path / "c.jsonl", shared)
        with pytest.raises(ConfigurationError, match="being written by another run"):
            third.open()  # the second holds the lock of the file the path names
        second.write_ok(ok("a"))
        second.write_error(failed("b"))
    assert ids(out) == ["a"]  # written to the files the paths name, not to removed ones
    assert ids(shared) == ["b"]
