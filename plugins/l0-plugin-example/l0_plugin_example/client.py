"""A toy provider SDK, so the boundary hooks have something to work on.

``ExampleClient.stream(prompt)`` returns an async iterator of dict chunks (the
shape :class:`~l0_plugin_example.adapter.DictStreamAdapter` reads), and the SDK
raises :class:`ExampleAPIError` with a ``kind`` that only this plugin knows how
to classify. A real provider plugin does the same for its SDK's client and
exception types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import l0_core as l0
from l0_core import Classification, ErrorCode

__all__ = ["ExampleAPIError", "ExampleClient", "WrappedExampleClient", "classify"]

Chunk = Mapping[str, Any]


class ExampleAPIError(Exception):
    """What the toy SDK raises. ``kind``: ``overloaded``, ``rate_limited`` or ``invalid``."""

    def __init__(self, message: str, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


_CODES = {
    "overloaded": ErrorCode.SERVER_ERROR,
    "rate_limited": ErrorCode.RATE_LIMITED,
    "invalid": ErrorCode.BAD_REQUEST,
}


def classify(error: BaseException) -> Classification | None:
    """The L0 classification of an :class:`ExampleAPIError`; ``None`` for anything else."""
    if not isinstance(error, ExampleAPIError):
        return None
    code = _CODES.get(error.kind, ErrorCode.UNKNOWN_ERROR)
    return Classification(code, retry_after=error.retry_after,
                          message=f"example API {error.kind}: {error}")


def _echo(prompt: str) -> list[Chunk]:
    return [*({"text": word + " "} for word in prompt.split()), {"done": True}]


class ExampleClient:
    """The toy client.

    :param replies: ``replies(prompt)`` gives the items of one call (default: echo the
        prompt word by word); an exception among them is raised at that point, like a
        connection failing mid-stream.
    """

    def __init__(self, replies: Callable[[str], Iterable[Chunk | BaseException]] = _echo) -> None:
        self._replies = replies
        self.calls = 0

    async def stream(self, prompt: str) -> AsyncIterator[Chunk]:
        self.calls += 1
        for chunk in self._replies(prompt):
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk


class WrappedExampleClient:
    """What ``l0.wrap(ExampleClient(...), **options)`` returns: streams become L0 streams."""

    def __init__(self, client: ExampleClient, options: Mapping[str, Any]) -> None:
        self.client = client
        self.options = dict(options)

    def stream(self, prompt: str, **overrides: Any) -> l0.Stream:
        """An L0 stream of the reply; each retry calls the SDK afresh."""
        options = {"adapter": "example-dict", **self.options, **overrides}
        return l0.run(stream=lambda: self.client.stream(prompt), **options)
