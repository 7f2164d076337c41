"""``l0.wrap(AsyncOpenAI(), **options)``: an OpenAI client whose streams are L0 streams.

The wrapped client behaves exactly like the original one except for two calls:

* ``chat.completions.create(..., stream=True)``
* ``responses.create(..., stream=True)``

They return an :class:`l0_core.Stream` (also when awaited, as the SDK's
``create`` is), made by ``l0.run(stream=factory, fallbacks=..., **options)``
where ``factory`` re-issues the request on every attempt. Everything else
(non-streaming calls, ``models``, ``embeddings``, ``with_raw_response``...) is
the original client's, attribute for attribute; ``with_options(...)`` returns a
wrapped client again.

Streams are made by a copy of the client with ``max_retries=0``: L0 owns the
retries of a stream, so that they are not multiplied by the SDK's own.

Fallbacks (the ``fallbacks`` option) name what to try after the primary
request failed for good, in order. Each entry is one of:

* a mapping of request overrides, ``{"model": "gpt-4o-mini"}``: the same request
  with these parameters replaced; a ``"client"`` key sends it to another client;
* another client (``AsyncOpenAI``, ``AsyncAzureOpenAI`` or a wrapped client): the
  same request on that client;
* a stream factory, used as it is (as in ``l0.run(fallbacks=[...])``).

Continuation (``continue_from_last_good_token=True``): a retry or fallback after
text was delivered sends the original request plus two messages: the checkpoint
as an ``assistant`` message, then ``resume.prompt`` as a ``user`` message (for the
Responses API: appended to ``input``, a string ``input`` becoming a user message).

Per call, ``l0={...}`` (a keyword of ``create``) overrides the wrap options for
that stream only.

Structured output: ``chat.completions.create(..., response_format=Model, stream=True)``
with a schema instead of OpenAI's dict (a pydantic model, any type pydantic validates, or
a JSON Schema dict: one whose ``"type"`` is not OpenAI's ``"text"``, ``"json_object"`` or
``"json_schema"``; see docs/structured.md) asks the model for JSON of that schema
(``response_format`` of type ``json_schema``: native structured outputs) and returns an
:class:`l0_core.StructuredStream`: partial objects while it streams, the validated object
last, ``await stream.result()`` for the result; an answer that does not validate is
retried like any guardrail failure. ``l0={"auto_correct": ..., "strict_mode": ...,
"feedback": ...}`` sets the structured options; ``l0={"native": False}`` sends no
``response_format`` at all (for a provider without native structured outputs: L0 still
validates, repairs and retries).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import l0_core
from l0_core.errors import ConfigError
from l0_core.runtime.arguments import check_options
from l0_core.runtime.continuation import Resume
from l0_openai.adapter import ChatCompletionsAdapter, ResponsesAdapter

__all__ = ["L0AsyncOpenAI", "resume_chat_request", "resume_responses_request", "wrap_client"]

Kind = Literal["chat", "responses"]

_RUN_OPTIONS = frozenset(inspect.signature(l0_core.run).parameters) - {"stream"}
_STRUCTURED_OPTIONS = frozenset({"auto_correct", "strict_mode", "feedback",
                                 "on_validation_error", "on_auto_correct", "native"})
_CHAT_ADAPTER = ChatCompletionsAdapter()
_RESPONSES_ADAPTER = ResponsesAdapter()


def resume_chat_request(request: Mapping[str, Any], resume: Resume) -> dict[str, Any]:
    """The chat request of a continuation attempt: the original messages, then the
    checkpoint as an assistant message and ``resume.prompt`` as a user message."""
    messages = list(request.get("messages") or ())
    messages.append({"role": "assistant", "content": resume.checkpoint})
    messages.append({"role": "user", "content": resume.prompt})
    return {**request, "messages": messages}


def resume_responses_request(request: Mapping[str, Any], resume: Resume) -> dict[str, Any]:
    """The Responses API request of a continuation attempt (see :func:`resume_chat_request`)."""
    given = request.get("input")
    items: list[Any]
    if given is None:
        items = []
    elif isinstance(given, str):
        items = [{"role": "user", "content": given}]
    else:
        items = list(given)
    items.append({"role": "assistant", "content": resume.checkpoint})
    items.append({"role": "user", "content": resume.prompt})
    return {**request, "input": items}


def _is_client(obj: Any) -> bool:
    if isinstance(obj, L0AsyncOpenAI):
        return True
    module = type(obj).__module__
    if not module.startswith("openai"):
        return False
    import openai

    return isinstance(obj, openai.AsyncOpenAI)


def _stream_client(client: Any) -> Any:
    """The client streams are made with: no SDK retries."""
    if isinstance(client, L0AsyncOpenAI):
        return client._l0_stream_client
    return client.with_options(max_retries=0)


class _Target:
    """One fallback: a client (``None``: the primary) and request overrides, or a factory."""

    __slots__ = ("client", "factory", "overrides")

    def __init__(
        self,
        client: Any = None,
        overrides: Mapping[str, Any] | None = None,
        factory: Callable[..., Any] | None = None,
    ) -> None:
        self.client = client
        self.overrides = dict(overrides or {})
        self.factory = factory


def _targets(fallbacks: Any) -> list[_Target]:
    if fallbacks is None:
        return []
    if isinstance(fallbacks, str):  # a str is a Sequence: it would be read letter by letter
        raise ConfigError(
            f"fallbacks must be a list, not the str {fallbacks!r}; for another model write "
            f"fallbacks=[{{'model': {fallbacks!r}}}]"
        )
    if isinstance(fallbacks, Mapping) or _is_client(fallbacks) or not isinstance(
        fallbacks, Sequence
    ):
        fallbacks = [fallbacks]
    out = []
    for index, entry in enumerate(fallbacks):
        if isinstance(entry, Mapping):
            overrides = dict(entry)
            client = overrides.pop("client", None)
            if client is not None and not _is_client(client):
                raise ConfigError(
                    f"a fallback's 'client' must be an AsyncOpenAI client, not a "
                    f"{type(client).__name__}"
                )
            out.append(_Target(_stream_client(client) if client is not None else None,
                               overrides))
        elif _is_client(entry):
            out.append(_Target(_stream_client(entry)))
        elif callable(entry):
            out.append(_Target(factory=entry))
        else:
            example = repr(entry) if isinstance(entry, str) else "'gpt-4o-mini'"
            raise ConfigError(
                f"fallbacks[{index}] must be a mapping of request overrides (such as "
                f"{{'model': {example}}}), an AsyncOpenAI client or a stream factory, not "
                f"a {type(entry).__name__}"
            )
    return out


def _check_options(options: Mapping[str, Any]) -> None:
    """Unknown and wrong options fail when the client is wrapped, not when a stream runs."""
    unknown = sorted(set(options) - _RUN_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown l0.wrap option(s): {', '.join(unknown)}; the options are those of "
            f"l0.run: {', '.join(sorted(_RUN_OPTIONS))}"
        )
    check_options(options)


def _factory(kind: Kind, client: Any, request: Mapping[str, Any]) -> Callable[..., Any]:
    resource = client.chat.completions if kind == "chat" else client.responses
    create = resource.create
    resume_request = resume_chat_request if kind == "chat" else resume_responses_request
    base = dict(request)

    async def factory(resume: Resume | None) -> Any:
        return await create(**(base if resume is None else resume_request(base, resume)))

    # what observers see of this source (STREAM_INIT's "source"): never the messages
    factory.l0_source = {  # type: ignore[attr-defined]
        "provider": "openai", "operation": "chat" if kind == "chat" else "responses",
        "model": base.get("model"),
    }
    return factory


class _Creator:
    """``chat.completions`` or ``responses`` of a wrapped client."""

    def __init__(self, owner: L0AsyncOpenAI, kind: Kind, original: Any) -> None:
        self._l0_owner = owner
        self._l0_kind: Kind = kind
        self._l0_original = original

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """As the SDK's ``create``; with ``stream=True`` an :class:`l0_core.Stream`."""
        per_call = kwargs.pop("l0", None)
        if not kwargs.get("stream") or args:
            if per_call is not None:
                raise ConfigError("the l0= option applies only to streaming calls (stream=True)")
            return self._l0_original.create(*args, **kwargs)
        return self._l0_owner._l0_stream(self._l0_kind, kwargs, per_call)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_l0_"):
            raise AttributeError(name)
        return getattr(self._l0_original, name)

    def __repr__(self) -> str:
        return f"<l0 wrapped {self._l0_original!r}>"


class _Chat:
    def __init__(self, owner: L0AsyncOpenAI, original: Any) -> None:
        self._l0_original = original
        self.completions = _Creator(owner, "chat", original.completions)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_l0_"):
            raise AttributeError(name)
        return getattr(self._l0_original, name)


class L0AsyncOpenAI:
    """An ``AsyncOpenAI`` (or ``AsyncAzureOpenAI``) client whose streams are L0 streams.

    Made by ``l0.wrap(client, **options)``; see the module documentation.
    ``__wrapped__`` is the original client.
    """

    def __init__(self, client: Any, options: Mapping[str, Any]) -> None:
        options = dict(options)
        _check_options(options)
        self.__wrapped__ = client
        self._l0_stream_client = client.with_options(max_retries=0)
        self._l0_given = dict(options)
        self._l0_fallbacks = _targets(options.pop("fallbacks", None))
        self._l0_options = options
        self._l0_chat: _Chat | None = None
        self._l0_responses: _Creator | None = None

    @property
    def chat(self) -> Any:
        if self._l0_chat is None:
            self._l0_chat = _Chat(self, self.__wrapped__.chat)
        return self._l0_chat

    @property
    def responses(self) -> Any:
        if self._l0_responses is None:
            self._l0_responses = _Creator(self, "responses", self.__wrapped__.responses)
        return self._l0_responses

    def with_options(self, **kwargs: Any) -> L0AsyncOpenAI:
        """``client.with_options(...)`` of the original client, wrapped with the same options."""
        return L0AsyncOpenAI(self.__wrapped__.with_options(**kwargs), self._l0_given)

    copy = with_options

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_l0_") or name == "__wrapped__":
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    async def __aenter__(self) -> L0AsyncOpenAI:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.__wrapped__.__aexit__(*exc)

    def __repr__(self) -> str:
        return f"<l0 wrapped {type(self.__wrapped__).__name__} base_url={self.base_url!s}>"

    def _l0_stream(
        self, kind: Kind, request: dict[str, Any], per_call: Mapping[str, Any] | None
    ) -> l0_core.Stream | l0_core.StructuredStream[Any]:
        options = dict(self._l0_options)
        targets = self._l0_fallbacks
        schema, request, structured = _structured_request(kind, request, per_call)
        if per_call:
            per_call = {k: v for k, v in per_call.items() if k not in _STRUCTURED_OPTIONS}
            _check_options(per_call)
            if "fallbacks" in per_call:
                targets = _targets(per_call.pop("fallbacks"))
            options.update(per_call)
        primary = _factory(kind, self._l0_stream_client, request)
        fallbacks = [
            t.factory if t.factory is not None else _factory(
                kind, t.client or self._l0_stream_client, {**request, **t.overrides}
            )
            for t in targets
        ]
        if options.get("adapter") is None:
            options["adapter"] = _CHAT_ADAPTER if kind == "chat" else _RESPONSES_ADAPTER
        if schema is not None:
            return l0_core.structured_stream(schema, primary, fallbacks=fallbacks,
                                             **structured, **options)
        return l0_core.run(stream=primary, fallbacks=fallbacks, **options)


def _structured_request(
    kind: Kind, request: dict[str, Any], per_call: Mapping[str, Any] | None
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A ``response_format`` that is a schema, not OpenAI's dict: ``(schema, the request
    with the native json_schema response_format, the structured options)``."""
    fmt = request.get("response_format")
    given = {k: v for k, v in (per_call or {}).items() if k in _STRUCTURED_OPTIONS}
    if fmt is None or (isinstance(fmt, Mapping) and fmt.get("type") in
                       ("text", "json_object", "json_schema")):
        if given:
            raise ConfigError(
                f"l0 options {', '.join(sorted(given))} apply only with a schema as "
                f"response_format (response_format=MyModel)"
            )
        return None, request, {}
    if kind != "chat":
        raise ConfigError("a schema as response_format is supported by chat.completions "
                          "only; for responses.create use l0.structured_stream")
    from l0_core.structured_output.schema import compile_schema

    native = given.pop("native", True)
    if not isinstance(native, bool):
        raise ConfigError(f"l0 option native must be True or False, not {native!r}")
    if not native:
        compile_schema(fmt)  # a bad schema is still a clear error up front
        return fmt, {k: v for k, v in request.items() if k != "response_format"}, given
    return fmt, {**request, "response_format": compile_schema(fmt).response_format()}, given


def wrap_client(client: Any, options: Mapping[str, Any]) -> L0AsyncOpenAI:
    """Wrap an ``AsyncOpenAI`` client (what ``l0.wrap`` calls through the plugin hook)."""
    if isinstance(client, L0AsyncOpenAI):
        return L0AsyncOpenAI(client.__wrapped__, {**client._l0_given, **options})
    return L0AsyncOpenAI(client, options)
