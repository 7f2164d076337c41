"""Media events (l0.Image, l0.Audio, l0.Media): content as bytes or base64, what the runtime
keeps in state.data_outputs, media as output, and media discarded with its attempt."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import l0_core as l0
from l0_core.testing import instant_backoff


def test_content_as_bytes_or_base64() -> None:
    raw = b"\x89PNG\r\n"
    from_bytes = l0.Image(raw, "image/png")
    from_text = l0.Image(base64.b64encode(raw).decode(), "image/png")
    assert from_bytes.bytes == from_text.bytes == raw
    assert from_bytes.base64 == from_text.base64 == base64.b64encode(raw).decode()
    assert from_bytes.is_data and from_bytes.type is l0.EventType.DATA
    assert (l0.Image.kind, l0.Audio.kind, l0.Media.kind) == ("image", "audio", "media")
    assert l0.Audio(raw, "audio/wav", index=2, id="a") == l0.Audio(raw, "audio/wav", index=2,
                                                                   id="a")
    assert l0.Audio(raw, "audio/wav") != l0.Audio(raw, "audio/mpeg")
    assert repr(from_bytes) == ("Image(<6 bytes>, mime_type='image/png', partial=False, "
                                "index=0, id=None)")
    assert "<8 base64 chars>" in repr(from_text)


async def test_final_media_kept_previews_delivered_plain_data_unchanged() -> None:
    final = l0.Image(b"final", "image/png", id="img")

    async def events() -> AsyncIterator[l0.Event]:
        yield l0.Progress({"percent": 10})
        yield l0.Image(b"blur", "image/png", partial=True)
        yield l0.Token("A cat.")
        yield final
        yield l0.Data({"json": True})

    stream = l0.run(stream=events)
    kinds = [type(e).__name__ async for e in stream]
    assert kinds == ["Progress", "Image", "Token", "Image", "Data", "Complete"]
    assert stream.state.data_outputs == [final, {"json": True}]
    assert stream.state.last_progress == {"percent": 10}


async def test_media_only_is_output_and_previews_only_is_zero_output() -> None:
    calls = 0

    async def events() -> AsyncIterator[l0.Event]:
        nonlocal calls
        calls += 1
        yield l0.Image(b"blur", "image/png", partial=True)
        if calls > 1:
            yield l0.Audio(b"pcm", "audio/pcm")

    with instant_backoff():
        stream = l0.run(stream=events)
        assert await stream.read() == ""
    assert [e.code for e in stream.errors] == [l0.ErrorCode.ZERO_OUTPUT]
    assert [a.bytes for a in stream.state.data_outputs] == [b"pcm"] and calls == 2


async def test_media_of_a_failed_attempt_is_discarded() -> None:
    calls = 0
    discards: list[dict[str, object]] = []

    async def events() -> AsyncIterator[l0.Event]:
        nonlocal calls
        calls += 1
        yield l0.Audio(f"piece {calls}".encode(), "audio/pcm")
        if calls == 1:
            raise ConnectionResetError("cut mid-audio")

    with instant_backoff():
        stream = l0.run(stream=events, on_event=lambda e: discards.append(e.meta)
                        if e.type is l0.ObservabilityEventType.DISCARD else None)
        kinds = [type(e).__name__ async for e in stream]
    assert kinds == ["Audio", "ErrorEvent", "Discard", "Audio", "Complete"]
    assert [a.bytes for a in stream.state.data_outputs] == [b"piece 2"]
    assert [(d["length"], d["dataOutputs"]) for d in discards] == [(0, 1)]


async def test_media_or_tool_call_only_passes_the_zero_output_rule() -> None:
    calls = 0

    async def image() -> AsyncIterator[l0.Event]:
        nonlocal calls
        calls += 1
        yield l0.Image(b"\x89PNG", "image/png")

    async def tool() -> AsyncIterator[l0.Event]:
        nonlocal calls
        calls += 1
        yield l0.ToolCall("call_1", "lookup", {"q": "x"})

    for source in (image, tool):
        calls = 0
        with instant_backoff():
            stream = l0.run(stream=source, guardrails=l0.Guardrails.recommended())
            assert await stream.read() == ""
        assert calls == 1 and stream.errors == [] and stream.state.violations == []

    async def empty_text() -> AsyncIterator[l0.Event]:  # still judged when nothing else came
        yield l0.Token("!!!")

    with instant_backoff():
        stream = l0.run(stream=empty_text, guardrails=l0.Guardrails.recommended(),
                        retry=l0.Retry.none())
        try:
            await stream.read()
        except l0.GuardrailError as exc:
            assert exc.violations[0].rule == "zero_output"
        else:
            raise AssertionError("punctuation-only text passed")
