"""Shared fixtures: every test starts with fresh plugin and config state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from l0_core.plugins import config
from l0_core.plugins import host as plugins
from l0_core.testing import instant_backoff


@pytest.fixture(autouse=True)
def _fresh_l0_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in list(__import__("os").environ):
        if var.startswith("L0_"):
            monkeypatch.delenv(var, raising=False)
    plugins.reset_host()
    config.set_config(None)
    yield
    plugins.reset_host()
    config.set_config(None)


@pytest.fixture
def instant() -> Iterator[None]:
    with instant_backoff():
        yield
