"""The oldest supported openai SDK passes the same OpenAI suite as the newest.

The main test environment has the newest openai (3.x, on httpx2). This test builds a
fresh virtualenv with the oldest version l0-openai supports (1.40, on httpx) and runs
tests/openai in it, so both ends of ``openai>=1.40,<4`` are tested in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oldest_versions import passes_on_oldest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_openai_passes_the_openai_suite(tmp_path: Path) -> None:
    passes_on_oldest(tmp_path, distribution="l0-openai",
                     # openai < 1.55.3 needs the httpx of its time
                     pins=["openai==1.40.0", "httpx<0.28"], expect=("openai", "1.40.0"),
                     suite="tests/openai")
