"""Shared cooldowns: a model that keeps failing is skipped by every worker for a while.

``Cooldowns(store=...)`` counts the failures of each model in the shared store
(a counter per model, in a window of ``window`` seconds); at ``failures`` the
model starts cooling for ``cooldown`` seconds (a key with an expiry: nothing to
clean up, no clock to agree on). :meth:`Cooldowns.run` starts a session on the
models that are not cooling, in your order: a session whose first model is
cooling goes straight to the next one, on every worker.

What costs what: one store round trip when a session starts (all models' state
at once) and one per *failure* of an attempt; nothing per token.

Observable as events, delivered to the session's ``on_event``, observers and
recording like the runtime's own: ``MODEL_SKIPPED`` (a model left out because
it is cooling: ``model``, ``index``, ``remaining`` seconds) right after
``SESSION_START`` (with the event that follows it), and ``MODEL_COOLDOWN``
(this session's failure made a model start cooling: ``model``, ``failures``,
``seconds``).

A store that workers do not share (``memory://``) gives cooldowns within one
process; the memory store keeps them in a table of this module.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from l0_core.errors import ConfigError, ErrorCode
from l0_core.events import ObservabilityEvent
from l0_core.events import ObservabilityEventType as T
from l0_core.record.store import resolve_store
from l0_core.scale.shared import SharedStore

__all__ = ["DEFAULT_CODES", "Cooldowns"]

log = logging.getLogger("l0")

DEFAULT_CODES = frozenset({
    ErrorCode.NETWORK_ERROR, ErrorCode.SERVER_ERROR, ErrorCode.RATE_LIMITED,
    ErrorCode.INITIAL_TOKEN_TIMEOUT, ErrorCode.INTER_TOKEN_TIMEOUT, ErrorCode.TIMEOUT,
})
"""The failures that count against a model: it is down or overloaded (not a guardrail)."""


class _LocalCounters:
    """Counters and cooldowns of one process (for stores that workers do not share)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}
        self._until: dict[str, float] = {}

    async def count_failure(self, key: str, window: float) -> int:
        now = time.monotonic()
        with self._lock:
            count, end = self._counts.get(key, (0, 0.0))
            count, end = (count + 1, end) if end > now else (1, now + window)
            self._counts[key] = (count, end)
            return count

    async def cool(self, key: str, seconds: float) -> None:
        with self._lock:
            self._until[key] = time.monotonic() + seconds
            self._counts.pop(key, None)

    async def cooling(self, keys: Sequence[str]) -> dict[str, float]:
        now = time.monotonic()
        with self._lock:
            return {k: self._until[k] - now for k in keys if self._until.get(k, 0.0) > now}


_local: dict[str, _LocalCounters] = {}


class Cooldowns:
    """Model cooldowns shared through a store. See the module documentation.

    :param store: a store URL or object (default: the configured store); Redis
        and PostgreSQL share the state between workers.
    :param failures: failures within ``window`` seconds that start a cooldown.
    :param cooldown: seconds a model is skipped.
    :param codes: the error codes that count (:data:`DEFAULT_CODES`).
    """

    def __init__(self, store: Any = None, *, failures: int = 3, window: float = 60.0,
                 cooldown: float = 30.0, codes: Iterable[ErrorCode] = DEFAULT_CODES) -> None:
        if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
            raise ConfigError(f"Cooldowns: failures must be an int >= 1, not {failures!r}")
        for name, value in (("window", window), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"Cooldowns: {name} must be a positive number, not {value!r}")
        store = resolve_store(store)
        self.store = store
        self.failures, self.window, self.cooldown = failures, float(window), float(cooldown)
        self.codes = frozenset(ErrorCode(c) for c in codes)
        self._state: Any = store if isinstance(store, SharedStore) \
            else _local.setdefault(store.url, _LocalCounters())
        self._tasks: set[asyncio.Task[None]] = set()

    async def cooling(self, models: Sequence[str]) -> dict[str, float]:
        """The seconds of cooldown left for each cooling model among ``models``."""
        return dict(await self._state.cooling(list(models)))

    async def failed(self, model: str) -> bool:
        """Count one failure of ``model``; whether it made the model start cooling."""
        if await self._state.count_failure(model, self.window) < self.failures:
            return False
        await self._state.cool(model, self.cooldown)
        return True

    async def run(self, models: Mapping[str, Callable[..., Any]]
                  | Sequence[tuple[str, Callable[..., Any]]], **options: Any) -> Any:
        """``l0.run`` over the models that are not cooling, in the given order.

        ``models`` maps a model's name to its stream factory (the first is the
        primary, the others its fallbacks); ``options`` are ``l0.run``'s. When
        every model is cooling, all are tried anyway (in order): skipping them
        all would fail the session for certain.
        """
        pairs = list(models.items()) if isinstance(models, Mapping) else list(models)
        if not pairs:
            raise ConfigError("Cooldowns.run: give at least one (model name, factory)")
        if "stream" in options or "fallbacks" in options:
            raise ConfigError("Cooldowns.run: the models are the stream and its fallbacks; "
                              "pass them in models, not as stream= or fallbacks=")
        left = await self.cooling([name for name, _ in pairs])
        chosen = [(i, name, f) for i, (name, f) in enumerate(pairs) if name not in left]
        if not chosen:
            chosen = [(i, name, f) for i, (name, f) in enumerate(pairs)]
        skipped = [(i, name, left[name]) for i, (name, _) in enumerate(pairs) if name in left
                   and all(c[1] != name for c in chosen)]
        watcher = _Watcher(self, [name for _, name, _ in chosen], skipped)
        observers = options.pop("observers", None)
        if observers is None:  # l0.run's default: the configured observers
            from l0_core.plugins.config import defaults_for_run

            observers = defaults_for_run(options.get("config")).observers
        observers = list(observers or ())
        import l0_core as l0

        stream = l0.run(stream=chosen[0][2], fallbacks=[f for _, _, f in chosen[1:]],
                        observers=[*observers, watcher], **options)
        watcher.stream = stream
        return stream

    async def wait(self) -> None:
        """Wait until the failures counted so far are in the store (they are counted in
        the background, off the session's path: tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        return (f"Cooldowns({self.store.url!r}, failures={self.failures}, "
                f"window={self.window:g}, cooldown={self.cooldown:g})")


class _Watcher:
    """The observer that counts a session's failures and tells what was skipped."""

    name = "cooldowns"

    def __init__(self, owner: Cooldowns, models: list[str],
                 skipped: list[tuple[int, str, float]]) -> None:
        self.owner = owner
        self.models = models
        self.skipped = skipped
        self.stream: Any = None  # the session's l0 Stream, once l0.run made it

    def on_event(self, event: ObservabilityEvent) -> None:
        if self.skipped and event.type is not T.SESSION_START:
            # at the first event after SESSION_START: SESSION_START has reached every
            # listener by then (the recorder among them, which comes after this one)
            skipped, self.skipped = self.skipped, []
            for index, model, remaining in skipped:
                self._emit(T.MODEL_SKIPPED, model=model, index=index, remaining=remaining)
        if event.type is T.ERROR:
            code = event.meta.get("errorCode")
            policy = event.meta.get("policy") or {}
            index = policy.get("fallbackIndex", 0) if isinstance(policy, Mapping) else 0
            if code in self.owner.codes and 0 <= index < len(self.models):
                self.owner._spawn(self._count(self.models[index]))

    def _emit(self, kind: T, **meta: Any) -> None:
        stream = self.stream
        if stream is not None and not stream.finished:
            # the one private use: a Stream has no public way to add an event to its
            # session (MODEL_SKIPPED / MODEL_COOLDOWN must reach every listener in order)
            stream._session.emit(kind, **meta)

    async def _count(self, model: str) -> None:
        try:
            if await self.owner.failed(model):
                self._emit(T.MODEL_COOLDOWN, model=model, failures=self.owner.failures,
                           seconds=self.owner.cooldown)
        except Exception as exc:  # the store is down: the session goes on regardless
            log.warning("l0: counting a failure of %s in %s failed: %r", model,
                        self.owner.store.url, exc)
