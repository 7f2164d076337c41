"""The plugin contract of L0: every hook a plugin may implement.

L0 uses pluggy with the project name ``"l0"``; plugins are found through the
``"l0"`` entry-point group. Every hook name starts with ``l0_``. A plugin module
implements any subset of these hooks with the :data:`hookimpl` marker::

    import l0_core

    @l0_core.hookimpl
    def l0_register_guardrails(register):
        register(MyRule)

There are two families of hooks, and never a hook per token:

* **Registration hooks** run once per process, the first time L0 needs a
  registry. Each receives a ``register`` callback; every object passed to it
  must carry a ``name`` (a class attribute is fine). Built-ins register through
  the same hooks, first, so a plugin can never silently replace one: two things
  of one kind with one name is an error that names both distributions.
* **Boundary hooks** run a few times per session at most: when an error has to
  be classified, and when :func:`l0_core.wrap` is given a client object.

Hooks are synchronous; asynchronous work lives in the objects they hand over
(adapters, guardrails and observers have async-friendly methods where needed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from l0_core.errors import Classification

__all__ = [
    "PROJECT_NAME",
    "Register",
    "hookimpl",
    "hookspec",
    "l0_classify_error",
    "l0_register_adapters",
    "l0_register_demo_scenarios",
    "l0_register_guardrails",
    "l0_register_observers",
    "l0_register_retry_policies",
    "l0_register_stores",
    "l0_wrap_client",
]

PROJECT_NAME = "l0"
"""The pluggy project name and the entry-point group plugins are listed under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[Any], None]
"""The callback a registration hook receives: ``register(thing)``.

``thing`` must have a ``name`` attribute (a non-empty string without spaces).
"""


@hookspec
def l0_register_adapters(register: Register) -> None:
    """Register stream adapters.

    Called once per process, when the adapter registry is first needed (the
    first ``l0.run`` whose source is not a stream of ``str`` or L0 events, or an
    explicit adapter lookup).

    :param register: call ``register(adapter)`` once per adapter. An adapter
        is an object with ``name: str``, ``detect(item) -> bool`` (does this
        first stream item belong to me?) and ``open() -> AdapterSession`` (state
        for one attempt: ``feed(item)`` turns one provider chunk into text or L0
        events, ``finish()`` reports how the stream ended). See
        :class:`l0_core.runtime.adapters.Adapter`.
    :returns: nothing; return values are ignored.
    """


@hookspec
def l0_register_guardrails(register: Register) -> None:
    """Register guardrail rules.

    Called once per process, when the guardrail registry is first needed (a
    rule or preset named in config or by ``l0.Guardrails.by_name``).

    :param register: call ``register(rule_factory)`` once per rule. A rule
        factory is a class (or any callable) with a ``name`` attribute; L0
        calls it with the rule's options as keyword arguments once per session,
        so every stream gets fresh rule state. The object it returns follows
        :class:`l0_core.guardrails.rule.Rule`.
    :returns: nothing; return values are ignored.
    """


@hookspec
def l0_register_retry_policies(register: Register) -> None:
    """Register named retry policies.

    Called once per process, when a retry policy is named in config
    (``retry = "recommended"`` or ``[tool.l0.retry] policy = "..."``).

    :param register: call ``register(policy_factory)`` once per policy. A
        policy factory has a ``name`` attribute and, called with the policy's
        options as keyword arguments, returns an :class:`l0_core.Retry`.
    :returns: nothing; return values are ignored.
    """


@hookspec
def l0_register_observers(register: Register) -> None:
    """Register observers of the observability event stream.

    Called once per process, when an observer is named in config
    (``observers = ["my-observer"]``).

    :param register: call ``register(observer_factory)`` once per observer.
        An observer factory has a ``name`` attribute and, called with the
        observer's options as keyword arguments once per session, returns an
        object with ``on_event(event)`` (an :class:`l0_core.ObservabilityEvent`;
        it may return an awaitable, which L0 schedules without waiting for it).
    :returns: nothing; return values are ignored.
    """


@hookspec
def l0_register_stores(register: Register) -> None:
    """Register stores for recorded sessions, by URL scheme.

    Called once per process, when a store is first opened by URL
    (``l0.open_store(url)``, ``l0.run(record=url)``, ``l0.replay(...)``,
    ``l0 sessions``, or ``store = "..."`` in config).

    :param register: call ``register(store_factory)`` once per URL scheme. A
        store factory has a ``name`` attribute, the scheme it handles
        (``"sqlite"`` for ``sqlite://`` URLs), and, called with the whole URL,
        returns an object that follows :class:`l0_core.record.store.Store`
        (async ``append``, ``read``, ``info``, ``list``, ``delete``,
        ``expire``, ``close``). Open connections lazily: L0 keeps one store
        per URL per process.
    :returns: nothing; return values are ignored.
    """


@hookspec
def l0_register_demo_scenarios(register: Register) -> None:
    """Register scenarios for the ``l0 demo`` command.

    Called at most once per ``l0 demo`` run (``--help`` and ``--list`` too, as
    they list the scenarios), never by ``l0.run``: a provider plugin shows its
    integration recovering from faults, and the core need not import it. Each
    plugin's implementation is called on its own; one that raises is reported
    and the others' scenarios still run.

    :param register: call ``register(scenario)`` once per scenario, an
        :class:`l0_core.demo.Scenario` whose ``name`` is kebab-case and unique
        (``l0 demo NAME`` runs that scenario alone). Import what the scenarios
        need inside the hook, so loading the plugin stays cheap.
    :returns: nothing; return values are ignored.
    """


@hookspec(firstresult=True)
def l0_classify_error(error: BaseException) -> Classification | None:
    """Map a provider's exception to the L0 error taxonomy.

    Called when an attempt fails with an exception that is not already an
    :class:`l0_core.L0Error`, before L0's generic rules (asyncio timeouts,
    ``OSError``, ``status_code`` attributes). The first plugin that returns a
    value wins.

    :param error: the exception raised by the provider's stream or SDK.
    :returns: an :class:`l0_core.Classification` (error code, optional HTTP
        status, optional retry-after delay in seconds), or ``None`` when the
        error is not one this plugin knows.
    """


@hookspec(firstresult=True)
def l0_wrap_client(client: object, options: Mapping[str, Any]) -> object | None:
    """Wrap a provider client object for :func:`l0_core.wrap`.

    Called by ``l0.wrap(client, **options)``; the first plugin that recognises
    the client returns a wrapped client whose streaming calls return L0
    streams.

    :param client: the object given to ``l0.wrap`` (for example an
        ``openai.AsyncOpenAI``).
    :param options: the keyword options given to ``l0.wrap`` (retry, timeout,
        guardrails, fallbacks, callbacks, ...), to apply to every stream.
    :returns: the wrapped client, or ``None`` when this plugin does not know
        the client's type.
    """
