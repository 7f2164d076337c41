"""The ``l0`` command: what plugins are installed, what configuration is in effect.

``l0 plugins [--json] [--all]``
    every plugin L0 found through the ``"l0"`` entry-point group (or that was
    registered in code): distribution, version, status, the hooks it
    implements and the names it registers. Plugins that failed to load or
    were blocked are listed with the reason. ``--all`` adds L0's built-ins.
``l0 config [--json]``
    the effective configuration and where each value came from (``l0.toml``,
    ``[tool.l0]`` in ``pyproject.toml``, an ``L0_*`` variable, or the default).
    A configuration error is reported on one line and exits with status 2.
``l0 sessions list|show ID|export ID|delete ID|expire SECONDS [--store URL] [--json]``
    recorded sessions (``l0.run(..., record=...)``): see ``l0_core/record/sessions.py``.
``l0 demo [SCENARIO ...] [--list]``
    faulty streams recovering live in the terminal; the scenarios come from
    plugins (l0-openai provides them). ``l0 demo --help`` lists them.

``python -m l0_core`` runs the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from l0_core.plugins.config import EffectiveConfig
    from l0_core.plugins.host import PluginHost, PluginRecord

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2

_KIND_LABELS = {
    "adapters": "adapters",
    "guardrails": "guardrails",
    "retry_policies": "retry policies",
    "observers": "observers",
    "stores": "stores",
}
_KIND_SINGULAR = {
    "adapters": "adapter",
    "guardrails": "guardrail",
    "retry_policies": "retry policy",
    "observers": "observer",
    "stores": "store",
}


def _parser() -> argparse.ArgumentParser:
    from l0_core import __version__
    parser = argparse.ArgumentParser(
        prog="l0",
        description="L0, a reliability layer for LLM token streams.",
    )
    parser.add_argument("--version", action="version", version=f"l0-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser(
        "plugins",
        help="list installed plugins and what they register",
        description="List the plugins L0 found, with the names each registers. Plugins "
        "that failed to load or were blocked are listed with the reason.",
    )
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    plugins.add_argument("--all", action="store_true", help="include L0's built-ins")

    config = sub.add_parser(
        "config",
        help="show the effective configuration and where each value came from",
        description="Show the effective configuration (l0.toml, [tool.l0] in "
        "pyproject.toml, L0_* environment variables, defaults) and the source of each value.",
    )
    config.add_argument("--json", action="store_true", help="print a JSON object")

    from l0_core.record.sessions import add_parser as add_sessions

    add_sessions(sub)

    sub.add_parser(
        "demo",
        help="watch faulty streams recover, live (l0 demo --help lists the scenarios)",
        add_help=False,
        prefix_chars="\0",  # every argument, --help too, goes to l0_core.demo's own parser
    ).add_argument("args", nargs=argparse.REMAINDER)
    return parser


# -- l0 plugins ------------------------------------------------------------------------------


def _plugins(as_json: bool, show_all: bool, out: TextIO) -> int:
    from l0_core.plugins.host import get_host

    host = get_host()
    host.build_all()
    records = [r for r in host.records if show_all or r.status != "builtin"]
    if as_json:
        json.dump([r.to_dict() for r in records], out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not records:
        out.write("No third-party plugins installed (l0 plugins --all shows the built-ins).\n")
    else:
        _plugin_table(records, out)
    conflicts = _conflicts(host)
    if conflicts:
        out.write("\nConflicts:\n" + "\n".join(conflicts) + "\n")
    return EXIT_OK


def _plugin_table(records: Sequence[PluginRecord], out: TextIO) -> None:
    """One row per plugin, then its hooks, names and failure reason, indented."""
    rows = [(r.name, r.distribution or "-", r.version or "-", r.status) for r in records]
    header = ("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out.write(_row(header, widths))
    for record, row in zip(records, rows, strict=True):
        out.write(_row(row, widths))
        details = _plugin_details(record)
        label_width = max((len(label) for label, _ in details), default=0)
        for label, text in details:
            out.write(f"    {label + ':':<{label_width + 1}} {text}\n")


def _plugin_details(record: PluginRecord) -> list[tuple[str, str]]:
    from l0_core.plugins.host import KINDS

    details: list[tuple[str, str]] = []
    if record.hooks:
        details.append(("hooks", ", ".join(record.hooks)))
    for kind in KINDS:
        names = record.registered.get(kind)
        if names:
            details.append((_KIND_LABELS[kind], ", ".join(names)))
    if record.reason:
        details.append(("reason", " ".join(record.reason.split())))
    return details


def _conflicts(host: PluginHost) -> list[str]:
    from l0_core.plugins.host import KINDS

    conflicts = []
    for kind in KINDS:
        registry = host.registry(kind)
        # Registry has no public view of conflicting names; read its record directly.
        for name, owners in sorted(registry._conflicts.items()):
            conflicts.append(
                f"  {_KIND_SINGULAR[kind]} {name!r} is registered by {' and '.join(owners)}; "
                f"it cannot be used until one is uninstalled or blocked (L0_DISABLE_PLUGINS)"
            )
    return conflicts


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip() + "\n"


# -- l0 config -------------------------------------------------------------------------------


def _config(as_json: bool, out: TextIO, err: TextIO) -> int:
    from l0_core.errors import ConfigError
    from l0_core.plugins.config import find_files, load

    try:
        l0_toml, pyproject = find_files()
        cfg = load()
    except ConfigError as exc:
        message = " ".join(exc.message.split())
        err.write(f"l0: configuration error: {message}\n")
        return EXIT_CONFIG
    described = cfg.describe()
    if as_json:
        json.dump(described, out, indent=2, default=str)
        out.write("\n")
        return EXIT_OK
    files = [str(p) for p in (l0_toml, pyproject) if p is not None]
    out.write(f"Configuration files: {', '.join(files) if files else 'none found'}\n\n")
    shown: list[tuple[str, str, str]] = []
    for key, item in described.items():
        value = item["value"]
        if item["source"] == "default":
            text = _default_text(key, cfg)
        else:
            text = json.dumps(value, default=str)
        shown.append((key, text, item["source"]))
    header = ("KEY", "VALUE", "SOURCE")
    widths = [max(len(row[i]) for row in [header, *shown]) for i in range(2)]
    for key, text, source in [header, *shown]:
        out.write(f"{key:<{widths[0]}}  {text:<{widths[1]}}  {source}\n".rstrip() + "\n")
    return EXIT_OK


def _default_text(key: str, cfg: EffectiveConfig) -> str:
    if key == "retry":
        r = cfg.retry
        return (
            f"attempts={r.attempts} network_attempts={r.network_attempts} "
            f"max_retries={r.max_retries} strategy={r.strategy}"
        )
    if key == "timeout":
        t = cfg.timeout
        return f"initial_token={t.initial_token} inter_token={t.inter_token} total={t.total}"
    if key == "adapter":
        return "(detected from the stream)"
    return "(none)"


# -- l0 demo ---------------------------------------------------------------------------------


def _demo(argv: list[str]) -> int:
    # imported on use, as every command imports its own: the demo loads the whole runtime
    from l0_core import demo

    return demo.main(argv)


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the ``l0`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "plugins":
            return _plugins(args.json, args.all, sys.stdout)
        if args.command == "config":
            return _config(args.json, sys.stdout, sys.stderr)
        if args.command == "demo":
            return _demo(list(args.args))
        if args.command == "sessions":
            from l0_core.record.sessions import run as sessions

            return sessions(args, sys.stdout, sys.stderr)
        parser.print_help(sys.stdout)
        return EXIT_OK
    except BrokenPipeError:  # ``l0 plugins | head``: the reader went away, not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
