"""What a schema is for structured output: pydantic types, or a JSON Schema dict.

:func:`compile_schema` turns what the user gave into a :class:`Schema` with one interface:
validate JSON text (``Invalid`` says whether it failed to *parse* or to *validate*), make
typed partial objects from an incomplete prefix, and describe itself as JSON Schema (for a
provider's native structured outputs).

- Pydantic models and anything ``pydantic.TypeAdapter`` takes (dataclasses, TypedDicts,
  ``list[Model]``...) are validated in Rust, parse and validation in one call.
- A JSON Schema ``dict`` is checked by the ``jsonschema`` package (``pip install
  'l0-core[jsonschema]'``); without it, a clear ``FEATURE_NOT_ENABLED`` error.
"""

from __future__ import annotations

import functools
import re
import types
import typing
import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import from_json

from l0_core.errors import ConfigError, ErrorCode, L0Error

__all__ = ["Invalid", "Schema", "compile_schema"]


class Invalid(Exception):
    """The text failed to parse (``stage == "parse"``) or to validate (``"validation"``)."""

    def __init__(self, stage: str, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.stage = stage
        self.errors = errors


class Schema:
    """The interface :func:`compile_schema` gives every kind of schema."""

    name: str = "schema"

    def validate_json(self, text: str, strict: bool) -> Any:
        raise NotImplementedError

    def partial(self, text: str) -> Any:
        """A typed partial object from an incomplete prefix, or ``None`` if none yet."""
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    @functools.cached_property
    def kind(self) -> typing.Literal["object", "array"] | None:
        """Whether the JSON is an object or an array (``None``: either, or unknown): where
        prose holds several candidate values, repair prefers one of this kind."""
        try:
            document = self.json_schema()
        except Exception:
            return None
        ref = document.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            document = document.get("$defs", {}).get(ref[len("#/$defs/"):], document)
        kind = document.get("type")
        return kind if kind in ("object", "array") else None

    def response_format(self) -> dict[str, Any]:
        """An OpenAI-style ``response_format`` asking for JSON of this schema (native
        structured outputs). Not ``strict``: OpenAI's strict mode accepts only a subset of
        JSON Schema; L0 validates the answer itself either way."""
        name = re.sub(r"[^A-Za-z0-9_-]", "_", self.name)[:64] or "schema"
        return {"type": "json_schema",
                "json_schema": {"name": name, "schema": self.json_schema(), "strict": False}}


def _messages(error: ValidationError) -> list[str]:
    out = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"])
        out.append(f"{where}: {e['msg']}" if where else e["msg"])
    return out


class PydanticSchema(Schema):
    """A pydantic model or any type ``TypeAdapter`` takes."""

    def __init__(self, tp: Any) -> None:
        if tp is BaseModel:
            raise ConfigError("schema: BaseModel itself has no fields; pass a subclass of it")
        try:
            self.adapter: TypeAdapter[Any] = TypeAdapter(tp)
            # built now: an unresolved forward reference ("User") fails here, not mid-run
            self.adapter.rebuild(raise_errors=True)
        except Exception as exc:
            raise ConfigError(
                f"schema: {tp!r} is not a type pydantic can validate ({exc})"
            ) from exc
        self.tp = tp
        self.name = getattr(tp, "__name__", None) or repr(tp)
        self._partial: TypeAdapter[Any] | None = None

    def validate_json(self, text: str, strict: bool) -> Any:
        try:
            if strict:
                return self.adapter.validate_json(text, strict=True, extra="forbid")
            return self.adapter.validate_json(text)
        except ValidationError as error:
            parse = any(e["type"] == "json_invalid" for e in error.errors(include_url=False))
            raise Invalid("parse" if parse else "validation", _messages(error)) from None

    def partial(self, text: str) -> Any:
        text = _without_cut_number(text)
        if self._partial is None:
            self._partial = TypeAdapter(partial_type(self.tp))
        adapter = self._partial
        try:
            return adapter.validate_json(text, experimental_allow_partial="trailing-strings")
        except ValidationError as error:
            # a field cut mid-value that cannot validate yet (an enum, a constrained
            # string): leave those fields out and keep the rest
            try:
                value = from_json(text, allow_partial="trailing-strings")
            except ValueError:
                return None
            if not isinstance(value, dict):
                return None
            for e in error.errors(include_url=False):
                if e["loc"]:
                    value.pop(e["loc"][0], None)
            try:
                return adapter.validate_python(value)
            except ValidationError:
                return None

    def json_schema(self) -> dict[str, Any]:
        return self.adapter.json_schema()


class JSONSchema(Schema):
    """A JSON Schema document, checked by the ``jsonschema`` package."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        try:
            import jsonschema
        except ImportError:
            raise L0Error(
                "a JSON Schema dict needs the jsonschema package: pip install "
                "'l0-core[jsonschema]' (or pass a pydantic model)",
                ErrorCode.FEATURE_NOT_ENABLED,
            ) from None
        self.document = dict(document)
        cls = jsonschema.validators.validator_for(self.document)
        try:
            cls.check_schema(self.document)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"schema: not a valid JSON Schema: {exc.message}") from exc
        self.validator = cls(self.document)
        self.name = str(self.document.get("title") or "schema")

    def validate_json(self, text: str, strict: bool) -> Any:
        try:
            value = from_json(text, allow_inf_nan=False)
        except ValueError as exc:
            raise Invalid("parse", [str(exc)]) from None
        errors = [
            f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}" if e.absolute_path
            else e.message
            for e in self.validator.iter_errors(value)
        ]
        if errors:
            raise Invalid("validation", errors)
        return value

    def partial(self, text: str) -> Any:
        try:
            return from_json(_without_cut_number(text), allow_partial="trailing-strings")
        except ValueError:
            return None

    def json_schema(self) -> dict[str, Any]:
        return self.document


_NUMBER_CHARS = "0123456789+-.eE"


def _without_cut_number(text: str) -> str:
    """A prefix may end in a number that goes on (``"age": 4`` of ``42``): the partial
    parser would take it as it is, so it is left out until something follows it."""
    if text and text[-1] in _NUMBER_CHARS:
        return text.rstrip(_NUMBER_CHARS)
    return text


def compile_schema(schema: Any) -> Schema:
    """A :class:`Schema` for a pydantic type or a JSON Schema dict (a ``Schema`` as it is)."""
    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, Mapping):
        return JSONSchema(schema)
    if schema is None:
        raise ConfigError("schema is required: a pydantic model, a type, or a JSON Schema dict")
    return _pydantic(schema)


@functools.lru_cache(maxsize=256)
def _cached(schema: Any) -> PydanticSchema:
    return PydanticSchema(schema)


def _pydantic(schema: Any) -> PydanticSchema:
    try:
        return _cached(schema)
    except TypeError:  # unhashable: not cached
        return PydanticSchema(schema)


# -- typed partial objects --------------------------------------------------------------------


# weak: models made per call (structured_object) do not pile up
_partials: weakref.WeakKeyDictionary[type[BaseModel], type[BaseModel]] = (
    weakref.WeakKeyDictionary())
_building: dict[type[BaseModel], str] = {}  # models being made: their forward-ref names
_made: dict[str, type[BaseModel]] = {}  # made while an outer model is being made


def _partial_model(model: type[BaseModel]) -> Any:
    """``model`` with every field optional (default ``None``), nested models likewise.
    A recursive model (``children: list[Node]``) refers to its partial model by a forward
    reference, resolved once the outermost one is made."""
    done = _partials.get(model)
    if done is not None:
        return done
    if model in _building:
        return typing.ForwardRef(_building[model])
    ref = f"_L0Partial_{model.__name__}_{id(model):x}"
    _building[model] = ref
    try:
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            fields[name] = (
                typing.Optional[partial_type(info.annotation)],  # noqa: UP045 (forward refs)
                Field(default=None, alias=info.alias),
            )
        made: type[BaseModel] = create_model(
            f"Partial{model.__name__}", __base__=None, **fields
        )
    finally:
        del _building[model]
    _made[ref] = made
    if not _building:  # the outermost: every forward reference can be resolved now
        namespace = dict(_made)
        _made.clear()
        for each in namespace.values():
            each.model_rebuild(_types_namespace=namespace)
    _partials[model] = made
    return made


def partial_type(tp: Any) -> Any:
    """The type partial objects of ``tp`` validate against: models with optional fields,
    through lists, dicts, tuples and unions; other types as they are."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _partial_model(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is None or not args:
        return tp
    if origin is typing.Annotated:
        return partial_type(args[0])  # constraints cannot hold for a value cut mid-way
    mapped = tuple(partial_type(a) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[mapped]  # noqa: UP007 (forward refs)
    try:
        return origin[mapped] if len(mapped) > 1 else origin[mapped[0]]
    except TypeError:
        return tp
