"""``l0 demo``: faulty streams recovering live in the terminal.

With ``l0-openai`` installed, the demo starts an OpenAI-compatible server in
this process (``l0_core.testing.openai_server``) that injects faults — 429 with
Retry-After, 503, a cut connection, a stall, a stream without its end, an empty
answer, a model that is down, a malformed event — and sends real requests to it
with the real ``openai`` SDK wrapped by ``l0.wrap``. Without it, the same show
runs over scripted in-process streams. Each scenario prints, as it happens, the
tokens, the errors, what L0 decided, and the final text; a summary table
follows. Colours and live tokens only when stdout is a terminal.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import l0_core as l0
from l0_core.events import ObservabilityEventType as T
from l0_core.testing import Script, ScriptedSource

__all__ = ["SENTENCE", "Scenario", "main", "show"]

SENTENCE = ["Streams", " fail", " in", " many", " ways", ";", " L0", " keeps", " the",
            " text", " whole", "."]
WHOLE = "".join(SENTENCE)


class Out:
    """Terminal output: colours and live tokens on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.tty else text

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


@dataclass
class Scenario:
    """One demo case. ``play(show)`` runs it, passing each L0 stream it makes to
    ``show``, and returns the number of requests the provider received."""

    title: str
    fault: str
    play: Callable[[Callable[[l0.Stream], Awaitable[None]]], Awaitable[int]]
    expected: str = WHOLE


@dataclass
class Outcome:
    text: str = ""
    error: str | None = None
    notes: tuple[str, ...] = ()


def _watch(out: Out, notes: list[str]) -> Callable[[l0.ObservabilityEvent], None]:
    """Prints what L0 decides, from its observability events."""

    def on_event(event: l0.ObservabilityEvent) -> None:
        if event.type is T.RETRY_ATTEMPT:
            notes.append("retry")
            delay = event["delayMs"] / 1000.0
            out.write(out.paint(f"  ⏳ retry {event['attempt']} in {delay:.2f}s\n", "36"))
        elif event.type is T.FALLBACK_START:
            notes.append("fallback")
            out.write(out.paint(f"  ⇢ fallback #{event['toIndex']}: {event['reason']}\n", "36"))
        elif event.type is T.RESUME_START:
            notes.append("resume")
            out.write(out.paint(f"  ↻ resume after {len(event['checkpoint'])} good chars\n",
                                "36"))

    return on_event


async def _show(stream: l0.Stream, out: Out, outcome: Outcome) -> None:
    line = ""
    try:
        async for event in stream:
            if event.is_token:
                line += event.text or ""
                if out.tty:
                    out.write(event.text or "")
                continue
            if line:
                out.write("\n" if out.tty else f"  {line}\n")
                line = ""
            if event.is_error and event.error is not None:
                action = ("retrying" if getattr(event, "will_retry", False) else
                          "falling back" if getattr(event, "will_fallback", False) else
                          "giving up")
                out.write(out.paint(f"  ✗ {event.error.code.value}: {event.error.message} "
                                    f"→ {action}\n", "33"))
            elif event.is_discard:
                out.write(out.paint(f"  ↺ discard {len(event.text or '')} chars of attempt "
                                    f"{getattr(event, 'attempt', '?')}\n", "35"))
            elif event.is_tool_call:
                out.write(f"  🔧 tool call {getattr(event, 'name', '')}"
                          f"({getattr(event, 'arguments', {})})\n")
    except l0.L0Error as exc:
        outcome.error = f"{exc.code.value}: {exc.message}"
    finally:
        if line:
            out.write("\n" if out.tty else f"  {line}\n")
    outcome.text = stream.state.content


async def _run_one(sc: Scenario, out: Out) -> dict[str, Any]:
    out.write(out.paint(f"\n▶ {sc.title}", "1;36") + out.paint(f"  ({sc.fault})\n", "2"))
    outcome = Outcome()
    notes: list[str] = []
    watcher = _watch(out, notes)
    started = time.monotonic()

    async def show(stream: l0.Stream) -> None:
        stream._session.listeners.append(watcher)
        if out.tty:
            out.write("  ")
        await _show(stream, out, outcome)

    requests = await sc.play(show)
    elapsed = time.monotonic() - started
    ok = outcome.error is None and outcome.text == sc.expected
    verdict = out.paint("✓ recovered" if ok and notes else "✓ ok" if ok else "✗ failed",
                        "32" if ok else "31")
    out.write(f"  {verdict}  final text: {outcome.text!r}\n")
    return {"scenario": sc.title, "ok": ok, "requests": requests,
            "recovery": " → ".join(dict.fromkeys(notes)) or "-", "seconds": elapsed,
            "error": outcome.error}


def _table(rows: list[dict[str, Any]], out: Out) -> None:
    headers = ["scenario", "result", "requests", "recovery", "time"]
    body = [[r["scenario"], "ok" if r["ok"] else "FAILED", str(r["requests"]), r["recovery"],
             f"{r['seconds']:.2f}s"] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
    out.write("\n" + out.paint("  ".join(h.ljust(w) for h, w in zip(headers, widths,
                                                                      strict=True)), "1") + "\n")
    for b in body:
        out.write("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) + "\n")
    passed = sum(r["ok"] for r in rows)
    out.write(f"\n{passed} passed, {len(rows) - passed} failed\n")


def scripted_scenarios() -> list[Scenario]:
    """The in-process show, used when l0-openai is not installed."""

    def case(title: str, fault: str, scripts: list[Script], **options: Any) -> Scenario:
        async def play(show: Callable[[l0.Stream], Awaitable[None]]) -> int:
            source = ScriptedSource(scripts)
            fallbacks = [ScriptedSource([Script(SENTENCE, delay=0.03)])] if options.pop(
                "fallback", False) else []
            options.setdefault("retry", l0.Retry(attempts=1, base_delay=0.2, max_delay=1.0))
            await show(l0.run(stream=source, fallbacks=fallbacks, **options))
            return source.calls + sum(f.calls for f in fallbacks)

        return Scenario(title, fault, play)

    ok = Script(SENTENCE, delay=0.03)
    return [
        case("clean stream", "none", [ok]),
        case("connection cut", "reset after 5 tokens", [Script(SENTENCE, delay=0.03,
                                                                fail_after=5), ok]),
        case("stalled stream", "silence after 4 tokens",
             [Script(SENTENCE, delay=0.03, stall_after=4), ok],
             timeout=l0.Timeout(initial_token=2.0, inter_token=0.4)),
        case("empty answer", "zero tokens", [Script([]), ok]),
        case("model fails", "primary crashes twice",
             [Script(SENTENCE, delay=0.03, fail_after=3, error=RuntimeError("model crashed"))],
             fallback=True),
        case("resume", "cut, then continue", [Script(SENTENCE, delay=0.03, fail_after=5),
                                              Script([" ways", *SENTENCE[5:]], delay=0.03)],
             continue_from_last_good_token=True),
        case("guardrail", "leaked chat markup",
             [Script([*SENTENCE[:4], " <|im_start|>", *SENTENCE[4:]], delay=0.03), ok],
             guardrails=[l0.CustomPatternRule([r"<\|im_start\|>"], message="instruction leak")]),
    ]


def _scenarios() -> tuple[str, list[Scenario]]:
    try:
        from l0_openai.demo import openai_scenarios
    except ImportError:
        return ("scripted in-process streams (pip install l0-openai for the OpenAI demo over "
                "real HTTP)", scripted_scenarios())
    return ("the real openai SDK, wrapped by l0.wrap, against a local OpenAI-compatible "
            "server that injects faults", openai_scenarios())


async def _main(out: Out) -> int:
    what, scenarios = _scenarios()
    out.write(out.paint("L0 demo", "1") + f": {what}.\n")
    rows = [await _run_one(sc, out) for sc in scenarios]
    _table(rows, out)
    return 0 if all(r["ok"] for r in rows) else 1


def show(argv: list[str] | None = None, stream: TextIO | None = None) -> int:
    """Run the demo, writing to ``stream`` (stdout by default)."""
    return asyncio.run(_main(Out(stream or sys.stdout)))


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit status 0 when every stream ended with the right text."""
    return show(argv)


if __name__ == "__main__":
    raise SystemExit(main())
