"""Where an attempt's stream comes from, and how it is closed again."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.runtime.continuation import Resume

__all__ = ["Source", "close_quietly", "takes_resume"]

log = logging.getLogger("l0")

# A bug in the user's factory, not a failure of the provider: retrying cannot fix it.
FACTORY_BUGS: tuple[type[BaseException], ...] = (
    TypeError, KeyError, AttributeError, NameError, IndexError, UnboundLocalError,
)


class Source:
    """One stream source: a factory (called afresh for every attempt) or a bare
    async iterator (read once: it cannot be retried)."""

    __slots__ = ("bare", "fn", "info", "takes_resume", "used")

    def __init__(self, source: Any) -> None:
        self.used = False
        self.fn = source
        # what the source is, for observers: {"provider": ..., "model": ..., "operation": ...}
        info = getattr(source, "l0_source", None)
        self.info: dict[str, Any] | None = dict(info) if isinstance(info, Mapping) else None
        self.bare = not callable(source) or hasattr(source, "__anext__")
        self.takes_resume = not self.bare and takes_resume(source)

    def open(self, resume: Resume | None) -> Any:
        """Call the factory (or hand out the iterator, once).

        A ``TypeError``, ``KeyError``, ``AttributeError``... raised by the call
        itself is a bug in the factory: it becomes a non-retryable
        ``INVALID_STREAM`` error instead of being retried.
        """
        if self.bare:
            if self.used:
                raise L0Error(
                    "this stream was given as an iterator, so it cannot be read a second time "
                    "for a retry or continuation; pass a function that returns a new stream "
                    "(a factory) instead",
                    ErrorCode.INVALID_STREAM,
                )
            self.used = True
            return self.fn
        try:
            return self.fn(resume) if self.takes_resume else self.fn()
        except FACTORY_BUGS as exc:
            raise factory_bug(exc) from exc


def factory_bug(exc: BaseException) -> L0Error:
    return L0Error(
        f"the stream factory raised {type(exc).__name__}: {exc} (a bug in the factory is not "
        f"retried)",
        ErrorCode.INVALID_STREAM,
    )


def takes_resume(fn: Any) -> bool:
    """Whether ``fn`` declares a parameter for a :class:`Resume`.

    It does when its first positional parameter is required, or is named
    ``resume``, or is annotated with ``Resume``. A parameter with a default
    that is about something else (``prefix="Hello"``) does not get one.
    """
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__self__"):  # a plain function: no signature()
        if code.co_argcount == 0:
            return False
        name = code.co_varnames[0]
        required = code.co_argcount > len(getattr(fn, "__defaults__", None) or ())
        annotation = getattr(fn, "__annotations__", {}).get(name)
        return required or _names_resume(name, annotation)
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return p.default is p.empty or _names_resume(p.name, p.annotation)
        break
    return False


def _names_resume(name: str, annotation: Any) -> bool:
    if name == "resume":
        return True
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "Resume" in text


async def close_quietly(*things: Any) -> None:
    """Close upstream objects (``aclose()`` or ``close()``); errors are logged, never raised."""
    seen: set[int] = set()
    for thing in things:
        if thing is None or id(thing) in seen:
            continue
        if getattr(thing, "ag_frame", True) is None:  # an async generator that already ended
            continue
        seen.add(id(thing))
        closer = getattr(thing, "aclose", None) or getattr(thing, "close", None)
        if closer is None:
            continue
        try:
            result = closer()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.debug("l0: closing %r raised %r", thing, exc)
