"""What an endpoint says about its models (`GET /models`): capabilities, context, prices.

Looked up once and kept in memory and on disk for a day, per base URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import APIError
from .transport import Transport

__all__ = ["DEFAULT_MODEL", "ModelCatalog", "ModelInfo", "create_private_file", "default_cache_dir", "private_dir"]

log = logging.getLogger("extractor")

DEFAULT_MODEL = "mistralai/mistral-small-2603"
#: what is known without asking: (USD per prompt token, USD per completion token, context length)
_KNOWN: dict[str, tuple[float, float, int]] = {DEFAULT_MODEL: (0.15e-6, 0.60e-6, 262_144)}
_TTL = 24 * 3600.0
_FAILED_TTL = 600.0


def default_cache_dir() -> Path:
    """`$EXTRACTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/extractor`, else `~/.cache/extractor`."""
    explicit = os.environ.get("EXTRACTOR_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "extractor"


def private_dir(path: Path) -> None:
    """Make sure folder `path` exists; the folders it creates (it and missing parents) are mode 0700.

    The mode is set explicitly, whatever the umask. Folders that already existed are left as they
    are: they may not be ours (a home folder, a shared /tmp) or may have been opened up on purpose.
    """
    missing: list[Path] = []
    folder = path
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # made meanwhile by another process: not ours to change
            continue
        os.chmod(folder, 0o700)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")


def create_private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 (whatever the umask) if it does not exist; whether it did.

    An existing file is left as it is.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        return False
    try:
        _fchmod_private(fd)
    finally:
        os.close(fd)
    return True


def _fchmod_private(fd: int) -> None:
    """Set the open file's mode to 0600 (where the platform has modes)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)


def _price(value: Any) -> float | None:
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if price >= 0 else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True)
class ModelInfo:
    """A model's limits, prices (USD per token) and supported request parameters (None: unknown)."""

    id: str
    context_length: int | None = None
    max_completion_tokens: int | None = None
    prompt_price: float | None = None
    completion_price: float | None = None
    supported_parameters: frozenset[str] | None = None
    input_modalities: frozenset[str] | None = None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> ModelInfo:
        """From one entry of `GET /models` (OpenRouter's shape; OpenAI's bare entries work too)."""
        pricing, top, arch = (_mapping(item.get(k)) for k in ("pricing", "top_provider", "architecture"))
        params = item.get("supported_parameters")
        modalities = arch.get("input_modalities")
        return cls(
            id=str(item.get("id", "")),
            context_length=_int(item.get("context_length")) or _int(top.get("context_length")),
            max_completion_tokens=_int(top.get("max_completion_tokens")),
            prompt_price=_price(pricing.get("prompt")),
            completion_price=_price(pricing.get("completion")),
            supported_parameters=frozenset(map(str, params)) if isinstance(params, list) else None,
            input_modalities=frozenset(map(str, modalities)) if isinstance(modalities, list) else None,
        )

    @classmethod
    def known(cls, model: str) -> ModelInfo:
        """What is known of `model` without asking (prices of the default model), else nothing."""
        if model in _KNOWN:
            prompt, completion, context = _KNOWN[model]
            return cls(model, context_length=context, prompt_price=prompt, completion_price=completion)
        return cls(model)

    def with_fallbacks(self, other: ModelInfo) -> ModelInfo:
        """This info with the fields it lacks taken from `other`."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name, value in values.items():
            if value is None:
                values[name] = getattr(other, name)
        return ModelInfo(**values)


_MEMORY: dict[str, tuple[float, dict[str, ModelInfo]]] = {}


class ModelCatalog:
    """The model list of one endpoint, fetched at most once a day (memory, then disk, then network)."""

    def __init__(self, transport: Transport, *, cache_dir: Path | None = None, ttl: float = _TTL) -> None:
        self.transport = transport
        self.cache_dir = cache_dir
        self.ttl = ttl
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    @property
    def _disk_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(self.transport.base_url.encode()).hexdigest()[:16]
        return self.cache_dir / f"models-{digest}.json"

    async def info(self, model: str) -> ModelInfo:
        """What the endpoint says about `model`, completed by what is known without asking."""
        models = await self._models()
        found = models.get(model)
        return found.with_fallbacks(ModelInfo.known(model)) if found else ModelInfo.known(model)

    async def _models(self) -> dict[str, ModelInfo]:
        key = self.transport.base_url
        cached = _MEMORY.get(key)
        if cached and time.time() < cached[0]:
            return cached[1]
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            cached = _MEMORY.get(key)
            if cached and time.time() < cached[0]:
                return cached[1]
            models, expires = self._read_disk()
            if models is None:
                models, expires = await self._fetch()
            _MEMORY[key] = (expires, models)
            return models

    def _read_disk(self) -> tuple[dict[str, ModelInfo] | None, float]:
        path = self._disk_path
        if path is None or not path.is_file():
            return None, 0.0
        try:
            saved = json.loads(path.read_text())
            fetched = float(saved["fetched_at"])
            if saved.get("base_url") != self.transport.base_url or time.time() - fetched > self.ttl:
                return None, 0.0
            items = saved["models"]
        except (OSError, ValueError, KeyError, TypeError):
            return None, 0.0
        return {m.id: m for m in map(ModelInfo.from_api, items)}, fetched + self.ttl

    async def _fetch(self) -> tuple[dict[str, ModelInfo], float]:
        try:
            items = await self.transport.models()
        except APIError as exc:
            log.info("could not list the models of %s (%s); going by defaults", self.transport.host, exc)
            return {}, time.time() + _FAILED_TTL
        path = self._disk_path
        if path is not None:
            try:
                private_dir(path.parent)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                record = {"base_url": self.transport.base_url, "fetched_at": time.time(), "models": items}
                fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o600)
                with os.fdopen(fd, "wb") as writer:
                    _fchmod_private(writer.fileno())  # a leftover temporary file of this pid may be older
                    writer.write(json.dumps(record).encode())
                tmp.replace(path)
            except OSError as exc:
                log.info("could not write the model cache %s: %s", path, exc)
        return {m.id: m for m in map(ModelInfo.from_api, items)}, time.time() + self.ttl


def forget_models() -> None:
    """Drop the in-memory model lists (the disk cache stays)."""
    _MEMORY.clear()
