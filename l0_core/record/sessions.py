"""What ``l0 sessions`` shows: recorded sessions as a table, a timeline, JSON lines.

``l0 sessions list [--store URL] [--limit N] [--json]``
    the most recent sessions: id, start, model, attempts, outcome, tokens, duration.
``l0 sessions show ID [--store URL] [--json]``
    one session as a readable timeline: attempts, errors, retries with their
    delays, fallbacks, checkpoints, violations, drift, discards, tool calls, the
    outcome and the final text.
``l0 sessions export ID [--store URL]``
    every record of the session as JSON lines (``seq``, ``ts``, ``type``, ``data``).
``l0 sessions delete ID`` / ``l0 sessions expire SECONDS``
    forget one session / every session not updated for that long.

The store is ``--store URL``, else the configured one (``store = "..."`` in
``l0.toml`` or ``[tool.l0]``, ``L0_STORE``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TextIO

from l0_core.errors import ConfigError, L0Error
from l0_core.record.replay import PAGE, cut_at
from l0_core.record.store import Record, Store, StreamInfo, recording_error, resolve_store

__all__ = ["Timeline", "add_parser", "run", "timeline"]

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2


def add_parser(sub: Any) -> None:
    """The ``sessions`` command and its subcommands, on the ``l0`` parser."""
    sessions = sub.add_parser(
        "sessions", help="list, show and export recorded sessions",
        description="Recorded sessions (l0.run(..., record=...)) in a store: --store URL, "
        "or the configured store (store = ... in l0.toml, L0_STORE).")
    commands = sessions.add_subparsers(dest="sessions_command", metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="the most recent sessions")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    show = commands.add_parser("show", help="one session as a timeline")
    show.add_argument("id", help="the session id")
    export = commands.add_parser("export", help="one session's records as JSON lines")
    export.add_argument("id", help="the session id")
    delete = commands.add_parser("delete", help="forget one session")
    delete.add_argument("id", help="the session id")
    expire = commands.add_parser("expire", help="forget sessions not updated for SECONDS")
    expire.add_argument("seconds", type=float, help="age in seconds")
    for command in (listing, show, export, delete, expire):
        command.add_argument("--store", metavar="URL", help="the store (default: configured)")
        if command in (listing, show):
            command.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run an ``l0 sessions`` subcommand; the exit status."""
    command = getattr(args, "sessions_command", None)
    if command is None:
        err.write("l0 sessions: say list, show ID, export ID, delete ID or expire SECONDS\n")
        return EXIT_CONFIG
    try:
        url = args.store
        if url is None:  # read now: the configuration of the directory the command runs in
            from l0_core.plugins.config import load

            url = load().store
        store = resolve_store(url)
        status: int = asyncio.run(_COMMANDS[command](store, args, out))
        return status
    except ConfigError as exc:
        err.write(f"l0: {' '.join(exc.message.split())}\n")
        return EXIT_CONFIG
    except L0Error as exc:
        err.write(f"l0: {' '.join(exc.message.split())}\n")
        return EXIT_ERROR


async def _close_after(store: Store, work: Any) -> Any:
    try:
        return await work
    finally:
        await store.close()


async def _list(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    infos = await _close_after(store, store.list(limit=args.limit))
    if args.json:
        json.dump([info.to_dict() for info in infos], out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not infos:
        out.write(f"No recorded sessions in {store.url}.\n")
        return EXIT_OK
    header = ("ID", "STARTED (UTC)", "MODEL", "ATTEMPTS", "OUTCOME", "TOKENS", "DURATION")
    rows = [_row_or_damaged(info) for info in infos]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                  + "\n")
    return EXIT_OK


def _row_or_damaged(info: StreamInfo) -> tuple[str, ...]:
    """A session's row; a session whose metadata is damaged is marked, not fatal."""
    try:
        return _row(info)
    except (TypeError, ValueError, OverflowError):
        return (str(info.stream_id), "-", "-", "-", "damaged metadata", "-", "-")


def _row(info: StreamInfo) -> tuple[str, ...]:
    m = info.meta
    outcome = str(m.get("outcome", "?"))
    if m.get("error") and outcome == "failed":
        outcome = f"failed ({m['error']})"
    duration = m.get("duration_ms")
    return (info.stream_id, _when(m.get("started", info.created)), str(m.get("model") or "-"),
            str(m.get("attempts", "-")), outcome, str(m.get("tokens", "-")),
            f"{duration / 1000.0:.2f}s" if isinstance(duration, (int, float)) else "-")


def _when(seconds: Any) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "-"
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):  # a damaged time
        return "?"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def _each(store: Store, stream_id: str) -> AsyncIterator[Record]:
    """A session's records, read a page at a time (a long session is not held whole)."""
    seq = 0
    while True:
        page = await store.read(stream_id, seq, PAGE)
        for record in page:
            yield record
        if len(page) < PAGE:
            return
        seq += len(page)


async def _show(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    builder = Timeline()
    try:
        async for record in _each(store, args.id):
            builder.add(record)
    finally:
        await store.close()
    lines, text = builder.lines, builder.text
    if args.json:
        header = builder.header
        json.dump({"id": args.id, "header": header,
                   "timeline": [{"at": at, "what": what} for at, what in lines],
                   "text": text}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    for at, what in lines:
        out.write(f"{at:>+9.3f}s  {what}\n")
    out.write("\nFinal text:\n" if text is not None else "\n(no text was recorded)\n")
    if text is not None:
        out.write(text + "\n")
    return EXIT_OK


async def _export(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    try:
        async for record in _each(store, args.id):
            out.write(json.dumps({"seq": record.seq, "ts": record.ts, "type": record.type,
                                  "data": record.data}, ensure_ascii=False) + "\n")
    finally:
        await store.close()
    return EXIT_OK


async def _delete(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    if not await _close_after(store, store.delete(args.id)):
        out.write(f"No session {args.id} in {store.url}.\n")
        return EXIT_ERROR
    out.write(f"Deleted {args.id}.\n")
    return EXIT_OK


async def _expire(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    count = await _close_after(store, store.expire(args.seconds))
    out.write(f"Deleted {count} session(s) not updated for {args.seconds:g}s.\n")
    return EXIT_OK


_COMMANDS: dict[str, Callable[[Store, argparse.Namespace, TextIO], Any]] = {
    "list": _list, "show": _show, "export": _export, "delete": _delete, "expire": _expire,
}


# -- the timeline ---------------------------------------------------------------------------------


def timeline(records: Iterable[Record]) -> tuple[list[tuple[float, str]], str | None]:
    """``([(seconds since the start, what happened)], final text)`` of a session's records.

    Tokens are summed up per attempt rather than listed; the final text is the
    text the consumer kept (``None`` when the session was recorded without text).
    A malformed record is a ``RecordingError``.
    """
    builder = Timeline()
    for record in records:
        builder.add(record)
    return builder.lines, builder.text


class Timeline:
    """:func:`timeline`, one record at a time."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self.header: Any = {}
        self._parts: list[str] = []
        self._t0: float | None = None
        self._text_ok = True
        self._tokens = 0

    @property
    def text(self) -> str | None:
        if self._t0 is None or not self._text_ok:
            return None
        return "".join(self._parts)

    def add(self, record: Record) -> None:
        try:
            self._add(record)
        except (TypeError, ValueError, OverflowError) as exc:
            raise recording_error(f"record {record.seq} ({record.type!r}) is malformed: {exc}",
                                  seq=record.seq) from None

    def _add(self, record: Record) -> None:
        if self._t0 is None:
            self._t0 = record.ts
            if record.type == "session":
                self.header = record.data
        at = (record.ts - self._t0) / 1000.0
        if record.type == "token":
            self._tokens += 1
            if isinstance(record.data, str):
                self._parts.append(record.data)
            else:
                self._text_ok = False
            return
        if record.type == "discard" and isinstance(record.data, Mapping):
            cut_at(self._parts, record.data.get("offset", 0))
        what = _describe(record)
        if what is not None:
            if self._tokens and _ends_attempt(record.type):
                self.lines.append((at, f"  {self._tokens} token(s) streamed"))
                self._tokens = 0
            self.lines.append((at, what))


def _ends_attempt(kind: str) -> bool:
    return kind in ("ERROR", "COMPLETE", "SESSION_END", "CHECKPOINT_SAVED", "GUARDRAIL_RULE_RESULT",
                    "DRIFT_CHECK_RESULT", "tool_call", "DISCARD", "TIMEOUT_TRIGGERED")


def _describe(record: Record) -> str | None:
    data = record.data if isinstance(record.data, Mapping) else {}
    describe = _DESCRIBE.get(record.type)
    return describe(data) if describe is not None else None


def _error(d: Mapping[str, Any]) -> str:
    then = "retry" if d.get("willRetry") else "fallback" if d.get("willFallback") else "halt"
    return f"error {d.get('errorCode')}: {d.get('error')} -> {then}"


def _end(d: Mapping[str, Any]) -> str:
    error = d.get("_error")
    if d.get("completed"):
        return "session completed"
    if isinstance(error, Mapping):
        return f"session failed: {error.get('code')}: {error.get('message')}"
    return "session closed by the consumer"


def _session(d: Mapping[str, Any]) -> str:
    options = [f"model {d.get('model')}"]
    if d.get("guardrails"):
        options.append(f"guardrails {', '.join(map(str, d['guardrails']))}")
    if d.get("drift"):
        options.append("drift")
    if d.get("continuation"):
        options.append("continuation")
    if d.get("context"):
        options.append(f"context {json.dumps(d['context'], default=str)}")
    return "session " + "; ".join(options)


def _violation(d: Mapping[str, Any]) -> str | None:
    v = d.get("violation")
    if d.get("passed", True) or not isinstance(v, Mapping):
        return None
    return f"violation {v.get('rule')} ({v.get('severity')}): {v.get('message')}"


_DESCRIBE: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "session": _session,
    "SESSION_START": lambda d: "attempt 1",
    "ATTEMPT_START": lambda d: f"attempt {d.get('attempt')} (retry)",
    "FALLBACK_START": lambda d: f"fallback to model #{d.get('toIndex')} ({d.get('reason')})",
    "ERROR": _error,
    "RETRY_ATTEMPT": lambda d: (f"retry {d.get('attempt')}/{d.get('maxAttempts')} in "
                                f"{float(d.get('delayMs') or 0) / 1000:.2f}s"),
    "RETRY_GIVE_UP": lambda d: f"retries given up ({d.get('reason')})",
    "TIMEOUT_TRIGGERED": lambda d: (f"timeout {d.get('timeoutType')}: nothing for "
                                    f"{float(d.get('elapsedMs') or 0) / 1000:.2f}s"),
    "CHECKPOINT_SAVED": lambda d: f"checkpoint at {d.get('tokenCount')} token(s)",
    "RESUME_START": lambda d: f"continuing from {d.get('tokenCount')} token(s)",
    "GUARDRAIL_RULE_RESULT": _violation,
    "DRIFT_CHECK_RESULT": lambda d: (f"drift: {', '.join(map(str, d.get('types') or []))}"
                                     if d.get("detected") else None),
    "DISCARD": lambda d: f"discard {d.get('length')} char(s) from {d.get('offset')}",
    "tool_call": lambda d: f"tool call {d.get('name')} ({d.get('id')})",
    "FINISH_REASON": lambda d: f"finish reason {d.get('finishReason')}",
    "ABORT_REQUESTED": lambda d: "abort requested",
    "COMPLETE": lambda d: (f"complete: {d.get('tokenCount')} token(s), "
                           f"{d.get('contentLength')} char(s)"),
    "SESSION_END": _end,
    "dropped": lambda d: f"recording incomplete: {d.get('count')} event(s) dropped",
}
