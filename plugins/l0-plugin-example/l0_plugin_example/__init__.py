"""l0-plugin-example: a worked example of a third-party L0 plugin.

It registers, through the hooks in :mod:`l0_plugin_example.plugin`:

* the adapter ``example-dict`` (:class:`DictStreamAdapter`),
* the guardrail rule ``example-banned-words`` (:class:`BannedWordsRule`),
* the retry policy ``example-patient`` (:class:`PatientRetryPolicy`),
* the observer ``example-counter`` (:class:`EventCounter`),

and implements the boundary hooks for a toy SDK (:class:`ExampleClient`):
error classification and ``l0.wrap``.
"""

from __future__ import annotations

from l0_plugin_example.adapter import DictStreamAdapter, DictStreamSession
from l0_plugin_example.client import ExampleAPIError, ExampleClient, WrappedExampleClient
from l0_plugin_example.guardrail import BannedWordsRule
from l0_plugin_example.observer import EventCounter
from l0_plugin_example.policy import PatientRetryPolicy

__version__ = "0.1.0"

__all__ = [
    "BannedWordsRule",
    "DictStreamAdapter",
    "DictStreamSession",
    "EventCounter",
    "ExampleAPIError",
    "ExampleClient",
    "PatientRetryPolicy",
    "WrappedExampleClient",
    "__version__",
]
