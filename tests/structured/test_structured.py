"""``l0.structured`` and friends: results, recovery through the session, events, schemas."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, model_validator
from typing_extensions import TypedDict

import l0_core as l0
from l0_core.structured_output.errors import AttemptFailure
from l0_core.structured_output.repair import Repaired
from l0_core.testing import Script, ScriptedSource, instant_backoff


class User(BaseModel):
    name: str
    age: int


GOOD = '{"name": "Alice", "age": 30}'
WRONG_TYPE = '{"name": "Alice", "age": "thirty"}'


def scripted(*texts: str | list[str]) -> ScriptedSource:
    return ScriptedSource([Script([t] if isinstance(t, str) else t) for t in texts])


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with instant_backoff():
        yield


# -- the result -----------------------------------------------------------------------------------


async def test_result_carries_data_text_corrections_state() -> None:
    source = scripted(["```json\n", "{'name': 'Alice', ", "'age': 30,}", "\n```"])
    result = await l0.structured(schema=User, stream=source)
    assert result.data == User(name="Alice", age=30)
    assert result.name == "Alice" and result.age == 30  # the data's fields on the result
    assert result.raw == "```json\n{'name': 'Alice', 'age': 30,}\n```"
    assert result.corrected == '{"name":"Alice","age":30}'
    assert [c.type for c in result.corrections] == [
        "markdown_fence", "single_quotes", "single_quotes", "single_quotes", "trailing_comma"]
    assert result.state.completed and result.state.content == result.raw
    assert result.errors == [] and result.attempts == []
    assert result.stream_id and source.calls == 1 and source.all_closed


async def test_valid_json_is_not_corrected() -> None:
    result = await l0.structured(User, scripted(GOOD))
    assert result.corrected == result.raw == GOOD and result.corrections == ()


# -- recovery -------------------------------------------------------------------------------------


async def test_invalid_output_is_retried_with_a_fresh_generation() -> None:
    source = scripted(WRONG_TYPE, GOOD)
    stream = l0.structured_stream(User, source)
    async for _ in stream:
        pass
    result = await stream.result()
    assert source.calls == 2  # the factory was called again: a new generation
    assert result.raw == GOOD and result.data.age == 30
    assert [(a.attempt, a.stage) for a in result.attempts] == [(1, "validation")]
    assert result.attempts[0].raw == WRONG_TYPE
    assert "age: Input should be a valid integer" in result.attempts[0].errors[0]
    [error] = result.errors
    assert isinstance(error, l0.GuardrailError) and error.violations[0].rule == "structured"
    assert source.all_closed


async def test_validation_attempts_default_to_more_than_one() -> None:
    source = scripted(WRONG_TYPE)
    with pytest.raises(l0.StructuredError) as info:
        await l0.structured(User, source)
    error = info.value
    assert source.calls == 4  # the first attempt and Retry()'s 3 model retries
    assert [a.attempt for a in error.attempts] == [1, 2, 3, 4]
    assert all(a.stage == "validation" for a in error.attempts)
    assert len(error.errors) == 4 and isinstance(error, l0.GuardrailError)
    assert error.code is l0.ErrorCode.GUARDRAIL_VIOLATION
    assert isinstance(error.__cause__, l0.GuardrailError)


async def test_then_the_fallbacks() -> None:
    primary, backup = scripted("not json at all"), scripted(GOOD)
    result = await l0.structured(User, primary, fallbacks=[backup],
                                 retry=l0.Retry(attempts=1, fallback_after=1))
    assert result.data.name == "Alice" and result.state.fallback_index == 1
    assert primary.calls == 2 and backup.calls == 1
    assert [(a.fallback_index, a.stage) for a in result.attempts] == [(0, "parse"), (0, "parse")]


async def test_every_stream_invalid_is_a_structured_error_over_all_streams_exhausted() -> None:
    with pytest.raises(l0.StructuredError) as info:
        await l0.structured(User, scripted("nope"), fallbacks=[scripted(WRONG_TYPE)],
                            retry=l0.Retry(attempts=0))
    assert [(a.fallback_index, a.stage) for a in info.value.attempts] == [
        (0, "parse"), (1, "validation")]
    cause = info.value.__cause__
    assert isinstance(cause, l0.L0Error) and cause.code is l0.ErrorCode.ALL_STREAMS_EXHAUSTED


async def test_other_failures_keep_their_own_error() -> None:
    async def refused() -> Any:
        raise l0.L0Error("bad key", l0.ErrorCode.AUTH_ERROR)
        yield ""

    with pytest.raises(l0.FatalError) as info:
        await l0.structured(User, refused)
    assert not isinstance(info.value, l0.StructuredError)


async def test_a_network_failure_then_valid_json() -> None:
    source = ScriptedSource([Script(['{"name": ', '"Al'], fail_after=1), Script([GOOD])])
    result = await l0.structured(User, source)
    assert result.data.name == "Alice"
    assert [e.code for e in result.errors] == [l0.ErrorCode.NETWORK_ERROR]
    assert result.attempts == []


async def test_with_continuation_a_rejected_answer_is_not_continued() -> None:
    tokens = ['{"name": "Alice", ', *(['"x": 1, '] * 40), '"age": "thirty"}']
    source = ScriptedSource([Script(tokens), Script([GOOD])])
    given: list[l0.Resume | None] = []

    def factory(resume: l0.Resume | None) -> Any:
        given.append(resume)
        return source(resume)

    result = await l0.structured(User, factory, continue_from_last_good_token=True,
                                 on_event=lambda e: None)  # (checkpoints are saved)
    assert given == [None, None]  # a fresh generation, not a continuation
    assert result.raw == GOOD and result.data.age == 30


async def test_auto_correct_off_retries_broken_json() -> None:
    source = scripted('{"name": "Alice", "age": 30,}', GOOD)
    result = await l0.structured(User, source, auto_correct=False)
    assert source.calls == 2 and result.corrections == ()
    assert result.attempts[0].stage == "parse"


async def test_strict_mode_rejects_coercion_and_unknown_fields() -> None:
    for text in ['{"name": "Alice", "age": "30"}', '{"name": "Alice", "age": 30, "x": 1}']:
        assert (await l0.structured(User, scripted(text))).data.age == 30
        with pytest.raises(l0.StructuredError):
            await l0.structured(User, scripted(text), strict_mode=True,
                                retry=l0.Retry(attempts=0))


async def test_user_guardrails_still_apply() -> None:
    rule = l0.CustomPatternRule([r"Mallory"], message="no Mallory")
    source = scripted('{"name": "Mallory", "age": 1}', GOOD)
    result = await l0.structured(User, source, guardrails=[rule])
    assert result.data.name == "Alice" and source.calls == 2


# -- feedback -------------------------------------------------------------------------------------


async def test_feedback_gives_the_next_attempt_the_answer_and_the_reasons() -> None:
    inner = scripted(WRONG_TYPE, GOOD)
    given: list[l0.Resume | None] = []

    def factory(resume: l0.Resume | None) -> Any:
        given.append(resume)
        return inner()

    result = await l0.structured(User, factory, feedback=True)
    assert result.data.age == 30
    first, second = given
    assert first is None and second is not None
    assert second.checkpoint == WRONG_TYPE and second.attempt == 2
    assert second.fallback_index == 0 and second.token_count == 0
    assert second.prompt.startswith("Your previous answer did not match the schema.")
    assert "- age: Input should be a valid integer" in second.prompt


async def test_feedback_builder_and_without_resume_parameter() -> None:
    inner = scripted("no json", GOOD)
    prompts: list[str] = []

    def factory(resume: l0.Resume | None) -> Any:
        if resume is not None:
            prompts.append(resume.prompt)
        return inner()

    await l0.structured(User, factory, feedback=lambda f: f"{f.stage}: {len(f.errors)}")
    assert prompts == ["parse: 1"]
    with pytest.raises(l0.ConfigError, match="feedback=True needs stream factories"):
        await l0.structured(User, lambda: scripted(GOOD)(), feedback=True)


async def test_callbacks() -> None:
    failures: list[AttemptFailure] = []
    repairs: list[Repaired] = []
    await l0.structured(User, scripted(WRONG_TYPE, "Sure: {'name': 'A', 'age': 1}"),
                        on_validation_error=failures.append, on_auto_correct=repairs.append)
    assert [(f.attempt, f.stage) for f in failures] == [(1, "validation")]
    assert [r.text for r in repairs] == ['{"name":"A","age":1}']


# -- events on the session's own stream -----------------------------------------------------------


async def test_structured_events_on_the_session_stream() -> None:
    seen: list[l0.ObservabilityEvent] = []
    result = await l0.structured(User, scripted(WRONG_TYPE, "{'name': 'A', 'age': 1}"),
                                 on_event=seen.append, context={"request_id": "r-9"})
    structured = [(e.type.value, e.meta) for e in seen if e.type.value.startswith("STRUCTURED")]
    names = [n for n, _ in structured]
    assert names == [
        "STRUCTURED_PARSE_START", "STRUCTURED_VALIDATION_START", "STRUCTURED_VALIDATION_END",
        "STRUCTURED_VALIDATION_ERROR", "STRUCTURED_PARSE_END",
        "STRUCTURED_PARSE_START", "STRUCTURED_VALIDATION_START", "STRUCTURED_VALIDATION_END",
        "STRUCTURED_AUTO_CORRECT_START", "STRUCTURED_AUTO_CORRECT_END",
        "STRUCTURED_VALIDATION_START", "STRUCTURED_VALIDATION_END", "STRUCTURED_PARSE_END",
    ]
    ends = [m["valid"] for n, m in structured if n == "STRUCTURED_VALIDATION_END"]
    assert ends == [False, False, True]
    meta = dict(structured)
    assert structured[0][1]["contentLength"] == len(WRONG_TYPE)
    assert structured[4][1]["success"] is False and structured[-1][1]["success"] is True
    assert meta["STRUCTURED_AUTO_CORRECT_END"]["correctionsMade"] == 3
    assert meta["STRUCTURED_VALIDATION_START"]["schemaName"] == "User"
    assert {e.stream_id for e in seen} == {result.stream_id}
    assert all(e.context == {"request_id": "r-9"} for e in seen)
    order = [e.type.value for e in seen]
    assert order.index("STRUCTURED_PARSE_END") < order.index("ERROR") < order.index("RETRY_ATTEMPT")


async def test_parse_error_event() -> None:
    seen: list[l0.ObservabilityEvent] = []
    with pytest.raises(l0.StructuredError):
        await l0.structured(User, scripted("sorry, no"), on_event=seen.append,
                            retry=l0.Retry(attempts=0))
    [error] = [e for e in seen if e.type.value == "STRUCTURED_PARSE_ERROR"]
    assert error.meta == {"error": "the text holds no JSON value", "contentPreview": "sorry, no"}


# -- schemas --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


async def test_type_adapter_schemas() -> None:
    assert (await l0.structured(Point, scripted('{"x": 1, "y": 2}'))).data == Point(1, 2)
    movie = await l0.structured(Movie, scripted('{"title": "M", "year": 1931}'))
    assert movie.data == {"title": "M", "year": 1931} and movie["year"] == 1931
    users = await l0.structured(list[User], scripted('[{"name": "A", "age": 1}]'))
    assert users.data == [User(name="A", age=1)]


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


async def test_json_schema_dicts() -> None:
    assert (await l0.structured(SCHEMA, scripted('{"a": 1}'))).data == {"a": 1}
    source = scripted('{"a": "x"}', '{"a": 2}')
    result = await l0.structured(SCHEMA, source)
    assert result.data == {"a": 2} and result.attempts[0].errors == ("a: 'x' is not of type "
                                                                     "'integer'",)
    with pytest.raises(l0.ConfigError, match="not a valid JSON Schema"):
        await l0.structured({"type": "nonsense"}, scripted("{}"))


async def test_json_schema_without_the_extra_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(l0.FatalError, match=r"pip install 'l0-core\[jsonschema\]'") as info:
        await l0.structured(SCHEMA, scripted("{}"))
    assert info.value.code is l0.ErrorCode.FEATURE_NOT_ENABLED


async def test_bad_schemas() -> None:
    with pytest.raises(l0.ConfigError):
        await l0.structured(object(), scripted("{}"))
    with pytest.raises(l0.ConfigError):
        await l0.structured(None, scripted("{}"))


async def test_structured_object_and_array() -> None:
    obj = await l0.structured_object({"name": str, "age": (int, 0)}, scripted('{"name": "B"}'))
    assert obj.name == "B" and obj.age == 0
    items = await l0.structured_array(User, scripted('[{"name": "A", "age": 1},]'))
    assert items.data == [User(name="A", age=1)] and items[0].name == "A"
    plain = await l0.structured_array({"type": "integer"}, scripted("[1, 2]"))
    assert plain.data == [1, 2]
    with pytest.raises(l0.ConfigError):
        await l0.structured_object({}, scripted("{}"))


# -- structured_stream ----------------------------------------------------------------------------


class Article(BaseModel):
    title: str
    tags: list[str]
    body: str


def article_tokens(words: int) -> list[str]:
    tokens = ['{"title": "', "Streams", '", "tags": ["a", ', '"b"], "body": "']
    tokens += [f"word{i} " for i in range(words)]
    return [*tokens, '"}']


async def test_partial_objects_then_the_final_object() -> None:
    source = ScriptedSource([Script(article_tokens(400))])
    seen = [item async for item in l0.structured_stream(Article, source, partial_interval=0)]
    *partials, final = seen
    assert isinstance(final, Article) and final.body.startswith("word0 word1")
    assert partials and all(type(p).__name__ == "PartialArticle" for p in partials)
    assert partials[0].title == "Streams" and partials[0].tags == ["a", "b"]
    bodies = [p.body for p in partials]
    assert all(final.body.startswith(b) for b in bodies)  # each a prefix of the final text
    assert bodies == sorted(bodies, key=len)  # growing
    assert 5 <= len(partials) <= 25  # amortised: far fewer parses than 404 tokens


async def test_partial_objects_in_a_burst_are_rate_limited() -> None:
    source = ScriptedSource([Script(article_tokens(2000))])
    seen = [item async for item in l0.structured_stream(Article, source, partial_interval=60)]
    assert len(seen) == 2 and isinstance(seen[-1], Article)  # the first partial, the final
    with pytest.raises(l0.ConfigError):
        l0.structured_stream(Article, source, partial_interval=-1)


async def test_partial_objects_never_show_a_number_cut_short() -> None:
    class Counts(BaseModel):
        values: list[int]

    tokens = ['{"values": [', *[c for i in range(200) for c in ("1", f"{i}", "0, ")], "1]}"]
    source = ScriptedSource([Script(tokens)])
    seen = [item async for item in l0.structured_stream(Counts, source, partial_interval=0)]
    *partials, final = seen
    assert len(partials) >= 5
    for p in partials:
        assert p.values == final.values[: len(p.values)]  # a prefix, never 1 for 100


async def test_partials_restart_after_a_discard() -> None:
    source = ScriptedSource([Script(article_tokens(50), fail_after=30),
                             Script(article_tokens(60))])
    stream = l0.structured_stream(Article, source, partial_interval=0)
    seen = [item async for item in stream]
    assert seen[-1].body.count("word") == 60 and source.calls == 2
    assert (await stream.result()).data == seen[-1]


async def test_stream_result_without_iterating_and_errors() -> None:
    stream = l0.structured_stream(User, scripted("nope"), retry=l0.Retry(attempts=0))
    assert await stream is stream
    with pytest.raises(l0.StructuredError):
        await stream.result()
    stream = l0.structured_stream(User, scripted("nope"), retry=l0.Retry(attempts=0))
    with pytest.raises(l0.StructuredError):
        async for _ in stream:
            pass


async def test_stream_abort_and_async_with_close_the_upstream() -> None:
    source = ScriptedSource([Script(article_tokens(200))])
    stream = l0.structured_stream(Article, source)
    with pytest.raises(l0.AbortedError):
        async for _ in stream:
            stream.abort()
    assert source.all_closed and stream.state.aborted
    source = ScriptedSource([Script(article_tokens(200), delay=0.001)])
    async with l0.structured_stream(Article, source) as stream:
        async for _ in stream:
            break
    assert source.all_closed and stream.id and stream.errors == []


# -- review regressions ---------------------------------------------------------------------------


class Derived(BaseModel):
    x: int

    @model_validator(mode="before")
    @classmethod
    def _from_y(cls, data: Any) -> Any:
        data["x"] = int(data["y"]) * 2  # KeyError on an answer without "y"
        return data


async def test_a_validator_that_raises_is_a_rejection_and_a_retry() -> None:
    seen: list[l0.ObservabilityEvent] = []
    source = scripted('{"z": 1}', '{"y": 2}')
    result = await l0.structured(Derived, source, on_event=seen.append)
    assert result.data.x == 4 and source.calls == 2
    assert [(a.stage, a.errors) for a in result.attempts] == [("validation", ("KeyError: 'y'",))]
    errors = [e.meta["errors"] for e in seen if e.type.value == "STRUCTURED_VALIDATION_ERROR"]
    assert errors == [["KeyError: 'y'"]]
    names = [e.type.value for e in seen if e.type.value.startswith("STRUCTURED")][:5]
    assert names == ["STRUCTURED_PARSE_START", "STRUCTURED_VALIDATION_START",
                     "STRUCTURED_VALIDATION_END", "STRUCTURED_VALIDATION_ERROR",
                     "STRUCTURED_PARSE_END"]


async def test_a_number_too_long_for_python_is_a_validation_failure_then_a_retry() -> None:
    class Numbers(BaseModel):
        v: list[int]

    source = scripted('{"v": [+' + "1" * 5000 + "]}", '{"v": [1]}')
    result = await l0.structured(Numbers, source)
    assert result.data.v == [1] and source.calls == 2
    assert [a.stage for a in result.attempts] == ["parse"]  # (pydantic: too long to read)


async def test_unresolved_forward_reference_and_bare_basemodel_fail_up_front() -> None:
    source = scripted(GOOD)
    with pytest.raises(l0.ConfigError, match="'User'"):
        await l0.structured("User", source)
    with pytest.raises(l0.ConfigError, match="BaseModel itself"):
        await l0.structured(BaseModel, source)
    assert source.calls == 0


class Node(BaseModel):
    name: str
    children: list[Node] = []


async def test_recursive_models_stream_partial_objects() -> None:
    text = '{"name": "r", "children": [{"name": "c1", "children": [{"name": "c2"}]}]}'
    stream = l0.structured_stream(Node, scripted(list(text)), partial_interval=0)
    seen = [p async for p in stream]
    assert seen[-1] == Node(name="r", children=[Node(name="c1", children=[Node(name="c2")])])
    assert [p.model_dump() for p in seen[:-1]] == [
        {"name": "r", "children": None},
        {"name": "r", "children": [{"name": None, "children": None}]},
        {"name": "r", "children": [{"name": "c1", "children": None}]},
        {"name": "r", "children": [{"name": "c1", "children": [{"name": None, "children": None}]}]},
    ]


async def test_a_finished_answer_keeps_its_last_number() -> None:
    source = scripted('{"name": "A", "age": 1')  # finished ("stop"), not cut
    result = await l0.structured(User, source)
    assert result.data == User(name="A", age=1) and source.calls == 1
    assert [c.type for c in result.corrections] == ["missing_closer"]


async def test_prose_with_another_value_first_picks_the_schema_kind() -> None:
    result = await l0.structured(User, scripted('See [1] and [2]: {"name": "A", "age": 1}'))
    assert result.data == User(name="A", age=1)
    items = await l0.structured(list[int], scripted('Values {"note": 1}: [1, 2] ok'))
    assert items.data == [1, 2]


async def test_partials_when_prose_before_the_fence_holds_a_bracket() -> None:
    text = 'Here are the results [as requested]:\n```json\n{"name": "Alice", "age": 30}\n```'
    stream = l0.structured_stream(User, scripted(list(text)), partial_interval=0)
    seen = [p.model_dump() async for p in stream]
    assert seen == [{"name": None, "age": None}, {"name": "Alice", "age": None},
                    {"name": "Alice", "age": 30}]
    # Any: no kind known, the [ in the prose is tried first, then the fence's body
    stream = l0.structured_stream(Any, scripted(list(text)), partial_interval=0)
    assert [p async for p in stream] == [{}, {"name": "Alice"}, {"name": "Alice", "age": 30}]


@pytest.mark.parametrize("guardrails", ["recommended", "json_only", "strict"])
async def test_auto_correct_is_not_defeated_by_format_guardrails(guardrails: str) -> None:
    for text in ["Sure! ```json\n{'name': 'A', age: 1,}\n```", '{"name": "A", "age": 1,}',
                 "{'name': 'A', 'age': 1}", "Here is the JSON:\n{\"name\": \"A\", \"age\": 1}"]:
        source = scripted(text, '{"name": "B", "age": 2}')
        result = await l0.structured(User, source, guardrails=guardrails)
        assert result.data == User(name="A", age=1) and source.calls == 1, text
    refused = scripted("I cannot provide that.", '{"name": "B", "age": 2}')
    result = await l0.structured(User, refused, guardrails="recommended")
    assert result.data == User(name="B", age=2) and refused.calls == 2  # still checked
    strict = scripted("{'name': 'A', 'age': 1}", '{"name": "B", "age": 2}')
    result = await l0.structured(User, strict, guardrails="json_only", auto_correct=False)
    assert result.data == User(name="B", age=2) and strict.calls == 2  # as asked


async def test_bad_options_are_config_errors_naming_them() -> None:
    source = scripted(GOOD)
    with pytest.raises(l0.ConfigError, match="each field needs a type"):
        await l0.structured_object({"a": 5}, source)
    with pytest.raises(l0.ConfigError, match="unknown option for structured output: retries"):
        await l0.structured(User, source, retries=3)
    with pytest.raises(l0.ConfigError, match="feedback must be"):
        await l0.structured(User, source, feedback="yes")
    assert source.calls == 0


async def test_a_paced_stream_gets_partials_bounded_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from l0_core.structured_output import api

    monkeypatch.setattr(api, "PARTIAL_LATENCY", 0.004)  # (the default: 50 ms)
    tokens = ["[1, ", *(f"{i}, " for i in range(2, 12)), "12]"]
    source = ScriptedSource([Script(tokens, delay=0.012)])
    stream = l0.structured_stream(list[int], source, partial_interval=0)
    seen = [p async for p in stream]
    # far fewer than 16 tokens: without the time rule, only the final list; with it, a
    # partial object at every 4th token (where the clock is read)
    assert seen == [list(range(1, k + 1)) for k in (4, 8, 12)] + [list(range(1, 13))]
