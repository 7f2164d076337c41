"""Plugin discovery and the per-kind registries.

L0 iterates the ``"l0"`` entry-point group itself, loading each entry point in
its own ``try``: a plugin that fails to import, implements a hook that does not
exist, or raises while registering is recorded with the reason and skipped,
and the core goes on. ``l0 plugins`` shows the record.

Environment switches (read when the plugin host is first built):

``L0_DISABLE_PLUGIN_AUTOLOAD=1``
    load no entry points at all; only built-ins and plugins registered in code.
``L0_PLUGINS=a,b``
    allow-list: load only the entry points whose name or distribution is listed.
``L0_DISABLE_PLUGINS=a,b``
    block-list: never load these entry points (by name or distribution).

Registries are built lazily, one kind at a time, the first time a name of that
kind is looked up; built-ins register first. Two things of one kind with one
name make that name unusable: looking it up raises a :class:`ConfigError`
that names both distributions.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from l0_core.errors import ConfigError, ErrorCode
from l0_core.plugins import hookspecs

__all__ = [
    "FIRST_PARTY",
    "KINDS",
    "PluginHost",
    "PluginRecord",
    "Registry",
    "get_host",
    "register_plugin",
    "reset_host",
    "wrap",
]

log = logging.getLogger("l0")

Kind = Literal["adapters", "guardrails", "retry_policies", "observers", "stores"]
KINDS: tuple[Kind, ...] = ("adapters", "guardrails", "retry_policies", "observers", "stores")
_HOOK_OF_KIND: Mapping[Kind, str] = {kind: f"l0_register_{kind}" for kind in KINDS}

FIRST_PARTY: Mapping[tuple[Kind, str], str] = {
    ("adapters", "openai"): "l0-openai",
    ("adapters", "openai-responses"): "l0-openai",
    ("adapters", "litellm"): "l0-litellm",
    ("observers", "otel"): "l0-otel",
    ("observers", "sentry"): "l0-sentry",
    ("stores", "redis"): "l0-store-redis",
    ("stores", "postgresql"): "l0-store-postgres",
}
"""Names first-party distributions register, to tell users which package to install."""

ENV_AUTOLOAD_OFF = "L0_DISABLE_PLUGIN_AUTOLOAD"
ENV_ALLOW = "L0_PLUGINS"
ENV_BLOCK = "L0_DISABLE_PLUGINS"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass
class PluginRecord:
    """What L0 knows about one plugin: where it came from and what it did."""

    name: str
    distribution: str | None
    version: str | None
    status: Literal["loaded", "failed", "blocked", "builtin", "code"]
    reason: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    plugin: object = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """The distribution name (or the plugin name for in-code plugins)."""
        return self.distribution or self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "hooks": list(self.hooks),
            "registered": {k: list(v) for k, v in self.registered.items() if v},
        }


@dataclass
class _Entry:
    thing: Any
    owner: PluginRecord


class Registry:
    """The things of one kind, by name, built-ins first."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self._entries: dict[str, _Entry] = {}
        self._conflicts: dict[str, list[str]] = {}

    def add(self, thing: Any, owner: PluginRecord) -> None:
        name = getattr(thing, "name", None)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(
                f"{owner.label} registered a {_singular(self.kind)} without a valid "
                f"'name' attribute (got {name!r}); names are non-empty strings without spaces"
            )
        _validate(self.kind, thing, owner)
        if name in self._entries:
            first = self._entries[name].owner.label
            self._conflicts.setdefault(name, [first]).append(owner.label)
            log.warning(
                "l0: %s name %r is registered by both %s and %s; it cannot be used until one "
                "is removed", self.kind, name, first, owner.label,
            )
            return
        self._entries[name] = _Entry(thing, owner)
        owner.registered.setdefault(self.kind, []).append(name)

    def names(self) -> list[str]:
        return [n for n in self._entries if n not in self._conflicts]

    def owner(self, name: str) -> PluginRecord | None:
        entry = self._entries.get(name)
        return entry.owner if entry else None

    def items(self) -> list[tuple[str, Any]]:
        return [(n, e.thing) for n, e in self._entries.items() if n not in self._conflicts]

    def get(self, name: str) -> Any:
        """The thing registered as ``name``; a clear :class:`ConfigError` otherwise."""
        if name in self._conflicts:
            owners = " and ".join(self._conflicts[name])
            raise ConfigError(
                f"{_singular(self.kind)} {name!r} is registered by both {owners}; "
                f"uninstall one, or block one with {ENV_BLOCK}",
                ErrorCode.UNKNOWN_PLUGIN,
            )
        entry = self._entries.get(name)
        if entry is None:
            kind_label = _singular(self.kind)
            hint = ""
            package = FIRST_PARTY.get((self.kind, name))
            if package:
                hint = f" It is provided by the {package} package: pip install {package}."
            installed = ", ".join(sorted(self.names())) or "none"
            raise ConfigError(
                f"unknown {kind_label} {name!r}.{hint} Installed {self.kind.replace('_', ' ')}: "
                f"{installed}",
                ErrorCode.UNKNOWN_PLUGIN,
            )
        return entry.thing

    def __contains__(self, name: object) -> bool:
        return name in self._entries and name not in self._conflicts


def _singular(kind: Kind) -> str:
    """``"retry_policies"`` -> ``"retry policy"``, ``"guardrails"`` -> ``"guardrail"``."""
    label = kind.replace("_", " ")
    return label[:-3] + "y" if label.endswith("ies") else label[:-1]


def _validate(kind: Kind, thing: Any, owner: PluginRecord) -> None:
    if kind == "adapters":
        missing = [m for m in ("detect", "open") if not callable(getattr(thing, m, None))]
        if missing:
            raise ConfigError(
                f"{owner.label} registered adapter {thing.name!r} without {', '.join(missing)}()"
            )
    elif not callable(thing):
        raise ConfigError(
            f"{owner.label} registered {_singular(kind)} {thing.name!r}, which is not "
            f"callable; register a class or factory function"
        )


def _env_list(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginHost:
    """Owns the pluggy manager, the plugin records and the registries."""

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        allow: Iterable[str] | None = None,
        block: Iterable[str] | None = None,
        entry_points: Callable[[], Iterable[importlib.metadata.EntryPoint]] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self._registries: dict[Kind, Registry] = {}
        self._lock = threading.RLock()
        env = os.environ
        if autoload is None:
            autoload = env.get(ENV_AUTOLOAD_OFF, "").strip().lower() not in ("1", "true", "yes")
        self.autoload = autoload
        self.allow = set(allow) if allow is not None else _env_list(env.get(ENV_ALLOW))
        self.block = set(block) if block is not None else (_env_list(env.get(ENV_BLOCK)) or set())
        self._entry_points = entry_points or (
            lambda: importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME)
        )
        from l0_core.plugins import builtins
        self._add(builtins, PluginRecord("builtins", "l0-core", _version("l0-core"), "builtin"))
        if self.autoload:
            self._load_entry_points()

    # -- loading ---------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        seen: set[tuple[str, str]] = set()
        for ep in self._entry_points():
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            key = (ep.name, ep.value)
            if key in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(key)
            record = PluginRecord(ep.name, dist, version, "loaded")
            names = {ep.name, dist or ""}
            if names & self.block:
                record.status, record.reason = "blocked", f"blocked by {ENV_BLOCK}"
                self.records.append(record)
                continue
            if self.allow is not None and not names & self.allow:
                record.status, record.reason = "blocked", f"not listed in {ENV_ALLOW}"
                self.records.append(record)
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.status = "failed"
                record.reason = f"import failed: {type(exc).__name__}: {exc}"
                log.warning("l0: plugin %s (%s) failed to load: %s", ep.name, dist, record.reason)
                self.records.append(record)
                continue
            self._add(plugin, record)

    def _add(self, plugin: object, record: PluginRecord) -> None:
        try:
            self.pm.register(plugin, name=f"{record.label}:{record.name}")
        except Exception as exc:
            record.status = "failed"
            record.reason = f"invalid plugin: {type(exc).__name__}: {exc}"
            log.warning("l0: plugin %s rejected: %s", record.label, record.reason)
            self.records.append(record)
            return
        callers = self.pm.get_hookcallers(plugin) or []
        unknown = [c.name for c in callers if c.spec is None]
        if unknown:
            self.pm.unregister(plugin)
            record.status = "failed"
            record.reason = (
                f"implements hooks that do not exist: {', '.join(sorted(unknown))} "
                f"(known hooks: {', '.join(_hook_names())})"
            )
            log.warning("l0: plugin %s rejected: %s", record.label, record.reason)
            self.records.append(record)
            return
        record.hooks = sorted(c.name for c in callers)
        record.plugin = plugin
        self.records.append(record)
        with self._lock:
            self._registries.clear()  # rebuilt lazily with the new plugin included

    def register(self, plugin: object, name: str | None = None) -> PluginRecord:
        """Register a plugin object (a module or instance with hookimpls) from code."""
        label = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        record = PluginRecord(label, None, None, "code")
        self._add(plugin, record)
        return record

    # -- registries ------------------------------------------------------------------------

    def registry(self, kind: Kind) -> Registry:
        reg = self._registries.get(kind)
        if reg is not None:
            return reg
        with self._lock:
            reg = self._registries.get(kind)
            if reg is None:
                reg = self._build(kind)
                self._registries[kind] = reg
            return reg

    def _build(self, kind: Kind) -> Registry:
        registry = Registry(kind)
        hook_name = _HOOK_OF_KIND[kind]
        # Ask pluggy for the implementations rather than getattr(plugin, hook_name): an
        # implementation may carry another name (@hookimpl(specname=...)).
        impls_of_plugin: dict[int, list[pluggy.HookImpl]] = {}
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            impls_of_plugin.setdefault(id(impl.plugin), []).append(impl)
        for record in self.records:  # in load order, so built-ins register first
            impls = impls_of_plugin.get(id(record.plugin), [])
            if impls:
                record.registered[kind] = []
            for impl in impls:
                _run_registration(impl, record, registry, hook_name)
        return registry

    def build_all(self) -> None:
        for kind in KINDS:
            self.registry(kind)

    # -- boundary hooks --------------------------------------------------------------------

    @property
    def classify_hook(self) -> Any:
        return self.pm.hook.l0_classify_error

    def wrap_client(self, client: object, options: Mapping[str, Any]) -> object | None:
        result: object | None = self.pm.hook.l0_wrap_client(client=client, options=options)
        return result


def _run_registration(
    impl: pluggy.HookImpl, record: PluginRecord, registry: Registry, hook_name: str
) -> None:
    """Call one registration hookimpl; whatever it raises is recorded against its plugin."""

    def register(thing: Any) -> None:
        registry.add(thing, record)

    hook_arguments = {"register": register}
    try:
        # impl.argnames: an implementation may accept fewer arguments than the hook offers
        impl.function(*(hook_arguments[name] for name in impl.argnames))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = f"{hook_name} raised {type(exc).__name__}: {exc}"
        if record.reason is None:
            record.reason = reason
        elif reason not in record.reason:  # a rebuilt registry must not repeat a reason
            record.reason = f"{record.reason}; {reason}"
        log.warning("l0: plugin %s: %s", record.label, reason)


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("l0_"))


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide plugin host, built on first use."""
    global _host
    host = _host
    if host is None:
        with _host_lock:
            if _host is None:
                _host = PluginHost()
            host = _host
    return host


def reset_host(host: PluginHost | None = None) -> None:
    """Forget the process-wide host (tests); the next :func:`get_host` rescans."""
    global _host
    with _host_lock:
        _host = host


def register_plugin(plugin: object, name: str | None = None) -> PluginRecord:
    """Register a plugin (module or object with hookimpls) without an entry point."""
    return get_host().register(plugin, name)


def wrap(client: Any, **options: Any) -> Any:
    """Wrap a provider client so its streaming calls return L0 streams (``l0.wrap``).

    The client is recognised by provider plugins (``pip install l0-openai`` for
    ``openai.AsyncOpenAI``). An unknown client is a :class:`ConfigError`.
    """
    wrapped = get_host().wrap_client(client, options)
    if wrapped is None:
        raise ConfigError(
            f"no installed plugin can wrap a {type(client).__module__}."
            f"{type(client).__qualname__}; for OpenAI clients install l0-openai "
            f"(pip install l0-openai)",
            ErrorCode.UNKNOWN_PLUGIN,
        )
    return wrapped
