"""``l0.consensus``: several models (or several runs) answer; L0 finds what they agree on.

Every task runs at once as a child ``l0.run`` session. Then:

- **Text**: outputs are grouped by similarity (an output joins the first group whose
  first member is at least ``threshold`` alike, :mod:`l0_core.multi.similarity`, linear
  in the length of the texts); the strategy picks a group and the group's most central
  member is the consensus.
- **Structured** (``schema=`` a pydantic model): each output is validated against the
  model and **every field is decided by its own vote**; the consensus is a model
  instance built from the winning value of each field, with per-field agreement in
  ``result.fields``. An output that does not validate does not vote.

Strategies: ``majority`` (each output one vote; the largest group must hold at least
``minimum_agreement`` of the outputs), ``weighted`` (the same with ``weights``),
``unanimous`` (every task succeeded and agrees), ``best`` (the output that agrees most
with the others, times its weight). When agreement is not reached,
``resolve_conflicts`` decides: ``vote`` (the largest group anyway), ``merge`` (text: each
group's answer, the largest first; structured: the per-field vote), ``best`` (the
heaviest output), ``fail`` (raise :class:`ConsensusError`, code ``NO_CONSENSUS``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from l0_core.errors import ConfigError, ContentError, ErrorCode, L0Error
from l0_core.events import ObservabilityEventType as T
from l0_core.multi._child import Bus, RunOptions, TaskResult, task_list
from l0_core.multi.parallel import _Fanout
from l0_core.multi.similarity import SimilarityIndex
from l0_core.runtime.options import describe_value
from l0_core.runtime.state import State

__all__ = [
    "PRESETS",
    "Agreement",
    "ConsensusError",
    "ConsensusOutput",
    "ConsensusResult",
    "Disagreement",
    "FieldAgreement",
    "consensus",
]

STRATEGIES = ("majority", "unanimous", "weighted", "best")
RESOLUTIONS = ("vote", "merge", "best", "fail")

#: the presets: ``l0.consensus(tasks, preset="strict")``; explicit arguments win
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "strict": {"strategy": "unanimous", "threshold": 1.0, "resolve_conflicts": "fail",
               "minimum_agreement": 1.0},
    "standard": {"strategy": "majority", "threshold": 0.8, "resolve_conflicts": "vote",
                 "minimum_agreement": 0.6},
    "lenient": {"strategy": "majority", "threshold": 0.7, "resolve_conflicts": "merge",
                "minimum_agreement": 0.5},
    "best": {"strategy": "best", "threshold": 0.8, "resolve_conflicts": "best",
             "minimum_agreement": 0.5},
}


@dataclass
class ConsensusOutput:
    """One task's answer: its :class:`TaskResult`, the value compared (text, or the
    validated model's fields), its weight, and why it does not count (``error``)."""

    index: int
    result: TaskResult
    weight: float
    value: Any = None
    error: L0Error | None = None

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def state(self) -> State | None:
        return self.result.state

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Agreement:
    """Outputs that agree: ``indices`` (task indices), ``count``, ``ratio`` of all the
    tasks (failed ones included), ``type`` (``"exact"``, ``"similar"`` or ``"field"``)."""

    content: Any
    count: int
    ratio: float
    indices: tuple[int, ...]
    type: str
    field: str | None = None


@dataclass(frozen=True)
class Disagreement:
    """Outputs that dissent from the consensus: ``values`` as ``(task index, value)``;
    ``severity`` from the winners' share: ``minor`` (at least 0.8), ``moderate`` (0.6),
    ``major`` (0.4), else ``critical``."""

    values: tuple[tuple[int, Any], ...]
    severity: str
    field: str | None = None


@dataclass(frozen=True)
class FieldAgreement:
    """The vote on one field: the winning ``value``, its ``agreement`` (share of the
    votes), the ``votes`` per distinct value (as canonical JSON) and ``unanimous``."""

    field: str
    value: Any
    agreement: float
    votes: Mapping[str, float]
    unanimous: bool


@dataclass
class ConsensusResult:
    """``consensus`` (a text, or a ``schema`` instance), ``confidence`` (0..1), ``status``
    (``"success"``, or ``"partial"`` when agreement was not reached and the conflict was
    resolved), ``agreements``, ``disagreements``, ``outputs``, ``fields`` (per-field
    agreement, structured only), ``similarity`` (the matrix, text only)."""

    consensus: Any
    confidence: float
    status: str
    strategy: str
    type: str
    outputs: list[ConsensusOutput]
    agreements: list[Agreement] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    fields: dict[str, FieldAgreement] | None = None
    similarity: list[list[float]] | None = None
    resolution: str | None = None
    id: str = ""

    @property
    def text(self) -> str:
        if isinstance(self.consensus, str):
            return self.consensus
        dump = getattr(self.consensus, "model_dump_json", None)
        return str(dump()) if dump is not None else json.dumps(self.consensus, default=str)


class ConsensusError(ContentError):
    """Agreement was not reached under ``resolve_conflicts="fail"`` (or no task produced
    an output); ``result`` is the :class:`ConsensusResult` (status ``"failed"``)."""

    default_code = ErrorCode.NO_CONSENSUS

    def __init__(self, message: str, code: Any = None, *, result: ConsensusResult | None = None,
                 **kw: Any) -> None:
        super().__init__(message, code, **kw)
        self.result = result


def _severity(share: float) -> str:
    return ("minor" if share >= 0.8 else "moderate" if share >= 0.6
            else "major" if share >= 0.4 else "critical")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


# -- settings -----------------------------------------------------------------------------------


@dataclass
class _Settings:
    strategy: str
    threshold: float
    resolve: str
    minimum: float
    weights: list[float]
    schema: Any
    measure: Callable[[str, str], float] | None


def _settings(n: int, preset: str, given: Mapping[str, Any], weights: Any, schema: Any,
              measure: Any) -> _Settings:
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, not "
                          f"{describe_value(preset)}")
    chosen = {**PRESETS[preset], **{k: v for k, v in given.items() if v is not None}}
    if chosen["strategy"] not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, not "
                          f"{describe_value(chosen['strategy'])}")
    if chosen["resolve_conflicts"] not in RESOLUTIONS:
        raise ConfigError(f"resolve_conflicts must be one of {', '.join(RESOLUTIONS)}, not "
                          f"{describe_value(chosen['resolve_conflicts'])}")
    for name in ("threshold", "minimum_agreement"):
        value = chosen[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{name} must be a number from 0 to 1, not {describe_value(value)}")
    return _Settings(chosen["strategy"], float(chosen["threshold"]), chosen["resolve_conflicts"],
                     float(chosen["minimum_agreement"]), _weights(n, weights),
                     _schema(schema), _measure(measure))


def _weights(n: int, weights: Any) -> list[float]:
    if weights is None:
        return [1.0] * n
    values = list(weights) if isinstance(weights, Iterable) else None
    if values is None or len(values) != n or not all(
            isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in values):
        raise ConfigError(f"weights must be {n} numbers (0 or more), one per task, not "
                          f"{describe_value(weights)}")
    return [float(w) for w in values]


def _schema(schema: Any) -> Any:
    if schema is None:
        return None
    from pydantic import BaseModel

    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise ConfigError(f"schema must be a pydantic model class, not {describe_value(schema)}")
    return schema


def _measure(measure: Any) -> Callable[[str, str], float] | None:
    if measure is not None and not callable(measure):
        raise ConfigError(f"similarity must be a function (text, text) -> 0..1, not "
                          f"{describe_value(measure)}")
    return measure  # type: ignore[no-any-return]


# -- structured outputs ---------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```[\w-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def _validate(output: ConsensusOutput, schema: Any) -> None:
    """Set ``output.value`` to the validated model's fields (or ``output.error``)."""
    from pydantic import BaseModel, ValidationError

    raw = output.result.value
    try:
        if isinstance(raw, BaseModel):
            model = schema.model_validate(raw.model_dump())
        elif isinstance(raw, Mapping):
            model = schema.model_validate(dict(raw))
        else:
            text = str(raw)
            fenced = _FENCE.match(text)
            model = schema.model_validate_json(fenced.group(1) if fenced else text.strip())
    except ValidationError as exc:
        output.error = L0Error(
            f"task {output.index}: the output does not match {schema.__name__}: "
            f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}",
            ErrorCode.GUARDRAIL_VIOLATION,
        )
        return
    output.value = model.model_dump(mode="json")


def _field_votes(valid: Sequence[ConsensusOutput], name: str, weighted: bool,
                 total: float) -> FieldAgreement:
    votes: dict[str, float] = {}
    values: dict[str, Any] = {}
    for out in valid:
        key = _canonical(out.value.get(name))
        votes[key] = votes.get(key, 0.0) + (out.weight if weighted else 1.0)
        values.setdefault(key, out.value.get(name))
    top = max(votes, key=lambda k: votes[k])  # (dicts keep order: ties go to the first)
    # the share of every task (a failed or invalid output is a vote for nothing)
    return FieldAgreement(name, values[top], votes[top] / (total or 1.0), votes,
                          len(votes) == 1)


def _structured(result: ConsensusResult, valid: list[ConsensusOutput], s: _Settings,
                failed: int) -> bool:
    """Decide each field by vote; whether the strategy's agreement was reached."""
    weighted = s.strategy == "weighted"
    total = _total_weight(result.outputs, weighted)
    fields = {name: _field_votes(valid, name, weighted, total) for name in s.schema.model_fields}
    result.fields = fields
    result.confidence = sum(f.agreement for f in fields.values()) / (len(fields) or 1)
    combined = _combine(valid, fields, s.schema)
    result.consensus = combined if combined is not None else _closest_whole(valid, fields,
                                                                            s.schema)
    n = len(result.outputs)
    for name, f in fields.items():
        top = _canonical(f.value)
        agree = tuple(o.index for o in valid if _canonical(o.value.get(name)) == top)
        if len(agree) > 1:
            result.agreements.append(Agreement(f.value, len(agree), len(agree) / n,
                                               agree, "field", name))
        dissent = tuple((o.index, o.value.get(name)) for o in valid
                        if _canonical(o.value.get(name)) != top)
        if dissent:
            result.disagreements.append(Disagreement(dissent, _severity(f.agreement), name))
    if combined is None:  # the winning fields together are not a valid answer
        return False
    if s.strategy == "unanimous":
        return failed == 0 and all(f.unanimous for f in fields.values())
    if s.strategy == "best":
        return True
    return all(f.agreement >= s.minimum for f in fields.values())


def _total_weight(outputs: Sequence[ConsensusOutput], weighted: bool) -> float:
    """What shares are shares of: every task (one that failed agrees with nobody)."""
    return sum(o.weight for o in outputs) if weighted else float(len(outputs))


def _combine(valid: Sequence[ConsensusOutput], fields: Mapping[str, FieldAgreement],
             schema: Any) -> Any:
    """The schema instance made of each field's winner, or ``None`` when those values
    together fail the model's own validation (each output was valid alone)."""
    from pydantic import ValidationError

    try:
        return schema.model_validate({n: f.value for n, f in fields.items()})
    except ValidationError:
        return None


def _closest_whole(valid: Sequence[ConsensusOutput], fields: Mapping[str, FieldAgreement],
                   schema: Any) -> Any:
    """The whole output with the most winning fields (times its weight; the first on ties)."""
    def score(o: ConsensusOutput) -> float:
        won = sum(_canonical(o.value.get(n)) == _canonical(f.value) for n, f in fields.items())
        return won * (o.weight or 1e-9)

    return schema.model_validate(max(valid, key=score).value)


# -- text outputs -----------------------------------------------------------------------------


class _Groups:
    """Outputs grouped by similarity, over the similarity matrix of the valid outputs."""

    def __init__(self, valid: list[ConsensusOutput], texts: list[str], s: _Settings,
                 tasks: int) -> None:
        self.valid = valid
        self.tasks = tasks  # every task, those that failed included
        self.texts = texts
        self.matrix = SimilarityIndex(texts, s.measure).matrix
        self.members: list[list[int]] = []  # positions in ``valid``
        for i in range(len(valid)):
            for group in self.members:
                if self.matrix[group[0]][i] >= s.threshold:
                    group.append(i)
                    break
            else:
                self.members.append([i])

    def weight(self, group: list[int], weighted: bool) -> float:
        return sum(self.valid[i].weight if weighted else 1.0 for i in group)

    def centre(self, group: list[int]) -> int:
        """The member most like the others (the first on ties)."""
        if len(group) == 1:
            return group[0]
        return max(group, key=lambda i: sum(self.matrix[i][j] for j in group if j != i))

    def centrality(self, i: int) -> float:
        """How alike output ``i`` is to every other task's (a failed task: not at all)."""
        n = self.tasks
        return sum(self.matrix[i][j] for j in range(len(self.valid)) if j != i) / (n - 1) \
            if n > 1 else 1.0

    def ranked(self, weighted: bool) -> list[list[int]]:
        return sorted(self.members, key=lambda g: -self.weight(g, weighted))


def _text_outcome(result: ConsensusResult, groups: _Groups, s: _Settings,
                  failed: int) -> bool:
    """Pick the consensus text by the strategy; whether agreement was reached."""
    weighted = s.strategy == "weighted"
    ranked = groups.ranked(weighted)
    top = ranked[0]
    total = _total_weight(result.outputs, weighted) or 1.0
    share = groups.weight(top, weighted) / total
    _describe_groups(result, groups, ranked, share)
    if s.strategy == "best":
        best = max(range(len(groups.valid)),
                   key=lambda i: groups.valid[i].weight * groups.centrality(i))
        result.consensus = groups.texts[best]
        result.confidence = groups.centrality(best)
        return True
    centre = groups.centre(top)
    result.consensus = groups.texts[centre]
    if s.strategy == "unanimous":
        result.confidence = min((groups.matrix[i][j] for i in top for j in top), default=1.0)
        return failed == 0 and len(ranked) == 1
    spread = sum(groups.matrix[centre][j] for j in top) / len(top)
    result.confidence = share * spread
    return share >= s.minimum


def _describe_groups(result: ConsensusResult, groups: _Groups, ranked: list[list[int]],
                     share: float) -> None:
    n = groups.tasks
    for g in ranked:
        if len(g) > 1:
            same = all(groups.texts[i] == groups.texts[g[0]] for i in g)
            result.agreements.append(Agreement(
                groups.texts[groups.centre(g)], len(g), len(g) / n,
                tuple(groups.valid[i].index for i in g), "exact" if same else "similar"))
    for g in ranked[1:]:
        result.disagreements.append(Disagreement(
            tuple((groups.valid[i].index, groups.texts[i]) for i in g), _severity(share)))


def _resolve(result: ConsensusResult, valid: list[ConsensusOutput], groups: _Groups | None,
             s: _Settings) -> None:
    """Agreement was not reached: resolve the conflict (``fail`` is handled by the caller)."""
    result.status = "partial"
    result.resolution = s.resolve
    if s.resolve == "best":
        best = _heaviest(valid, groups, result)
        result.consensus = (s.schema.model_validate(valid[best].value) if s.schema is not None
                            else (groups.texts[best] if groups is not None else valid[best].text))
    elif s.resolve == "merge" and groups is not None:
        ranked = groups.ranked(s.strategy == "weighted")
        result.consensus = "\n\n".join(groups.texts[groups.centre(g)] for g in ranked)
    elif s.resolve == "vote" and groups is not None and s.strategy == "unanimous":
        top = groups.ranked(False)[0]
        result.consensus = groups.texts[groups.centre(top)]
        result.confidence = len(top) / len(result.outputs)
    # vote otherwise (and merge for structured output): the per-group / per-field vote above


def _heaviest(valid: list[ConsensusOutput], groups: _Groups | None,
              result: ConsensusResult) -> int:
    """``resolve_conflicts="best"``: the output that agrees most with the others, times
    its weight (the first on ties); sets the confidence to its agreement."""
    def agreement(i: int) -> float:
        if groups is not None:
            return groups.centrality(i)
        fields = result.fields or {}
        if not fields:
            return 1.0
        total = float(len(result.outputs)) or 1.0
        shares = [sum(_canonical(o.value.get(n)) == _canonical(valid[i].value.get(n))
                      for o in valid) / total for n in fields]
        return sum(shares) / len(shares)

    best = max(range(len(valid)), key=lambda i: valid[i].weight * agreement(i))
    result.confidence = agreement(best)
    return best


def _as_text(out: ConsensusOutput) -> str:
    value = out.result.value
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump", None)
    return _canonical(dump(mode="json") if dump is not None else value)


# -- the operation ------------------------------------------------------------------------------


def _analyse(outputs: list[ConsensusOutput], s: _Settings, bus: Bus) -> ConsensusResult:
    valid = [o for o in outputs if o.ok]
    failed = len(outputs) - len(valid)
    result = ConsensusResult(None, 0.0, "success", s.strategy,
                             "structured" if s.schema is not None else "text", outputs,
                             id=bus.id)
    if not valid:
        result.status = "failed"
        raise ConsensusError("no task produced an output to compare: "
                             + ", ".join(f"task {o.index}: {o.error.code.value}"
                                         for o in outputs if o.error is not None),
                             result=result)
    groups = None
    if s.schema is not None:
        reached = _structured(result, valid, s, failed)
        unique = len({_canonical(o.value) for o in valid})
    else:
        groups = _Groups(valid, [_as_text(o) for o in valid], s, len(outputs))
        result.similarity = groups.matrix
        reached = _text_outcome(result, groups, s, failed)
        unique = len(groups.members)
    pairs = [v for i, row in enumerate(result.similarity or []) for v in row[i + 1:]]
    bus.emit(T.CONSENSUS_ANALYSIS, strategy=s.strategy, uniqueResults=unique,
             totalResults=len(outputs), agreementRatio=result.confidence,
             similarityMatrix=result.similarity,
             averageSimilarity=sum(pairs) / len(pairs) if pairs else 1.0)
    if not reached:
        if s.resolve == "fail":
            result.status = "failed"
            raise ConsensusError(
                f"no consensus: {s.strategy} agreement was not reached (confidence "
                f"{result.confidence:.2f}, {len(result.disagreements)} disagreement(s))",
                result=result)
        _resolve(result, valid, groups, s)
    bus.emit(T.CONSENSUS_RESOLUTION, method=result.resolution or s.strategy,
             confidence=result.confidence)
    return result


async def consensus(
    tasks: Iterable[Any],
    *,
    strategy: str | None = None,
    threshold: float | None = None,
    resolve_conflicts: str | None = None,
    weights: Sequence[float] | None = None,
    minimum_agreement: float | None = None,
    schema: Any = None,
    preset: str = "standard",
    similarity: Callable[[str, str], float] | None = None,
    **options: Any,
) -> ConsensusResult:
    """Run every task at once and find what their outputs agree on.

    Defaults come from ``preset`` (``"standard"``: majority, threshold 0.8, vote,
    minimum_agreement 0.6; also ``"strict"``, ``"lenient"``, ``"best"``); arguments given
    win. ``options`` are ``l0.run``'s, shared by every task. Raises
    :class:`ConsensusError` (``NO_CONSENSUS``) when no task produced an output, or when
    agreement was not reached under ``resolve_conflicts="fail"``.
    """
    task_items = task_list(tasks, "consensus", minimum=2)
    given = {"strategy": strategy, "threshold": threshold,
             "resolve_conflicts": resolve_conflicts, "minimum_agreement": minimum_agreement}
    s = _settings(len(task_items), preset, given, weights, schema, similarity)
    opts = RunOptions(options, "consensus")
    opts.check_tasks(task_items)
    bus = Bus(opts)
    bus.emit(T.CONSENSUS_START, tasks=len(task_items), strategy=s.strategy,
             threshold=s.threshold, resolveConflicts=s.resolve,
             minimumAgreement=s.minimum, structured=s.schema is not None)
    outputs = await _collect(task_items, opts, s, bus)
    try:
        result = _analyse(outputs, s, bus)
    except Exception as error:  # (a ConsensusError; anything else is a bug: still ended)
        bus.emit(T.CONSENSUS_END, status="failed", confidence=None,
                 durationMs=bus.elapsed_ms(),
                 _error=error if isinstance(error, L0Error) else None)
        raise
    bus.emit(T.CONSENSUS_END, status=result.status, confidence=result.confidence,
             durationMs=bus.elapsed_ms())
    return result


async def _collect(tasks: list[Any], opts: RunOptions, s: _Settings,
                   bus: Bus) -> list[ConsensusOutput]:
    def ended(r: TaskResult) -> None:
        meta: dict[str, Any] = {"streamIndex": r.index, "streamId": r.id, "status": r.status,
                                "durationMs": (r.duration or 0.0) * 1000.0}
        if r.error is not None:
            meta["error"] = r.error.code.value
        bus.emit(T.CONSENSUS_STREAM_END, **meta)
        bus.emit(T.CONSENSUS_OUTPUT_COLLECTED, streamIndex=r.index, length=len(r.text),
                 hasErrors=r.error is not None)

    for i in range(len(tasks)):
        bus.emit(T.CONSENSUS_STREAM_START, streamIndex=i)
    fan = _Fanout(tasks, opts, len(tasks), False, None, ended, bus)
    results = await fan.run()
    outputs = [ConsensusOutput(r.index, r, s.weights[r.index], error=r.error) for r in results]
    for out in outputs:
        if out.ok:
            if s.schema is not None:
                _validate(out, s.schema)
            else:
                out.value = out.result.value
    return outputs
