"""The real sentry-sdk, initialised per test with a transport that records envelopes.

``sentry_sdk.init`` is process-global: every test gets its own client (and empty global and
isolation scopes), and the fixture puts an inactive client back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.consts import DEFAULT_OPTIONS
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from l0_sentry import L0Integration

DSN = "https://public@sentry.example/1"


class CapturingTransport(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def flush(self, timeout: float, callback: Any = None) -> None:
        return None

    def kill(self) -> None:
        return None


class Captured:
    """What one test's Sentry client sent, by kind."""

    def __init__(self, transport: CapturingTransport) -> None:
        self.transport = transport

    def _payloads(self, kind: str) -> list[dict[str, Any]]:
        sentry_sdk.flush()
        return [item.payload.json for envelope in self.transport.envelopes
                for item in envelope.items if item.type == kind and item.payload.json]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self._payloads("event")

    @property
    def transactions(self) -> list[dict[str, Any]]:
        return self._payloads("transaction")

    @property
    def spans(self) -> list[dict[str, Any]]:
        """Every span, in one shape (op, description, parent, status, data): those inside
        transactions and the ``gen_ai.*`` ones Sentry streams as ``span`` items."""
        spans = [{"op": s.get("op"), "description": s.get("description"),
                  "span_id": s["span_id"], "parent_span_id": s.get("parent_span_id"),
                  # older sentry-sdk versions keep the status in the span's tags only
                  "status": _status(s.get("status") or s.get("tags", {}).get("status")),
                  "origin": s.get("origin"), "data": s.get("data", {})}
                 for t in self.transactions for s in t.get("spans", [])]
        for item in self._payloads("span"):
            for s in item["items"]:
                attributes = {k: v["value"] for k, v in s.get("attributes", {}).items()}
                spans.append({"op": attributes.get("sentry.op"), "description": s.get("name"),
                              "span_id": s["span_id"], "parent_span_id": s.get("parent_span_id"),
                              "status": _status(s.get("status")),
                              "origin": attributes.get("sentry.origin"),
                              "data": attributes})
        return spans


def _status(status: str | None) -> str | None:
    """One vocabulary for both span shapes: streamed spans know only ok and error, while a
    transaction's spans have Sentry's detailed statuses (internal_error...)."""
    return status if status in (None, "ok", "cancelled") else "error"


def supports(option: str) -> bool:
    """Whether the installed sentry-sdk knows an ``init`` option (newer ones have more)."""
    return option in DEFAULT_OPTIONS


Init = Callable[..., Captured]


@pytest.fixture
def sentry() -> Iterator[Init]:
    """``sentry(integration=L0Integration(...), **init_options)`` → what gets sent."""

    def init(integration: L0Integration | None = None, **options: Any) -> Captured:
        integrations = [integration if integration is not None else L0Integration()]
        integrations += options.pop("integrations", [])
        options.setdefault("default_integrations", False)
        options.setdefault("traces_sample_rate", 1.0)
        sentry_sdk.init(dsn=DSN, transport=CapturingTransport, integrations=integrations,
                        **options)
        sentry_sdk.get_isolation_scope().clear()
        sentry_sdk.get_current_scope().clear()
        transport = sentry_sdk.get_client().transport
        assert isinstance(transport, CapturingTransport)
        return Captured(transport)

    yield init
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()
    # an inactive client with no integration: nothing more is recorded, and what Sentry
    # patched (its OpenAI integration) passes every call straight through for later tests
    sentry_sdk.init(default_integrations=False)
