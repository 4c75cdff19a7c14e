"""The document loader: PDFs read in worker processes that may die or hang without harming other files.

Real files and real processes. Times below are only upper safety bounds: nothing asserts how fast
anything is, so a busy machine makes the tests slower, never wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fpdf import FPDF
from pdf_samples import slow_pdf

from extractor.errors import DocumentError, EncryptedDocumentError, UnsupportedSourceError
from extractor.runs.loader import DocumentLoader
from extractor.sources import Document
from extractor.testing import TestServer

T = TypeVar("T")

#: the upper bound of any one wait in these tests (a safety net, not a speed check)
_BOUND = 60.0


def _pdf(path: Path, *pages: str) -> str:
    """A PDF at `path` with one page per text in `pages`; its path."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.cell(text=text)
    pdf.output(str(path))
    return str(path)


def _run(coro: Awaitable[T]) -> T:
    """What `coro` returns, run in a new event loop with an upper bound on its time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, _BOUND)

    return asyncio.run(bounded())


async def _busy_with(loader: DocumentLoader, path: str) -> Any:
    """The worker process reading `path`, once one is."""
    while True:
        for worker in loader._workers:
            if worker.path == path:
                return worker.process
        await asyncio.sleep(0.02)


async def _gone(process: Any) -> int | None:
    """The exit code of `process`, once it no longer exists (reaped, not merely a zombie)."""
    assert process.pid is not None
    while True:
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            return process.exitcode
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The path of a PDF that takes seconds to read."""
    return slow_pdf(tmp_path_factory.mktemp("slow") / "slow.pdf")


@pytest.fixture
def pdfs(tmp_path: Path) -> list[str]:
    """The paths of six two-page PDFs; `_check` knows their texts."""
    return [_pdf(tmp_path / f"file{i}.pdf", f"first page of file {i}", f"second page of file {i}") for i in range(6)]


def _check(document: Document, index: int) -> None:
    """Asserts that `document` is the one read from `pdfs[index]`."""
    assert document.kind == "pdf"
    assert [page.text for page in document.pages] == [f"first page of file {index}", f"second page of file {index}"]


def test_document_errors_survive_pickling() -> None:
    for error in (
        DocumentError("damaged", source="/in/a.pdf"),
        EncryptedDocumentError("encrypted", source="/in/b.pdf"),
        UnsupportedSourceError("unsupported"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.source == error.source


def test_pdfs_text_and_errors_load(tmp_path: Path, pdfs: list[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("plain notes", encoding="utf-8")
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ngarbage without end")

    async def main() -> None:
        loader = DocumentLoader(2, timeout=_BOUND)
        try:
            documents = await asyncio.gather(*(loader.load(path) for path in pdfs))
            for index, document in enumerate(documents):
                _check(document, index)
            assert len(loader.pids) == 2
            notes = await loader.load(str(text))
            assert (notes.kind, notes.text) == ("text", "plain notes")
            second = await loader.load(pdfs[1], pages="2")
            assert [page.number for page in second.pages] == [2]
            with pytest.raises(DocumentError) as caught:
                await loader.load(str(corrupt))
            assert caught.value.source == str(corrupt)
            assert str(corrupt) in str(caught.value)
            # an unexpected exception in the worker comes back as a DocumentError that names the file
            with pytest.raises(DocumentError, match="unexpected TypeError") as caught:
                await loader.load(pdfs[0], pages=2.5)
            assert caught.value.source == pdfs[0]
            assert len(loader.pids) == 2  # no worker was lost to a bad file
        finally:
            await loader.aclose()
        assert loader.pids == []

    _run(main())


def test_a_killed_worker_fails_only_its_file(pdfs: list[str], slow: str) -> None:
    async def main() -> None:
        loader = DocumentLoader(2, timeout=_BOUND)
        try:
            await asyncio.gather(*(loader.load(path) for path in pdfs[:2]))  # both workers started
            reading = asyncio.create_task(loader.load(slow))
            before = [asyncio.create_task(loader.load(path)) for path in pdfs[:3]]
            process = await _busy_with(loader, slow)
            await asyncio.sleep(0.5)  # well into its seconds of parsing
            assert not reading.done()
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            with pytest.raises(DocumentError) as caught:
                await reading
            message = str(caught.value)
            assert caught.value.source == slow
            assert "died" in message
            assert "SIGKILL" in message
            after = [loader.load(path) for path in pdfs[3:]]
            for index, document in enumerate(await asyncio.gather(*before, *after)):
                _check(document, index)
            assert process.pid not in loader.pids
        finally:
            await loader.aclose()

    _run(main())


def test_a_file_past_the_timeout_is_stopped(pdfs: list[str], slow: str) -> None:
    async def main() -> None:
        # 1 s: the slow PDF takes seconds, a small one a few hundredths (even in a freshly started worker)
        loader = DocumentLoader(1, timeout=1.0)
        try:
            _check(await loader.load(pdfs[0]), 0)
            [process] = [worker.process for worker in loader._workers]
            with pytest.raises(DocumentError, match="took longer than 1 s") as caught:
                await loader.load(slow)
            assert caught.value.source == slow
            assert process.pid not in loader.pids
            assert await _gone(process) == -signal.SIGKILL  # killed, not left to finish
            for index in (1, 2):
                _check(await loader.load(pdfs[index]), index)
            assert len(loader.pids) == 1
        finally:
            await loader.aclose()

    _run(main())


def test_special_files_fail_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    link = tmp_path / "zero.pdf"
    link.symlink_to("/dev/zero")

    async def main() -> None:
        loader = DocumentLoader(1)
        try:
            for path in (str(fifo), "/dev/zero", str(link)):
                with pytest.raises(DocumentError, match="not a regular file") as caught:
                    await asyncio.wait_for(loader.load(path), 10)
                assert caught.value.source == path
            with pytest.raises(DocumentError, match=r"(?i)no such file"):
                await asyncio.wait_for(loader.load(str(tmp_path / "missing.pdf")), 10)
            assert loader.pids == []  # refused before any worker was needed
        finally:
            await loader.aclose()

    _run(main())


def test_without_workers_pdfs_are_read_in_a_thread(pdfs: list[str]) -> None:
    async def main() -> None:
        loader = DocumentLoader(0)
        try:
            _check(await loader.load(pdfs[0]), 0)
            with pytest.raises(DocumentError, match="unexpected TypeError"):
                await loader.load(pdfs[0], pages=2.5)
            assert loader.pids == []
        finally:
            await loader.aclose()

    _run(main())


def test_a_cancelled_load_stops_its_worker(pdfs: list[str], slow: str) -> None:
    async def main() -> None:
        loader = DocumentLoader(1, timeout=_BOUND)
        try:
            _check(await loader.load(pdfs[0]), 0)
            reading = asyncio.create_task(loader.load(slow))
            process = await _busy_with(loader, slow)
            await asyncio.sleep(0.3)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            assert await _gone(process) == -signal.SIGKILL  # killed, not left to finish
            _check(await loader.load(pdfs[1]), 1)
            assert len(loader.pids) == 1
            assert process.pid not in loader.pids
        finally:
            await loader.aclose()

    _run(main())


def test_close_is_idempotent_and_stops_loads(pdfs: list[str], slow: str) -> None:
    DocumentLoader(2).close()  # nothing was ever started

    async def main() -> None:
        loader = DocumentLoader(1, timeout=_BOUND)
        _check(await loader.load(pdfs[0]), 0)
        reading = asyncio.create_task(loader.load(slow))
        process = await _busy_with(loader, slow)
        await loader.aclose()
        with pytest.raises(DocumentError, match="closed"):
            await reading
        await loader.aclose()
        loader.close()
        assert await _gone(process) is not None
        with pytest.raises(DocumentError, match="closed"):
            await loader.load(pdfs[1])

    _run(main())


_PLAIN_SCRIPT = """\
import asyncio
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from extractor import Extractor
from extractor.runs.loader import DocumentLoader


class Invoice(BaseModel):
    number: str
    total: float


print("the script runs", flush=True)
ex = Extractor(model="test-model", base_url=sys.argv[1], api_key="test-key")
for r in ex.extract_many(Invoice, sorted(Path(sys.argv[2]).glob("*.pdf")), concurrency=4):
    print(json.dumps({"id": r.id, "ok": r.ok, "error": None if r.ok else str(r.error)}), flush=True)



async def read_one(path: Path) -> int:
    loader = DocumentLoader(1)
    try:
        await loader.load(str(path))
        return len(loader.pids)
    finally:
        await loader.aclose()


print("workers:", asyncio.run(read_one(next(Path(sys.argv[2]).glob("*.pdf")))), flush=True)
"""


def test_a_plain_script_calling_extract_many_at_its_top_level_is_not_run_again(
    corpora: Path, tmp_path: Path, server: TestServer
) -> None:
    # the README's snippet as a newcomer writes it: no `if __name__ == "__main__":`, real PDFs
    folder = corpora / "invoice2data" / "compare"
    pdfs = sorted(str(path) for path in folder.glob("*.pdf"))
    assert len(pdfs) >= 4
    script = tmp_path / "first_script.py"
    script.write_text(_PLAIN_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), server.base_url, str(folder)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "EXTRACTOR_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    assert "bootstrapping" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("the script runs") == 1  # the workers did not run the script again
    assert "workers: 1" in lines  # PDFs are read in a worker process, not in a thread instead
    results = [json.loads(line) for line in lines if line.startswith("{")]
    assert sorted(result["id"] for result in results) == pdfs
    assert [result for result in results if not result["ok"]] == []
    # each PDF's own text was sent, as read here in-process
    bodies = [request.body.decode() for request in server.chat_requests]
    assert len(bodies) == len(pdfs)
    for path in pdfs:
        words = " ".join(page.text for page in Document.from_path(path).pages).split()[:3]
        assert any(all(json.dumps(word)[1:-1] in body for word in words) for body in bodies), path
