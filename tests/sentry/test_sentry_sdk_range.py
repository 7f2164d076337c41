"""The oldest supported sentry-sdk passes the same l0-sentry suite as the newest.

The main test environment has the newest sentry-sdk. This test builds a fresh virtualenv
with the oldest version l0-sentry supports (2.20) and runs tests/sentry in it, so both ends
of ``sentry-sdk>=2.20,<3`` are tested. (The OpenAI test is left out there: it needs the
OpenAI SDK, whose range l0-openai tests.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oldest_versions import passes_on_oldest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_sentry_sdk_passes_the_sentry_suite(tmp_path: Path) -> None:
    passes_on_oldest(tmp_path, distribution="l0-sentry", pins=["sentry-sdk==2.20.0"],
                     expect=("sentry-sdk", "2.20.0"), suite="tests/sentry",
                     leave_out=["tests/sentry/test_sentry_openai.py"])
