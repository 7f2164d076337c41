"""Regressions found in review: what record_text=False leaves out, checkpoints stored as a
count, damaged records, writer threads, row sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import l0_core as l0
from l0_core.record import open_store
from l0_core.testing import Script, ScriptedSource, instant_backoff

SECRET = "SECRETXYZ"


def _leaky_rule() -> l0.FunctionRule:
    def check(content: str) -> list[l0.Violation]:
        if content.endswith(f"{SECRET}c"):
            return [l0.Violation("no-second", f"found {content!r}", suggestion=content)]
        return []

    return l0.FunctionRule("no-second", check_complete=check)


def _raw_bytes(folder: Path) -> bytes:
    """Every byte of the store's files (the database, its WAL)."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


async def _all_records(url: str) -> str:
    store = open_store(url)
    out = []
    for info in await store.list():
        out.append(json.dumps(info.to_dict()))
        out.extend(json.dumps(list(r)) for r in await store.read(info.stream_id))
    return "\n".join(out)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_record_text_false_stores_the_secret_nowhere(tmp_path: Path, kind: str) -> None:
    url = "memory://secret" if kind == "memory" else f"sqlite:///{tmp_path}/events.db"
    sources = ScriptedSource([
        Script([f"first {SECRET}a"], fail_after=1,
               error=ConnectionResetError(f"provider says {SECRET}b")),
        Script([f"second {SECRET}c"]),
        Script([f"third {SECRET}d", " done"]),
    ])
    with instant_backoff():
        stream = l0.run(stream=sources, record=url, record_text=False,
                        guardrails=[_leaky_rule()], continue_from_last_good_token=True,
                        check_intervals=l0.CheckIntervals(checkpoint=1),
                        context={"prompt": f"user prompt {SECRET}e"})
        assert (await stream.read()).endswith(f"third {SECRET}d done")
    await stream.recording.wait()
    assert stream.recording.error is None
    stored = await _all_records(url)
    types = [json.loads(line)[2] for line in stored.splitlines()[1:]]
    # the secret was there to leak: in a violation, a provider error, the context
    assert "GUARDRAIL_RULE_RESULT" in types and "NETWORK_ERROR" in types and "error" in types
    assert "CHECKPOINT_SAVED" in types
    assert SECRET not in stored
    assert "SECRET" not in stored
    if kind == "sqlite":
        assert b"SECRET" not in _raw_bytes(tmp_path)


async def test_a_checkpoint_is_stored_as_its_count_and_replayed_with_its_text() -> None:
    url = "memory://checkpoints"
    text = [f"t{i} " for i in range(300)]
    stream = l0.run(stream=ScriptedSource([Script(text)]), record=url,
                    continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(checkpoint=1))
    assert await stream.read() == "".join(text)
    await stream.recording.wait()
    records = await open_store(url).read(stream.id)
    saved = [r.data for r in records if r.type == "CHECKPOINT_SAVED"]
    assert len(saved) == 300 and saved[-1] == {"tokenCount": 300}
    stored = sum(len(json.dumps(list(r))) for r in records)
    assert stored < 40 * len("".join(text))  # was quadratic: every checkpoint held the text

    seen: list[tuple[str, int]] = []

    def on_event(event: l0.ObservabilityEvent) -> None:
        if event.type is l0.ObservabilityEventType.CHECKPOINT_SAVED:
            seen.append((event.meta["checkpoint"], event.meta["tokenCount"]))

    replayed = l0.replay(stream.id, store=url, on_event=on_event)
    assert await replayed.read() == "".join(text)
    assert seen == [("".join(text[:n]), n) for n in range(1, 301)]
