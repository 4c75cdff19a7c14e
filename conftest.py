"""Every Python code block of README.md and docs/ runs as a test, with Sybil.

Each page is one namespace, its blocks run in order (one test each), against a test server of its own:
for the page, `EXTRACTOR_BASE_URL` points at an `extractor.testing.TestServer` on 127.0.0.1 (so that
`Extractor()` as written reaches it, with no key), no API key variable is set, the model lists and caches
live in a folder of the page's, and the current folder is a scratch folder holding the sample files the
pages name (`invoice.pdf`, `receipt.jpg`, `invoices/`, `texts/`, ...; copies of `examples/`). Blocks a
reader does not see (`<!-- invisible-code-block: python ... -->`) script the server's answers or check
what a block says it gives; `docs_server` is the page's server. Shell blocks are not run: the README's
two commands are what CI runs (.ci/run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from extractor.client.catalog import forget_models
from extractor.testing import TestServer

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
#: the variables a page runs without (or with its own values), put back afterwards
_ENVIRONMENT = (
    "EXTRACTOR_BASE_URL",
    "EXTRACTOR_CACHE_DIR",
    "EXTRACTOR_API_KEY",
    "OPENROUTER_API_KEY",
    "OPENAI_API_KEY",
)
#: the files the pages name, made from the examples
_SAMPLES = {
    "invoice.pdf": "invoices/bluegum-analytics-BGA-00981.pdf",  # two pages
    "a.pdf": "invoices/kestrel-design-2024-0117.pdf",
    "receipt.jpg": "receipts/ironbark-hardware.jpg",
}


def _setup(namespace: dict[str, Any]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="extractor-docs-"))
    for name in ("invoices", "receipts", "texts"):
        shutil.copytree(EXAMPLES / name, folder / name)
    for name, sample in _SAMPLES.items():
        shutil.copyfile(EXAMPLES / sample, folder / name)
    saved = {name: os.environ.pop(name, None) for name in _ENVIRONMENT}
    server = TestServer()
    server.start()
    os.environ["EXTRACTOR_BASE_URL"] = server.base_url
    os.environ["EXTRACTOR_CACHE_DIR"] = str(folder / ".cache")
    forget_models()
    namespace["docs_server"] = server
    namespace["_docs_page"] = (server, saved, os.getcwd(), folder)
    os.chdir(folder)


def _teardown(namespace: dict[str, Any]) -> None:
    server, saved, cwd, folder = namespace["_docs_page"]
    os.chdir(cwd)
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    forget_models()
    shutil.rmtree(folder, ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md", "docs/*/*.md"],
    excludes=["examples/*"],
    setup=_setup,
    teardown=_teardown,
).pytest()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ray Data's own context warns of its deprecated settings when it is copied: not this project's concern."""
    for item in items:
        if item.path.name == "ray.md":
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"))


#: files whose tests run in one worker, in order, with `pytest -n`: a page's blocks share one namespace, the Ray
#: tests one cluster (two clusters would share two cores)
_ONE_WORKER = (".md", "tests/test_ray.py")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers a core (at most 8). The suite mostly waits, on CLI subprocesses, test servers,
    deadlines and Ray: on 2 cores, 4 workers ran it in 3 min 46 s where 2 took 6 min 28 s."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `pytest -n`, every test is sent to the next free worker on its own, but those of a page of the docs
    and the Ray tests, which go to one worker together (xdist's `--dist loadgroup` would do this with marks,
    but pytest 9.2 no longer sees the group xdist 3.8 appends to the node ids)."""
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerFor(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return file if file.endswith(_ONE_WORKER) else nodeid

    return OneWorkerFor(config, log)
