"""Fixtures for the orchestration tests: the l0-openai plugin, instant backoff."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from l0_core.plugins import host as plugins
from l0_core.testing import instant_backoff


@pytest.fixture(autouse=True)
def _openai_plugin() -> Iterator[None]:
    host = plugins.get_host()
    if "openai" not in host.registry("adapters"):
        import l0_openai.plugin

        host.register(l0_openai.plugin, "l0-openai")
    with instant_backoff():
        yield
