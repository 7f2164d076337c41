"""Every test of the recording gets fresh stores and writer threads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from l0_core.record.recorder import close_writers
from l0_core.record.store import close_stores


@pytest.fixture(autouse=True)
def _fresh_stores() -> Iterator[None]:
    yield
    close_writers()  # what was handed over is written, then the threads stop
    asyncio.run(close_stores())
