"""``l0 demo``: faulty streams recovering live in the terminal.

The scenarios come from plugins, through the ``l0_register_demo_scenarios``
hook: l0-openai registers its show (the real ``openai`` SDK, wrapped by
``l0.wrap``, against a local OpenAI-compatible server that injects faults). The
core never imports a provider package; when no plugin provides scenarios the
command says what to install and exits with status 1.

Each scenario prints, as it happens, the model's text, the errors, what L0
decided, and the final text; a summary table follows when several ran. The
model's text is indented by four columns and word-wrapped to the terminal's
width (at most 100 columns) on every line, also after a retry, a discard or a
fallback; L0's own notes are indented by two. Colours only on a terminal.

``l0 demo``
    every scenario.
``l0 demo cut-midstream [...]``
    only the scenarios named; an unknown name is a usage error (status 2).
``l0 demo --list``
    the scenarios, one a line.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import functools
import re
import shutil
import sys
import textwrap
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, TextIO

import l0_core as l0
from l0_core.events import ObservabilityEventType

if TYPE_CHECKING:
    from l0_core.plugins.host import PluginHost

__all__ = [
    "Catalog",
    "Result",
    "Scenario",
    "Screen",
    "Stage",
    "find_scenarios",
    "main",
    "run_scenario",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

INSTALL_HINT = "pip install l0-openai"
NOTHING_INSTALLED = (
    f"no demo scenarios are installed; they come with the OpenAI integration: {INSTALL_HINT}"
)
SCENARIO_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

MAX_WIDTH = 100  # wider lines are hard to follow, even in a wide terminal
MIN_WIDTH = 40  # below this, the indents leave too little room for text
TEXT_INDENT = "    "  # the model's text
NOTE_INDENT = "  "  # what L0 did, and the verdict


# -- what a plugin registers ---------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One demo case, registered by a plugin through ``l0_register_demo_scenarios``."""

    name: str
    """Kebab-case and unique (``"cut-midstream"``): ``l0 demo NAME`` runs it alone."""
    title: str
    """A few words for its heading (``"connection cut"``)."""
    fault: str
    """What goes wrong (``"socket closed after 5 tokens"``)."""
    play: Callable[[Stage], Awaitable[int]]
    """Runs the case: makes L0 streams with ``on_event=stage.on_event``, hands each to
    ``await stage.show(stream)``, and returns how many requests the provider received."""
    expected: str
    """The text the session must end with for the scenario to pass."""
    setting: str = ""
    """What the scenario runs against, said once in the demo's first line."""


# -- the terminal --------------------------------------------------------------------------

_RUNS = re.compile(r"\n|[^\S\n]+|\S+")  # a newline, a run of other blanks, or a word


def _cells(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK, emoji) characters take two."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF"
        else 1
        for char in text
    )


def _split_at(text: str, room: int) -> tuple[str, str]:
    """``text`` cut after at most ``room`` columns (at least one character, to progress)."""
    used = 0
    for index, char in enumerate(text):
        used += _cells(char)
        if used > room:
            cut = max(index, 1)
            return text[:cut], text[cut:]
    return text, ""


class Screen:
    """Where the demo writes: the model's text streamed word-wrapped, notes on lines of their own.

    The model's text is written a word at a time, as soon as the word is whole
    (a blank follows it, or a note, or the end of the stream), so a word that
    comes in several tokens is never cut at the end of a line. Every line of
    the text starts at :data:`TEXT_INDENT`, whether it follows a wrap, a
    newline of the model's or a note: a retry's text does not restart at column
    0. A line is broken before a word that would not fit; only a word longer
    than a whole line is cut. Blanks at a wrap are dropped, so no line ends
    with spaces; blanks after a newline of the model's are kept (indentation).
    """

    def __init__(self, stream: TextIO, *, width: int | None = None,
                 colour: bool | None = None) -> None:
        self.stream = stream
        self.colour = stream.isatty() if colour is None else colour
        if width is None:  # the terminal's width, or $COLUMNS, or 80 when not a terminal
            width = min(shutil.get_terminal_size((80, 24)).columns, MAX_WIDTH)
        self.width = max(width, MIN_WIDTH)
        self._column = 0  # columns used on the open text line; 0 when none is open
        self._word_so_far = ""  # the word being streamed, written once it is whole
        self._gap = ""  # blanks before that word, written only if it stays on the line
        self._after_newline = False  # the gap follows a newline of the model's: indentation

    def paint(self, text: str, code: str) -> str:
        """``text`` in the ANSI colour ``code``, on a terminal only."""
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def line(self, text: str = "", code: str = "") -> None:
        """One line as it is, after the model's text so far."""
        self.end_text()
        self.stream.write(self.paint(text, code) + "\n")
        self.stream.flush()

    def note(self, text: str, code: str = "", *, indent: str = NOTE_INDENT,
             hang: str = TEXT_INDENT) -> None:
        """A note of the demo's own, word-wrapped, its next lines indented by ``hang``."""
        self.end_text()
        lines = textwrap.wrap(text, self.width, initial_indent=indent, subsequent_indent=hang,
                              break_on_hyphens=False) or [""]
        self.stream.write("".join(self.paint(line, code) + "\n" for line in lines))
        self.stream.flush()

    def text(self, piece: str) -> None:
        """A piece of the model's text (a token), shown as far as its words are whole."""
        for run in _RUNS.findall(piece):
            if not run.isspace():
                self._word_so_far += run
                continue
            self._write_word()
            if run == "\n":
                self._model_newline()
            else:
                self._gap += " " * len(run.replace("\r", "").expandtabs(4))
        self.stream.flush()

    def end_text(self) -> None:
        """Write the last word and close the text line: what comes next starts a line."""
        self._write_word()
        if self._column:
            self._break_line()
        self._gap, self._after_newline = "", False

    def _write_word(self) -> None:
        if self._word_so_far:
            self._word(self._word_so_far)
            self._word_so_far = ""

    def _word(self, word: str) -> None:
        gap = self._gap if self._column or self._after_newline else ""
        self._gap, self._after_newline = "", False
        if self._column and self._column + _cells(gap + word) > self.width:
            self._break_line()  # wrap before the word; its gap is not written
            gap = ""
        if not self._column:
            self.stream.write(TEXT_INDENT)
            self._column = len(TEXT_INDENT)
            gap = gap[: (self.width - self._column) // 2]  # the model's own indentation
        text = gap + word
        while self._column + _cells(text) > self.width:  # longer than a whole line
            head, text = _split_at(text, self.width - self._column)
            self.stream.write(head + "\n" + TEXT_INDENT)
            self._column = len(TEXT_INDENT)
        self.stream.write(text)
        self._column += _cells(text)

    def _model_newline(self) -> None:
        if self._column:
            self._break_line()
        else:
            self.stream.write("\n")  # an empty line of the model's
        self._gap, self._after_newline = "", True

    def _break_line(self) -> None:
        self.stream.write("\n")
        self._column = 0


# -- one scenario --------------------------------------------------------------------------


class Stage:
    """What a scenario's ``play`` is handed: a listener for its streams, and where to show them."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.text = ""
        self.error: str | None = None
        self.recoveries: list[str] = []

    def on_event(self, event: l0.ObservabilityEvent) -> None:
        """Pass as ``on_event=`` to ``l0.run`` or ``l0.wrap``: notes what L0 decides."""
        decision = _decision(event)
        if decision is not None:
            kind, text = decision
            self.recoveries.append(kind)
            self.screen.note(text, "36")

    async def show(self, stream: l0.Stream) -> None:
        """Consume ``stream``, showing its text and events as they come."""
        try:
            async for event in stream:
                if event.is_token:
                    self.screen.text(event.text or "")
                else:
                    self._show_event(event)
        except l0.L0Error as exc:
            self.error = f"{exc.code.value}: {exc.message}"
        finally:
            self.screen.end_text()
        self.text = stream.state.content

    def _show_event(self, event: l0.Event) -> None:
        if isinstance(event, l0.ErrorEvent) and event.error is not None:
            action = ("retrying" if event.will_retry else
                      "falling back" if event.will_fallback else "giving up")
            self.screen.note(f"✗ {event.error.code.value}: {event.error.message} → {action}",
                             "33")
        elif isinstance(event, l0.Discard):
            self.screen.note(f"↺ discard {event.length} chars of attempt {event.attempt}", "35")
        elif isinstance(event, l0.ToolCall):
            self.screen.note(f"⚙ tool call {event.name}({event.arguments})")


def _decision(event: l0.ObservabilityEvent) -> tuple[str, str] | None:
    """``(kind, note)`` for the events that say how L0 recovers; ``None`` for the others."""
    kind = event.type
    if kind is ObservabilityEventType.RETRY_ATTEMPT:
        return "retry", f"↻ retry {event['attempt']} in {event['delayMs'] / 1000.0:.2f}s"
    if kind is ObservabilityEventType.FALLBACK_START:
        return "fallback", f"⇢ fallback #{event['toIndex']}: {event['reason']}"
    if kind is ObservabilityEventType.RESUME_START:
        return "resume", f"⤷ resume after {len(event['checkpoint'])} good chars"
    return None


@dataclass(frozen=True)
class Result:
    """How one scenario went."""

    scenario: str
    ok: bool
    requests: int
    recovery: str
    seconds: float
    error: str | None


async def run_scenario(scenario: Scenario, screen: Screen) -> Result:
    """Play ``scenario`` on ``screen``; it passes when its session ends with the expected text."""
    screen.line()
    screen.note(f"▶ {scenario.title}  ({scenario.fault})", "1;36", indent="", hang=NOTE_INDENT)
    stage = Stage(screen)
    started = time.monotonic()
    try:
        requests = await scenario.play(stage)
    except Exception as exc:  # a broken scenario fails alone; the show goes on
        stage.error, requests = f"{type(exc).__name__}: {exc}", 0
    seconds = time.monotonic() - started
    ok = stage.error is None and stage.text == scenario.expected
    recovery = " → ".join(dict.fromkeys(stage.recoveries)) or "-"
    verdict = ("✓ recovered" if stage.recoveries else "✓ ok") if ok else "✗ failed"
    screen.note(f"{verdict}  final text: {stage.text!r}", "32" if ok else "31")
    if stage.error is not None and not ok:
        screen.note(f"error: {stage.error}", "31")
    return Result(scenario.name, ok, requests, recovery, seconds, stage.error)


def _summary(results: Sequence[Result], screen: Screen) -> None:
    header = ("scenario", "result", "requests", "recovery", "time")
    rows = [(r.scenario, "ok" if r.ok else "FAILED", str(r.requests), r.recovery,
             f"{r.seconds:.2f}s") for r in results]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def cells(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    screen.line()
    screen.line(cells(header), "1")
    for row in rows:
        screen.line(cells(row))
    passed = sum(r.ok for r in results)
    screen.line()
    screen.line(f"{passed} passed, {len(results) - passed} failed")


async def _play(scenarios: Sequence[Scenario], screen: Screen) -> list[Result]:
    settings = "; ".join(dict.fromkeys(s.setting for s in scenarios if s.setting))
    screen.note(f"L0 demo: {settings or 'faulty streams, recovering'}.", "1", indent="", hang="")
    results = [await run_scenario(scenario, screen) for scenario in scenarios]
    if len(results) > 1:
        _summary(results, screen)
    return results


# -- finding the scenarios -----------------------------------------------------------------


@dataclass
class Catalog:
    """The scenarios plugins registered, by name in registration order, and what went wrong."""

    scenarios: dict[str, Scenario] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, scenario: object, owner: str) -> None:
        """The ``register`` callback of ``owner``; a wrong object makes its hook fail."""
        if not isinstance(scenario, Scenario):
            raise TypeError(f"registered {scenario!r}, which is not an l0_core.demo.Scenario")
        if not SCENARIO_NAME.match(scenario.name):
            raise ValueError(f"scenario name {scenario.name!r} is not kebab-case "
                             f"(lower-case letters and digits joined by '-')")
        first = self.owners.get(scenario.name)
        if first is not None:
            self.problems.append(f"scenario {scenario.name!r} is registered by both {first} "
                                 f"and {owner}; the one of {owner} is left out")
            return
        self.scenarios[scenario.name] = scenario
        self.owners[scenario.name] = owner


def find_scenarios(host: PluginHost | None = None) -> Catalog:
    """Ask each plugin that implements ``l0_register_demo_scenarios`` for its scenarios.

    Each implementation is called on its own, as the registries' hooks are: one
    that raises is reported in :attr:`Catalog.problems`, what it registered
    before stays, and the other plugins still count.
    """
    from l0_core.plugins.host import get_host

    host = host or get_host()
    labels = {id(record.plugin): record.label for record in host.records}
    catalog = Catalog()
    for impl in host.pm.hook.l0_register_demo_scenarios.get_hookimpls():
        owner = labels.get(id(impl.plugin), impl.plugin_name)
        register = functools.partial(catalog.add, owner=owner)
        try:
            # an implementation may leave out the argument, as pluggy allows
            impl.function(**dict.fromkeys(impl.argnames, register))
        except Exception as exc:
            catalog.problems.append(
                f"{owner}: l0_register_demo_scenarios raised {type(exc).__name__}: {exc}")
    return catalog


# -- the command ---------------------------------------------------------------------------


class _UsageError(Exception):
    """A command-line mistake: reported argparse-style, with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # return a status instead of exiting
        raise _UsageError(message)


def _parser(catalog: Catalog) -> _Parser:
    parser = _Parser(
        prog="l0 demo",
        description="Watch faulty streams recover, live: in each scenario a provider injects\n"
        "one fault, and L0 retries, falls back or resumes until the text is whole.",
        epilog=_listing(catalog, heading=True),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="run only these scenarios (default: all of them)")
    parser.add_argument("-l", "--list", action="store_true",
                        help="list the scenarios and exit")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    return parser


def _listing(catalog: Catalog, *, heading: bool) -> str:
    if not catalog.scenarios:
        return NOTHING_INSTALLED[0].upper() + NOTHING_INSTALLED[1:] + ".\n"
    owners = ", ".join(dict.fromkeys(catalog.owners.values()))
    width = max(len(name) for name in catalog.scenarios)
    lines = [f"scenarios (from {owners}):"] if heading else []
    lines += [f"  {s.name:<{width}}  {s.title}: {s.fault}" for s in catalog.scenarios.values()]
    return "\n".join(lines) + "\n"


def _select(catalog: Catalog, names: Sequence[str]) -> list[Scenario]:
    """The scenarios named, in the order given (every one when none is)."""
    if not names:
        return list(catalog.scenarios.values())
    unknown = [name for name in names if name not in catalog.scenarios]
    if unknown:
        quoted = ", ".join(repr(name) for name in unknown)
        guesses = [guess for name in unknown
                   for guess in difflib.get_close_matches(name, catalog.scenarios, n=1)]
        hint = f"; did you mean {', '.join(map(repr, guesses))}?" if guesses else ""
        known = ", ".join(catalog.scenarios) or f"none are installed ({INSTALL_HINT})"
        raise _UsageError(f"unknown scenario{'s' if len(unknown) > 1 else ''} {quoted}{hint} "
                          f"(known scenarios: {known})")
    return [catalog.scenarios[name] for name in dict.fromkeys(names)]


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, width: int | None = None) -> int:
    """Run ``l0 demo`` with ``argv`` (default ``sys.argv[1:]``); the exit status.

    0 when every scenario ended with the right text (or for ``--help`` and
    ``--list``), 1 when one did not or none is installed, 2 for a usage error.
    """
    out, err = out or sys.stdout, err or sys.stderr
    catalog = find_scenarios()
    for problem in catalog.problems:
        err.write(f"l0 demo: warning: {problem}\n")
    parser = _parser(catalog)
    try:
        args = parser.parse_args(argv)
        if args.help:
            out.write(parser.format_help())
            return EXIT_OK
        selected = _select(catalog, args.scenarios)
    except _UsageError as exc:
        err.write(parser.format_usage() + f"{parser.prog}: error: {exc}\n")
        return EXIT_USAGE
    if not catalog.scenarios:
        err.write(f"l0 demo: {NOTHING_INSTALLED}\n")
        return EXIT_FAILED
    if args.list:
        out.write(_listing(catalog, heading=False))
        return EXIT_OK
    results = asyncio.run(_play(selected, Screen(out, width=width)))
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
