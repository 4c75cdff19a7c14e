"""Every input accounted for: `extractor run` in a real subprocess, on real files, against the test server.

For every run: inputs given = records in OUT + records in the errors file + not started; each case
below asserts the exact records written, the exit code and that identity.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pdf_samples import slow_pdf
from pdf_samples import text_pdf as pdf

from extractor.testing import RecordedRequest, Reply, TestServer

KEY = "sk-test-accounting-0123456789abcdef"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
# root reads files whatever their mode: without these two capabilities, chmod 000 counts for it too
_NO_DAC = "-dac_override,-dac_read_search"
SETPRIV = shutil.which("setpriv")


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """The test's folder; what a test made unreadable is made readable again afterwards."""
    yield tmp_path
    for path in tmp_path.rglob("*"):
        if not path.is_symlink() and path.exists():
            path.chmod(0o700 if path.is_dir() else 0o600)


def env(folder: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "EXTRACTOR_BASE_URL"}
    out["EXTRACTOR_CACHE_DIR"] = str(folder / "cache")
    out["HOME"] = str(folder)
    out.update(extra)
    return out


def run(args: list[str], folder: Path, *, modes_count: bool = False, **extra: str) -> subprocess.CompletedProcess[str]:
    """`extractor run ARGS` in `folder`; `modes_count`: as root, without the capabilities that ignore file modes."""
    prefix: list[str] = []
    if modes_count and ROOT:
        if SETPRIV is None:
            pytest.skip("running as root without setpriv: chmod 000 cannot make a file unreadable")
        prefix = [SETPRIV, f"--inh-caps={_NO_DAC}", f"--bounding-set={_NO_DAC}"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "extractor", "run", *args],
        cwd=folder,
        env=env(folder, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def records(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert record["id"] not in out, f"{record['id']} written twice"
        out[record["id"]] = record
    return out


def given(stderr: str) -> dict[str, int]:
    """The counts of the summary's first line: given, ok, failed, not started, done before, still failed."""
    line = next(line for line in stderr.splitlines() if " given: " in line)
    counts = {"given": int(line.split(" ", 1)[0])}
    for number, what in re.findall(r"(\d+) (ok|failed before|failed|not started \([^)]*\)|already done before)", line):
        counts[what] = counts.get(what, 0) + int(number)
    return counts


def identity(stderr: str, folder: Path) -> dict[str, int]:
    """Assert inputs given = ok + failed + not started + done before, and return the counts."""
    counts = given(stderr)
    accounted = sum(n for k, n in counts.items() if k != "given")
    assert counts["given"] == accounted, stderr
    return counts


# --- files in a folder -----------------------------------------------------------------------------


def test_no_file_of_a_folder_vanishes(server: TestServer, work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    pdf(folder / "good.pdf", "Invoice INV-1 total 10 EUR")
    (folder / "good.txt").write_text("Invoice INV-2 total 20 EUR")
    (folder / "error-page.pdf").write_text("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    (folder / "text.png").write_text("just some text, not an image")
    (folder / "zero.pdf").write_bytes(b"")
    (folder / "gone.pdf").symlink_to(folder / "nowhere.pdf")
    os.mkfifo(folder / "pipe.txt")
    (folder / "zeros.txt").symlink_to("/dev/zero")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(folder / "socket.txt"))
    (folder / "locked.txt").write_text("no one may read this")
    (folder / "locked.txt").chmod(0)
    (folder / "sub").mkdir()
    (folder / "sub" / "inner.txt").write_text("hidden behind a folder no one may list")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (folder / "report.docx").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (folder / "expected.jsonl").write_text('{"id": "x", "text": "an expected value, not an input"}\n')
    (folder / "sub").chmod(0)
    try:
        done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], work,
                   modes_count=True)  # fmt: skip
    finally:
        listener.close()
    assert done.returncode == 1, done.stderr
    ok = records(work / "out.jsonl")
    failed = {k: r["error"] for k, r in records(work / "out.errors.jsonl").items()}
    assert set(ok) == {"in/good.pdf", "in/good.txt"}
    messages = {k: (e["type"], e["message"]) for k, e in failed.items()}
    assert set(messages) == {
        "in/error-page.pdf", "in/text.png", "in/zero.pdf", "in/gone.pdf", "in/pipe.txt", "in/zeros.txt",
        "in/socket.txt", "in/locked.txt", "in/sub",
    }  # fmt: skip
    assert messages["in/error-page.pdf"][1].startswith("in/error-page.pdf: not a PDF")
    assert "HTML" in messages["in/error-page.pdf"][1] or "html" in messages["in/error-page.pdf"][1]
    assert messages["in/text.png"][1].startswith("in/text.png: ")
    assert messages["in/zero.pdf"] == ("DocumentError", "in/zero.pdf: empty file")
    assert messages["in/gone.pdf"][1].startswith("in/gone.pdf: dangling symlink")
    assert messages["in/pipe.txt"] == (
        "DocumentError",
        "in/pipe.txt: not a regular file: a FIFO (named pipe); not read",
    )
    assert messages["in/zeros.txt"] == (
        "DocumentError",
        "in/zeros.txt: not a regular file: a character device; not read",
    )
    assert messages["in/socket.txt"] == ("DocumentError", "in/socket.txt: not a regular file: a socket; not read")
    assert messages["in/locked.txt"] == ("DocumentError", "in/locked.txt: cannot read: Permission denied")
    assert messages["in/sub"] == ("InputError", "in/sub: cannot list the folder: Permission denied")
    counts = identity(done.stderr, work)
    assert counts == {"given": 11, "ok": 2, "failed": 9}
    # files whose names say nothing we read are named in the summary, with their reasons, without -v
    assert "skipped 4 files by name (not inputs):" in done.stderr
    assert "in/.DS_Store: hidden" in done.stderr
    assert "in/archive.zip: not a PDF, image, text or JSONL file (a ZIP archive" in done.stderr
    assert "in/report.docx: not a PDF, image, text or JSONL file (a ZIP archive" in done.stderr
    assert "in/expected.jsonl: a JSONL file in a folder: name it as an INPUT" in done.stderr
    assert len(server.chat_requests) == 2  # nothing sent for what could not be read


def test_a_file_deleted_after_the_folder_was_listed_is_a_failed_input(work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    for i in range(6):
        (folder / f"note{i}.txt").write_text(f"Invoice INV-{i} total {i} EUR")
    late = folder / "zz-late.txt"
    late.write_text("Invoice INV-9, deleted before its turn")
    with TestServer(latency=0.4) as server:
        cmd = [sys.executable, "-m", "extractor", "run", "in", "--schema", "invoice", "-o", "out.jsonl",
               "--base-url", server.base_url, "--concurrency", "1"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=work, env=env(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not server.chat_requests and time.monotonic() < deadline:  # the folder was listed and counted
            time.sleep(0.01)
        late.unlink()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert set(records(work / "out.jsonl")) == {f"in/note{i}.txt" for i in range(6)}
    failed = records(work / "out.errors.jsonl")
    assert set(failed) == {"in/zz-late.txt"}
    assert failed["in/zz-late.txt"]["error"]["message"] in (
        "in/zz-late.txt: cannot read: it was deleted while the folder was read",
        "in/zz-late.txt: cannot read: No such file or directory",
    )
    assert identity(stderr, work) == {"given": 7, "ok": 6, "failed": 1}


def test_a_file_over_the_size_limit_fails_alone_unread(server: TestServer, work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    (folder / "big.txt").write_text("Invoice INV-1 " * 200_000)  # 2.8 MB
    (folder / "small.txt").write_text("Invoice INV-2 total 20 EUR")
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url,
                "--max-file-size", "1MB"], work)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert set(records(work / "out.jsonl")) == {"in/small.txt"}
    error = records(work / "out.errors.jsonl")["in/big.txt"]["error"]
    assert error["type"] == "DocumentError"
    assert error["message"].startswith("in/big.txt: too large: 2.7 MB, over the limit of 1.0 MB")
    assert identity(done.stderr, work) == {"given": 2, "ok": 1, "failed": 1}


def test_a_path_given_twice_is_done_once_and_said(server: TestServer, work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Invoice A")
    done = run(["in", "in/a.txt", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], work)
    assert done.returncode == 0, done.stderr
    assert set(records(work / "out.jsonl")) == {"in/a.txt"}
    assert "1 given again with the same id and content, done once" in done.stderr
    assert identity(done.stderr, work) == {"given": 1, "ok": 1, "failed": 0}


def test_a_jsonl_named_as_an_input_is_read_and_not_said_skipped_in_its_folder(server: TestServer, work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Invoice A")
    (folder / "notes.jsonl").write_text('{"id": "n-1", "text": "Invoice N-1"}\n')
    (folder / "expected.jsonl").write_text('{"id": "x", "text": "an expected value, not an input"}\n')
    done = run(["in", "in/notes.jsonl", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], work)
    assert done.returncode == 0, done.stderr
    assert set(records(work / "out.jsonl")) == {"in/a.txt", "n-1"}
    assert "in/notes.jsonl" not in done.stderr  # named, so read: not skipped
    assert "in/expected.jsonl: a JSONL file in a folder: name it as an INPUT" in done.stderr  # not named: skipped
    assert identity(done.stderr, work) == {"given": 2, "ok": 2, "failed": 0}


# --- JSONL inputs ------------------------------------------------------------------------------------


def test_each_bad_jsonl_line_fails_alone(server: TestServer, work: Path) -> None:
    lines = [
        b'{"id": "a", "text": "one"}',
        b'{"id": 7, "text": "seven"}',
        b'{"id": "b", "text": "caf\xe9 in latin-1"}',  # one byte that is not UTF-8
        b"not json",
        b'{"id": "c", "body": "no text field"}',
        b'["a", "list"]',
        b'{"id": "7", "text": "another seven"}',  # the id of line 2, as a string, with another text
        b'{"id": "a", "text": "one"}',  # line 1 again: the same input
        b'{"id": {"n": 1}, "text": "an object id"}',
        b"",
        b'{"text": "no id"}',
        b'{"id": "last", "text": "the last line is still done"}',
    ]
    (work / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    done = run(["in.jsonl", "--schema", "receipt", "-o", "out.jsonl", "--base-url", server.base_url], work)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert set(records(work / "out.jsonl")) == {"a", "7", "in.jsonl#line=11", "last"}
    failed = {k: (r["error"]["type"], r["error"]["message"]) for k, r in records(work / "out.errors.jsonl").items()}
    assert failed == {
        "in.jsonl#line=3": ("InputError", "in.jsonl:3: not valid UTF-8 (byte 0xe9 at column 25)"),
        "in.jsonl#line=4": ("InputError", "in.jsonl:4: not JSON (Expecting value: line 1 column 1 (char 0))"),
        "c": ("InputError", 'in.jsonl:5: no "text" string'),
        "in.jsonl#line=6": ("InputError", "in.jsonl:6: not a JSON object"),
        "in.jsonl#line=7": (
            "InputError",
            'in.jsonl:7: duplicate id "7" with another text, first seen at in.jsonl:2 '
            '(ids are compared as strings: 7 and "7" are the same id)',
        ),
        "in.jsonl#line=9": ("InputError", 'in.jsonl:9: "id" must be a string or a number, not {"n": 1}'),
    }
    assert identity(done.stderr, work) == {"given": 10, "ok": 4, "failed": 6}
    assert "1 given again with the same id and content, done once" in done.stderr


# --- run-level faults ----------------------------------------------------------------------------------


def texts(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note{i:03d}.txt").write_text(f"Invoice INV-{i:03d}, total {i}.50 EUR")
    return folder


def assert_stopped(done: subprocess.CompletedProcess[str], work: Path, message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"error: {message}" in done.stderr.splitlines()
    assert records(work / "out.jsonl") == {} and records(work / "out.errors.jsonl") == {}
    counts = identity(done.stderr, work)
    assert counts["given"] == counts["not started (the run stopped)"]


def test_a_wrong_key_stops_the_run_and_the_right_key_then_does_everything(work: Path) -> None:
    texts(work / "in", 30)
    with TestServer(api_key=KEY) as server:
        args = ["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--concurrency", "4"]
        wrong = run(args, work, EXTRACTOR_API_KEY="sk-wrong-key-0000000000")
        assert len(server.chat_requests) <= 4  # the first answers, not one request per input
        host = server.base_url.split("//")[1].split("/")[0]
        assert_stopped(
            wrong,
            work,
            f"401 from {host}: No auth credentials found (the API key was refused: "
            "check EXTRACTOR_API_KEY or OPENROUTER_API_KEY, and --base-url)",
        )
        right = run(args, work, EXTRACTOR_API_KEY=KEY)
    assert right.returncode == 0, right.stderr
    assert set(records(work / "out.jsonl")) == {f"in/note{i:03d}.txt" for i in range(30)}
    assert identity(right.stderr, work) == {"given": 30, "ok": 30, "failed": 0}


def test_a_payment_error_stops_the_run(server: TestServer, work: Path) -> None:
    texts(work / "in", 10)
    server.handler = lambda request: Reply.status_error(402, "Insufficient credits")
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], work)
    host = server.base_url.split("//")[1].split("/")[0]
    assert_stopped(
        done, work, f"402 from {host}: Insufficient credits (the account cannot pay for requests: add credits or use "
        "another key)"
    )  # fmt: skip


def test_an_unreachable_endpoint_stops_the_run(work: Path) -> None:
    texts(work / "in", 20)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/v1"
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", url, "--mode", "json_schema"], work)
    assert_stopped(done, work, f"cannot reach {url}: connection refused")


def test_a_wrong_url_path_stops_the_run(server: TestServer, work: Path) -> None:
    texts(work / "in", 10)
    server.handler = lambda request: Reply.status_error(404, "Not Found")
    url = server.base_url + "/wrong"
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", url], work)
    host = server.base_url.split("//")[1].split("/")[0]
    assert_stopped(done, work, f"404 from {host}: Not Found (check --base-url, now {url}, and --model)")


def test_a_404_for_one_input_amid_successes_is_that_inputs_failure(server: TestServer, work: Path) -> None:
    texts(work / "in", 8)

    def handler(request: RecordedRequest) -> Reply | None:
        if "INV-003" in json.dumps(request.json):
            return Reply.status_error(404, "No endpoints found that support this input")
        return None

    server.handler = handler
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--concurrency", "1"],
               work)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert set(records(work / "out.errors.jsonl")) == {"in/note003.txt"}
    assert len(records(work / "out.jsonl")) == 7
    assert identity(done.stderr, work) == {"given": 8, "ok": 7, "failed": 1}


# --- usage errors: exit 2 before anything is sent ------------------------------------------------------


def test_a_missing_input_path_is_a_usage_error(server: TestServer, work: Path) -> None:
    texts(work / "in", 2)
    done = run(["in", "no-such-folder", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url],
               work)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: input no-such-folder: no such file or folder"]
    assert not (work / "out.jsonl").exists() and not (work / "out.errors.jsonl").exists()
    assert server.chat_requests == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("settings.json", json.dumps({"id": "x", "data": {"a": [1, 2]}, "other": True}, indent=2) + "\n"),
        ("table.csv", "id,text\n1,hello\n2,world"),
        ("inputs.jsonl", '{"id": "a", "text": "one"}\n{"id": "b", "text": "two"}\n'),
    ],
)
def test_an_output_that_is_not_ours_is_left_as_it_was(server: TestServer, work: Path, name: str, content: str) -> None:
    texts(work / "in", 2)
    target = work / name
    target.write_text(content)
    before = target.read_bytes()
    done = run(["in", "--schema", "invoice", "-o", name, "--base-url", server.base_url], work)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(f"error: {name}")
    assert target.read_bytes() == before
    assert not any(p.name.endswith(".errors.jsonl") for p in work.iterdir())
    assert server.chat_requests == []


def test_an_output_that_is_one_of_the_inputs_is_refused(server: TestServer, work: Path) -> None:
    (work / "in.jsonl").write_text('{"id": "a", "text": "one"}\n')
    before = (work / "in.jsonl").read_bytes()
    done = run(["in.jsonl", "--schema", "invoice", "-o", "in.jsonl", "--base-url", server.base_url], work)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: in.jsonl is both an input and this run's output: choose another -o"
    assert (work / "in.jsonl").read_bytes() == before


def test_the_output_inside_the_input_folder_is_not_read_as_an_input(server: TestServer, work: Path) -> None:
    texts(work / "in", 3)
    first = run(["in", "--schema", "invoice", "-o", "in/out.txt", "--base-url", server.base_url], work)
    assert first.returncode == 0, first.stderr
    again = run(["in", "--schema", "invoice", "-o", "in/out.txt", "--base-url", server.base_url], work)
    assert again.returncode == 0, again.stderr
    assert "in/out.txt: this run's own output" in again.stderr
    assert identity(again.stderr, work) == {"given": 3, "ok": 0, "failed": 0, "already done before": 3}


# --- exit codes and the summary ----------------------------------------------------------------------


def test_a_rerun_that_leaves_failed_inputs_alone_exits_1_and_says_so(server: TestServer, work: Path) -> None:
    texts(work / "in", 3)
    (work / "in" / "empty.txt").write_bytes(b"")
    args = ["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url]
    first = run(args, work)
    assert first.returncode == 1
    again = run(args, work)
    assert again.returncode == 1
    assert "1 failed before and not retried (--retry-errors retries them)" in again.stderr
    assert identity(again.stderr, work) == {"given": 4, "ok": 0, "failed": 0, "already done before": 3,
                                            "failed before": 1}  # fmt: skip
    assert len(server.chat_requests) == 3


def test_text_from_the_server_cannot_drive_the_terminal(work: Path) -> None:
    texts(work / "in", 2)
    hostile = "bad key\x1b]52;c;ZWNobyBvd25lZA==\x07\x1b[2J\nERROR faked log line\r"
    with TestServer() as server:
        server.handler = lambda request: Reply.status_error(401, hostile)
        done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "-v"], work)
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr and "\r" not in done.stderr
    assert not any(line.startswith("ERROR faked") for line in done.stderr.splitlines())
    assert "bad key\\x1b]52;c;ZWNobyBvd25lZA==\\x07\\x1b[2J\\nERROR faked log line\\r" in done.stderr


def test_the_cache_is_private_and_the_output_follows_the_umask(server: TestServer, work: Path) -> None:
    texts(work / "in", 2)
    (work / "in" / "empty.txt").write_bytes(b"")  # one error record: the errors file is written too
    done = subprocess.run(
        ["sh", "-c", f"umask 022 && exec {sys.executable} -m extractor run in --schema invoice -o out.jsonl "
         f"--base-url {server.base_url}"],
        cwd=work, env=env(work), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    cache = work / "cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = [p for p in cache.iterdir() if p.name.startswith("responses.sqlite")]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert stat.S_IMODE((work / "out.jsonl").stat().st_mode) == 0o644
    assert stat.S_IMODE((work / "out.errors.jsonl").stat().st_mode) == 0o644


# --- the dry run ---------------------------------------------------------------------------------------


def test_the_dry_run_says_nothing_is_sent_and_lists_like_the_real_run(work: Path) -> None:
    folder = texts(work / "in", 2)
    (folder / "zero.pdf").write_bytes(b"")
    (folder / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    done = run(["in", "--schema", "invoice", "--dry-run"], work)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "dry run: nothing is sent; what a run would read and send:"
    assert "in/zero.pdf\tfails: in/zero.pdf: empty file" in out
    assert "3 inputs (1 would fail to load)" in done.stdout
    assert "  in/archive.zip: not a PDF, image, text or JSONL file (a ZIP archive" in done.stdout
    assert '"required"' not in done.stdout and "--show-schema prints it" in done.stdout
    shown = run(["in", "--schema", "invoice", "--dry-run", "--show-schema"], work)
    assert '"required": [' in shown.stdout


def test_the_dry_run_estimate_is_within_1_5x_of_what_the_endpoint_counts(server: TestServer, work: Path) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    inputs = [str(examples / "invoices"), str(examples / "texts"), str(examples / "texts" / "notes.jsonl")]
    dry = run([*inputs, "--schema", "invoice", "--dry-run"], work)
    assert dry.returncode == 0, dry.stderr
    estimates = {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\t.*, ~(\d+) tokens$", dry.stdout, re.MULTILINE)}
    real = run([*inputs, "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--mode",
                "json_schema"], work)  # fmt: skip
    assert real.returncode == 0, real.stderr
    counted = {k: r["meta"]["usage"]["prompt_tokens"] for k, r in records(work / "out.jsonl").items()}
    assert set(estimates) == set(counted) and len(counted) == 11
    for ident, estimate in estimates.items():
        assert 1 / 1.5 <= estimate / counted[ident] <= 1.5, (ident, estimate, counted[ident])
    assert 1 / 1.5 <= sum(estimates.values()) / sum(counted.values()) <= 1.5


# --- PDF reader processes that die or hang -----------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the reader processes through /proc")
def test_a_killed_pdf_reader_fails_its_pdf_alone_and_the_rest_go_on(work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    slow_pdf(folder / "aa-slow.pdf")
    for i in range(10):
        pdf(folder / f"doc{i:02d}.pdf", f"Invoice INV-{i} total {i} EUR")
    with TestServer(latency=0.2) as server:
        cmd = [sys.executable, "-m", "extractor", "run", "in", "--schema", "invoice", "-o", "out.jsonl",
               "--base-url", server.base_url, "--concurrency", "3"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=work, env=env(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        busy = None
        deadline = time.monotonic() + 60
        while busy is None and time.monotonic() < deadline:  # the reader that has spent a second on one file
            time.sleep(0.1)
            for child in _children(proc.pid):
                try:
                    if _cpu_ticks(child) >= os.sysconf("SC_CLK_TCK"):
                        busy = child
                except OSError:
                    pass
        assert busy is not None, "no reader process got busy with the slow PDF"
        os.kill(busy, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert set(records(work / "out.jsonl")) == {f"in/doc{i:02d}.pdf" for i in range(10)}
    failed = records(work / "out.errors.jsonl")
    assert set(failed) == {"in/aa-slow.pdf"}
    assert failed["in/aa-slow.pdf"]["error"] == {
        "type": "DocumentError",
        "message": "in/aa-slow.pdf: the reader process died while reading it (killed by signal 9, SIGKILL; "
        "out of memory?)",
    }
    assert identity(stderr, work) == {"given": 11, "ok": 10, "failed": 1}


def test_a_pdf_past_the_load_timeout_fails_alone(server: TestServer, work: Path) -> None:
    folder = work / "in"
    folder.mkdir()
    slow_pdf(folder / "aa-slow.pdf")
    for i in range(3):
        pdf(folder / f"doc{i}.pdf", f"Invoice INV-{i} total {i} EUR")
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--load-timeout", "1"],
               work)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert set(records(work / "out.jsonl")) == {f"in/doc{i}.pdf" for i in range(3)}
    error = records(work / "out.errors.jsonl")["in/aa-slow.pdf"]["error"]
    assert error["message"] == (
        "in/aa-slow.pdf: reading took longer than 1 s: stopped (the file may be damaged or crafted)"
    )
    assert identity(done.stderr, work) == {"given": 4, "ok": 3, "failed": 1}
