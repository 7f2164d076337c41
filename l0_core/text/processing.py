"""``Window.process_all``: every chunk through ``l0.run``, a few at a time, results in order,
and context restoration when a chunk's output drifts.

Restoration: when a chunk's session ends in drift (the detector's ``DRIFT_DETECTED`` /
halting violation, or a drift flagged with ``drift_action="flag"``), the chunk is run again
as a new session with the text of one more neighbouring chunk on each side in
``chunk.before`` / ``chunk.after``, up to ``restore_context`` times. Each restoration is a
``CONTEXT_RESTORED`` observability event given to the run's ``on_event`` handler. With a
drift detector and restoration on, ``drift_action`` defaults to ``"halt"`` (unless given):
re-running the same prompt is what plain retries do; a drifting chunk needs more context.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from l0_core.errors import ConfigError, L0Error
from l0_core.events import ObservabilityEvent, ObservabilityEventType
from l0_core.runtime.stream import Stream, run

if TYPE_CHECKING:
    from l0_core.text.window import Chunk, ChunkResult, Window

__all__ = ["process_chunks"]

log = logging.getLogger("l0")


async def _never() -> AsyncIterator[str]:  # pragma: no cover - never iterated
    yield ""


def _check(factory_for_chunk: Any, concurrency: Any, restore_context: Any,
           options: Mapping[str, Any]) -> None:
    if not callable(factory_for_chunk):
        raise ConfigError("process_all: factory_for_chunk must be a function of the chunk "
                          f"returning a stream; got {type(factory_for_chunk).__name__}")
    if type(concurrency) is not int or concurrency < 1:
        raise ConfigError(f"process_all: concurrency must be a positive int; got "
                          f"{concurrency!r}")
    if type(restore_context) is not int or restore_context < 0:
        raise ConfigError(f"process_all: restore_context must be an int >= 0 (restorations "
                          f"per chunk, 0 turns them off); got {restore_context!r}")
    if "stream" in options:
        raise ConfigError("process_all: pass the stream through factory_for_chunk, not "
                          "stream=")
    try:
        run(stream=_never, **options)  # every other option is checked as l0.run checks it
    except ConfigError:
        raise
    except TypeError as exc:  # an option l0.run does not have
        raise ConfigError(f"process_all: {exc}") from exc


async def process_chunks(
    window: Window,
    factory_for_chunk: Callable[[Chunk], Any],
    *,
    concurrency: int,
    restore_context: int,
    run_options: Mapping[str, Any],
) -> list[ChunkResult]:
    options = dict(run_options)
    _check(factory_for_chunk, concurrency, restore_context, options)
    if restore_context and options.get("drift") and "drift_action" not in options:
        options["drift_action"] = "halt"
    results: list[ChunkResult | None] = [None] * len(window)
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            results[index] = await _process_one(window, index, factory_for_chunk,
                                                restore_context, options)

    async with asyncio.TaskGroup() as group:
        for index in range(len(window)):
            group.create_task(one(index))
    return [r for r in results if r is not None]


def _bind(factory_for_chunk: Callable[[Chunk], Any], chunk: Chunk) -> Callable[[], Any]:
    def factory() -> Any:
        return factory_for_chunk(chunk)

    return factory


def _drift_of(stream: Stream, error: L0Error | None, options: Mapping[str, Any]) -> list[str]:
    """The drift types the session ended with (``[]``: it did not end in drift)."""
    if error is not None:
        types = error.metadata.get("driftTypes")
        return list(types) if types else []
    if options.get("drift_action") == "flag" and stream.state.drift_detected:
        return list(stream.state.drift_types)
    return []


async def _process_one(
    window: Window,
    index: int,
    factory_for_chunk: Callable[[Chunk], Any],
    restore_context: int,
    options: Mapping[str, Any],
) -> ChunkResult:
    from l0_core.text.window import ChunkResult

    started = time.monotonic()
    chunk = window[index]
    ids: list[str] = []
    restorations = 0
    while True:
        async with run(stream=_bind(factory_for_chunk, chunk), **options) as stream:
            ids.append(stream.id)
            try:
                text, error = await stream.read(), None
            except L0Error as exc:
                text, error = "", exc
        drift = _drift_of(stream, error, options)
        widest = chunk.start - len(chunk.before) <= 0 and \
            chunk.end + len(chunk.after) >= len(window.document)
        if not drift or restorations >= restore_context or widest:
            break
        restorations += 1
        chunk = window.with_context(index, restorations, restorations)
        await _announce(options, stream.id, chunkIndex=index, restoration=restorations,
                        driftTypes=drift, contextBefore=len(chunk.before),
                        contextAfter=len(chunk.after))
    return ChunkResult(chunk, text, error, stream.state, restorations,
                       time.monotonic() - started, tuple(ids))


async def _announce(options: Mapping[str, Any], stream_id: str, **meta: Any) -> None:
    """Give the ``CONTEXT_RESTORED`` event to the run's ``on_event`` handler, if any."""
    handler = options.get("on_event")
    if handler is None:
        return
    event = ObservabilityEvent(ObservabilityEventType.CONTEXT_RESTORED, time.time() * 1000.0,
                               stream_id, options.get("context") or {}, meta)
    try:
        result = handler(event)
        if inspect.isawaitable(result):
            await result
    except Exception:  # a broken handler never stops the processing
        log.exception("l0: on_event raised on CONTEXT_RESTORED; ignored")
