"""What an endpoint says about its models (`GET /models`): capabilities, context, prices.

Looked up once and kept in memory and on disk for a day, per base URL. A failed lookup (or an
answer that is no model list) means going by defaults for ten minutes, then asking again; it is
never written to disk. An answer that lacks the prices or the supported parameters of the model
asked about (even with what is known without asking) holds for that model for ten minutes too, so
that a fixed `/models` is seen soon, not a day later. Modes a model rejected (the fallback auto
mode made) are remembered per base URL and model as well, for the same day.

On disk, in the cache folder (`default_cache_dir`): one `models-<hash>.json` (the model list) and one
`modes-<hash>.json` (the modes its models rejected) per endpoint, the hash that of the base URL. The
files stay bounded (`prune_model_files`, after each write): a file older than a day is never read
again and goes, and of each kind at most `MAX_LOCAL_ENDPOINTS` files of loopback endpoints (a local
server on a new port each time makes a new endpoint) and `MAX_ENDPOINTS` in all are kept, the newest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic_core

from ..errors import APIError, EndpointUnreachableError
from .transport import Transport

__all__ = [
    "DEFAULT_MODEL",
    "MAX_ENDPOINTS",
    "MAX_LOCAL_ENDPOINTS",
    "ModelCatalog",
    "ModelInfo",
    "ModelsFile",
    "create_private_file",
    "default_cache_dir",
    "model_files",
    "private_dir",
    "prune_model_files",
    "remove_model_files",
]

log = logging.getLogger("extractor")

DEFAULT_MODEL = "mistralai/mistral-small-2603"
"""The model used unless `model=` names another (on OpenRouter)."""
#: what is known without asking: (USD per prompt token, USD per completion token, context length)
_KNOWN: dict[str, tuple[float, float, int]] = {DEFAULT_MODEL: (0.15e-6, 0.60e-6, 262_144)}
_TTL = 24 * 3600.0
_FAILED_TTL = 600.0
#: the files of each kind (model lists, mode fallbacks) kept for loopback endpoints / for all endpoints
MAX_LOCAL_ENDPOINTS = 8
MAX_ENDPOINTS = 32
#: the kinds of endpoint files, by the start of their names
_KINDS = ("models", "modes")
#: bytes read from the start of an endpoint file to learn its endpoint (written first) and date
_HEAD = 4096


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


#: base URL -> (when the lookup was made, until when its result holds, the models; empty after a failure)
_MEMORY: dict[str, tuple[float, float, dict[str, ModelInfo]]] = {}


def _model_entries(items: Any) -> list[dict[str, Any]] | None:
    """The model entries of a `GET /models` answer (objects with a string `id`); None when it holds none.

    An HTML page, `{"error": ...}`, `{"data": "x"}` or a list of strings is no model list.
    """
    if not isinstance(items, list):
        return None
    entries = [m for m in items if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
    return entries or None


def _write_private_json(path: Path, record: Any) -> None:
    """Write `record` as JSON to `path` atomically (a temporary file renamed over it), mode 0600."""
    private_dir(path.parent)
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as writer:
            _fchmod_private(writer.fileno())  # a leftover temporary file of this pid may be older
            writer.write(json.dumps(record).encode())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ModelsFile:
    """One endpoint file of the cache folder: `kind` "models" (its model list, `GET /models`) or "modes" (the
    modes its models rejected); the endpoint's `base_url` (None when the file does not say); its size and
    when it was last written (unix time)."""

    path: Path
    kind: str
    base_url: str | None
    size: int
    written: float

    @property
    def local(self) -> bool:
        """Whether the endpoint is on this machine (loopback): a local server, often on a new port each time."""
        return self.base_url is not None and _is_loopback(self.base_url)


def _is_loopback(base_url: str) -> bool:
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint_of(path: Path) -> str | None:
    """The `base_url` an endpoint file names (read from its start, where it is written), or None."""
    try:
        with open(path, "rb") as reader:
            head = reader.read(_HEAD)
        value = pydantic_core.from_json(head, allow_partial=True)
    except (OSError, ValueError):
        return None
    url = value.get("base_url") if isinstance(value, dict) else None
    return url if isinstance(url, str) else None


def model_files(cache_dir: Path) -> list[ModelsFile]:
    """The endpoint files (model lists, mode fallbacks) in `cache_dir`, newest first; none when it does not exist."""
    found: list[ModelsFile] = []
    try:
        names = sorted(os.listdir(cache_dir))
    except OSError:
        return found
    for name in names:
        kind = name.partition("-")[0]
        if kind not in _KINDS or not name.endswith(".json"):
            continue
        path = cache_dir / name
        try:
            info = path.stat()
        except OSError:
            continue
        found.append(ModelsFile(path, kind, _endpoint_of(path), info.st_size, info.st_mtime))
    found.sort(key=lambda f: f.written, reverse=True)
    return found


def prune_model_files(cache_dir: Path, *, ttl: float = _TTL, now: float | None = None) -> list[Path]:
    """Remove the endpoint files of `cache_dir` that are older than `ttl` (never read again), and of each kind
    all but the newest `MAX_LOCAL_ENDPOINTS` of loopback endpoints and the newest `MAX_ENDPOINTS` in all, with
    temporary files left by a crash a day old; the paths removed."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    kept: dict[tuple[str, bool], int] = {}
    for file in model_files(cache_dir):
        local = kept.get((file.kind, True), 0)
        every = kept.get((file.kind, False), 0)
        old = now - file.written > ttl  # (a file from the future is not judged by its age)
        if old or every >= MAX_ENDPOINTS or (file.local and local >= MAX_LOCAL_ENDPOINTS):
            with contextlib.suppress(OSError):
                file.path.unlink()
                removed.append(file.path)
            continue
        kept[(file.kind, False)] = every + 1
        if file.local:
            kept[(file.kind, True)] = local + 1
    with contextlib.suppress(OSError):
        for name in os.listdir(cache_dir):
            path = cache_dir / name
            if name.partition("-")[0] in _KINDS and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > _TTL:
                        path.unlink()
                        removed.append(path)
    return removed


def remove_model_files(cache_dir: Path) -> list[ModelsFile]:
    """Remove every endpoint file (model lists, mode fallbacks) of `cache_dir`; the ones removed. They are made
    again at the next lookup (the model list) or fallback (the modes)."""
    removed: list[ModelsFile] = []
    for file in model_files(cache_dir):
        with contextlib.suppress(FileNotFoundError):
            file.path.unlink()
            removed.append(file)
    return removed


def _fresh(at: float, ttl: float, now: float) -> bool:
    """Whether something recorded at `at` still holds at `now` (one from the future does not)."""
    return 0.0 <= now - at <= ttl


@dataclass(frozen=True)
class _Fallback:
    """What auto mode learned about a model: start with `mode`; the modes it `rejected` (and why); when."""

    mode: str
    rejected: dict[str, str]
    at: float

    @classmethod
    def load(cls, value: Any) -> _Fallback | None:
        """From its disk form, or None when it is not one."""
        if not isinstance(value, Mapping):
            return None
        mode, rejected, at = value.get("mode"), value.get("rejected"), value.get("at")
        if not isinstance(mode, str) or not isinstance(rejected, Mapping) or not isinstance(at, int | float):
            return None
        return cls(mode, {str(k): str(v) for k, v in rejected.items()}, float(at))

    def dump(self) -> dict[str, Any]:
        """Its disk form."""
        return {"mode": self.mode, "rejected": self.rejected, "at": self.at}


class ModelCatalog:
    """The model list of one endpoint, fetched at most once a day (memory, then disk, then network),
    and the modes its models rejected (`remember_fallback`, `preferred_mode`)."""

    def __init__(self, transport: Transport, *, cache_dir: Path | None = None, ttl: float = _TTL) -> None:
        self.transport = transport
        self.cache_dir = cache_dir
        self.ttl = ttl
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._fallbacks: dict[str, _Fallback] | None = None  # read from disk at first use
        self._learned: set[str] = set()  # models whose fallback this catalog made: kept for its life
        self._told: set[str] = set()

    def _path(self, kind: str) -> Path | None:
        """This endpoint's cache file of `kind` (`models`, `modes`), None without a cache folder."""
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(self.transport.base_url.encode()).hexdigest()[:16]
        return self.cache_dir / f"{kind}-{digest}.json"

    @property
    def _disk_path(self) -> Path | None:
        return self._path("models")

    def _prune(self) -> None:
        """Keeps the cache folder's endpoint files bounded (`prune_model_files`), this endpoint's newest among them."""
        if self.cache_dir is not None:
            prune_model_files(self.cache_dir, ttl=max(self.ttl, _TTL))

    def preferred_mode(self, model: str) -> str | None:
        """The mode auto mode should start with for `model` because a better one was rejected
        (remembered by `remember_fallback`, here or on disk within the TTL); None if none was."""
        fallback = self._known_fallbacks().get(model)
        if fallback is None or (model not in self._learned and not _fresh(fallback.at, self.ttl, time.time())):
            return None
        if model not in self._told:
            self._told.add(model)
            rejected = "; ".join(f"{mode}: {why}" for mode, why in fallback.rejected.items())
            log.info(
                "%s on %s: starting with mode %s (it rejected %s)", model, self.transport.host, fallback.mode, rejected
            )
        return fallback.mode

    def remember_fallback(self, model: str, from_mode: str, to_mode: str, reason: str) -> None:
        """Remember that `model` rejected `from_mode` (`reason`: the endpoint's message) and auto mode
        fell back to `to_mode`: for this catalog's life, and on disk for the TTL. A fallback to a mode
        the model already rejected (a late answer to a request sent before) changes nothing."""
        fallbacks = self._known_fallbacks()
        now = time.time()
        known = fallbacks.get(model)
        if known is not None and model not in self._learned and not _fresh(known.at, self.ttl, now):
            known = None
        if known is not None and model in self._learned and known.mode == to_mode and from_mode in known.rejected:
            return  # known already: another call of this run fell back alike
        rejected = dict(known.rejected) if known is not None else {}
        if to_mode in rejected or to_mode == from_mode:
            return
        rejected[from_mode] = reason[:300]
        fallbacks[model] = _Fallback(to_mode, rejected, now)
        self._learned.add(model)
        self._told.add(model)  # the attempt loop has said so already
        path = self._path("modes")
        if path is None:
            return
        saved = {m: f for m, f in self._read_fallbacks().items() if _fresh(f.at, self.ttl, now)}
        saved[model] = fallbacks[model]
        record = {"base_url": self.transport.base_url, "models": {m: f.dump() for m, f in saved.items()}}
        try:
            _write_private_json(path, record)
        except OSError as exc:
            log.info("could not write the mode cache %s: %s", path, exc)
        else:
            self._prune()

    def _known_fallbacks(self) -> dict[str, _Fallback]:
        """The fallbacks this catalog knows (learned here, or read from disk at first use)."""
        if self._fallbacks is None:
            self._fallbacks = self._read_fallbacks()
        return self._fallbacks

    def _read_fallbacks(self) -> dict[str, _Fallback]:
        """The fallbacks on disk for this endpoint (expired ones included), or none."""
        path = self._path("modes")
        if path is None or not path.is_file():
            return {}
        try:
            saved = json.loads(path.read_text())
            if saved.get("base_url") != self.transport.base_url:
                return {}
            items = saved["models"].items()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}
        loaded = {str(model): _Fallback.load(value) for model, value in items}
        return {model: fallback for model, fallback in loaded.items() if fallback is not None}

    async def info(self, model: str) -> ModelInfo:
        """What the endpoint says about `model`, completed by what is known without asking."""
        return _completed(await self._models(model), model)

    def _holds(self, at: float, until: float, models: dict[str, ModelInfo], model: str) -> bool:
        """Whether a lookup made at `at` (holding until `until`) still holds for `model`: within both, and,
        when it lacks the model's prices or parameters, within `_FAILED_TTL`."""
        now = time.time()
        if not (now < until and _fresh(at, self.ttl, now)):
            return False
        return _complete(_completed(models, model)) or _fresh(at, _FAILED_TTL, now)

    def _remembered(self, model: str) -> dict[str, ModelInfo] | None:
        """The endpoint's models as last looked up in this process, while that holds for `model` in this
        catalog: a failed lookup for `_FAILED_TTL`, a successful one for the TTL (the shorter of the one it
        was stored with and this catalog's), one lacking the model's prices or parameters `_FAILED_TTL`."""
        cached = _MEMORY.get(self.transport.base_url)
        if cached is None:
            return None
        at, until, models = cached
        return models if self._holds(at, until, models, model) else None

    async def _models(self, model: str) -> dict[str, ModelInfo]:
        models = self._remembered(model)
        if models is not None:
            return models
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            models = self._remembered(model)
            if models is not None:
                return models
            found = self._read_disk(model)
            if found is None:
                found = await self._fetch()
            _MEMORY[self.transport.base_url] = found
            return found[2]

    def _read_disk(self, model: str) -> tuple[float, float, dict[str, ModelInfo]] | None:
        """The model list saved on disk for this endpoint, if it is one and holds for `model` (`_holds`)."""
        path = self._disk_path
        if path is None or not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            fetched = float(saved["fetched_at"])
            entries = _model_entries(saved["models"])
            if saved.get("base_url") != self.transport.base_url or not _fresh(fetched, self.ttl, time.time()):
                return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if entries is None:  # written by an older version that kept any answer: not a model list
            return None
        models = {m.id: m for m in map(ModelInfo.from_api, entries)}
        return (
            (fetched, fetched + self.ttl, models) if self._holds(fetched, fetched + self.ttl, models, model) else None
        )

    async def _fetch(self) -> tuple[float, float, dict[str, ModelInfo]]:
        """Ask the endpoint; a model list is saved to disk, a failure (or no list) holds for `_FAILED_TTL`. An
        endpoint that cannot be reached at all raises `EndpointUnreachableError`: its chat completions
        cannot be reached either."""
        try:
            entries = _model_entries(await self.transport.models())
        except EndpointUnreachableError:
            raise
        except APIError as exc:
            log.info("could not list the models of %s (%s); going by defaults", self.transport.host, exc)
            now = time.time()
            return now, now + _FAILED_TTL, {}
        now = time.time()
        if entries is None:
            log.info("%s answered GET /models with no model list; going by defaults", self.transport.host)
            return now, now + _FAILED_TTL, {}
        path = self._disk_path
        if path is not None:
            try:
                _write_private_json(path, {"base_url": self.transport.base_url, "fetched_at": now, "models": entries})
            except OSError as exc:
                log.info("could not write the model cache %s: %s", path, exc)
            else:
                self._prune()
        return now, now + self.ttl, {m.id: m for m in map(ModelInfo.from_api, entries)}


def _completed(models: Mapping[str, ModelInfo], model: str) -> ModelInfo:
    """What `models` say of `model`, completed by what is known without asking."""
    found = models.get(model)
    return found.with_fallbacks(ModelInfo.known(model)) if found else ModelInfo.known(model)


def _complete(info: ModelInfo) -> bool:
    """Whether `info` gives the model's prices and the parameters it supports."""
    return info.prompt_price is not None and info.completion_price is not None and bool(info.supported_parameters)


def forget_models() -> None:
    """Drop the in-memory model lists (the disk cache stays)."""
    _MEMORY.clear()
