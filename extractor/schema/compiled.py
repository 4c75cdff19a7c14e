"""`CompiledSchema`: what the user asked for, compiled once for a provider, with the way back."""

from __future__ import annotations

import copy
import json
import re
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, is_dataclass
from typing import Any, Final, Generic, TypeVar, cast, overload

import jsonschema
import pydantic
import pydantic_core
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .._jsonpath import format_path
from ..errors import ErrorDetail, OutputError, OutputInvalidError, SchemaCompileError
from ..output.align import AlignHints
from ..output.limits import MAX_DEPTH, cap_error, check_depth, too_deep
from ..output.read import read_answer, settled
from ..output.repairs import Repair, RepairKind
from ..output.syntax import loads_strict
from ._check import check_json_schema
from ._fast import Members, fast_validator, keys_once, uncounted
from ._numbers import ALL_KINDS, NumberView, ScalarStrings, StrictMarks, unmark
from ._refs import RefResolver, UnresolvableRef
from .codec import Codec, WrapCodec, is_identity
from .compile import UNTYPED_NOTE, UNTYPED_OBJECT_NOTE, compile_json_schema
from .dialects import Dialect, get_dialect

__all__ = ["CompiledSchema", "ParseResult", "compile_schema"]

T = TypeVar("T")

_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _type_name(tp: Any) -> str:
    """`list[Invoice]` -> `list_Invoice`, `Literal["a", "b"]` -> `Literal_a_b`."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    head = getattr(origin, "__name__", None) or getattr(origin, "_name", None) or str(origin).replace("typing.", "")
    if origin is typing.Annotated:
        return _type_name(args[0])
    return "_".join([head, *(_type_name(a) if not isinstance(a, str | int | float) else str(a) for a in args)])


def _schema_name(source: Any, json_schema: Mapping[str, Any]) -> str:
    if isinstance(source, dict):
        title = json_schema.get("title")
        raw = title if isinstance(title, str) and title else "response"
    else:
        raw = _type_name(source)
    name = _NAME.sub("_", raw).strip("_")[:64]
    return name or "response"


def _offline_registry() -> Registry[Any]:
    """A registry that never fetches: a `$ref` to another document is treated as the empty schema."""

    def retrieve(uri: str) -> Resource[Any]:
        return Resource.from_contents({}, default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def validator_class(schema: Any) -> type[Validator]:
    """The validator for the schema's draft; drafts are guessed from their spellings when `$schema` is absent."""
    if isinstance(schema, dict) and "$schema" in schema and not isinstance(schema["$schema"], str):
        raise SchemaCompileError(f"not a valid JSON Schema: at $['$schema']: {schema['$schema']!r} is not a string")
    if isinstance(schema, dict) and "$schema" not in schema:
        text = json.dumps(schema)
        if re.search(r'"exclusive(Minimum|Maximum)": (true|false)', text):
            return cast(type[Validator], jsonschema.Draft4Validator)
        if re.search(r'"items": \[', text):  # array-form items: a tuple before 2020-12
            return cast(type[Validator], jsonschema.Draft7Validator)
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def _python_regex(pattern: str) -> str | None:
    """An ECMA-262 `pattern` in Python `re` syntax, or None when Python cannot run it."""
    # named groups become plain groups: jsonschema joins patternProperties keys with "|", and
    # Python refuses a group name twice
    plain = re.sub(r"\(\?P?<(?![=!])[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern) if "\\k<" not in pattern else pattern
    named = re.sub(r"\(\?<(?![=!])", "(?P<", pattern)
    named = re.sub(r"(?<!\\)((?:\\\\)*)\\k<([A-Za-z_][A-Za-z0-9_]*)>", r"\1(?P=\2)", named)  # \k<name>
    for candidate in (plain, named):
        try:
            re.compile(candidate)
        except (re.error, OverflowError, RecursionError):
            continue
        return candidate
    return None


def validation_copy(schema: Any, notes: list[str]) -> Any:
    """A copy of `schema` that `jsonschema` can run offline: regular expressions in Python syntax,
    `$ref`s to other documents (which cannot be fetched) dropped.

    A `pattern` Python cannot run is dropped too, and a `patternProperties` key Python cannot run
    becomes a pattern that matches nothing; each is noted.
    """
    resolver = RefResolver(schema)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(s) for s in node]
        if not isinstance(node, dict):
            return node
        return _python_patterns(node, notes, walk, resolver)

    return walk(schema)


def _python_patterns(
    schema: dict[str, Any], notes: list[str], walk: Callable[[Any], Any], resolver: RefResolver
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            try:
                resolver.resolve(value)
            except UnresolvableRef as exc:
                notes.append(f"{exc}; not enforced")
                continue
            out[key] = value
        elif key == "pattern" and isinstance(value, str):
            translated = _python_regex(value)
            if translated is None:
                notes.append(f"pattern {value!r} cannot be checked in Python; not enforced")
                continue
            out[key] = translated
        elif key == "patternProperties" and isinstance(value, dict):
            mapped = {}
            for regex, sub in value.items():
                translated = _python_regex(regex)
                if translated is None:
                    notes.append(f"patternProperties key {regex!r} cannot be run in Python; matches nothing")
                    translated = "(?!)"
                mapped[translated] = walk(sub)
            out[key] = mapped
        else:
            out[key] = walk(value)
    return out


def _pydantic_aliases(tp: Any) -> dict[str, str]:
    """Field name -> alias for the pydantic models reachable from `tp` (for matching keys leniently)."""
    out: dict[str, str] = {}
    seen: set[int] = set()

    def visit(t: Any) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
            for name, info in t.model_fields.items():
                alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
                if alias and alias != name:
                    out.setdefault(name, alias)
                visit(info.annotation)
        for arg in typing.get_args(t):
            visit(arg)

    visit(tp)
    return out


class CompiledSchema(Generic[T]):
    """A schema compiled for strict structured output, and the way back to the user's shape.

    - `json_schema`: the dict to send as `response_format.json_schema.schema`;
    - `name`: a valid schema name; `strict`: whether `json_schema` fits the dialect's strict subset
      (`reason` says why not); `wrapped`: a non-object root sent as `{"value": ...}` (`wrapper_key`:
      "value", or another key when an object the root may be has a property "value");
    - `validate(obj)`: a decoded answer back to the user's shape, validated (pydantic for a type,
      `jsonschema` with format checking against the original for a dict);
    - `encode(value)`: the inverse of `validate`, for few-shot examples and tests.
    """

    def __init__(self, source: Any, dialect: Dialect) -> None:
        self.source = source
        self.dialect = dialect
        self._adapter: pydantic.TypeAdapter[T] | None = None
        self._context: dict[str, Any] | None = None  # for pydantic validators (`with_context`)
        validation_notes: list[str] = []
        if isinstance(source, dict | bool):
            original: Any = source
            cls = validator_class(source)
            check_json_schema(source, cls)
            self._validator: Validator | None = cls(
                validation_copy(source, validation_notes),
                format_checker=cls.FORMAT_CHECKER,
                registry=_offline_registry(),
            )
            self.aliases: dict[str, str] = {}
            scalars = ScalarStrings(source, marked=False)
        else:
            try:
                self._adapter = pydantic.TypeAdapter(source)
                original = self._adapter.json_schema(mode="validation", schema_generator=StrictMarks)
                view = self._adapter.json_schema(mode="validation", schema_generator=NumberView)
            except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError, TypeError) as exc:
                raise SchemaCompileError(f"cannot build a JSON Schema from {source!r}: {exc}") from exc
            self._validator = None
            self.aliases = _pydantic_aliases(source)
            scalars = ScalarStrings(view, marked=True)
        #: finds the numbers and booleans written as strings in answers (None: the schema has none)
        self._scalars: ScalarStrings | None = scalars if scalars.active else None
        #: the properties a pydantic `Decimal` may sit under, for the fast path (None: also elsewhere)
        self._decimal_keys: frozenset[str] | None = scalars.keys_of("decimal")
        self._decimal_tuple = tuple(sorted(self._decimal_keys or ()))  # the same, to look up fast
        self.original_schema: Any = original
        parts = compile_json_schema(original, dialect)
        if self._adapter is not None:
            unmark(original)  # the marks told the compiler which scalars are strict; the schema shown has none
        #: the compiled scalar nodes of strict fields: no repair changes the type of a value there
        self._strict_nodes = parts.strict_nodes
        strict_ids = frozenset(id(node) for node in parts.strict_nodes)
        self.json_schema: dict[str, Any] = parts.schema
        self.codec: Codec = parts.codec
        self.wrapped = parts.wrapped
        self.wrapper_key: str | None = parts.wrapper_key if parts.wrapped else None
        self.identity = parts.identity
        #: the wrapper key of a wrapped root whose value is in the user's shape as it is (else None)
        codec = parts.codec
        inner_same = isinstance(codec, WrapCodec) and is_identity(codec.inner, parts.codecs)
        self._unwrap: str | None = self.wrapper_key if inner_same else None
        # pydantic may read answers directly when the compiled shape is the user's but for nulls (in
        # strict mode, so that it takes no number or boolean written as a string; strict mode takes a
        # decimal written as a string, so those are looked for in the text first): see `_fast`
        self._quick: pydantic_core.SchemaValidator | None = None
        #: the members of a value `_quick` made, to count against the text's `:` (None: not countable)
        self._members: Callable[[Any], int | None] = uncounted
        if self._adapter is not None and parts.identity_except_nulls and self._decimal_keys is not None:
            built = fast_validator(self._adapter.core_schema)
            if built is not None:
                self._quick, counted = built
                if counted:
                    self._members = Members().counter(source)
        self._quick_strict = self._scalars is not None
        self._decimal_text = _decimal_pattern(self._decimal_keys or frozenset())
        #: no value `_quick` takes nests deeper than `limits.MAX_DEPTH`: its depth goes unchecked
        self._shallow = self._quick is not None and _shallow(parts.schema)
        self.reasons: tuple[str, ...] = tuple(parts.reasons)
        self.notes: tuple[str, ...] = (*parts.notes, *validation_notes)
        self.strict = not parts.reasons
        self.name = _schema_name(source, original if isinstance(original, dict) else {})
        self._hints = AlignHints(
            aliases=self.aliases,
            json_string=_is_json_string,
            strict=lambda node: id(node) in strict_ids,
            wrapper_key=self.wrapper_key,
        )
        self._known_keys = frozenset(_property_names(self.json_schema))

    def with_context(self, context: Mapping[str, Any] | None) -> CompiledSchema[T]:
        """This schema validating with `context`, given to pydantic validators as `info.context` (a JSON
        Schema has no validators to give it to); everything else is shared. No context: this schema."""
        if not context:
            return self
        bound = copy.copy(self)
        bound._context = dict(context)
        return bound

    @property
    def reason(self) -> str | None:
        """Why the schema is not strict (None when it is)."""
        return "; ".join(self.reasons) if self.reasons else None

    @property
    def is_pydantic(self) -> bool:
        """Whether values come back as pydantic-validated Python objects (else plain JSON data)."""
        return self._adapter is not None

    def __repr__(self) -> str:
        return f"CompiledSchema(name={self.name!r}, strict={self.strict}, wrapped={self.wrapped})"

    # --- the way back ---------------------------------------------------------------------

    def decode(self, obj: Any) -> Any:
        """A JSON value in the compiled shape turned into the user's JSON shape, not validated."""
        if self.identity:
            return obj
        key = self._unwrap
        if key is not None and type(obj) is dict and len(obj) == 1 and key in obj:
            return obj[key]  # a wrapped root whose value is in the user's shape already
        return self.codec.decode(obj)

    def validate(self, obj: Any) -> T:
        """A JSON value in the compiled shape, back in the user's shape and validated.

        The value must be in the compiled shape: a number or boolean written as a string is refused
        where the compiled schema wants a number or boolean (as `jsonschema` refuses it), but for a
        pydantic `Decimal`, compiled as "number or string", whose text is read when it is unambiguous
        (`"12.30"`; never `"1.234"`). Raises `OutputInvalidError` listing each problem with its JSON path.
        """
        try:
            return self._answer(self.decode(obj), _DECIMAL_ONLY)[0]
        except OutputError as exc:
            raise cap_error(exc) from None
        except RecursionError:
            raise too_deep() from None

    def check(self, value: Any) -> T:
        """Validate a value already in the user's JSON shape (after `decode`, or from `dump`), exactly as
        the user's validator does: pydantic (lax: it takes `"12.50"` for a float without a word, and
        reads back the decimals `dump` writes as strings) or `jsonschema`. Answers from a model go
        through `parse` or `validate`, which read numbers written as strings by the library's rule."""
        if self._adapter is not None:
            try:
                return self._adapter.validate_json(pydantic_core.to_json(value), context=self._context)
            except pydantic.ValidationError as exc:
                raise self._pydantic_error(exc) from None
            except pydantic_core.PydanticSerializationError as exc:
                raise OutputInvalidError("the answer is not JSON data", [ErrorDetail("$", str(exc))]) from None
        validator = cast(Validator, self._validator)  # set in __init__ whenever there is no adapter
        try:
            errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
        except (jsonschema.exceptions.SchemaError, jsonschema.exceptions.UnknownType, re.error, TypeError) as exc:
            raise SchemaCompileError(f"the JSON Schema itself is broken, validation cannot run: {exc}") from None
        if errors:
            details = list({(d.path, d.message): d for e in errors for d in _details(e)}.values())
            raise OutputInvalidError("the answer does not match the schema", details)
        return cast(T, value)

    def _answer(self, value: Any, convert: frozenset[str]) -> tuple[T, list[Repair]]:
        """A decoded answer validated, its numbers and booleans written as strings converted (those of
        the `convert` kinds: "integer", "number", "decimal", "boolean") or refused, and the repairs.

        The same for both kinds of schema: converted and refused by the one rule, then validated. A
        JSON Schema's validator refuses such strings by itself, so the walk only runs when it does;
        so does pydantic in strict mode (but for decimals, looked for first), tried first likewise.
        """
        scalars = self._scalars
        if scalars is None:
            return self.check(value), []
        adapter = self._adapter
        if adapter is not None and self._decimal_keys is not None and not self._decimal_strings(value):
            try:
                return adapter.validate_json(pydantic_core.to_json(value), strict=True, context=self._context), []
            except (pydantic.ValidationError, pydantic_core.PydanticSerializationError):
                pass  # invalid, or only in strict mode: walked, then judged in lax mode
        if adapter is None:
            try:
                return self.check(value), []
            except OutputInvalidError as exc:
                first = exc
            fixed = scalars.fix(value, convert)
            if not fixed.repairs:  # nothing converted: the validator's verdict stands, refusals said better
                if not fixed.problems:
                    raise first
                raise OutputInvalidError(first.message, _merged(first.errors, fixed.problems)) from None
        else:
            fixed = scalars.fix(value, convert)
        try:
            result = self.check(fixed.value)
        except OutputInvalidError as exc:
            if not fixed.problems:
                raise
            raise OutputInvalidError(exc.message, _merged(exc.errors, fixed.problems)) from None
        if fixed.problems:
            raise OutputInvalidError("the answer does not match the schema", fixed.problems)
        return result, fixed.repairs

    def validate_json(self, text: str | bytes) -> T:
        """Strict JSON text in the compiled shape, validated (see `validate`).

        When the compiled shape is the user's (but for nulls standing for absent fields), pydantic
        reads the text directly; only if that fails is it decoded first. NaN, Infinity, numbers too
        large for a float and keys given twice are refused as JSON does.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            check_depth(text)
            value = self._fast(text)
            if value is not _MISS:
                return cast(T, value)
            return self._answer(self.decode(self._parsed(text)), _DECIMAL_ONLY)[0]
        except OutputError as exc:
            raise cap_error(exc) from None
        except RecursionError:
            raise too_deep() from None

    def _fast(self, text: str) -> Any:
        """The validated value when `text` is valid JSON in the compiled shape, valid as it is and taking no
        repair (every key the schema's, no decimal written as a string, no key given twice); else `_MISS`.

        For a pydantic type read directly (`_quick`) this is one call to pydantic-core, a count of the
        text's `:` and of the value's members; otherwise one strict decoding and the validation."""
        quick = self._quick
        if quick is not None:
            try:
                value = quick.validate_json(text, strict=self._quick_strict, context=self._context)
            except pydantic.ValidationError:
                return _MISS
            decimals = self._decimal_text
            if decimals is not None and (decimals.search(text) is not None or "\\u" in text):
                return _MISS  # a decimal written as a string (or a key spelled with escapes): read the long way
            if text.count(":") == self._members(value) or keys_once(text):
                return value  # as many `:` as members: no key was given twice (else decoding tells)
            return _MISS
        try:
            parsed = loads_strict(text)
        except (ValueError, RecursionError):
            return _MISS
        if type(parsed) is not dict or not self._keys_known(parsed):
            return _MISS
        try:
            return self._answer(self.decode(parsed), _NOTHING)[0]
        except OutputInvalidError:
            return _MISS

    @staticmethod
    def _parsed(text: str) -> Any:
        try:
            return loads_strict(text)
        except ValueError as exc:
            raise OutputInvalidError("the answer is not valid JSON", [ErrorDetail("$", str(exc))]) from None

    def _decimal_strings(self, value: Any) -> bool:
        """Whether a string sits under a property that may hold a pydantic `Decimal` (or in a list there)."""
        keys = self._decimal_tuple
        stack: list[Any] = [value]
        while stack:
            node = stack.pop()
            if type(node) is dict:
                for key in keys:
                    item = node.get(key)
                    if item is not None and (type(item) is str or (type(item) is list and _has_string(item))):
                        return True
                stack += [v for v in node.values() if type(v) is dict or type(v) is list]
            elif type(node) is list:
                stack += [v for v in node if type(v) is dict or type(v) is list]
        return False

    def _keys_known(self, value: Any) -> bool:
        """Whether every key of every object in `value` is a property name of the compiled schema."""
        known = self._known_keys
        stack: list[Any] = [value]
        while stack:
            node = stack.pop()
            if type(node) is dict:
                if not known.issuperset(node):
                    return False
                stack += [v for v in node.values() if type(v) is dict or type(v) is list]
            elif type(node) is list:
                stack += [v for v in node if type(v) is dict or type(v) is list]
        return True

    @staticmethod
    def _pydantic_error(exc: pydantic.ValidationError) -> OutputInvalidError:
        details = []
        for e in exc.errors(include_url=False):
            kind = _PYDANTIC_KINDS.get(e["type"], "number" if e["type"] in _NUMBER_ERRORS else e["type"])
            has_value = "input" in e and kind != "missing"
            value = e.get("input") if has_value else None
            details.append(ErrorDetail(format_path(e["loc"]), e["msg"], value, has_value, tuple(e["loc"]), kind))
        return OutputInvalidError("the answer does not match the schema", details)

    # --- reading answers ------------------------------------------------------------------

    def parse_partial(self, text: str) -> Any:
        """The value so far in an answer still being written, as plain JSON in the user's shape:
        every field optional, a cut-off string or list closed, nothing validated (user validators do
        not run on partial values). None while no JSON value has begun, and for an answer that cannot
        be read (one nested deeper than `limits.MAX_DEPTH` levels)."""
        text = settled(text)  # "12" may go on: shown once it ends
        try:
            value = pydantic_core.from_json(text, allow_inf_nan=False, allow_partial="trailing-strings")
        except ValueError:
            value = None
        try:
            if type(value) is dict and text.lstrip().startswith("{") and self._plain_shape(value):
                return self.decode(value)  # JSON in the compiled shape so far: read as it is, at pydantic's speed
            return self.decode(read_answer(text, self.json_schema, self._hints, allow_partial=True).value)
        except (OutputError, RecursionError):
            return None

    def _plain_shape(self, value: dict[str, Any]) -> bool:
        """Whether a partial value read as plain JSON needs nothing from the reader: every key is a
        property name of the compiled schema, no number is infinite (`1e999`), and it nests at most
        `limits.MAX_DEPTH` levels. Each level of objects and lists is looked at in one go."""
        known, level, depth = self._known_keys, [value], 1
        while level:
            if depth > MAX_DEPTH:
                return False
            below: list[Any] = []
            for node in level:
                items = node.values() if type(node) is dict else node
                if (type(node) is dict and not known.issuperset(node)) or _INF in items or -_INF in items:
                    return False
                below += [v for v in items if type(v) is dict or type(v) is list]
            level, depth = below, depth + 1
        return True

    def parse(self, text: str | bytes, *, allow_partial: bool = False) -> T:
        """The validated value in a model's answer text (see `parse_result`)."""
        if self._shallow and type(text) is str:
            value = self._fast(text)  # valid JSON in the compiled shape: one pydantic-core call
            if value is not _MISS:
                return cast(T, value)
        return self.parse_result(text, allow_partial=allow_partial).value

    def parse_result(self, text: str | bytes, *, allow_partial: bool = False) -> ParseResult[T]:
        """The validated value in a model's answer text, with the local repairs it took.

        Valid JSON goes straight to validation. Otherwise the answer is found in the text
        (reasoning blocks, fences, prose removed), repaired where that is lossless and aligned to
        the schema. Lossy repairs (closing a cut-off answer, filling a missing required field) are
        refused with `OutputTruncatedError` unless `allow_partial`. A value that still does not
        validate raises `OutputInvalidError` listing each problem.

        Numbers and booleans written as strings are read the same way for pydantic types and JSON
        Schemas, wherever the user's schema wants an int, float, `Decimal` or bool: converted with a
        NUMBER_STRING / BOOL_STRING repair when the text says one value ("12.50", "1,234.50",
        "1.234,50", "$1,234.50", "-3", "1e3", "12.0" for an integer; "true", "yes", "no"), refused
        with an error at its path otherwise: "1,234" and "1.234" are ambiguous (thousands or
        decimals), "12.5" is not a whole number, "twelve" no number. An answer nested deeper than
        `limits.MAX_DEPTH` (128) levels is refused. Values, paths and messages in errors are shortened
        (`limits.VALUE_LIMIT`); `raw` keeps the whole answer.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            if self._shallow:
                fast = self._fast(text)
                if fast is not _MISS:
                    return ParseResult(fast, [])
            check_depth(text, raw=text)
            return self._parse(text, allow_partial)
        except OutputError as exc:
            raise cap_error(exc, raw=text) from None
        except RecursionError:  # a reader that recursed after all: the same answer as for a deep text
            raise too_deep(raw=text) from None

    def _parse(self, text: str, allow_partial: bool) -> ParseResult[T]:
        fast = self._fast(text) if not self._shallow else _MISS  # a shallow one was tried already
        if fast is not _MISS:
            return ParseResult(fast, [])
        reading = read_answer(text, self.json_schema, self._hints, allow_partial=allow_partial)
        if len(reading.repairs) > len(reading.found_repairs) and self._keys_known(reading.found):
            # aligning to the schema changed something: keep the value as found if it is valid as it is
            try:
                return ParseResult(self._answer(self.decode(reading.found), _NOTHING)[0], reading.found_repairs)
            except OutputInvalidError:
                pass
        repairs = reading.repairs
        decoded = self.decode(reading.value)
        try:
            value, converted = self._answer(decoded, ALL_KINDS)
            return ParseResult(value, [*repairs, *converted])
        except OutputInvalidError as exc:
            fixed = _fix_from_errors(decoded, exc.errors, allow_partial)
            if fixed is None:
                raise OutputInvalidError(exc.message, exc.errors, raw=text, repairs=repairs) from None
            decoded, more = fixed
        repairs = [*repairs, *more]
        try:
            value, converted = self._answer(decoded, ALL_KINDS)
            return ParseResult(value, [*repairs, *converted])
        except OutputInvalidError as exc:
            raise OutputInvalidError(exc.message, exc.errors, raw=text, repairs=repairs) from None

    def dump(self, value: Any) -> Any:
        """A value in the user's shape (model instance, dataclass, dict, list...) as plain JSON data, keys
        as the schema names them (aliases)."""
        if self._adapter is not None and not _is_plain_json(value):
            return self._adapter.dump_python(cast(T, value), mode="json", by_alias=True)
        return pydantic_core.to_jsonable_python(value)

    def encode(self, value: Any) -> Any:
        """A value in the user's shape (model instance, dataclass, dict, list...) in the compiled shape."""
        return self.codec.encode(self.dump(value))


def _property_names(schema: Any) -> set[str]:
    """Every property name in a compiled schema (its definitions included)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(props)
                stack.extend(props.values())
            stack.extend(v for k, v in node.items() if k != "properties" and isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return names


#: what `_fast` returns for an answer that must go the long way
_MISS: Any = object()
_INF: Final = float("inf")


def _shallow(schema: dict[str, Any]) -> bool:
    """Whether no value of compiled `schema` nests deeper than `limits.MAX_DEPTH` (no recursive `$ref`)."""
    defs = schema.get("$defs", {})
    depths: dict[str, int] = {}

    def deepest(node: Any, visiting: frozenset[str]) -> int:
        if isinstance(node, list):
            return max((deepest(n, visiting) for n in node), default=0)
        if not isinstance(node, dict):
            return 0
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in visiting or name not in defs:
                return MAX_DEPTH + 1  # recursive (or unknown): no bound
            if name not in depths:
                depths[name] = deepest(defs[name], visiting | {name})
            return depths[name]
        below = max((deepest(v, visiting) for k, v in node.items() if k != "$defs"), default=0)
        return below + (1 if node.get("type") in ("object", "array") else 0)

    return deepest(schema, frozenset()) <= MAX_DEPTH


def _decimal_pattern(keys: frozenset[str]) -> re.Pattern[str] | None:
    """What finds a string (or a list) written under one of `keys` in JSON text; None without keys."""
    if not keys:
        return None
    names = "|".join(re.escape(json.dumps(k, ensure_ascii=False)[1:-1]) for k in sorted(keys))
    return re.compile(f'"(?:{names})"\\s*:\\s*[\\["]')


#: kinds of scalar strings converted: none (the value as it is), a decimal's text only, all of them
_NOTHING: frozenset[str] = frozenset()
_DECIMAL_ONLY = frozenset({"decimal"})

_PYDANTIC_KINDS = {"missing": "missing", "extra_forbidden": "extra"}
_NUMBER_ERRORS = frozenset(
    {"int_parsing", "int_type", "float_parsing", "float_type", "decimal_parsing", "decimal_type", "int_from_float"}
)


def _details(error: jsonschema.ValidationError) -> list[ErrorDetail]:
    """Readable details for one jsonschema error: one per missing key, kinds for code to react to."""
    loc = tuple(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in cast(list[str], error.validator_value) if k not in error.instance]
        return [
            ErrorDetail(format_path((*loc, k)), f"{k!r} is a required property", loc=(*loc, k), kind="missing")
            for k in missing
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
        extra = [k for k in error.instance if k not in known and not any(re.search(p, k) for p in patterns)]
        return [
            ErrorDetail(format_path((*loc, k)), f"{k!r} is not allowed here", loc=(*loc, k), kind="extra")
            for k in extra
        ]
    expected = error.validator_value if error.validator == "type" else None
    numeric = expected in ("number", "integer") or (
        isinstance(expected, list) and bool({"number", "integer"} & set(expected))
    )
    kind = "number" if numeric else str(error.validator)
    return [ErrorDetail(format_path(loc), error.message, error.instance, True, loc, kind)]


def _is_json_string(node: Mapping[str, Any]) -> bool:
    description = node.get("description")
    return isinstance(description, str) and description.startswith((UNTYPED_NOTE, UNTYPED_OBJECT_NOTE))


def _fix_from_errors(value: Any, errors: list[ErrorDetail], allow_partial: bool) -> tuple[Any, list[Repair]] | None:
    """`value` with the fixes its validation errors point to, or None when there are none to make:
    a key the schema forbids dropped (lossless); a missing required field filled with null (lossy:
    only with `allow_partial`). Numbers written as strings are read before validation (`_answer`)."""
    repairs: list[Repair] = []
    for error in errors:
        if not error.loc:
            continue
        *parents, last = error.loc
        holder = value
        for part in parents:
            holder = _child(holder, part)
        if error.kind == "extra" and isinstance(holder, dict) and last in holder:
            del holder[last]
            repairs.append(Repair(RepairKind.EXTRA_KEY, error.path, "dropped: the schema does not allow it"))
        elif error.kind == "missing" and allow_partial and isinstance(holder, dict) and last not in holder:
            holder[last] = None
            repairs.append(Repair(RepairKind.MISSING_FIELD, error.path, "filled with null"))
    return (value, repairs) if repairs else None


def _merged(errors: list[ErrorDetail], refusals: list[ErrorDetail]) -> list[ErrorDetail]:
    """The validator's `errors` with each of the `refusals` in place of the errors at its place (it says
    more), and the refusals at places the validator found nothing wrong (it took the string) after them."""
    by_loc = {d.loc: d for d in refusals}
    out: list[ErrorDetail] = []
    placed: set[tuple[str | int, ...]] = set()
    for detail in errors:
        if detail.loc not in by_loc:
            out.append(detail)
        elif detail.loc not in placed:
            out.append(by_loc[detail.loc])
            placed.add(detail.loc)
    return out + [d for d in refusals if d.loc not in placed]


def _has_string(items: list[Any]) -> bool:
    """Whether a list holds a string, at any depth of lists within it."""
    stack = [items]
    while stack:
        for item in stack.pop():
            if type(item) is str:
                return True
            if type(item) is list:
                stack.append(item)
    return False


def _child(holder: Any, part: str | int) -> Any:
    if isinstance(holder, dict):
        return holder.get(part)
    if isinstance(holder, list) and isinstance(part, int) and -len(holder) <= part < len(holder):
        return holder[part]
    return None


@dataclass
class ParseResult(Generic[T]):
    """A validated value read from a model's answer, and the local repairs it took (empty for clean JSON)."""

    value: T
    repairs: list[Repair]


def _is_plain_json(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


_CACHE: OrderedDict[Any, CompiledSchema[Any]] = OrderedDict()
_CACHE_SIZE = 512
_LOCK = threading.Lock()


def _cache_key(schema: Any, dialect: Dialect) -> Any:
    """What tells compiled schemas apart, orders included: `Union[A, B] == Union[B, A]` and `Literal` and
    dict equality ignore the order of members, values and keys, which the compiled schema keeps (the
    order properties are written in, the members pydantic tries first). None: not cached."""
    try:
        if isinstance(schema, dict | bool):
            return ("json", json.dumps(schema, default=str), type(dialect), dialect.name)
        return ("type", _type_key(schema), type(dialect), dialect.name)
    except (TypeError, ValueError, RecursionError):  # an unhashable part, a key JSON cannot hold, a cycle
        return None


def _type_key(tp: Any, depth: int = 0) -> Any:
    """`tp` with the arguments of every generic in order, each with its Python type (`1` is not `True`)."""
    args = typing.get_args(tp) if depth < 32 else ()
    hash(tp)
    return (tp, type(tp), tuple(_type_key(a, depth + 1) for a in args)) if args else (tp, type(tp))


@overload
def compile_schema(schema: type[T], *, dialect: str | Dialect | None = None) -> CompiledSchema[T]: ...
@overload
def compile_schema(schema: Any, *, dialect: str | Dialect | None = None) -> CompiledSchema[Any]: ...
def compile_schema(schema: Any, *, dialect: str | Dialect | None = None) -> CompiledSchema[Any]:
    """Compile a pydantic model or type, or a JSON Schema dict, into a strict `response_format` schema.

    Compiled schemas are cached: compiling the same schema twice returns the same object.
    """
    if isinstance(schema, CompiledSchema):
        return schema
    if isinstance(schema, str | bytes):
        raise SchemaCompileError(
            "a schema is a pydantic model or type, or a JSON Schema dict; got a string "
            "(load a JSON Schema file with json.load first)"
        )
    if not (isinstance(schema, dict | bool) or _is_type_like(schema)):
        raise SchemaCompileError(
            f"not a schema: {_describe(schema)} (expected a pydantic model or type, or a JSON Schema dict)"
        )
    chosen = get_dialect(dialect)
    key = _cache_key(schema, chosen)
    if key is not None:
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    compiled: CompiledSchema[Any] = CompiledSchema(schema, chosen)
    if key is not None:
        with _LOCK:
            _CACHE[key] = compiled
            if len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return compiled


def _describe(value: Any) -> str:
    """What `value` is, in a few words: `function make_schema`, `int 5`, `list [1, 2]`."""
    kind = type(value).__name__
    name = getattr(value, "__qualname__", None)
    if isinstance(name, str) and callable(value):
        return f"{kind} {name}"
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _is_type_like(schema: Any) -> bool:
    """Roughly: something pydantic's TypeAdapter may accept (a class, a generic alias, a typing form)."""
    if isinstance(schema, type) or is_dataclass(schema):
        return True
    module = getattr(type(schema), "__module__", "")
    return module in ("typing", "types", "typing_extensions") or typing.get_origin(schema) is not None
