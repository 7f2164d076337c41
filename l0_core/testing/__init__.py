"""Scripted fake streams and helpers, for L0's own tests and for plugin authors.

A :class:`Script` describes one attempt (tokens, delays, where it fails or
stalls); :class:`ScriptedSource` is a stream factory that plays one script per
call and remembers every stream it made, so a test can assert how many
attempts there were and that each upstream was closed::

    source = ScriptedSource([Script(["Hel", "lo"], fail_after=1), Script(["Hello"])])
    with instant_backoff():
        text = await l0.run(stream=source).read()
    assert text == "Hello" and source.calls == 2 and source.all_closed
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import Complete, ErrorEvent, Token
from l0_core.runtime.adapters import AdapterSession, FeedResult, Finish
from l0_core.runtime.retry import _set_instant

__all__ = [
    "FakeChunk",
    "FakeChunkAdapter",
    "RecordingStream",
    "Script",
    "ScriptedSource",
    "chunks",
    "instant_backoff",
]


@contextlib.contextmanager
def instant_backoff() -> Iterator[None]:
    """Make every retry backoff sleep zero seconds (delays are still computed and reported)."""
    old = _set_instant(True)
    try:
        yield
    finally:
        _set_instant(old)


@dataclass
class Script:
    """One scripted attempt.

    :param tokens: the text pieces to yield.
    :param delay: seconds before each token. :param first_delay: before the first.
    :param fail_after: after this many tokens, raise ``error``.
    :param error: what to raise (default ``ConnectionResetError``).
    :param stall_after: after this many tokens, hang (until cancelled).
    :param kind: ``"text"`` yields ``str``; ``"events"`` yields L0 events (an
        in-band error becomes an :class:`~l0_core.events.ErrorEvent`);
        ``"chunks"`` yields :class:`FakeChunk` objects with a final
        ``finish_reason`` chunk unless ``terminal`` is false.
    :param finish_reason: the finish reason of the final chunk (``"chunks"``).
    :param raise_on_call: the factory itself raises this.
    """

    tokens: Sequence[str] = ()
    delay: float = 0.0
    first_delay: float = 0.0
    fail_after: int | None = None
    error: BaseException | None = None
    stall_after: int | None = None
    kind: Literal["text", "events", "chunks"] = "text"
    terminal: bool = True
    finish_reason: str = "stop"
    in_band_error: bool = False
    raise_on_call: BaseException | None = None


class RecordingStream:
    """An async iterator playing one :class:`Script`, recording how it was used."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.yielded = 0
        self.closed = False
        self.finished = False
        self._gen = self._play()

    def __aiter__(self) -> RecordingStream:
        return self

    async def __anext__(self) -> Any:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        self.closed = True
        await self._gen.aclose()

    def _failure(self) -> BaseException:
        return self.script.error or ConnectionResetError("connection reset by peer (scripted)")

    async def _play(self) -> AsyncGenerator[Any, None]:
        s = self.script
        for i, text in enumerate(s.tokens):
            if s.fail_after is not None and i == s.fail_after:
                if s.in_band_error and s.kind == "events":
                    yield ErrorEvent(L0Error("scripted in-band error", ErrorCode.SERVER_ERROR),
                                     False, False)
                    return
                raise self._failure()
            if s.stall_after is not None and i == s.stall_after:
                await asyncio.Event().wait()
            wait = s.first_delay if i == 0 and s.first_delay else s.delay
            if wait:
                await asyncio.sleep(wait)
            self.yielded += 1
            if s.kind == "events":
                yield Token(text)
            elif s.kind == "chunks":
                yield FakeChunk(text)
            else:
                yield text
        n = len(s.tokens)
        if s.fail_after is not None and s.fail_after >= n:
            raise self._failure()
        if s.stall_after is not None and s.stall_after >= n:
            await asyncio.Event().wait()
        if s.kind == "events" and s.terminal:
            yield Complete("", None, s.finish_reason)
        if s.kind == "chunks" and s.terminal:
            yield FakeChunk(None, finish_reason=s.finish_reason)
        self.finished = True


@dataclass
class ScriptedSource:
    """A stream factory: call ``n`` plays ``scripts[n]`` (the last one repeats)."""

    scripts: Sequence[Script]
    streams: list[RecordingStream] = field(default_factory=list)
    resumes: list[Any] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.resumes)

    @property
    def all_closed(self) -> bool:
        return all(s.closed or s.finished for s in self.streams)

    def __call__(self, resume: Any = None) -> RecordingStream:
        self.resumes.append(resume)
        script = self.scripts[min(len(self.resumes) - 1, len(self.scripts) - 1)]
        if script.raise_on_call is not None:
            raise script.raise_on_call
        stream = RecordingStream(script)
        self.streams.append(stream)
        return stream


class FakeChunk:
    """An OpenAI-shaped chunk: ``chunk.choices[0].delta.content`` and ``finish_reason``."""

    __slots__ = ("choices", "usage")

    def __init__(self, content: str | None, finish_reason: str | None = None) -> None:
        self.choices = [_Choice(content, finish_reason)]
        self.usage = None


class _Delta:
    __slots__ = ("content", "role", "tool_calls")

    def __init__(self, content: str | None) -> None:
        self.content = content
        self.role = None
        self.tool_calls = None


class _Choice:
    __slots__ = ("delta", "finish_reason", "index")

    def __init__(self, content: str | None, finish_reason: str | None) -> None:
        self.delta = _Delta(content)
        self.finish_reason = finish_reason
        self.index = 0


class _ChunkSession:
    __slots__ = ("finish_reason",)

    def __init__(self) -> None:
        self.finish_reason: str | None = None

    def feed(self, item: Any) -> FeedResult:
        choice = item.choices[0]
        if choice.finish_reason is not None:
            self.finish_reason = choice.finish_reason
        text: str | None = choice.delta.content
        return text

    def finish(self) -> Finish:
        if self.finish_reason is None:
            raise L0Error(
                "the stream ended without a finish_reason: the output may be cut",
                ErrorCode.INCOMPLETE,
            )
        return Finish(self.finish_reason)


class FakeChunkAdapter:
    """Adapter for :class:`FakeChunk` streams; a stream without a final
    ``finish_reason`` ends as ``INCOMPLETE``, like a real provider adapter."""

    name = "fake-chunks"

    def detect(self, item: Any) -> bool:
        return isinstance(item, FakeChunk)

    def open(self, options: Any = None) -> AdapterSession:
        return _ChunkSession()


def chunks(texts: Sequence[str], finish_reason: str | None = "stop") -> list[FakeChunk]:
    """Pre-built :class:`FakeChunk` objects for ``texts`` plus a final chunk."""
    out = [FakeChunk(t) for t in texts]
    if finish_reason is not None:
        out.append(FakeChunk(None, finish_reason))
    return out
