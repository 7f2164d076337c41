"""The user's context: deep-copied once per session and made read-only.

Every observability event carries the same frozen context object, so no event
can change what another one sees, and changing the caller's dict after
``l0.run`` changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["EMPTY_CONTEXT", "freeze", "thaw"]

EMPTY_CONTEXT: Mapping[str, Any] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """A deep, read-only copy: mappings become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    if isinstance(value, (str, int, float, bool, bytes, type(None))):
        return value
    return copy.deepcopy(value)


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    if isinstance(value, frozenset):
        return [thaw(v) for v in value]
    return value
