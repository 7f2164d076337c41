"""Feeding rules the way the runtime does: deltas in order, then the complete text."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import l0_core as l0


def split(text: str, cuts: Iterable[int]) -> list[str]:
    """``text`` cut at the given positions (taken modulo its length + 1)."""
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if text[a:b]]


def chars(text: str) -> list[str]:
    return list(text)


def run_rule(rule: Any, pieces: Sequence[str]) -> list[l0.Violation]:
    """Every violation a rule reports for ``pieces`` streamed, then the complete text."""
    found: list[l0.Violation] = []
    offset = 0
    for piece in pieces:
        found.extend(rule.check_delta(piece, offset) or ())
        offset += len(piece)
    found.extend(rule.check_complete("".join(pieces)) or ())
    return found


def streamed(rule: Any, pieces: Sequence[str]) -> list[l0.Violation]:
    """Only what ``check_delta`` reports."""
    found: list[l0.Violation] = []
    offset = 0
    for piece in pieces:
        found.extend(rule.check_delta(piece, offset) or ())
        offset += len(piece)
    return found


def verdict(found: Iterable[l0.Violation]) -> set[tuple[str, str]]:
    return {(v.rule, v.severity) for v in found}


def detail(found: Iterable[l0.Violation]) -> set[tuple[str, str, int | None]]:
    return {(v.rule, v.severity, v.position) for v in found}
