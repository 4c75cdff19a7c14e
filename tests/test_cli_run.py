"""`extractor run`, the real command in a subprocess, against the test server."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pdf_samples import text_pdf as pdf
from PIL import Image as PILImage

from extractor.testing import RecordedRequest, Reply, TestServer

KEY = "sk-or-v1-test-0123456789abcdefghijklmnop"


def _interruptible() -> None:
    """In the child, before it starts: SIGINT as a terminal gives it, even when this test runs where SIGINT
    is ignored (a background job of a shell without job control passes SIG_IGN on to its children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "EXTRACTOR_BASE_URL"}
    out["EXTRACTOR_CACHE_DIR"] = str(tmp_path / "cache")
    out.update(extra)
    return out


def run(args: list[str], tmp_path: Path, *, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extractor", "run", *args],
        cwd=tmp_path,
        env=env(tmp_path, **extra),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def texts(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note{i:03d}.txt").write_text(f"Invoice INV-{i:03d}, total {i}.50 EUR")
    return folder


def test_a_folder_to_jsonl_with_ids_and_meta(server: TestServer, tmp_path: Path) -> None:
    texts(tmp_path / "in", 6)
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], tmp_path)
    assert done.returncode == 0, done.stderr
    records = lines(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == [f"in/note{i:03d}.txt" for i in range(6)]
    first = records[0]
    assert set(first) == {"id", "source", "data", "meta"}
    assert isinstance(first["data"]["invoice_number"], str)
    assert first["meta"]["mode"] == "json_schema" and first["meta"]["attempts"] == 1
    assert lines(tmp_path / "out.errors.jsonl") == []
    assert "6 ok, 0 failed" in done.stderr


def test_jsonl_inputs_from_a_file_and_from_stdin(server: TestServer, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "one"}\n{"text": "two"}\nnot json\n')
    done = run(["in.jsonl", "-", "--schema", "receipt", "-o", "out.jsonl", "--base-url", server.base_url], tmp_path,
               stdin='{"text": "three", "source_system": "crm"}\n')  # fmt: skip
    ids = sorted(r["id"] for r in lines(tmp_path / "out.jsonl"))
    assert ids == ["-#line=1", "a", "in.jsonl#line=2"]
    assert done.returncode == 1  # a line of the input file was not a record: it is a failed input
    failed = lines(tmp_path / "out.errors.jsonl")
    assert [(r["id"], r["error"]["type"]) for r in failed] == [("in.jsonl#line=3", "InputError")]
    assert failed[0]["error"]["message"].startswith("in.jsonl:3: not JSON")
    crm = next(r for r in lines(tmp_path / "out.jsonl") if r["id"] == "-#line=1")
    assert crm["meta"]["source_system"] == "crm"


def test_bad_inputs_fail_alone_next_to_good_ones(server: TestServer, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pdf(folder / "good.pdf", "Invoice INV-1 total 10 EUR")
    pdf(folder / "locked.pdf", "Secret invoice", password="s3cret")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Pages /Kids [2 0 R] >>\nendobj\ntrailer")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    png = io.BytesIO()
    PILImage.new("RGB", (40, 20), (10, 200, 10)).save(png, format="PNG")
    (folder / "photo.jpg").write_bytes(png.getvalue())  # PNG bytes behind a .jpg name
    (folder / "notes.txt").write_text("A plain note.")
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], tmp_path)
    assert done.returncode == 1
    ok = {r["id"] for r in lines(tmp_path / "out.jsonl")}
    failed = {r["id"]: r["error"] for r in lines(tmp_path / "out.errors.jsonl")}
    assert ok == {"in/good.pdf", "in/photo.jpg", "in/notes.txt"}
    assert set(failed) == {"in/locked.pdf", "in/corrupt.pdf", "in/empty.txt", "in/binary.txt"}
    assert failed["in/locked.pdf"]["type"] == "EncryptedDocumentError"
    assert "encrypted; pass password=" in failed["in/locked.pdf"]["message"]
    assert failed["in/empty.txt"] == {"type": "DocumentError", "message": "in/empty.txt: empty file"}
    assert failed["in/binary.txt"]["type"] == "UnsupportedSourceError"
    assert (
        failed["in/corrupt.pdf"]["type"] == "DocumentError" and "in/corrupt.pdf" in failed["in/corrupt.pdf"]["message"]
    )
    photo = next(
        r
        for r in server.chat_requests
        if any(p.get("type") == "image_url" for p in r.json["messages"][-1]["content"] if isinstance(p, dict))
    )
    assert photo is not None
    # the password opens it on a second run of the failed inputs
    again = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--password", "s3cret",
                 "--retry-errors"], tmp_path)  # fmt: skip
    assert "in/locked.pdf" in {r["id"] for r in lines(tmp_path / "out.jsonl")}
    assert "in/locked.pdf" not in {r["id"] for r in lines(tmp_path / "out.errors.jsonl")}
    assert again.returncode == 1  # the truly broken ones still fail


def start_and_wait(tmp_path: Path, server: TestServer, concurrency: int, lines_wanted: int) -> subprocess.Popen[bytes]:
    """`extractor run in ... -o out.jsonl` started in the background, once OUT holds `lines_wanted` lines."""
    cmd = [sys.executable, "-m", "extractor", "run", "in", "--schema", "invoice", "-o", "out.jsonl",
           "--base-url", server.base_url, "--concurrency", str(concurrency)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_interruptible
    )
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < lines_wanted):
        time.sleep(0.02)
    return proc


def test_resume_after_sigkill_gives_exactly_one_line_per_input(tmp_path: Path) -> None:
    texts(tmp_path / "in", 40)
    out = tmp_path / "out.jsonl"
    with TestServer(latency=0.15) as server:
        proc = start_and_wait(tmp_path, server, concurrency=4, lines_wanted=8)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        before = lines(out)
        assert 8 <= len(before) < 40
        with out.open("a") as handle:  # and a torn last line, as a power cut mid-write leaves
            handle.write('{"id": "in/note039.txt", "source": "in/no')
        done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], tmp_path)
    assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == [f"in/note{i:03d}.txt" for i in range(40)]  # every input, each exactly once
    assert "already done before" in done.stderr and "torn last line" in done.stderr


def test_a_429_storm_with_retry_after_still_completes(server: TestServer, tmp_path: Path) -> None:
    lock = threading.Lock()
    count = {"n": 0}

    def handler(request: RecordedRequest) -> Reply | None:
        with lock:
            count["n"] += 1
            storm = count["n"] <= 12
        return Reply.status_error(429, "rate limited", retry_after=1) if storm else None

    server.handler = handler
    texts(tmp_path / "in", 10)
    started = time.monotonic()
    done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--concurrency", "8"],
               tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(lines(tmp_path / "out.jsonl")) == 10
    assert time.monotonic() - started >= 1.0  # Retry-After was waited for


def test_budget_stop_then_finish(server: TestServer, tmp_path: Path) -> None:
    server.handler = lambda request: Reply(usage={"prompt_tokens": 100, "completion_tokens": 20, "cost": 0.01})
    texts(tmp_path / "in", 8)
    args = ["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "--concurrency", "1"]
    stopped = run([*args, "--max-cost", "0.03"], tmp_path)
    assert stopped.returncode == 1
    done = lines(tmp_path / "out.jsonl")
    # the answers bill 0.01 for tokens listed at about 0.00003: reservations grow by that ratio, so that
    # fewer inputs start than 0.03 would buy at the list price, and none past the budget
    assert 1 <= len(done) <= 3 and sum(r["meta"]["cost"] for r in done) <= 0.03
    assert lines(tmp_path / "out.errors.jsonl") == []  # not started is not failed
    assert f"{8 - len(done)} not started (budget)" in stopped.stderr
    finished = run([*args, "--max-cost", "1"], tmp_path)
    assert finished.returncode == 0
    assert len(lines(tmp_path / "out.jsonl")) == 8


def test_dry_run_needs_no_key_and_sends_nothing(tmp_path: Path) -> None:
    texts(tmp_path / "in", 3)
    pdf(tmp_path / "in" / "doc.pdf", "Invoice INV-9 total 99 EUR")
    done = run(["in", "--schema", "invoice", "--dry-run"], tmp_path)  # OpenRouter by default, no key set
    assert done.returncode == 0, done.stderr
    assert "in/doc.pdf\tpdf, 1 page, 1 chunk(s)" in done.stdout
    assert "4 inputs (0 would fail to load)" in done.stdout
    assert "mistralai/mistral-small-2603: ~$" in done.stdout
    assert "schema Invoice, strict (--show-schema prints it)" in done.stdout


def test_the_dry_run_says_what_to_do_next(tmp_path: Path) -> None:
    texts(tmp_path / "in", 1)
    args = ["in", "--schema", "invoice", "-o", "out.jsonl", "--dry-run"]
    no_key = run(args, tmp_path)  # OpenRouter by default, no key set
    assert no_key.stdout.splitlines()[-1] == (
        "to run it: set OPENROUTER_API_KEY (the API key for openrouter.ai), then the same command without --dry-run"
    )
    keyed = run(args, tmp_path, OPENROUTER_API_KEY="sk-or-test")
    assert keyed.stdout.splitlines()[-1] == "to run it: the same command without --dry-run"
    other = run([*args, "--base-url", "https://api.example.com/v1"], tmp_path)  # no provider's own variable
    assert other.stdout.splitlines()[-1].startswith(
        "to run it: set EXTRACTOR_API_KEY (the API key for api.example.com)"
    )
    local = run([*args[:3], "--dry-run", "--base-url", "http://127.0.0.1:9/v1"], tmp_path)  # no key needed, no -o
    assert local.stdout.splitlines()[-1] == "to run it: the same command with -o OUT.jsonl, without --dry-run"
    assert all(not (tmp_path / "out.jsonl").exists() for _ in (no_key, keyed, other, local))


def test_exit_code_2_for_bad_usage(tmp_path: Path) -> None:
    texts(tmp_path / "in", 1)
    assert run(["in", "--schema", "no-such-schema", "-o", "out.jsonl"], tmp_path).returncode == 2
    assert run(["in", "--schema", "invoice"], tmp_path).returncode == 2  # no -o
    no_key = run(["in", "--schema", "invoice", "-o", "out.jsonl"], tmp_path)  # OpenRouter without a key
    assert no_key.returncode == 2
    assert "no API key for openrouter.ai" in no_key.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_without_a_key_the_command_says_which_variable_to_set(tmp_path: Path) -> None:
    texts(tmp_path / "in", 1)
    default = run(["in", "--schema", "invoice", "-o", "out.jsonl"], tmp_path)  # OpenRouter, no key
    assert default.returncode == 2
    assert default.stderr == (
        "error: no API key for openrouter.ai: set OPENROUTER_API_KEY (or EXTRACTOR_API_KEY, sent to any endpoint), "
        "or name the variable that holds it with --api-key-env NAME\n"
    )
    other = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", "https://api.mistral.ai/v1"], tmp_path)
    assert other.returncode == 2
    assert other.stderr == (
        "error: no API key for api.mistral.ai: set EXTRACTOR_API_KEY, or name the variable that holds it with "
        "--api-key-env NAME (OPENROUTER_API_KEY is sent only to openrouter.ai, OPENAI_API_KEY only to api.openai.com)\n"
    )
    unset = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--api-key-env", "MY_KEY"], tmp_path)
    assert unset.returncode == 2
    assert unset.stderr == "error: --api-key-env MY_KEY: the environment variable MY_KEY is not set\n"
    assert not (tmp_path / "out.jsonl").exists()
    helped = run(["--help"], tmp_path)
    assert "--api-key-env NAME" in helped.stdout
    for variable in ("$OPENROUTER_API_KEY", "$EXTRACTOR_API_KEY", "$OPENAI_API_KEY"):
        assert variable in helped.stdout


def test_api_key_env_names_the_variable_the_key_is_read_from(tmp_path: Path) -> None:
    texts(tmp_path / "in", 2)
    with TestServer(api_key=KEY) as server:
        args = ["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url]
        done = run([*args, "--api-key-env", "MY_KEY"], tmp_path, MY_KEY=KEY)
        assert done.returncode == 0, done.stderr
        assert {r.headers["authorization"] for r in server.chat_requests} == {f"Bearer {KEY}"}
    assert len(lines(tmp_path / "out.jsonl")) == 2
    assert KEY not in done.stdout + done.stderr + (tmp_path / "out.jsonl").read_text()


def test_the_key_is_in_no_output_file_and_no_log(tmp_path: Path) -> None:
    texts(tmp_path / "in", 4)
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    with TestServer(api_key=KEY) as server:
        server.queue(Reply.status_error(500, f"upstream said: bad key {KEY}"))
        done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url, "-vv"], tmp_path,
                   EXTRACTOR_API_KEY=KEY)  # fmt: skip
        assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert done.returncode == 1  # the empty file
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "responses.sqlite" for p in files)
    everything = done.stdout + done.stderr + "".join(p.read_bytes().decode("latin-1") for p in files)
    assert KEY not in everything and KEY[10:30] not in everything


def test_ctrl_c_stops_cleanly_and_keeps_what_finished(tmp_path: Path) -> None:
    texts(tmp_path / "in", 30)
    out = tmp_path / "out.jsonl"
    with TestServer(latency=0.15) as server:
        proc = start_and_wait(tmp_path, server, concurrency=3, lines_wanted=5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130
        assert b"interrupted: what finished is saved" in stderr
        kept = lines(out)  # every line whole: no torn record after a clean stop
        assert 5 <= len(kept) < 30
        done = run(["in", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url], tmp_path)
    assert done.returncode == 0
    assert sorted(r["id"] for r in lines(out)) == [f"in/note{i:03d}.txt" for i in range(30)]


def test_the_summary_of_an_interrupted_run_counts_every_input_given(tmp_path: Path) -> None:
    texts(tmp_path / "in", 200)
    out = tmp_path / "out.jsonl"
    args = ["in", "--schema", "invoice", "-o", "out.jsonl", "--no-cache"]
    with TestServer(latency=0.2) as server:  # slow answers: most inputs are not read yet at Ctrl-C
        cmd = [sys.executable, "-m", "extractor", "run", *args, "--base-url", server.base_url, "--concurrency", "4"]
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_interruptible,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 10):
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        first = stderr.decode().splitlines()
        summary = next(line for line in first if " inputs given: " in line)
        counts = re.fullmatch(r"(\d+) inputs given: (\d+) ok, 0 failed, (\d+) not started \(interrupted\)", summary)
        assert counts is not None, summary
        given, ok, not_started = map(int, counts.groups())
        assert given == 200 and ok + not_started == 200
        kept = len(lines(out))
        assert ok == kept and 10 <= kept < 200
        sent_before = len(server.chat_requests)
        done = run([*args, "--base-url", server.base_url, "--concurrency", "16"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"200 inputs given: {200 - kept} ok, 0 failed, {kept} already done before" in done.stderr
        assert len(server.chat_requests) - sent_before == 200 - kept  # exactly the rest, each once
    assert sorted(r["id"] for r in lines(out)) == [f"in/note{i:03d}.txt" for i in range(200)]


def test_json_nested_too_deeply_is_the_readers_own_error(server: TestServer, tmp_path: Path) -> None:
    """A JSONL line nested 100,000 deep stopped the run with a RecursionError traceback; an answer nested so
    deep was booked as "ExtractorError: unexpected RecursionError". Now each is its reader's error: the
    line an InputError, the answer an OutputInvalidError; the other inputs go on."""
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a", "text": "first"}\n'
        + '{"id": "b", "text": "x", "tags": ' + deep + "}\n"
        + '{"id": "c", "text": "answered too deep"}\n'
    )  # fmt: skip
    server.handler = lambda r: Reply(content='{"number": ' + deep + "}") if "too deep" in r.body.decode() else None
    done = run(["in.jsonl", "--schema", "invoice", "-o", "out.jsonl", "--base-url", server.base_url,
                "--max-retries", "0"], tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert [r["id"] for r in lines(tmp_path / "out.jsonl")] == ["a"]
    errors = {r["id"]: r["error"] for r in lines(tmp_path / "out.errors.jsonl")}
    assert errors["in.jsonl#line=2"] == {
        "type": "InputError",
        "message": "in.jsonl:2: not JSON this reader accepts (nested too deeply)",
    }
    assert errors["c"]["type"] == "OutputInvalidError"
