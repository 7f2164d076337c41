"""The oldest supported litellm passes the same LiteLLM suite as the newest.

The main test environment has the newest litellm. This test builds a fresh virtualenv
with the oldest version l0-litellm supports (1.109, the first that reports an
OpenAI-compatible stream that ends without a finish reason instead of completing it with
``stop``) and runs tests/litellm in it, so both ends of ``litellm>=1.109,<2`` are tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oldest_versions import passes_on_oldest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_litellm_passes_the_litellm_suite(tmp_path: Path) -> None:
    passes_on_oldest(tmp_path, distribution="l0-litellm", pins=["litellm==1.109.0"],
                     expect=("litellm", "1.109.0"), suite="tests/litellm")
