"""l0.consensus: text and structured, over the real openai SDK and the test server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, model_validator

import l0_core as l0
from l0_core.multi import ConsensusResult, similarity
from l0_core.testing.openai_server import OpenAIServer, Turn

from .support import ask, by_model, client_for, settled, words

AGREED = "The capital of France is Paris, a city on the Seine."
PARAPHRASE = "Paris is the capital of France, a city on the Seine."
DISSENT = "The capital of France is Lyon, which sits on the Rhone."

T = l0.ObservabilityEventType


def _three(a: str, b: str, c: str) -> dict[str, Turn]:
    return {"model-a": Turn(tokens=words(a)), "model-b": Turn(tokens=words(b)),
            "model-c": Turn(tokens=words(c))}


async def _ask_three(turns: dict[str, Turn], **kwargs: Any) -> ConsensusResult:
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        try:
            return await l0.consensus(
                [ask(client, "model-a"), ask(client, "model-b"), ask(client, "model-c")],
                **kwargs)
        finally:
            await settled(server, client)


async def test_three_models_one_dissenting() -> None:
    seen: list[l0.ObservabilityEvent] = []
    result = await _ask_three(_three(AGREED, PARAPHRASE, DISSENT), on_event=seen.append)
    assert result.status == "success"
    assert result.consensus in (AGREED, PARAPHRASE)
    assert result.type == "text"
    [agreement] = result.agreements
    assert agreement.indices == (0, 1) and agreement.type == "similar"
    assert agreement.ratio == pytest.approx(2 / 3)
    [disagreement] = result.disagreements
    assert disagreement.values == ((2, DISSENT),)
    assert disagreement.severity == "moderate"  # two of three agree
    assert result.similarity is not None
    assert result.similarity[0][1] >= 0.8 > result.similarity[0][2]
    assert 0.6 < result.confidence <= 2 / 3
    own = [e.type for e in seen if e.stream_id == result.id]
    assert own[0] is T.CONSENSUS_START and own[-3:] == [T.CONSENSUS_ANALYSIS,
                                                      T.CONSENSUS_RESOLUTION, T.CONSENSUS_END]
    assert own.count(T.CONSENSUS_STREAM_START) == own.count(T.CONSENSUS_STREAM_END) == 3
    assert own.count(T.CONSENSUS_OUTPUT_COLLECTED) == 3
    children = {e.context["parentId"] for e in seen if e.type is T.SESSION_START}
    assert children == {result.id}


async def test_strict_preset_fails_with_a_typed_error() -> None:
    with pytest.raises(l0.ConsensusError) as caught:
        await _ask_three(_three(AGREED, AGREED, DISSENT), preset="strict")
    error = caught.value
    assert isinstance(error, l0.ContentError)
    assert error.code is l0.ErrorCode.NO_CONSENSUS
    assert error.result is not None and error.result.status == "failed"
    assert [d.values[0][0] for d in error.result.disagreements] == [2]


async def test_strict_preset_succeeds_when_all_agree() -> None:
    result = await _ask_three(_three(AGREED, AGREED, AGREED), preset="strict")
    assert result.status == "success" and result.consensus == AGREED
    assert result.confidence == 1.0
    assert result.agreements[0].type == "exact" and result.disagreements == []


async def test_weights_decide_a_weighted_vote() -> None:
    result = await _ask_three(_three(AGREED, DISSENT, DISSENT), strategy="weighted",
                              weights=[5.0, 1.0, 1.0])
    assert result.consensus == AGREED and result.status == "success"
    majority = await _ask_three(_three(AGREED, DISSENT, DISSENT))
    assert majority.consensus == DISSENT


async def test_no_majority_is_resolved_or_fails() -> None:
    other = "Nobody knows the answer to that question at all."
    turns = _three(AGREED, DISSENT, other)
    voted = await _ask_three(turns)
    assert voted.status == "partial" and voted.resolution == "vote"
    assert voted.consensus == AGREED  # every group has one member: the first
    merged = await _ask_three(turns, resolve_conflicts="merge")
    assert merged.consensus == "\n\n".join([AGREED, DISSENT, other])
    best = await _ask_three(turns, resolve_conflicts="best", weights=[1.0, 3.0, 1.0])
    assert best.consensus == DISSENT
    with pytest.raises(l0.ConsensusError, match="no consensus"):
        await _ask_three(turns, resolve_conflicts="fail")


async def test_best_picks_the_output_closest_to_the_others() -> None:
    result = await _ask_three(_three(DISSENT, AGREED, PARAPHRASE), preset="best")
    assert result.consensus in (AGREED, PARAPHRASE) and result.status == "success"


async def test_a_failed_task_does_not_vote() -> None:
    turns = _three(AGREED, AGREED, DISSENT)
    turns["model-c"] = Turn(status=400)
    result = await _ask_three(turns, retry=l0.Retry.none())
    assert result.status == "success" and result.consensus == AGREED
    assert result.outputs[2].error is not None and not result.outputs[2].ok
    with pytest.raises(l0.ConsensusError):  # unanimous needs every task
        await _ask_three(turns, strategy="unanimous", resolve_conflicts="fail",
                         retry=l0.Retry.none())


class City(BaseModel):
    name: str
    country: str
    population: int


def _json(**fields: Any) -> str:
    return json.dumps({"name": "Paris", "country": "France", "population": 2_100_000, **fields})


async def test_structured_consensus_votes_each_field() -> None:
    turns = {"model-a": Turn(tokens=[_json()]),
             "model-b": Turn(tokens=["```json\n", _json(population=2_000_000), "\n```"]),
             "model-c": Turn(tokens=[_json(population=2_000_000)]),
             "model-d": Turn(tokens=["not json at all"])}
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        result = await l0.consensus([ask(client, m) for m in turns], schema=City)
        await settled(server, client)
    assert result.type == "structured"
    assert result.consensus == City(name="Paris", country="France", population=2_000_000)
    assert result.fields is not None
    # shares of every task: the output that does not validate votes for nothing
    assert result.fields["name"].agreement == 0.75 and result.fields["name"].unanimous
    assert result.fields["population"].agreement == 0.5
    assert result.status == "partial" and result.resolution == "vote"  # 0.5 < 0.6
    [dissent] = result.disagreements
    assert dissent.field == "population" and dissent.values == ((0, 2_100_000),)
    assert result.confidence == pytest.approx((0.75 + 0.75 + 0.5) / 3)
    assert result.outputs[3].error is not None
    assert result.outputs[3].error.code is l0.ErrorCode.GUARDRAIL_VIOLATION


async def test_structured_value_tasks_and_a_failed_field_vote() -> None:
    async def one() -> dict[str, Any]:
        return {"name": "Paris", "country": "France", "population": 1}

    async def two() -> City:
        return City(name="Paris", country="France", population=2)

    with pytest.raises(l0.ConsensusError) as caught:
        await l0.consensus([one, two], schema=City, minimum_agreement=0.6,
                           resolve_conflicts="fail")
    assert caught.value.result is not None and caught.value.result.fields is not None
    assert caught.value.result.fields["population"].agreement == 0.5
    voted = await l0.consensus([one, two, one], schema=City)
    assert voted.consensus.population == 1 and voted.status == "success"


async def test_consensus_over_value_tasks_without_a_schema() -> None:
    async def a() -> dict[str, int]:
        return {"x": 1, "y": 2}

    async def b() -> dict[str, int]:
        return {"y": 2, "x": 1}

    result = await l0.consensus([a, b])
    assert result.consensus == '{"x":1,"y":2}' and result.confidence == 1.0


async def test_no_output_at_all_raises() -> None:
    async def broken() -> str:
        raise PermissionError("no")

    with pytest.raises(l0.ConsensusError, match="no task produced an output"):
        await l0.consensus([broken, broken], retry=l0.Retry.none())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "loudest"}, "strategy must be one of"),
        ({"resolve_conflicts": "coin"}, "resolve_conflicts must be one of"),
        ({"threshold": 1.5}, "threshold must be a number from 0 to 1"),
        ({"weights": [1.0]}, "weights must be 2 numbers"),
        ({"schema": dict}, "schema must be a pydantic model"),
        ({"preset": "loose"}, "preset must be one of"),
        ({"similarity": "difflib"}, "similarity must be a function"),
    ],
)
async def test_bad_settings_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    async def x() -> str:
        return "x"

    with pytest.raises(l0.ConfigError, match=message):
        await l0.consensus([x, x], **kwargs)
    with pytest.raises(l0.ConfigError, match="at least 2 tasks"):
        await l0.consensus([x])


def test_similarity_measure() -> None:
    assert similarity(AGREED, AGREED) == 1.0
    assert similarity("", "") == 1.0 and similarity("a", " ") == 0.0
    assert similarity("alpha beta", "gamma delta") == 0.0
    assert similarity(AGREED, PARAPHRASE) >= 0.8
    assert similarity(AGREED, DISSENT) < 0.6
    assert similarity("The answer is 4", "The answer is 5") < 0.6
    # word order counts a little: same words, other pairs
    assert 0.5 < similarity("the cat ate the mouse", "the mouse ate the cat") < 1.0


async def test_a_custom_similarity_function() -> None:
    async def a() -> str:
        return "yes"

    async def b() -> str:
        return "YES!"

    loose = await l0.consensus([a, b], similarity=lambda x, y: float(x[0].lower() == y[0].lower()))
    assert loose.similarity == [[1.0, 1.0], [1.0, 1.0]]
    assert loose.agreements[0].indices == (0, 1)


def _value(text: str) -> Any:
    async def task() -> str:
        return text

    return task


async def _refuse() -> str:
    raise ValueError("no answer")


async def test_agreement_is_a_share_of_every_task_not_of_those_that_answered() -> None:
    result = await l0.consensus([_value(AGREED), _refuse, _refuse], retry=l0.Retry.none())
    assert result.status == "partial" and result.resolution == "vote"  # 1/3 < 0.6
    assert result.consensus == AGREED
    assert result.confidence == pytest.approx(1 / 3)
    best = await l0.consensus([_value(AGREED), _refuse, _refuse], strategy="best",
                              retry=l0.Retry.none())
    assert best.confidence == 0.0  # like nobody else: the others said nothing
    with pytest.raises(l0.ConsensusError, match="no consensus"):
        await l0.consensus([_value(AGREED), _refuse, _refuse], resolve_conflicts="fail",
                           retry=l0.Retry.none())
    weighted = await l0.consensus([_value(AGREED), _refuse, _value(AGREED)],
                                  strategy="weighted", weights=[1.0, 8.0, 1.0],
                                  retry=l0.Retry.none())
    assert weighted.status == "partial" and weighted.confidence == pytest.approx(0.2)


async def test_structured_field_agreement_counts_failed_tasks() -> None:
    async def paris() -> dict[str, Any]:
        return {"name": "Paris", "country": "France", "population": 1}

    result = await l0.consensus([paris, _refuse, _refuse], schema=City, retry=l0.Retry.none())
    assert result.fields is not None
    assert result.fields["name"].agreement == pytest.approx(1 / 3)
    assert result.status == "partial" and result.confidence == pytest.approx(1 / 3)


class Range(BaseModel):
    lo: int
    hi: int

    @model_validator(mode="after")
    def ordered(self) -> Range:
        if self.lo >= self.hi:
            raise ValueError("lo must be below hi")
        return self


async def test_winning_fields_that_do_not_validate_together() -> None:
    tasks = [_value(json.dumps({"lo": 6, "hi": 9})), _value(json.dumps({"lo": 6, "hi": 10})),
             _value(json.dumps({"lo": 1, "hi": 5})), _value(json.dumps({"lo": 2, "hi": 5}))]
    # lo: 6 (2 votes) wins, hi: 5 (2 votes) wins; {lo 6, hi 5} is not a valid Range
    seen: list[l0.ObservabilityEvent] = []
    result = await l0.consensus(tasks, schema=Range, minimum_agreement=0.5,
                                on_event=seen.append)
    assert result.status == "partial"
    assert result.consensus == Range(lo=6, hi=9)  # the whole answer with most winning fields
    assert [e.type for e in seen if e.stream_id == result.id][-1] is T.CONSENSUS_END
    seen.clear()
    with pytest.raises(l0.ConsensusError, match="no consensus"):
        await l0.consensus(tasks, schema=Range, minimum_agreement=0.5,
                           resolve_conflicts="fail", on_event=seen.append)
    assert seen[-1].type is T.CONSENSUS_END and seen[-1].meta["status"] == "failed"


async def test_resolve_best_without_weights_takes_the_most_central_output() -> None:
    tasks = [_value(DISSENT), _value(AGREED), _value(PARAPHRASE)]
    assert similarity(AGREED, PARAPHRASE) < 0.99  # three groups of one at threshold 0.99
    result = await l0.consensus(tasks, resolve_conflicts="best", threshold=0.99)
    assert result.status == "partial" and result.resolution == "best"
    assert result.consensus in (AGREED, PARAPHRASE)  # not task 0, the dissent
