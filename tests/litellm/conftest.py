"""Fixtures for the LiteLLM integration tests: offline, plugin registered, instant backoff.

LiteLLM fetches its model cost map from the network at import unless told not to, so the
variable is set before anything imports it; and every test runs with outgoing connections
to anything but the loopback interface refused, so a fetch would fail the test.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from l0_core.plugins import host as plugins
from l0_core.testing import instant_backoff

_LOOPBACK = ("127.", "::1", "localhost")


BLOCKED: list[str] = []
"""Every outgoing connection a test tried (LiteLLM may swallow the refusal: it is noted)."""


def _only_loopback(connect: Any) -> Any:
    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not host.startswith(_LOOPBACK):
                BLOCKED.append(host)
                raise ConnectionRefusedError(f"the LiteLLM tests are offline: connect to {host}")
        return connect(self, address)

    return guarded


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, _only_loopback(getattr(socket.socket, name)))
    yield
    assert BLOCKED == [], f"a test tried to reach the network: {BLOCKED}"


@pytest.fixture(autouse=True)
def _litellm_plugin() -> Iterator[None]:
    """The l0-litellm plugin is found through its entry point; make sure of it."""
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banner on every error
    litellm.telemetry = False
    host = plugins.get_host()
    if "litellm" not in host.registry("adapters"):
        import l0_litellm.plugin

        host.register(l0_litellm.plugin, "l0-litellm")
    with instant_backoff():
        yield
