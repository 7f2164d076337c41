"""Configuration by name: files, environment variables and keyword arguments.

Precedence, highest first:

1. keyword arguments to ``l0.run`` / ``l0.wrap``;
2. ``L0_*`` environment variables;
3. ``l0.toml`` (top-level keys);
4. ``[tool.l0]`` in ``pyproject.toml``;
5. L0's defaults.

Files are looked up in the current directory and then its parents; the first
directory that has either file is used (``L0_CONFIG=path`` names a file
directly). Configuration is read once per process; :func:`reload` reads it
again.

Keys: ``guardrails`` and ``observers`` (lists of plugin names, or tables with a
``name`` and options), ``retry`` (a policy name, or a table with ``policy`` and
options), ``timeout`` (``initial_token``, ``inter_token``, ``total`` in
seconds), ``adapter`` (a plugin name) and ``store`` (the URL of the store that
``l0.run(record=True)`` records to, such as ``"sqlite:///.l0/events.db"``).
Environment variables:
``L0_GUARDRAILS``, ``L0_OBSERVERS`` (comma-separated names, or JSON),
``L0_RETRY`` (a policy name or JSON), ``L0_RETRY_ATTEMPTS``,
``L0_RETRY_NETWORK_ATTEMPTS``, ``L0_RETRY_MAX_RETRIES``,
``L0_TIMEOUT_INITIAL_TOKEN``, ``L0_TIMEOUT_INTER_TOKEN``, ``L0_TIMEOUT_TOTAL``,
``L0_ADAPTER``, ``L0_STORE``.
"""

from __future__ import annotations

import inspect
import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from l0_core.errors import ConfigError
from l0_core.guardrails.rule import RuleSpec
from l0_core.guardrails.rules.presets import is_preset
from l0_core.runtime.options import Timeout
from l0_core.runtime.retry import Retry

__all__ = ["EffectiveConfig", "FileConfig", "PluginRef", "load", "reload"]

ENV_CONFIG = "L0_CONFIG"
_RETRY_FIELDS = set(Retry.model_fields) | {"max_attempts"}


class PluginRef(BaseModel):
    """A plugin named in config, with its options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


def _refs(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("must be a list of plugin names or tables with a 'name'")
    out: list[Any] = []
    for item in value:
        if isinstance(item, str):
            out.append({"name": item})
        elif isinstance(item, dict):
            if "name" not in item:
                raise ValueError(f"the table {item!r} has no 'name'")
            options = {k: v for k, v in item.items() if k not in ("name", "options")}
            options.update(item.get("options") or {})
            out.append({"name": item["name"], "options": options})
        else:
            raise ValueError(f"{item!r} is neither a plugin name nor a table")
    return out


class RetryRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: str = "recommended"
    options: dict[str, Any] = Field(default_factory=dict)


class FileConfig(BaseModel):
    """One configuration layer, as written in a file or the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    guardrails: list[PluginRef] | None = None
    observers: list[PluginRef] | None = None
    retry: RetryRef | None = None
    timeout: Timeout | None = None
    adapter: str | None = None
    store: str | None = None

    @field_validator("guardrails", "observers", mode="before")
    @classmethod
    def _plugin_lists(cls, value: Any) -> Any:
        return _refs(value)

    @field_validator("retry", mode="before")
    @classmethod
    def _retry(cls, value: Any) -> Any:
        if value is None or isinstance(value, RetryRef):
            return value
        if isinstance(value, str):
            return {"policy": value}
        if isinstance(value, dict):
            unknown = set(value) - _RETRY_FIELDS - {"policy", "options"}
            if unknown:
                raise ValueError(
                    f"unknown retry option(s) {', '.join(sorted(unknown))}; known: "
                    f"policy, {', '.join(sorted(_RETRY_FIELDS))}"
                )
            options = {k: v for k, v in value.items() if k not in ("policy", "options")}
            options.update(value.get("options") or {})
            return {"policy": value.get("policy", "recommended"), "options": options}
        raise ValueError("must be a policy name or a table")


@dataclass
class EffectiveConfig:
    """The merged configuration and where each value came from."""

    retry: Retry
    timeout: Timeout
    guardrails: list[RuleSpec] | None
    observers: list[Any] | None
    adapter: str | None
    sources: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    store: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            key: {"value": self.raw.get(key), "source": self.sources.get(key, "default")}
            for key in ("guardrails", "observers", "retry", "timeout", "adapter", "store")
        }


def _format_validation(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("function-before",))
        nested = e.get("ctx", {}).get("error")
        if isinstance(nested, ConfigError):  # a checked model's table, such as [timeout]
            lines.append(_keys_message(nested, where, loc))
        else:
            lines.append(f"{where}: key '{loc}': {e['msg']}")
    return "; ".join(lines)


def _keys_message(error: ConfigError, where: str, table: str) -> str:
    """A checked model's error (Retry, Timeout) told as the keys of ``table`` in ``where``."""
    problems = error.metadata.get("problems")
    if not problems:
        return f"{where}: key '{table}': {error.message}"
    return "; ".join(f"{where}: key '{table}.{key}' {wrong}" for key, wrong in problems)


def _parse_layer(data: dict[str, Any], where: str) -> FileConfig:
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, where)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None


def find_files(start: Path | None = None) -> tuple[Path | None, Path | None]:
    """``(l0.toml, pyproject.toml)`` of the nearest directory that has either."""
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{ENV_CONFIG}={explicit}: no such file")
        if path.name == "pyproject.toml":
            return None, path
        return path, None
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        l0_toml = directory / "l0.toml"
        pyproject = directory / "pyproject.toml"
        has_l0 = l0_toml.is_file()
        has_py = pyproject.is_file()
        if has_l0 or has_py:
            return (l0_toml if has_l0 else None), (pyproject if has_py else None)
    return None, None


_ENV_SIMPLE = {
    "L0_ADAPTER": ("adapter", None),
    "L0_STORE": ("store", None),
    "L0_TIMEOUT_INITIAL_TOKEN": ("timeout", "initial_token"),
    "L0_TIMEOUT_INTER_TOKEN": ("timeout", "inter_token"),
    "L0_TIMEOUT_TOTAL": ("timeout", "total"),
    "L0_RETRY_ATTEMPTS": ("retry", "attempts"),
    "L0_RETRY_NETWORK_ATTEMPTS": ("retry", "network_attempts"),
    "L0_RETRY_MAX_RETRIES": ("retry", "max_retries"),
}


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return text


def _env_layer(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    where: dict[str, str] = {}
    for var, key in (("L0_GUARDRAILS", "guardrails"), ("L0_OBSERVERS", "observers")):
        if var in environ:
            value = _env_value(environ[var])
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            data[key] = value
            where[key] = var
    if "L0_RETRY" in environ:
        data["retry"] = _env_value(environ["L0_RETRY"])
        where["retry"] = "L0_RETRY"
    for var, (key, sub) in _ENV_SIMPLE.items():
        if var not in environ:
            continue
        value = environ[var].strip()
        if sub is None:
            data[key] = value
        else:
            table = data.setdefault(key, {})
            if isinstance(table, str):
                table = data[key] = {"policy": table}
            parsed: Any = None if value.lower() in ("none", "off", "") else value
            table[sub] = parsed
        where[key] = var
    return data, where


def _merge(layers: list[tuple[FileConfig, dict[str, Any], str, dict[str, str] | None]]) -> Any:
    """Later layers win, field by field; tables (retry, timeout) merge key by key."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer, raw, where, per_key in layers:
        for key in FileConfig.model_fields:
            if key not in raw:
                continue
            value = getattr(layer, key)
            label = per_key.get(key, where) if per_key else where
            if key == "timeout" and isinstance(raw.get(key), dict):
                base = merged.get("timeout", {})
                merged["timeout"] = {**base, **{k: raw[key][k] for k in raw[key]}}
            elif key == "retry" and value is not None:
                base = merged.get("retry", {"policy": "recommended", "options": {}})
                policy = value.policy if (
                    isinstance(raw[key], str) or "policy" in (raw[key] or {})
                ) else base["policy"]
                merged["retry"] = {"policy": policy, "options": {**base["options"],
                                                                 **value.options}}
            else:
                merged[key] = value
            sources[key] = label
    return merged, sources


def load(start: Path | None = None, environ: dict[str, str] | None = None) -> EffectiveConfig:
    """Read and merge every layer; unknown plugin names are a :class:`ConfigError`."""
    env = dict(os.environ if environ is None else environ)
    l0_toml, pyproject = find_files(start)
    layers: list[tuple[FileConfig, dict[str, Any], str, dict[str, str] | None]] = []
    if pyproject is not None:
        data = _read_toml(pyproject).get("tool", {}).get("l0")
        if data is not None:
            if not isinstance(data, dict):
                raise ConfigError(f"{pyproject}: [tool.l0] must be a table")
            layers.append((_parse_layer(data, f"{pyproject} [tool.l0]"), data,
                           f"{pyproject} [tool.l0]", None))
    if l0_toml is not None:
        data = _read_toml(l0_toml)
        layers.append((_parse_layer(data, str(l0_toml)), data, str(l0_toml), None))
    env_data, env_where = _env_layer(env)
    if env_data:
        label = ", ".join(sorted(set(env_where.values())))
        layers.append((_parse_layer(env_data, f"environment ({label})"), env_data,
                       "environment", env_where))
    merged, sources = _merge(layers)
    return _resolve(merged, sources)


def _resolve(merged: dict[str, Any], sources: dict[str, str]) -> EffectiveConfig:
    from l0_core.plugins.host import get_host

    host = get_host()
    raw: dict[str, Any] = {}
    retry = Retry()
    if "retry" in merged:
        policy = merged["retry"]["policy"]
        options = merged["retry"]["options"]
        where = sources.get("retry", "config")
        factory = _named(host, "retry_policies", policy, where)
        try:
            retry = factory(**options)
        except ConfigError as exc:  # Retry's own check: names the option and what it accepts
            raise ConfigError(
                f"retry policy {policy!r}: {_keys_message(exc, where, 'retry')}"
            ) from None
        except (ValidationError, TypeError) as exc:  # a plugin's policy factory
            detail = (_format_validation(exc, where)
                      if isinstance(exc, ValidationError) else str(exc))
            raise ConfigError(f"retry policy {policy!r}: {detail}") from None
        raw["retry"] = {"policy": policy, **options}
    timeout = Timeout()
    if "timeout" in merged:
        try:
            timeout = Timeout(**merged["timeout"])
        except ConfigError as exc:
            raise ConfigError(
                _keys_message(exc, sources.get("timeout", "config"), "timeout")
            ) from None
        raw["timeout"] = timeout.model_dump()
    guardrails = None
    if merged.get("guardrails") is not None:
        guardrails = []
        for ref in merged["guardrails"]:
            factory = _named(host, "guardrails", ref.name, sources.get("guardrails"))
            _check_plugin_options("guardrail", ref, factory, sources.get("guardrails"))
            guardrails.append(RuleSpec(ref.name, dict(ref.options)))
        raw["guardrails"] = [r.name if not r.options else {"name": r.name, **r.options}
                             for r in merged["guardrails"]]
    observers = None
    if merged.get("observers") is not None:
        observers = []
        for ref in merged["observers"]:
            factory = _named(host, "observers", ref.name, sources.get("observers"))
            _check_plugin_options("observer", ref, factory, sources.get("observers"))
            observers.append(_ObserverSpec(factory, dict(ref.options)))
        raw["observers"] = [r.name for r in merged["observers"]]
    adapter = merged.get("adapter")
    if adapter is not None:
        if adapter not in ("text", "events"):
            _named(host, "adapters", adapter, sources.get("adapter"))
        raw["adapter"] = adapter
    store = _store(host, merged, sources, raw)
    return EffectiveConfig(retry, timeout, guardrails, observers, adapter, sources, raw,
                           store=store)


def _store(host: Any, merged: dict[str, Any], sources: dict[str, str], raw: dict[str, Any]
           ) -> str | None:
    store: str | None = merged.get("store")
    if store is not None:
        _check_store_url(host, store, sources.get("store"))
        raw["store"] = store
    return store


def _check_store_url(host: Any, url: str, where: str | None) -> None:
    """A store URL's scheme must be an installed store (it is opened on first use)."""
    if "://" not in url:
        raise ConfigError(f"{where or 'config'}: key 'store': {url!r} is not a store URL "
                          f"(such as 'sqlite:///.l0/events.db' or 'memory://')")
    scheme = url.split("://", 1)[0].lower()
    stores = host.registry("stores")
    if scheme not in stores:
        from l0_core.record.store import unknown_scheme

        raise unknown_scheme(stores, scheme, f"{where or 'config'}: key 'store'")
    check = getattr(stores.get(scheme), "cache_key", None)  # a store may check its URL
    if callable(check):
        try:
            check(url)
        except ConfigError as exc:
            raise ConfigError(f"{where or 'config'}: key 'store': {exc.message}") from None


def _check_plugin_options(kind: str, ref: PluginRef, factory: Any, where: str | None) -> None:
    """Options a plugin's factory cannot take fail now, not when a session creates it.

    A guardrail rule is made once to check them (every session makes its own
    anyway, and built-in rules check their options in ``__init__``). An
    observer is not made (it may open a connection): only its signature is
    checked, and one that takes ``**options`` checks them when a session starts.
    """
    if ref.options and is_preset(ref.name):
        raise ConfigError(
            f"{where or 'config'}: the guardrail preset {ref.name!r} takes no options (got "
            f"{', '.join(sorted(ref.options))}); list its rules with their options instead"
        )
    if kind == "guardrail" and ref.options:
        try:
            factory(**ref.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{where or 'config'}: guardrail {ref.name!r} does not take these options: {exc}"
            ) from None
        return
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check against
        return
    try:
        signature.bind(**ref.options)
    except TypeError as exc:
        raise ConfigError(
            f"{where or 'config'}: {kind} {ref.name!r} does not take these options: {exc}"
        ) from None


def _named(host: Any, kind: str, name: str, where: str | None) -> Any:
    try:
        return host.registry(kind).get(name)
    except ConfigError as exc:
        raise ConfigError(f"{where or 'config'}: {exc.message}", exc.code) from None


class _ObserverSpec:
    """An observer named in config: a fresh instance per session."""

    def __init__(self, factory: Any, options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        self.name = getattr(factory, "name", "observer")

    def create(self) -> Any:
        return self.factory(**self.options)


_cached: EffectiveConfig | None = None
_lock = threading.Lock()


def defaults_for_run(explicit: EffectiveConfig | None = None) -> EffectiveConfig:
    """The process configuration (read once), or ``explicit`` when given."""
    global _cached
    if explicit is not None:
        return explicit
    cfg = _cached
    if cfg is None:
        with _lock:
            if _cached is None:
                _cached = load()
            cfg = _cached
    return cfg


def reload() -> EffectiveConfig:
    """Read the configuration again (after changing files or ``L0_*`` variables)."""
    global _cached
    with _lock:
        _cached = load()
        return _cached


def set_config(config: EffectiveConfig | None) -> None:
    """Use ``config`` for every later session (``None``: read files again on next use)."""
    global _cached
    with _lock:
        _cached = config
