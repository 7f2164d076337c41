"""An observer: counts observability events by type, and logs a summary per session."""

from __future__ import annotations

import logging
from collections import Counter

from l0_core import ObservabilityEvent, ObservabilityEventType

__all__ = ["EventCounter"]


class EventCounter:
    """Registered as ``example-counter``.

    L0 makes one instance per session from config (``observers =
    ["example-counter"]``), so counts never mix between streams. Passed as an
    object (``l0.run(..., observers=[counter])``) the same instance counts
    every session it is given to.

    :param log_summary: log the counts at ``SESSION_END``.
    :param logger: the logger name for the summary.
    :param level: the log level for the summary.
    """

    name = "example-counter"

    def __init__(
        self,
        *,
        log_summary: bool = True,
        logger: str = "l0_plugin_example",
        level: str | int = "INFO",
    ) -> None:
        self.counts: Counter[str] = Counter()
        self.log_summary = log_summary
        self._log = logging.getLogger(logger)
        self._level = logging.getLevelName(level) if isinstance(level, str) else level

    def on_event(self, event: ObservabilityEvent) -> None:
        self.counts[event.type.value] += 1
        if (
            event.type is ObservabilityEventType.SESSION_END
            and self.log_summary
            and self._log.isEnabledFor(self._level)
        ):
            self._log.log(self._level, "example-counter %s: %d events %s", event.stream_id,
                          self.total, dict(self.counts))

    @property
    def total(self) -> int:
        return sum(self.counts.values())
