"""``L0Integration``: the sentry-sdk side of l0-sentry, holding what to capture.

Sentry's way to configure an integration is an object in ``sentry_sdk.init(integrations=
[...])``. Once set up, every L0 session gets the ``sentry`` observer (through
``observe_every_session``), which looks the integration up on the active client for every
session (``get_client().get_integration(L0Integration)``): a re-``init`` with other options
takes effect at the next session, and without the integration on the client, sessions that
do not name ``sentry`` report nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sentry_sdk
from sentry_sdk.integrations import Integration

__all__ = ["DEFAULT_OPTIONS", "L0Integration", "Options", "current_options"]


@dataclass(frozen=True, slots=True)
class Options:
    """What the observer records; see ``L0Integration`` for each field."""

    breadcrumbs: bool = True
    capture_errors: bool = True
    capture_degraded: bool = False
    spans: bool = True
    include_prompts: bool = False
    ignore_codes: frozenset[str] = frozenset({"STREAM_ABORTED"})


DEFAULT_OPTIONS = Options()


class L0Integration(Integration):
    """``sentry_sdk.init(dsn=..., integrations=[L0Integration(...)])``.

    :param breadcrumbs: an ``l0.*`` breadcrumb for every retry, fallback, timeout,
        guardrail violation, drift and abort.
    :param capture_errors: one error event per failed session (never one per attempt).
    :param capture_degraded: a warning event for a session that succeeded only thanks to a
        fallback. Off by default: it is a degradation, not an error.
    :param spans: a span per session and per attempt under the current transaction.
    :param include_prompts: the output text (and the checkpoint of a failed session) on spans
        and events. Sent only when ``send_default_pii=True`` too: both must allow it.
    :param ignore_codes: error codes that never make an error event (default: an abort,
        which the application asked for).
    """

    identifier = "l0"
    origin = f"auto.ai.{identifier}"

    def __init__(
        self,
        *,
        breadcrumbs: bool = True,
        capture_errors: bool = True,
        capture_degraded: bool = False,
        spans: bool = True,
        include_prompts: bool = False,
        ignore_codes: frozenset[str] | set[str] | tuple[str, ...] = ("STREAM_ABORTED",),
    ) -> None:
        self.options = Options(
            breadcrumbs=breadcrumbs, capture_errors=capture_errors,
            capture_degraded=capture_degraded, spans=spans, include_prompts=include_prompts,
            ignore_codes=frozenset(ignore_codes),
        )

    @staticmethod
    def setup_once() -> None:
        # Nothing to patch: every L0 session that starts while a client with this
        # integration is active gets the sentry observer (unless it names one itself), so
        # sentry_sdk.init(integrations=[L0Integration()]) is all it takes.
        from l0_core.runtime.stream import observe_every_session
        from l0_sentry.observer import SentryObserver

        observe_every_session(SentryObserver, unless=_not_for_sentry)


def _not_for_sentry(observers: Any) -> bool:
    """Skip a session that names the sentry observer itself, or starts while no client
    with the integration is active."""
    if sentry_sdk.get_client().get_integration(L0Integration) is None:
        return True
    return any(o == "sentry" or getattr(o, "name", None) == "sentry"
               or (isinstance(o, dict) and o.get("name") == "sentry") for o in observers)


def current_options(overrides: dict[str, Any]) -> Options | None:
    """The options for a session starting now, or ``None`` when Sentry is not initialised.

    The integration's options (or the defaults without it), then the observer's own keyword
    options from L0's configuration on top.
    """
    client = sentry_sdk.get_client()
    if not client.is_active():
        return None
    integration = client.get_integration(L0Integration)
    options = integration.options if integration is not None else DEFAULT_OPTIONS
    if overrides:
        options = replace(options, **overrides)
    return options
