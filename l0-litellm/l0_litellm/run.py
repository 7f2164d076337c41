"""``l0_litellm.acompletion``: ``litellm.acompletion(..., stream=True)`` through L0.

One call, LiteLLM's arguments plus L0's options. Each attempt calls
``litellm.acompletion`` afresh with LiteLLM's own retries turned off
(``num_retries=0``, ``max_retries=0``) so that L0 alone retries and a retry is
never multiplied by another. ``fallbacks`` are model names (or mappings of
LiteLLM arguments to override, e.g. ``{"model": ..., "api_base": ...}``): each is
sent the same messages, and with ``continue_from_last_good_token=True`` a
continuation attempt adds the checkpoint and the continuation prompt to them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import l0_core as l0
from l0_core.errors import ConfigError
from l0_core.runtime.continuation import Resume

__all__ = ["L0_OPTIONS", "acompletion", "completion_factory", "resume_request"]

# The options that go to ``l0.run``; every other keyword goes to ``litellm.acompletion``.
# ``stream`` and ``fallbacks`` are this module's own, ``timeout`` is L0's only when it is an
# ``l0.Timeout`` (LiteLLM has a ``timeout`` of its own: the HTTP request timeout).
L0_OPTIONS = frozenset(inspect.signature(l0.run).parameters) - {"stream", "fallbacks", "timeout"}

# LiteLLM retries inside one call (``num_retries`` in ``acompletion``, ``max_retries`` in the
# provider SDK): off, L0 does it.
_NO_LITELLM_RETRIES: Mapping[str, Any] = {"num_retries": 0, "max_retries": 0}


def resume_request(request: Mapping[str, Any], resume: Resume) -> dict[str, Any]:
    """The request of a continuation attempt: the original messages, then the checkpoint as
    an assistant message and ``resume.prompt`` as a user message (as l0-openai does)."""
    messages = list(request.get("messages") or ())
    messages.append({"role": "assistant", "content": resume.checkpoint})
    messages.append({"role": "user", "content": resume.prompt})
    return {**request, "messages": messages}


def completion_factory(request: Mapping[str, Any]) -> Callable[[Resume | None], Any]:
    """A factory for ``l0.run``: ``litellm.acompletion(**request, stream=True)`` per attempt,
    with the checkpoint appended to the messages on a continuation attempt."""

    async def factory(resume: Resume | None = None) -> Any:
        import litellm  # imported at the first attempt: importing litellm takes seconds

        sent = dict(request) if resume is None else resume_request(request, resume)
        return await _cancellable(litellm.acompletion(**sent))

    factory.l0_source = {  # type: ignore[attr-defined]
        "provider": "litellm", "model": request.get("model"), "operation": "chat",
    }
    return factory


async def _cancellable(call: Coroutine[Any, Any, Any]) -> Any:
    """Await ``call`` so that a cancellation reaches L0 as a cancellation.

    LiteLLM's aiohttp transport turns a cancelled request into ``httpx.ConnectError`` and
    then ``InternalServerError``: L0's first-token timer, which cancels the pending request,
    would be reported as a server error. The request runs as its own task; the cancellation
    of this await cancels it and is raised here unchanged.
    """
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_retrieve)  # its converted error is expected: not logged
        raise


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _request(model: str, messages: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {**kwargs, **_NO_LITELLM_RETRIES, "model": model, "messages": list(messages),
            "stream": True}


def _fallback_request(base: Mapping[str, Any], fallback: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(fallback, str):
        return {**base, "model": fallback}
    if isinstance(fallback, Mapping) and isinstance(fallback.get("model", ""), str):
        return {**base, **fallback, **_NO_LITELLM_RETRIES, "stream": True}
    raise ConfigError(
        f"l0_litellm.acompletion: a fallback is a model name or a mapping of litellm arguments "
        f"(with 'model'), not {fallback!r}"
    )


async def acompletion(
    *,
    model: str,
    messages: Sequence[Any],
    fallbacks: Sequence[str | Mapping[str, Any]] = (),
    **options: Any,
) -> l0.Stream:
    """Stream ``litellm.acompletion(model=..., messages=..., stream=True, ...)`` through L0.

    ``options`` holds both kinds of arguments: those of :func:`l0_core.run` (``retry``,
    ``guardrails``, ``continue_from_last_good_token``, ``on_event``..., and ``timeout`` when
    it is an :class:`l0_core.Timeout`) go to L0; all others go to LiteLLM (``api_base``,
    ``api_key``, ``temperature``, ``tools``...). Returns the L0 stream (not yet started).
    """
    l0_kwargs = {k: v for k, v in options.items() if k in L0_OPTIONS}
    litellm_kwargs = {k: v for k, v in options.items() if k not in L0_OPTIONS}
    timeout = litellm_kwargs.get("timeout")
    if isinstance(timeout, l0.Timeout):
        l0_kwargs["timeout"] = litellm_kwargs.pop("timeout")
    request = _request(model, messages, litellm_kwargs)
    return l0.run(
        stream=completion_factory(request),
        fallbacks=[completion_factory(_fallback_request(request, f)) for f in fallbacks],
        **l0_kwargs,
    )
