"""Media over real HTTP: streamed audio output (chat) and partial images (Responses API)
from the fault-injecting server, read by the real openai SDK through l0-openai, with a
connection cut in the middle of the media."""

from __future__ import annotations

import base64
import inspect
from typing import Any

import openai
import pytest

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, Turn
from tests.openai.support import FAST, MODEL, assert_all_closed, needs_responses, raw_client

pytestmark = pytest.mark.asyncio

AUDIO = [b"\x01\x02" * 40, b"\x03\x04" * 40, b"\x05\x06" * 40]
TRANSCRIPT = ["Hello", " there", "!"]
PARTIALS = [b"preview-0" * 10, b"preview-1" * 10]
IMAGE = b"\x89PNG final image" * 20


def media_events(events: list[l0.Event]) -> list[str]:
    out = []
    for event in events:
        if isinstance(event, l0.Media):
            out.append(f"{event.kind}:{'partial:' if event.partial else ''}{event.index}:"
                       f"{event.bytes.decode('latin-1')[:9]}")
        elif event.is_token:
            out.append(f"token:{event.text}")
        elif event.is_progress:
            out.append(f"progress:{event.data['status']}")
        elif event.is_error:
            assert event.error is not None
            out.append(f"error:{event.error.code.value}")
        elif event.is_discard:
            out.append(f"discard:{event.text}")
        elif event.is_complete:
            out.append(f"complete:{event.text}")
    return out


AUDIO_REQUEST: dict[str, Any] = {"modalities": ["text", "audio"],
                                 "audio": {"voice": "alloy", "format": "pcm16"}}
# SDKs before audio output (openai 1.40) take the same request fields through extra_body,
# and hand back delta.audio as a plain mapping: the adapter reads both
AUDIO_KWARGS = (AUDIO_REQUEST if "modalities" in inspect.signature(
    openai.resources.chat.AsyncCompletions.create).parameters
    else {"extra_body": AUDIO_REQUEST})


def chat_audio(client: Any) -> Any:
    def factory() -> Any:
        return client.chat.completions.create(
            model="gpt-4o-audio-preview", stream=True, **AUDIO_KWARGS,
            messages=[{"role": "user", "content": "Say hello."}])
    return factory


async def test_streamed_audio_transcript_is_the_text_and_audio_is_kept() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TRANSCRIPT, audio=AUDIO)]) as server:
        client = raw_client(server)
        stream = l0.run(stream=chat_audio(client), timeout=FAST)
        events = [e async for e in stream]
        assert [type(e).__name__ for e in events] == [
            "Token", "Audio", "Token", "Audio", "Token", "Audio", "Complete"]
        audio = [e for e in events if isinstance(e, l0.Audio)]
        assert [a.bytes for a in audio] == AUDIO
        assert [a.index for a in audio] == [0, 1, 2]
        assert {a.mime_type for a in audio} == {"audio/pcm"}
        assert len({a.id for a in audio}) == 1 and audio[0].id is not None
        assert audio[0].base64 == base64.b64encode(AUDIO[0]).decode()
        assert stream.state.content == "Hello there!"
        assert stream.state.data_outputs == audio
        assert server.requests[0].body["modalities"] == ["text", "audio"]
        await assert_all_closed(server, client)


async def test_audio_cut_mid_media_is_retried_and_the_lost_audio_discarded() -> None:
    turns = [Turn(tokens=TRANSCRIPT, audio=AUDIO, cut_after=2),
             Turn(tokens=TRANSCRIPT, audio=AUDIO)]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        stream = l0.run(stream=chat_audio(client), timeout=FAST)
        events = [e async for e in stream]
        first = AUDIO[0].decode("latin-1")[:9]
        second = AUDIO[1].decode("latin-1")[:9]
        third = AUDIO[2].decode("latin-1")[:9]
        assert media_events(events) == [
            "token:Hello", f"audio:0:{first}", "token: there", f"audio:1:{second}",
            "error:NETWORK_ERROR", "discard:Hello there",
            "token:Hello", f"audio:0:{first}", "token: there", f"audio:1:{second}",
            "token:!", f"audio:2:{third}", "complete:Hello there!"]
        # only the delivered attempt's audio is kept, once
        assert [a.bytes for a in stream.state.data_outputs] == AUDIO
        assert len(server.completion_requests) == 2
        await assert_all_closed(server, client)


async def test_audio_without_transcript_is_output_not_zero_output() -> None:
    async with OpenAIServer(turns=[Turn(tokens=(), audio=AUDIO[:2])]) as server:
        client = raw_client(server)
        stream = l0.run(stream=chat_audio(client), timeout=FAST)
        assert await stream.read() == ""
        assert [a.bytes for a in stream.state.data_outputs] == AUDIO[:2]
        assert stream.state.attempt == 1 and stream.errors == []
        await assert_all_closed(server, client)


async def test_audio_only_attempt_cut_is_discarded_before_the_retry() -> None:
    turns = [Turn(audio=AUDIO, cut_after=2), Turn(audio=AUDIO[:1])]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        seen: list[Any] = []
        stream = l0.run(stream=chat_audio(client), timeout=FAST,
                        on_event=lambda e: seen.append(e) if e.type.value == "DISCARD" else None)
        events = [e async for e in stream]
        assert [type(e).__name__ for e in events] == [
            "Audio", "Audio", "ErrorEvent", "Discard", "Audio", "Complete"]
        assert [a.bytes for a in stream.state.data_outputs] == AUDIO[:1]
        assert [(e["length"], e["dataOutputs"]) for e in seen] == [(0, 2)]
        await assert_all_closed(server, client)


def responses_image(client: Any) -> Any:
    def factory() -> Any:
        return client.responses.create(
            model=MODEL, input="Draw a cat.", stream=True,
            tools=[{"type": "image_generation", "partial_images": 2}])
    return factory


@needs_responses
async def test_partial_images_then_the_final_image() -> None:
    turn = Turn(tokens=["Here", " it is."], partial_images=PARTIALS, image=IMAGE)
    async with OpenAIServer(turns=[turn]) as server:
        client = raw_client(server)
        stream = l0.run(stream=responses_image(client), timeout=FAST)
        events = [e async for e in stream]
        assert media_events(events) == [
            "progress:in_progress", "progress:generating",
            "image:partial:0:preview-0", "token:Here",
            "image:partial:1:preview-1", "token: it is.",
            "progress:completed", "image:0:\x89PNG fina", "complete:Here it is."]
        final = stream.state.data_outputs
        assert len(final) == 1 and isinstance(final[0], l0.Image)
        assert final[0].bytes == IMAGE and final[0].mime_type == "image/png"
        assert final[0].id == "ig_1" and not final[0].partial
        assert final[0].metadata == {"size": "1024x1024"}
        assert stream.state.last_progress["status"] == "completed"
        await assert_all_closed(server, client)


@needs_responses
async def test_image_stream_cut_mid_image_is_retried() -> None:
    turns = [Turn(partial_images=PARTIALS, image=IMAGE, cut_after=1),
             Turn(partial_images=PARTIALS[:1], image=IMAGE)]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        stream = l0.run(stream=responses_image(client), timeout=FAST)
        events = [e async for e in stream]
        assert media_events(events) == [
            "progress:in_progress", "progress:generating", "image:partial:0:preview-0",
            "error:NETWORK_ERROR",
            "progress:in_progress", "progress:generating", "image:partial:0:preview-0",
            "progress:completed", "image:0:\x89PNG fina", "complete:"]
        assert [i.bytes for i in stream.state.data_outputs] == [IMAGE]
        assert len(server.completion_requests) == 2
        await assert_all_closed(server, client)


@needs_responses
async def test_only_partial_images_and_no_final_image_is_zero_output() -> None:
    turns = [Turn(partial_images=PARTIALS), Turn(partial_images=PARTIALS, image=IMAGE)]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        stream = l0.run(stream=responses_image(client), timeout=FAST)
        assert await stream.read() == ""
        assert [e.code for e in stream.errors] == [l0.ErrorCode.ZERO_OUTPUT]
        assert [i.bytes for i in stream.state.data_outputs] == [IMAGE]
        await assert_all_closed(server, client)


async def test_audio_model_that_keeps_failing_falls_back() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TRANSCRIPT, audio=AUDIO, cut_after=1)]) \
            as primary, OpenAIServer(turns=[Turn(tokens=TRANSCRIPT, audio=AUDIO)]) as backup:
        first, second = raw_client(primary), raw_client(backup)
        stream = l0.run(stream=chat_audio(first), fallbacks=[chat_audio(second)],
                        retry=l0.Retry(fallback_after=1), timeout=FAST)
        events = [e async for e in stream]
        kinds = [type(e).__name__ for e in events]
        assert kinds == ["Token", "Audio", "ErrorEvent", "Discard"] * 2 + [
            "Token", "Audio", "Token", "Audio", "Token", "Audio", "Complete"]
        assert stream.state.fallback_index == 1 and stream.state.content == "Hello there!"
        assert [a.bytes for a in stream.state.data_outputs] == AUDIO
        assert len(primary.completion_requests) == 2 and len(backup.completion_requests) == 1
        await assert_all_closed(primary, first)
        await assert_all_closed(backup, second)


async def test_moderation_blocked_without_a_type_is_content_policy() -> None:
    from l0_openai.errors import error_from_fields

    for fields in ({"code": "moderation_blocked"},
                   {"code": "moderation_blocked", "message": "blocked", "type": None}):
        err = error_from_fields(fields, where="image", default=l0.ErrorCode.SERVER_ERROR)
        assert err.code is l0.ErrorCode.CONTENT_POLICY


@needs_responses
async def test_image_refused_by_moderation_is_not_retried() -> None:
    refused = Turn(partial_images=PARTIALS[:1], error_after=0,
                   error={"code": "moderation_blocked", "message": "Your request was rejected"})
    async with OpenAIServer(turns=[refused, Turn(image=IMAGE)]) as server:
        client = raw_client(server)
        stream = l0.run(stream=responses_image(client), timeout=FAST)
        with pytest.raises(l0.ProviderError) as caught:
            await stream.read()
        assert caught.value.code is l0.ErrorCode.CONTENT_POLICY
        assert len(server.completion_requests) == 1 and stream.state.data_outputs == []
        await assert_all_closed(server, client)
