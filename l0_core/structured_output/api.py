"""``l0.structured``, ``structured_object``, ``structured_array``, ``structured_stream``.

Each is one L0 session (``l0.run``) with one more guardrail, the structured check of
``validation.py``: retries, fallbacks, timers, continuation and observability are the
runtime's own, and so are the stream id and the event stream.

``structured_stream`` yields typed partial objects while the JSON streams. Parsing the
whole text again on every token would cost O(n²) over a document (what instructor does).
Instead a partial object is parsed when either

- the stream has grown by a quarter (in tokens) since the last parse, and by at least 16
  tokens: the parses add up to about five times the length of the text, O(n) in all, a
  cost per token that stays flat however long the answer; or
- ``PARTIAL_LATENCY`` (50 ms) has passed since the last parse and at least four times what
  that parse took (looked at every 4th token): a stream paced by the network (tokens tens
  of ms apart) gets a partial object every 50 ms or 4 tokens, whichever is later, whatever
  its length, for at most a fifth of its time.

So in a burst (tokens arriving faster than anyone can read, as from a cache or a fast local
model) the gap between partial objects grows with the text (a quarter of it: about 4 000
tokens into a 20 000-token burst); at reading speed it is bounded in time. Partial objects
are also at least ``partial_interval`` (20 ms) apart, which only skips parses. The last
object yielded is always the final, validated one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, create_model

from l0_core.errors import ConfigError, ErrorCode, L0Error
from l0_core.events import Discard, Token
from l0_core.runtime.state import State
from l0_core.runtime.stream import Stream, run
from l0_core.structured_output.errors import AttemptFailure
from l0_core.structured_output.repair import Correction, Repaired
from l0_core.structured_output.schema import compile_schema
from l0_core.structured_output.validation import StructuredRule, Validation

__all__ = [
    "StructuredResult",
    "StructuredStream",
    "structured",
    "structured_array",
    "structured_object",
    "structured_stream",
]

T = TypeVar("T")
_clock = time.monotonic

PARTIAL_GROWTH = 0.25  # parse a partial object when the text grew by this share ...
PARTIAL_MIN_TOKENS = 16  # ... and by at least this many tokens ...
PARTIAL_INTERVAL = 0.02  # ... and this many seconds after the last parse
PARTIAL_LATENCY = 0.05  # or: this many seconds (and 4x the last parse's time) passed


class StructuredResult(Generic[T]):
    """The validated data and how it was obtained.

    ``data`` is the validated object (a model instance, a list, a dict...); its attributes
    are readable on the result itself (``result.name``). ``raw`` is the text the model
    produced, ``corrected`` the JSON that was validated (``raw`` when nothing needed
    repair), ``corrections`` the repairs made, ``state`` the session's :class:`State`,
    ``errors`` every error of every attempt, ``attempts`` why each rejected attempt was
    rejected.
    """

    __slots__ = ("attempts", "corrected", "corrections", "data", "errors", "raw", "state",
                 "stream_id")

    def __init__(self, data: T, raw: str, corrected: str, corrections: tuple[Correction, ...],
                 state: State, errors: list[L0Error], attempts: list[AttemptFailure],
                 stream_id: str) -> None:
        self.data = data
        self.raw = raw
        self.corrected = corrected
        self.corrections = corrections
        self.state = state
        self.errors = errors
        self.attempts = attempts
        self.stream_id = stream_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.data, name)

    def __getitem__(self, key: Any) -> Any:
        return self.data[key]  # type: ignore[index]

    def __repr__(self) -> str:
        return f"StructuredResult(data={self.data!r}, corrections={len(self.corrections)})"


class StructuredStream(Generic[T]):
    """What ``structured_stream`` returns: iterate it for partial objects (the last one is
    the final validated object), or ``await stream.result()``.

    As an :class:`l0_core.Stream`: ``abort()``, ``aclose()``, ``async with``, ``state``,
    ``id``, ``errors``; ``events`` is the underlying L0 stream.
    """

    __slots__ = ("_done", "_interval", "_validation", "events")

    def __init__(self, events: Stream, validation: Validation, interval: float) -> None:
        self.events = events
        self._validation = validation
        self._interval = interval
        self._done: StructuredResult[T] | None = None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._partials()

    async def _partials(self) -> AsyncIterator[Any]:
        stream = self.events
        partial = self._validation.schema.partial
        kind = self._validation.schema.kind
        state, interval = stream.state, self._interval
        growth, least = PARTIAL_GROWTH, PARTIAL_MIN_TOKENS
        count, due, start = 0, least, -1
        # parsed_at: for the latency rule (from the start); shown_at: for partial_interval
        parsed_at, shown_at, patience = _clock(), -interval, max(interval, PARTIAL_LATENCY)
        last: Any = None
        try:
            async for event in stream:
                if type(event) is Token:
                    count += 1
                    if count < due:
                        if count & 3:  # the clock is read every 4th token only (~100 ns)
                            continue
                        now = _clock()
                        if now - parsed_at < patience:
                            continue
                    else:
                        now = _clock()
                    due = count + max(least, int(count * growth))
                    if interval and now - shown_at < interval:
                        continue  # a burst: no more partial objects than a reader can see
                    value, start = _partial(partial, state.content, start, kind)
                    parsed_at = shown_at = _clock()
                    patience = max(interval, PARTIAL_LATENCY, 4 * (parsed_at - now))
                    if value is not None and value != last:
                        last = value
                        yield value
                elif type(event) is Discard:  # an attempt was abandoned: start over
                    count, due, start, last = len(state.parts), least, -1, None
        except L0Error as error:
            final = self._validation.final_error(error, stream.errors)
            if final is error:
                raise
            raise final from error
        yield self._result().data

    async def result(self) -> StructuredResult[T]:
        """Run the session to its end (if it is not finished) and return the result;
        raises ``StructuredError`` when no attempt produced valid data."""
        if self._done is None:
            try:
                await self.events.read()
            except L0Error as error:
                final = self._validation.final_error(error, self.events.errors)
                if final is error:
                    raise
                raise final from error
        return self._result()

    def _result(self) -> StructuredResult[T]:
        if self._done is not None:
            return self._done
        v, stream = self._validation, self.events
        if v.accepted is None:
            raise L0Error("the structured check did not run on the final text",
                          ErrorCode.INTERNAL_ERROR)
        data, corrected, corrections = v.accepted
        st = stream.state
        self._done = StructuredResult(data, st.content, corrected, corrections, st,
                                      list(stream.errors), list(v.failures), stream.id)
        return self._done

    @property
    def state(self) -> State:
        return self.events.state

    @property
    def id(self) -> str:
        return self.events.id

    @property
    def errors(self) -> list[L0Error]:
        return self.events.errors

    def abort(self, reason: str = "aborted by the caller") -> None:
        self.events.abort(reason)

    async def aclose(self) -> None:
        await self.events.aclose()

    async def __aenter__(self) -> StructuredStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.events.aclose()

    def __await__(self) -> Generator[Any, None, StructuredStream[T]]:
        async def itself() -> StructuredStream[T]:
            return self

        return itself().__await__()


def _partial(
    parse: Callable[[str], Any], text: str, start: int, kind: str | None
) -> tuple[Any, int]:
    """A partial object of ``text`` from where its JSON starts (``start``, found once:
    -1 until then). A start in prose (``Here [as requested]: ```json {...``) that gives
    nothing is given up for the body of a markdown fence opened after it."""
    if start < 0:
        start = _json_start(text, kind, 0)
        if start < 0:
            return None, start
    value = parse(text[start:])
    if value is None:
        fence = text.find("```", start)
        body = text.find("\n", fence) if fence >= 0 else -1
        later = _json_start(text, kind, body + 1) if body >= 0 else -1
        if later >= 0:
            return parse(text[later:]), later
    return value, start


def _json_start(text: str, kind: str | None, at: int) -> int:
    """Where the JSON starts in a streamed text from ``at`` (after a fence or prose), or
    -1: the first ``{`` (an object schema), ``[`` (an array schema), or either; the body of
    a markdown fence opened before it wins."""
    while True:
        if kind == "object":
            opener = text.find("{", at)
        elif kind == "array":
            opener = text.find("[", at)
        else:
            brace, bracket = text.find("{", at), text.find("[", at)
            opener = bracket if brace < 0 or 0 <= bracket < brace else brace
        fence = text.find("```", at, opener if opener >= 0 else len(text))
        if fence < 0:
            return opener
        at = text.find("\n", fence) + 1
        if at == 0:
            return -1


def structured_stream(
    schema: Any,
    stream: Any,
    *,
    fallbacks: Iterable[Any] = (),
    guardrails: Iterable[Any] | str | None = None,
    auto_correct: bool = True,
    strict_mode: bool = False,
    feedback: bool | Callable[[AttemptFailure], str] = False,
    on_validation_error: Callable[[AttemptFailure], Any] | None = None,
    on_auto_correct: Callable[[Repaired], Any] | None = None,
    partial_interval: float = PARTIAL_INTERVAL,
    **options: Any,
) -> StructuredStream[Any]:
    """Stream typed partial objects of ``schema`` as the JSON arrives; the last object is
    the final validated one. Options as :func:`structured`; ``partial_interval`` is the
    shortest time between two partial objects (seconds; 0: no limit)."""
    if not isinstance(partial_interval, int | float) or partial_interval < 0:
        raise ConfigError("partial_interval must be a number of seconds >= 0")
    _check_options(options, feedback)
    validation = Validation(
        compile_schema(schema), auto_correct=auto_correct, strict=strict_mode,
        feedback=feedback, on_validation_error=on_validation_error,
        on_auto_correct=on_auto_correct,
    )
    sources = [validation.with_feedback(f, i) for i, f in enumerate([stream, *fallbacks])]
    rules = [*_user_rules(guardrails, options.get("config"), auto_correct),
             StructuredRule(validation)]
    events = run(sources[0], fallbacks=sources[1:], guardrails=rules, **options)
    validation.bind(events._session)
    return StructuredStream(events, validation, float(partial_interval))


async def structured(
    schema: Any,
    stream: Any,
    *,
    fallbacks: Iterable[Any] = (),
    guardrails: Iterable[Any] | str | None = None,
    auto_correct: bool = True,
    strict_mode: bool = False,
    feedback: bool | Callable[[AttemptFailure], str] = False,
    on_validation_error: Callable[[AttemptFailure], Any] | None = None,
    on_auto_correct: Callable[[Repaired], Any] | None = None,
    **options: Any,
) -> StructuredResult[Any]:
    """Run ``stream`` through L0 and return its output parsed and validated by ``schema``.

    ``schema``: a pydantic model, anything ``pydantic.TypeAdapter`` takes, or a JSON
    Schema dict (``pip install 'l0-core[jsonschema]'``). ``auto_correct`` heals broken
    JSON (:func:`l0_core.repair_json`) before validating; ``strict_mode`` validates
    without type coercion and rejects unknown fields. A parse or validation failure is
    retried with a fresh generation (``retry``'s model budget, 3 retries by default),
    then the ``fallbacks``; ``feedback=True`` tells the next attempt what was wrong
    (through ``Resume``: see docs/structured.md). Every other option is ``l0.run``'s.
    Raises ``StructuredError`` (with every attempt's errors) when no attempt validates.
    """
    made = structured_stream(
        schema, stream, fallbacks=fallbacks, guardrails=guardrails, auto_correct=auto_correct,
        strict_mode=strict_mode, feedback=feedback, on_validation_error=on_validation_error,
        on_auto_correct=on_auto_correct, **options,
    )
    return await made.result()


async def structured_object(
    shape: Mapping[str, Any], stream: Any, **options: Any
) -> StructuredResult[Any]:
    """:func:`structured` with a schema built from ``{"field": type}`` or
    ``{"field": (type, default)}``."""
    if not isinstance(shape, Mapping) or not shape:
        raise ConfigError("structured_object needs a non-empty dict of field -> type "
                          "(or (type, default))")
    fields = {
        name: spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, ...)
        for name, spec in shape.items()
    }
    try:
        model: type[BaseModel] = create_model("StructuredObject", **fields)  # type: ignore[call-overload]
    except Exception as exc:
        raise ConfigError(
            f"structured_object: each field needs a type or (type, default): {exc}"
        ) from exc
    return await structured(model, stream, **options)


async def structured_array(item: Any, stream: Any, **options: Any) -> StructuredResult[Any]:
    """:func:`structured` for a JSON array whose every item validates against ``item``
    (``result.data`` is the list)."""
    schema: Any = (
        {"type": "array", "items": item} if isinstance(item, Mapping)
        else list[item]
    )
    return await structured(schema, stream, **options)


def _check_options(options: Mapping[str, Any], feedback: Any) -> None:
    """Unknown options and a bad ``feedback`` are a clear error before anything runs."""
    import inspect

    known = set(inspect.signature(run).parameters) - {"stream", "fallbacks", "guardrails"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} for structured output: "
            f"{', '.join(unknown)}"
        )
    if not (isinstance(feedback, bool) or callable(feedback)):
        raise ConfigError(
            f"feedback must be True, False or a function of the rejected attempt, not "
            f"{feedback!r}"
        )


# with auto_correct, what these rules reject is what the repair heals: they would turn a
# fixable answer into a fresh generation, so they are left out (the pattern rule keeps its
# other categories: refusals, meta commentary, instruction leaks, placeholders)
_HEALED_RULES = frozenset({"json", "strict_json", "markdown"})
_HEALED_PATTERNS = ("hedging", "format_collapse")


def _user_rules(
    guardrails: Iterable[Any] | str | None, config: Any, auto_correct: bool = False
) -> list[Any]:
    if guardrails is None:
        from l0_core.plugins.config import defaults_for_run

        guardrails = defaults_for_run(config).guardrails
    if guardrails is None:
        return []
    items = [guardrails] if isinstance(guardrails, str) else list(guardrails)
    if not auto_correct:
        return items
    from l0_core.guardrails.rule import RuleSpec
    from l0_core.guardrails.rules.presets import expand

    kept: list[Any] = []
    for item in expand(items):
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if name in _HEALED_RULES:
            continue
        if name == "pattern" and isinstance(item, str | RuleSpec):
            options = dict(item.options) if isinstance(item, RuleSpec) else {}
            exclude = options.get("exclude", ())
            exclude = [exclude] if isinstance(exclude, str) else list(exclude)
            options["exclude"] = [*exclude, *_HEALED_PATTERNS]
            item = RuleSpec("pattern", options)
        kept.append(item)
    return kept
