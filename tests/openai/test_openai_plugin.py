"""The l0-openai plugin: found through its entry point, cheap to load."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest

import l0_core as l0
import l0_openai
from l0_core.plugins import host as plugins
from l0_openai import plugin


def test_found_through_the_entry_point() -> None:
    host = plugins.get_host()
    (record,) = [r for r in host.records if r.distribution == "l0-openai"]
    assert record.name == "openai" and record.status == "loaded"
    assert record.hooks == ["l0_classify_error", "l0_register_adapters",
                            "l0_register_demo_scenarios", "l0_wrap_client"]
    assert record.version == l0_openai.__version__
    assert set(host.registry("adapters").names()) >= {"openai", "openai-responses"}


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys, asyncio, l0_core as l0\n"
        "async def tokens():\n"
        "    yield 'hi'\n"
        "assert asyncio.run(l0.run(stream=tokens).read()) == 'hi'\n"
        "from l0_core.plugins import host as plugins\n"
        "plugins.get_host().registry('adapters').get('openai')\n"
        "assert 'l0_openai.plugin' in sys.modules\n"
        "assert 'openai' not in sys.modules, 'the SDK was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_hooks_directly() -> None:
    client = openai.AsyncOpenAI(api_key="test")
    wrapped = plugin.l0_wrap_client(client=client, options={})
    assert isinstance(wrapped, l0_openai.L0AsyncOpenAI)
    assert plugin.l0_wrap_client(client=object(), options={}) is None
    request = client._client.build_request("GET", "https://api.openai.com/v1/models")
    found = plugin.l0_classify_error(error=openai.APIConnectionError(request=request))
    assert found is not None and found.code is l0.ErrorCode.NETWORK_ERROR
    assert plugin.l0_classify_error(error=ValueError("x")) is None


def test_wrap_of_an_unknown_client_is_still_a_clear_error() -> None:
    class Other:
        pass

    with pytest.raises(l0.ConfigError) as info:
        l0.wrap(Other())
    assert info.value.code is l0.ErrorCode.UNKNOWN_PLUGIN
