"""``l0 demo``: faulty streams recovering live in the terminal.

Each scenario runs a scripted stream with a fault (a cut connection, a stall,
an empty answer, a failing model, a guardrail violation) through ``l0.run``
and prints, as it happens, the tokens, the errors, what L0 decided, and the
final text; a summary table follows. Colours only when stdout is a terminal.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import l0_core as l0
from l0_core.testing import Script, ScriptedSource

__all__ = ["main"]

SENTENCE = ["Streams", " fail", " in", " many", " ways", ";", " L0", " keeps", " the",
            " text", " whole", "."]


@dataclass
class Scenario:
    title: str
    fault: str
    build: Callable[[], dict[str, Any]]
    expected: str


def _scenarios() -> list[Scenario]:
    def cut() -> dict[str, Any]:
        return {"stream": ScriptedSource([Script(SENTENCE, delay=0.03, fail_after=5),
                                          Script(SENTENCE, delay=0.03)])}

    def stall() -> dict[str, Any]:
        return {"stream": ScriptedSource([Script(SENTENCE, delay=0.03, stall_after=4),
                                          Script(SENTENCE, delay=0.03)]),
                "timeout": l0.Timeout(initial_token=2.0, inter_token=0.4)}

    def empty() -> dict[str, Any]:
        return {"stream": ScriptedSource([Script([]), Script(SENTENCE, delay=0.03)])}

    def fallback() -> dict[str, Any]:
        broken = Script(SENTENCE, delay=0.03, fail_after=3, error=RuntimeError("model crashed"))
        return {"stream": ScriptedSource([broken]),
                "fallbacks": [ScriptedSource([Script(SENTENCE, delay=0.03)])],
                "retry": l0.Retry(attempts=1, base_delay=0.2)}

    def resume() -> dict[str, Any]:
        tail = SENTENCE[5:]
        again = [" ways", *tail]  # the model repeats a word: removed
        return {"stream": ScriptedSource([Script(SENTENCE, delay=0.03, fail_after=5),
                                          Script(again, delay=0.03)]),
                "continue_from_last_good_token": True}

    def guard() -> dict[str, Any]:
        leaked = [*SENTENCE[:4], " <|im_start|>", " system", *SENTENCE[4:]]
        return {"stream": ScriptedSource([Script(leaked, delay=0.03),
                                          Script(SENTENCE, delay=0.03)]),
                "guardrails": [l0.CustomPatternRule([r"<\|im_start\|>"],
                                                    message="instruction leak")]}

    whole = "".join(SENTENCE)
    return [
        Scenario("clean stream", "none", lambda: {"stream": ScriptedSource([
            Script(SENTENCE, delay=0.03)])}, whole),
        Scenario("connection cut", "reset after 5 tokens", cut, whole),
        Scenario("stalled stream", "silence after 4 tokens", stall, whole),
        Scenario("empty answer", "zero tokens", empty, whole),
        Scenario("model fails", "primary crashes twice", fallback, whole),
        Scenario("resume", "cut, then continue", resume, whole),
        Scenario("guardrail", "leaked chat markup", guard, whole),
    ]


class _Out:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.tty else text

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


async def _run_one(sc: Scenario, out: _Out) -> dict[str, Any]:
    out.write(out.paint(f"\n▶ {sc.title}", "1;36") + out.paint(f"  ({sc.fault})\n", "2"))
    options = sc.build()
    source = options["stream"]
    options.setdefault("retry", l0.Retry(base_delay=0.2, max_delay=1.0))
    started = time.monotonic()
    notes: list[str] = []

    def on_retry(attempt: int, reason: str) -> None:
        notes.append("retry")

    def on_fallback(index: int, reason: str) -> None:
        notes.append("fallback")

    def on_resume(checkpoint: str, tokens: int) -> None:
        notes.append("resume")

    stream = l0.run(**options, on_retry=on_retry, on_fallback=on_fallback, on_resume=on_resume)
    line = "  "
    error: str | None = None
    try:
        async for event in stream:
            if event.is_token:
                line += event.text or ""
                out.write(event.text or "" if out.tty else "")
            elif event.is_error and event.error is not None:
                action = ("retrying" if getattr(event, "will_retry", False) else
                          "falling back" if getattr(event, "will_fallback", False) else "giving up")
                message = f"  ✗ {event.error.code.value}: {event.error.message} → {action}"
                if out.tty:
                    out.write("\n" + out.paint(message, "33") + "\n  ")
                else:
                    out.write(f"{line.rstrip()}\n{message}\n")
                line = "  "
            elif event.is_discard:
                message = f"  ↺ discard {len(event.text or '')} chars from this attempt"
                out.write((out.paint(message, "35") + "\n  ") if out.tty else message + "\n")
    except l0.L0Error as exc:
        error = f"{exc.code.value}: {exc.message}"
    elapsed = time.monotonic() - started
    text = stream.state.content
    ok = error is None and text == sc.expected
    if not out.tty and line.strip():
        out.write(line + "\n")
    verdict = out.paint("✓ recovered" if ok and notes else "✓ ok" if ok else "✗ failed",
                        "32" if ok else "31")
    out.write(f"\n  {verdict}  final text: {text!r}\n")
    requests = source.calls + sum(f.calls for f in options.get("fallbacks", ()))
    return {"scenario": sc.title, "ok": ok, "attempts": requests,
            "recovery": " → ".join(dict.fromkeys(notes)) or "-", "seconds": elapsed,
            "error": error}


def _table(rows: list[dict[str, Any]], out: _Out) -> None:
    headers = ["scenario", "result", "requests", "recovery", "time"]
    body = [[r["scenario"], "ok" if r["ok"] else "FAILED", str(r["attempts"]), r["recovery"],
             f"{r['seconds']:.2f}s"] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
    out.write("\n" + out.paint("  ".join(h.ljust(w) for h, w in zip(headers, widths,
                                                                      strict=True)), "1") + "\n")
    for b in body:
        out.write("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) + "\n")


async def _main(out: _Out) -> int:
    out.write(out.paint("L0 demo", "1") + ": scripted faulty streams, recovered live.\n")
    rows = [await _run_one(sc, out) for sc in _scenarios()]
    _table(rows, out)
    return 0 if all(r["ok"] for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit status 0 when every stream ended with the right text."""
    return asyncio.run(_main(_Out(sys.stdout)))


if __name__ == "__main__":
    raise SystemExit(main())
