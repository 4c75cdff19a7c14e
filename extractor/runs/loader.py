"""Reading files into documents off the event loop, where one bad file can only fail itself.

PDFs are parsed in worker processes, one file per worker at a time, so that CPU work overlaps with
network waits. A worker that dies (the OOM killer, a crash in a decoder) fails only the file it was
reading, with a `DocumentError` that says how it died; one that reads past the timeout, or whose
`load` is cancelled, is killed. Either way a new worker starts at the next PDF, and other files are
unaffected. The timeout counts from when a started worker gets the file (not its own start-up).

A worker is a fresh interpreter (`python -c` with a few lines of ours, never forked: the parent runs
threads) that imports this module and nothing of the caller's: unlike `multiprocessing`'s spawned
processes it never imports `__main__`, so a plain script calling `extract_many` at its top level (no
`if __name__ == "__main__":`) is not run again in each worker. Workers get the parent's `sys.path`,
run in their own session (a Ctrl-C in the terminal is the parent's to handle), and are stopped by
`close`/`aclose`; if the parent is killed, they exit after the file they are reading (their pipe
closes). Other files, every file with `workers=0`, and every file where no worker can be started
this way (Windows, an interpreter with no `sys.executable`, a frozen application) are read in a
thread, under the same timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final, cast

from ..errors import DocumentError, ExtractorError
from ..sources import DEFAULT_MAX_FILE_BYTES, Document, read_head
from ..sources._sniff import find_pdf_header

__all__ = ["DEFAULT_LOAD_TIMEOUT", "DocumentLoader"]

#: the seconds one file may take in its worker (or thread) before it fails
DEFAULT_LOAD_TIMEOUT: Final = 120.0

#: the seconds a new worker may take to start (its imports); not counted in any file's timeout
_START_TIMEOUT: Final = 60.0
#: the seconds a stopped worker is waited for before it is killed (or, once killed, given up on)
_GRACE: Final = 1.0

_CLOSED: Final = "not read: the loader is closed"

#: what a worker interpreter runs (`python -c`): its pipe from argv, the parent's `sys.path`, then `_serve`;
#: `__main__` is this text, never the caller's script
_BOOT: Final = (
    "import sys\n"
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "sys.path[:] = conn.recv()\n"
    f"from {__name__} import _serve\n"
    "_serve(conn)\n"
)


def _workers_possible() -> bool:
    """Whether worker interpreters can be started here: a POSIX system (a pipe passed by its descriptor) and a
    known interpreter that runs `-c` (not a frozen application's executable)."""
    return os.name == "posix" and bool(sys.executable) and not getattr(sys, "frozen", False)


class _Process:
    """A worker interpreter, with the part of `multiprocessing.Process`'s interface the loader uses."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        """The process id."""
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """None while it runs; its exit status once it exited, -N when signal N ended it."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        """Whether it still runs."""
        return self._popen.poll() is None

    def terminate(self) -> None:
        """Asks it to stop (SIGTERM)."""
        if self.is_alive():
            self._popen.terminate()

    def kill(self) -> None:
        """Stops it at once (SIGKILL)."""
        if self.is_alive():
            self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        """Waits up to `timeout` s for it to exit (and reaps it)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)


def _launch() -> tuple[_Process, Connection]:
    """A new worker interpreter and the parent's end of its pipe (the worker's `sys.path` already sent)."""
    parent, child = multiprocessing.Pipe()  # a socket pair: one descriptor passed to the worker
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # stdout may be the caller's data (`extractor ... --json`)
            start_new_session=True,  # a Ctrl-C in the terminal reaches the parent only
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()  # the worker holds the only other end: its exit is an EOF here
    path = [os.getcwd() if entry == "" else entry for entry in sys.path]
    with contextlib.suppress(OSError):  # it died at once: read as such by the caller
        parent.send(path)
    return _Process(popen), parent


def _serve(conn: Connection) -> None:
    """A worker's life: answer each (path, password, pages, max_bytes) sent on `conn` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn.send(("ready", None))
    while True:
        try:
            path, password, pages, max_bytes = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = (
                "ok",
                Document.from_path(path, password=password, pages=pages, max_bytes=max_bytes),
            )
        except Exception as exc:
            reply = ("error", _as_error(exc, path))
        try:
            conn.send(reply)
        except OSError:
            return
        except Exception as exc:  # the reply does not pickle (nothing was written)
            conn.send(("error", DocumentError(f"cannot return the result: {type(exc).__name__}: {exc}", source=path)))


def _as_error(exc: BaseException, path: str) -> ExtractorError:
    """`exc` if it is one of the library's errors, else a `DocumentError` naming `path` that describes it."""
    if isinstance(exc, ExtractorError):
        return exc
    return DocumentError(f"unexpected {type(exc).__name__}: {exc}", source=path)


def _resolve(ready: asyncio.Future[None]) -> None:
    """Marks `ready` done (a reader callback: it may fire again before it is removed)."""
    if not ready.done():
        ready.set_result(None)


def _recv(conn: Connection) -> tuple[str, Any]:
    """The next message on `conn`; ("died", None) when the worker's end closed first."""
    try:
        return cast("tuple[str, Any]", conn.recv())
    except (EOFError, OSError):
        return "died", None
    except Exception as exc:  # an answer that does not unpickle
        return "error", exc


async def _readable(conn: Connection, timeout: float) -> None:
    """Returns once `conn` has data (or its other end closed); `asyncio.TimeoutError` after `timeout` s."""
    loop = asyncio.get_running_loop()
    fd = conn.fileno()
    ready: asyncio.Future[None] = loop.create_future()
    try:
        loop.add_reader(fd, _resolve, ready)
    except NotImplementedError:  # Windows' proactor loop has no readers: a thread waits instead
        if not await asyncio.to_thread(conn.poll, timeout):
            raise asyncio.TimeoutError from None
        return
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(fd)


def _death(process: _Process, when: str = "while reading it") -> str:
    """How `process` ended, for the message of the file it was reading."""
    code = process.exitcode
    if code is None:
        return f"the reader process died {when}"
    if code >= 0:
        return f"the reader process died {when} (exit code {code})"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "unknown signal"
    hint = "; out of memory?" if -code == getattr(signal, "SIGKILL", 9) else ""
    return f"the reader process died {when} (killed by signal {-code}, {name}{hint})"


@dataclass(eq=False)
class _Worker:
    """A worker process, the parent's end of its pipe, and the file it is reading (None when idle)."""

    process: _Process
    conn: Connection
    path: str | None = None
    reaper: asyncio.Task[None] | None = None


async def _reap(worker: _Worker, receiving: asyncio.Future[tuple[str, Any]] | None) -> None:
    """Waits for a killed worker to exit, then closes its pipe."""
    if receiving is not None:
        await receiving  # ends at once: the worker's end of the pipe closed with it
    await asyncio.to_thread(worker.process.join, _GRACE)
    worker.conn.close()


class DocumentLoader:
    """Reads files into `Document`s off the event loop: PDFs in worker processes (one file per worker at a time),
    other files in a thread. A worker that dies or runs past `timeout` fails only the file it was reading."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout: float = DEFAULT_LOAD_TIMEOUT,
        max_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.workers = ((os.cpu_count() or 1) if workers is None else workers) if _workers_possible() else 0
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._workers: list[_Worker] = []  # the live ones, idle or busy
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()  # one slot per worker; None: not started
        for _ in range(self.workers):
            self._idle.put_nowait(None)
        self._reaping: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return [w.process.pid for w in self._workers if w.process.pid is not None and w.process.is_alive()]

    async def load(self, path: str, *, password: str | None = None, pages: Any = None) -> Document:
        """The document in the file at `path`; a `DocumentError` naming the file when it cannot be read."""
        if self._closed:
            raise DocumentError(_CLOSED, source=path)
        head = await asyncio.to_thread(read_head, path, max_bytes=self.max_bytes)
        if self.workers > 0 and find_pdf_header(head) >= 0:
            return await self._in_worker(path, password, pages)
        read = asyncio.to_thread(Document.from_path, path, password=password, pages=pages, max_bytes=self.max_bytes)
        try:
            # a thread cannot be killed: past the timeout it is abandoned, and finishes in the background
            return await asyncio.wait_for(read, self.timeout)
        except asyncio.TimeoutError:
            raise DocumentError(self._late(), source=path) from None
        except Exception as exc:
            raise _as_error(exc, path) from exc

    async def _in_worker(self, path: str, password: str | None, pages: Any) -> Document:
        """The document at `path`, read by an idle worker (started if need be)."""
        worker = await self._idle.get()
        try:
            if self._closed:
                raise DocumentError(_CLOSED, source=path)
            if worker is None or not worker.process.is_alive():
                if worker is not None:
                    self._discard(worker)  # it died while idle
                worker = await self._start(path)
            worker.path = path
            with contextlib.suppress(OSError):  # it died just now: the end of its pipe is read below
                worker.conn.send((path, password, pages, self.max_bytes))
            try:
                status, value = await self._receive(worker, self.timeout)
            except asyncio.TimeoutError:
                raise DocumentError(self._late(), source=path) from None
            worker.path = None
            if status == "ok":
                return cast(Document, value)
            if status == "error":
                raise _as_error(value, path)
            await asyncio.shield(self._discard(worker))
            raise DocumentError(_CLOSED if self._closed else _death(worker.process), source=path)
        finally:
            self._idle.put_nowait(worker if worker in self._workers else None)

    async def _start(self, path: str) -> _Worker:
        """A new worker, once it has started and is ready for a file."""
        try:
            process, parent = _launch()  # fork and exec: quick, and nothing to leak on a cancellation
        except OSError as exc:
            raise DocumentError(f"not read: the reader process did not start: {exc}", source=path) from exc
        worker = _Worker(process, parent)
        self._workers.append(worker)
        try:
            status, _ = await self._receive(worker, _START_TIMEOUT)
        except asyncio.TimeoutError:
            raise DocumentError(
                f"not read: the reader process did not start in {_START_TIMEOUT:g} s", source=path
            ) from None
        if status != "ready":
            await asyncio.shield(self._discard(worker))
            raise DocumentError(f"not read: {_death(worker.process, 'at start')}", source=path)
        return worker

    async def _receive(self, worker: _Worker, timeout: float) -> tuple[str, Any]:
        """The next message from `worker`: ("died", None) when it exits first. A worker that does not answer
        within `timeout` s (`asyncio.TimeoutError`), or whose caller is cancelled, is discarded."""
        receiving: asyncio.Future[tuple[str, Any]] | None = None
        try:
            await _readable(worker.conn, timeout)
            # an answer can be large (page images): it is read in a thread, never blocking the loop
            receiving = asyncio.get_running_loop().run_in_executor(None, _recv, worker.conn)
            return await asyncio.shield(receiving)
        except BaseException:
            self._discard(worker, receiving)
            raise

    def _discard(self, worker: _Worker, receiving: asyncio.Future[tuple[str, Any]] | None = None) -> asyncio.Task[None]:
        """Kills `worker` for good and reaps it in the background; a new worker starts at the next PDF."""
        if worker in self._workers:
            self._workers.remove(worker)
        if worker.reaper is None:
            worker.process.kill()
            worker.reaper = asyncio.get_running_loop().create_task(_reap(worker, receiving))
            self._reaping.add(worker.reaper)
            worker.reaper.add_done_callback(self._reaping.discard)
        return worker.reaper

    def _late(self) -> str:
        """The message of a file that ran past the timeout."""
        return f"reading took longer than {self.timeout:g} s: stopped (the file may be damaged or crafted)"

    def _stop_all(self) -> list[_Worker]:
        """Marks the loader closed and asks every worker to stop; an idle one's pipe is closed, a busy one's is
        closed by its `load`, which fails."""
        self._closed = True
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.process.terminate()
            if worker.path is None:
                worker.conn.close()
        return workers

    @staticmethod
    def _join(workers: list[_Worker]) -> None:
        """Waits for stopped workers to exit, killing those that do not stop at once."""
        for worker in workers:
            worker.process.join(_GRACE)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join(_GRACE)

    async def aclose(self) -> None:
        """Stops the workers; loads still in flight fail. Safe to call more than once."""
        await asyncio.to_thread(self._join, self._stop_all())
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)

    def close(self) -> None:
        """`aclose` for code outside an event loop (a `finally` block). Safe to call more than once."""
        self._join(self._stop_all())
