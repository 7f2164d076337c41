"""An adapter for streams of dicts: ``{"text": "..."}`` items and a final ``{"done": true}``.

This is the shape many small HTTP streaming APIs use. The adapter shows the
three things every adapter does:

* ``detect(item)`` recognises the first item of a stream, so ``l0.run`` picks
  this adapter automatically (or name it: ``adapter="example-dict"``);
* ``feed(item)`` turns one item into text (``str``), nothing (``None``) or L0
  events, and raises an :class:`~l0_core.L0Error` for an in-band error;
* ``finish()`` reports how the stream ended, and raises ``INCOMPLETE`` when
  the provider's terminal item never came, so L0 can retry a cut stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from l0_core import ErrorCode, Finish, L0Error
from l0_core.runtime.adapters import FeedResult

__all__ = ["DictStreamAdapter", "DictStreamSession"]

_KEYS = ("text", "done", "error")


class DictStreamSession:
    """The state of one attempt: whether the ``done`` item came, and what it said."""

    __slots__ = ("_done", "_finish_reason", "_text_key", "_usage")

    def __init__(self, text_key: str = "text") -> None:
        self._text_key = text_key
        self._done = False
        self._finish_reason: str | None = None
        self._usage: Mapping[str, Any] | None = None

    def feed(self, item: Any) -> FeedResult:
        if not isinstance(item, Mapping):
            raise L0Error(
                f"the example-dict adapter got a {type(item).__name__} item; every item of "
                f"the stream must be a dict",
                ErrorCode.INVALID_STREAM,
            )
        if "error" in item:  # an error reported inside the stream: let L0 decide what to do
            raise L0Error(f"the provider reported an error: {item['error']}",
                          ErrorCode.SERVER_ERROR)
        if item.get("done"):
            self._done = True
            reason = item.get("finish_reason")
            self._finish_reason = reason if isinstance(reason, str) else "stop"
            usage = item.get("usage")
            self._usage = usage if isinstance(usage, Mapping) else None
            return None
        text = item.get(self._text_key)
        if text is None:
            return None  # a keep-alive or metadata item: nothing for the consumer
        if not isinstance(text, str):
            raise L0Error(
                f"the example-dict adapter expected a str under {self._text_key!r}, got "
                f"{type(text).__name__}",
                ErrorCode.INVALID_STREAM,
            )
        return text

    def finish(self) -> Finish:
        if not self._done:
            raise L0Error(
                'the stream ended without its {"done": true} item: the output may be cut',
                ErrorCode.INCOMPLETE,
            )
        return Finish(self._finish_reason, self._usage)


class DictStreamAdapter:
    """Registered as ``example-dict``. Option (``adapter_options``): ``text_key``."""

    name = "example-dict"

    def detect(self, item: Any) -> bool:
        return isinstance(item, Mapping) and any(key in item for key in _KEYS)

    def open(self, options: Mapping[str, Any] | None = None) -> DictStreamSession:
        text_key = (options or {}).get("text_key", "text")
        return DictStreamSession(str(text_key))
