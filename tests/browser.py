"""A real headless Chromium for the review page's tests (and `benchmarks/review_page.py`): finding one,
its arguments, and a page driven through the DevTools protocol (real mouse and key events)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# what `Input.dispatchKeyEvent` needs to make a key the page sees as `KeyboardEvent.key`
_KEYS = {
    "Enter": ("Enter", 13, "\r"),
    "Escape": ("Escape", 27, ""),
    "Tab": ("Tab", 9, ""),
    "Backspace": ("Backspace", 8, ""),
    "Delete": ("Delete", 46, ""),
    "ArrowDown": ("ArrowDown", 40, ""),
    "ArrowUp": ("ArrowUp", 38, ""),
}
SHIFT, CTRL = 8, 2  # DevTools modifier bits


@functools.cache
def chromium() -> str | None:
    """A Chromium that starts here, or None: `$CHROMIUM`, Debian's `chromium` or another on PATH, or
    Playwright's (`python -m playwright install chromium`)."""
    names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    found = [os.environ.get("CHROMIUM"), *(shutil.which(name) for name in names)]
    found += sorted(glob.glob(os.path.expanduser("~/.cache/ms-playwright/chromium-*/chrome-linux*/chrome")))
    for path in found:
        if not path:
            continue
        try:
            ok = subprocess.run([path, "--version"], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return path
    return None


def browser() -> str:
    """The Chromium to run, or the test is skipped."""
    path = chromium()
    if path is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium; .ci/run installs it when apt works)")
    return path


def chrome_args(profile: str, *extra: str) -> list[str]:
    """A headless Chromium's command line, with its own profile folder."""
    return [
        browser(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
        *extra,
    ]


def dumped(page: Path, fragment: str = "") -> str:
    """The DOM of `page` (opened with `fragment`) once its scripts ran, as Chromium's `--dump-dom` prints it."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            chrome_args(profile, "--dump-dom", page.as_uri() + fragment), capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-ready="1"' in done.stdout  # the scripts ran to their end
    return done.stdout


class DevTools:
    """A page in a headless Chromium driven through the DevTools protocol (real input events)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=60)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def mouse(self, selector: str, *kinds: str) -> None:
        box = await self.js(f"(r => [r.x + r.width / 2, r.y + r.height / 2])(document.querySelector('{selector}')"
                            ".getBoundingClientRect())")  # fmt: skip
        for kind in kinds:
            await self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    async def hover(self, selector: str) -> None:
        await self.js(f"document.querySelector('{selector}').scrollIntoView({{block: 'center'}})")
        await self.mouse(selector, "mouseMoved")

    async def click(self, selector: str) -> None:
        await self.hover(selector)
        await self.mouse(selector, "mousePressed", "mouseReleased")

    async def press(self, key: str, modifiers: int = 0) -> None:
        """A key pressed and released: a named key (`Enter`, `ArrowDown`, ...) or one character."""
        if key in _KEYS:
            name, code, text = _KEYS[key]
        else:
            name, code, text = key, ord(key.upper()), key
        down: dict[str, Any] = {"key": name, "windowsVirtualKeyCode": code, "modifiers": modifiers}
        if text and not modifiers & CTRL:
            down["text"] = text
        await self.call("Input.dispatchKeyEvent", type="keyDown", **down)
        await self.call(
            "Input.dispatchKeyEvent", type="keyUp", key=name, windowsVirtualKeyCode=code, modifiers=modifiers
        )

    async def type(self, text: str) -> None:
        """Text typed into the focused input (as an input method commits it)."""
        await self.call("Input.insertText", text=text)

    async def until(self, expression: str, timeout: float = 30) -> Any:
        """The value of `expression` once it is truthy (the page's handlers run asynchronously)."""
        deadline = time.monotonic() + timeout
        while not (value := await self.js(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}"
            await asyncio.sleep(0.05)
        return value

    async def ready(self, timeout: float = 60) -> None:
        """Waits until the page's scripts ran to their end (`body[data-ready=1]`)."""
        await self.until("document.body && document.body.getAttribute('data-ready') === '1'", timeout)


class Chromium:
    """A running headless Chromium with the DevTools protocol on a loopback port (`port`)."""

    def __init__(self, process: subprocess.Popen[bytes], profile: Path, port: int) -> None:
        self.process = process
        self.profile = profile
        self.port = port
        self.session: aiohttp.ClientSession | None = None

    async def page(self, url_prefix: str = "file:", *, ready: bool = True) -> DevTools:
        """The first open page whose URL starts with `url_prefix` (with `ready`: once its scripts ran)."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        deadline = time.monotonic() + 60
        while True:
            targets = await (await self.session.get(f"http://127.0.0.1:{self.port}/json/list")).json()
            pages = [t for t in targets if t["type"] == "page" and t["url"].startswith(url_prefix)]
            if pages:
                break
            assert time.monotonic() < deadline, "no page opened"
            await asyncio.sleep(0.05)
        tools = DevTools(await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0))
        if ready:
            await tools.ready()
        return tools

    async def browser_target(self) -> DevTools:
        """The browser itself (for `Browser.*` methods such as `setDownloadBehavior`)."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        version = await (await self.session.get(f"http://127.0.0.1:{self.port}/json/version")).json()
        return DevTools(await self.session.ws_connect(version["webSocketDebuggerUrl"], max_msg_size=0))


@contextlib.contextmanager
def running_chromium(url: str, *extra: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Chromium]]:
    """Chromium started on `url` with a fresh profile (removed afterwards), and an event loop to drive it."""
    browser()
    profile = Path(tempfile.mkdtemp())
    process = subprocess.Popen(
        chrome_args(str(profile), "--remote-debugging-port=0", *extra, url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    loop = asyncio.new_event_loop()
    running: Chromium | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and "\n" in port_file.read_text()):
            assert time.monotonic() < deadline and process.poll() is None, "Chromium did not start its DevTools"
            time.sleep(0.05)
        running = Chromium(process, profile, int(port_file.read_text().split()[0]))
        yield loop, running
    finally:
        if running is not None and running.session is not None:
            loop.run_until_complete(running.session.close())
        loop.close()
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
