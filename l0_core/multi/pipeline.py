"""``l0.pipe`` and ``l0.create_pipeline``: steps that feed each other.

A :class:`Step` turns the previous output into a stream: ``fn(input, context)`` returns
a stream factory, or ``{"stream": factory, **run options}`` (those options are honoured:
a step can have its own retry, guardrails, timeout...), or an awaitable of either, or a
plain value (the step's output as it is, no stream). The step's stream runs as a child
``l0.run`` session with the pipeline's options, the step's ``options`` and the returned
ones on top, in that order. Then ``transform(output, context)`` may reshape the text
(or value), and the result is the next step's input. ``condition(input, context)``
false skips a step (its input passes through); a :class:`Branch` runs one of two steps.

A failed step stops the pipeline (``stop_on_error=True``, the default: status
``"failed"``) or is recorded and passed over (its input goes on: status ``"partial"``).
``pipeline.stream(input)`` yields each step's events as they arrive (as
:class:`StepEvent`); its ``.result`` is the :class:`PipelineResult` afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

from l0_core.errors import ConfigError, ErrorCode, L0Error
from l0_core.events import Event
from l0_core.events import ObservabilityEventType as T
from l0_core.multi._child import (
    Bus,
    RunOptions,
    TaskResult,
    check_callback,
    check_flag,
    current_orchestration,
)
from l0_core.runtime.options import describe_value
from l0_core.runtime.state import State

__all__ = ["Branch", "Pipeline", "PipelineResult", "Step", "StepContext", "StepEvent",
           "StepResult", "create_pipeline", "pipe"]


@dataclass
class Step:
    """One step: ``fn(input, context)`` makes its stream (see the module documentation);
    ``transform(output, context)`` and ``condition(input, context)`` are optional (plain
    or async); ``options`` are ``l0.run`` options for this step only."""

    name: str
    fn: Callable[[Any, StepContext], Any]
    transform: Callable[[Any, StepContext], Any] | None = None
    condition: Callable[[Any, StepContext], Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"step {self.name!r}"
        if not callable(self.fn):
            raise ConfigError(f"{where}: fn must be a function (input, context) -> a stream "
                              f"factory or a value, not {describe_value(self.fn)}")
        check_callback(f"{where}: transform", self.transform)
        check_callback(f"{where}: condition", self.condition)
        if not isinstance(self.options, Mapping):
            raise ConfigError(f"{where}: options must be a mapping of l0.run options, not "
                              f"{describe_value(self.options)}")


@dataclass
class Branch:
    """Run ``if_true`` when ``condition(input, context)`` holds, else ``if_false`` (or
    pass the input on when there is none)."""

    name: str
    condition: Callable[[Any, StepContext], Any]
    if_true: Step
    if_false: Step | None = None

    def __post_init__(self) -> None:
        where = f"branch {self.name!r}"
        if not callable(self.condition):
            raise ConfigError(f"{where}: condition must be a function (input, context) -> "
                              f"bool, not {describe_value(self.condition)}")
        if not isinstance(self.if_true, Step):
            raise ConfigError(f"{where}: if_true must be an l0 Step, not "
                              f"{describe_value(self.if_true)}")
        if self.if_false is not None and not isinstance(self.if_false, Step):
            raise ConfigError(f"{where}: if_false must be an l0 Step or None, not "
                              f"{describe_value(self.if_false)}")


@dataclass
class StepContext:
    """What a step's functions are told: its ``index`` and ``name``, the number of steps
    (``total``), the ``previous`` results, the pipeline's ``metadata`` (a dict the steps
    may share things in) and ``pipeline_id`` (the run's id, the ``parentId`` of its
    children and of orchestrations started inside the step's functions)."""

    index: int
    name: str
    total: int
    previous: list[StepResult]
    metadata: dict[str, Any]
    pipeline_id: str = ""


@dataclass
class StepResult:
    """One step's outcome: ``input``, ``output``, ``status`` (``"succeeded"``, ``"failed"``,
    ``"skipped"``, ``"aborted"``: the consumer closed the pipeline during it), ``error``,
    ``branch`` (the step a :class:`Branch` ran), ``task`` (the stream's
    :class:`TaskResult`, ``None`` for a value step), ``.text`` and ``.state``."""

    name: str
    index: int
    input: Any
    output: Any = None
    status: str = "succeeded"
    error: L0Error | None = None
    branch: str | None = None
    task: TaskResult | None = None
    duration: float = 0.0

    @property
    def text(self) -> str:
        return self.task.text if self.task is not None else (
            self.output if isinstance(self.output, str) else "")

    @property
    def state(self) -> State | None:
        return self.task.state if self.task is not None else None


@dataclass
class PipelineResult:
    """``output`` (the last step's), ``steps`` (a :class:`StepResult` each), ``status``
    (``"succeeded"``, ``"partial"``: a step failed and was passed over, ``"failed"``,
    ``"aborted"``: closed by its consumer before the end),
    ``error`` (the first failure), ``id`` (the children's ``context["parentId"]``)."""

    output: Any
    steps: list[StepResult]
    status: str
    error: L0Error | None
    id: str
    duration: float

    @property
    def text(self) -> str:
        return self.output if isinstance(self.output, str) else ""


class StepEvent:
    """A step's consumer event while the pipeline streams: ``step`` (its name),
    ``index`` and the ``event`` (``is_token``, ``text``... are forwarded)."""

    __slots__ = ("event", "index", "step")

    def __init__(self, step: str, index: int, event: Event) -> None:
        self.step = step
        self.index = index
        self.event = event

    @property
    def is_token(self) -> bool:
        return self.event.is_token

    @property
    def text(self) -> str | None:
        return self.event.text

    def __repr__(self) -> str:
        return f"StepEvent({self.step!r}, {self.event!r})"


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value) and not hasattr(value, "__aiter__"):
        return await value
    return value


def _step_bug(step: str, what: str, exc: Exception) -> L0Error:
    error = L0Error(f"step {step!r}: {what} raised {type(exc).__name__}: {exc}",
                    ErrorCode.INVALID_STREAM)
    error.__cause__ = exc
    return error


class Pipeline:
    """Reusable steps with shared options: ``await pipeline.run(input)``, or
    ``pipeline.stream(input)`` to see each step's tokens as they come."""

    def __init__(self, steps: Iterable[Step | Branch], *, stop_on_error: bool = True,
                 name: str = "pipeline", **options: Any) -> None:
        self.steps = list(steps)
        for i, step in enumerate(self.steps):
            if not isinstance(step, Step | Branch):
                raise ConfigError(f"steps[{i}] must be an l0 Step or Branch, not "
                                  f"{describe_value(step)}")
            inner = [step] if isinstance(step, Step) else [step.if_true, step.if_false]
            for s in inner:
                if s is not None and s.options:
                    RunOptions(s.options, f"step {s.name!r}")
        self.stop_on_error = check_flag("stop_on_error", stop_on_error)
        self.name = name
        self.options = RunOptions(options, "pipeline")

    async def run(self, input: Any) -> PipelineResult:
        stream = self.stream(input)
        async for _ in stream:
            pass
        assert stream.result is not None
        return stream.result

    def stream(self, input: Any) -> PipelineStream:
        return PipelineStream(self, input)


class PipelineStream:
    """The events of one pipeline run (``StepEvent``\\ s); ``result`` when it is over.

    As for an ``l0.run`` stream, use ``async with`` (or iterate to the end, or
    ``await aclose()``) so that the current step's upstream is closed as soon as you
    stop; a ``break`` without it closes it when the iterator is dropped. A run closed
    early has ``result.status == "aborted"``.
    """

    def __init__(self, pipeline: Pipeline, input: Any) -> None:
        self.pipeline = pipeline
        self.input = input
        self.result: PipelineResult | None = None
        # only a weak reference (as Stream does): a consumer that breaks out and drops the
        # iterator lets asyncio finalise it, which closes the step's upstream
        self._gen: weakref.ref[AsyncGenerator[StepEvent, None]] | None = None
        self._closed = False
        self._ended: asyncio.Event | None = None  # set when a started run is over

    def __aiter__(self) -> AsyncIterator[StepEvent]:
        gen = self._gen() if self._gen is not None else None
        if gen is None:
            if self._gen is not None or self._closed:  # started once, or closed: over
                return _nothing()
            gen = self._run()
            self._gen = weakref.ref(gen)
        return gen

    async def aclose(self) -> None:
        """Stop now: the current step's stream is aborted and its upstream closed."""
        self._closed = True
        gen = self._gen() if self._gen is not None else None
        if gen is not None:
            await gen.aclose()
        elif self._ended is not None:  # dropped after a break: asyncio is finalising it
            await self._ended.wait()

    async def __aenter__(self) -> PipelineStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[StepEvent, None]:
        self._ended = asyncio.Event()
        try:
            async with aclosing(self._steps()) as events:
                async for event in events:
                    yield event
        finally:
            self._ended.set()

    async def _steps(self) -> AsyncGenerator[StepEvent, None]:
        p = self.pipeline
        bus = Bus(p.options)
        bus.emit(T.PIPELINE_START, name=p.name, steps=[s.name for s in p.steps])
        results: list[StepResult] = []
        metadata: dict[str, Any] = {}
        current, first_error = self.input, None
        for index, step in enumerate(p.steps):
            ctx = StepContext(index, step.name, len(p.steps), list(results), metadata, bus.id)
            outcome = StepResult(step.name, index, current)
            results.append(outcome)
            bus.emit(T.PIPELINE_STEP_START, step=step.name, index=index)
            started = time.monotonic()
            try:
                async with aclosing(_run_step(step, outcome, ctx, p.options, bus)) as events:
                    async for event in events:
                        yield event
            except GeneratorExit:  # closed by the consumer: the step's stream is closed
                self._aborted(bus, results, outcome)
                raise
            outcome.duration = time.monotonic() - started
            bus.emit(T.PIPELINE_STEP_END, step=step.name, index=index, status=outcome.status,
                     durationMs=outcome.duration * 1000.0)
            if outcome.status == "failed":
                first_error = first_error or outcome.error
                if p.stop_on_error:
                    break
                continue
            current = outcome.output
        status = ("succeeded" if first_error is None
                  else "failed" if p.stop_on_error else "partial")
        bus.emit(T.PIPELINE_END, name=p.name, status=status, durationMs=bus.elapsed_ms())
        self.result = PipelineResult(current if status != "failed" else None, results, status,
                                     first_error, bus.id, bus.elapsed_ms() / 1000.0)

    def _aborted(self, bus: Bus, results: list[StepResult], outcome: StepResult) -> None:
        error = L0Error("the pipeline was closed by its consumer", ErrorCode.STREAM_ABORTED)
        outcome.status, outcome.error = "aborted", error
        bus.emit(T.PIPELINE_STEP_END, step=outcome.name, index=outcome.index, status="aborted",
                 durationMs=None)
        bus.emit(T.PIPELINE_END, name=self.pipeline.name, status="aborted",
                 durationMs=bus.elapsed_ms())
        self.result = PipelineResult(None, results, "aborted", error, bus.id,
                                     bus.elapsed_ms() / 1000.0)


async def _nothing() -> AsyncGenerator[StepEvent, None]:
    return
    yield  # (an async generator that yields nothing)


async def _check(step: Step | Branch, fn: Callable[[Any, StepContext], Any],
                 value: Any, ctx: StepContext) -> Any:
    token = current_orchestration.set(ctx.pipeline_id or None)  # for nested orchestrations
    try:
        return await _maybe_await(fn(value, ctx))
    except L0Error:
        raise
    except Exception as exc:
        raise _step_bug(step.name, getattr(fn, "__name__", "a function"), exc) from exc
    finally:
        current_orchestration.reset(token)


async def _run_step(step: Step | Branch, outcome: StepResult, ctx: StepContext,
                    options: RunOptions, bus: Bus) -> AsyncGenerator[StepEvent, None]:
    """Run one step (or branch) into ``outcome``, yielding its stream's events."""
    try:
        chosen: Step | None
        if isinstance(step, Branch):
            chosen = step.if_true if await _check(step, step.condition, outcome.input, ctx) \
                else step.if_false
            outcome.branch = chosen.name if chosen is not None else None
        else:
            chosen = step
        if chosen is None or (chosen.condition is not None
                              and not await _check(chosen, chosen.condition, outcome.input,
                                                   ctx)):
            outcome.status, outcome.output = "skipped", outcome.input
            return
        async with aclosing(_stream_step(chosen, outcome, replace(ctx, name=chosen.name),
                                         options, bus)) as events:
            async for event in events:
                yield event
    except L0Error as error:
        outcome.status, outcome.error = "failed", error


async def _stream_step(step: Step, outcome: StepResult, ctx: StepContext, options: RunOptions,
                       bus: Bus) -> AsyncGenerator[StepEvent, None]:
    made = await _check(step, step.fn, outcome.input, ctx)
    overrides: Mapping[str, Any] = {}
    if isinstance(made, Mapping) and "stream" in made:
        overrides = {k: v for k, v in made.items() if k != "stream"}
        made = made["stream"]
    if hasattr(made, "__aiter__") and not callable(made):
        raise L0Error(f"step {step.name!r}: fn returned an async iterator; return a stream "
                      f"factory (lambda: ...) so that it can be retried",
                      ErrorCode.INVALID_STREAM)
    if callable(made):
        opts = options.merged(step.options, f"step {step.name!r}").merged(
            overrides, f"step {step.name!r}")
        task = outcome.task = TaskResult(ctx.index)
        task.begin(opts.child(made, ctx.index, bus.id))
        assert task.stream is not None
        try:
            async for event in task.stream:
                yield StepEvent(step.name, ctx.index, event)
        except L0Error as error:
            task.end(error)
            raise
        except GeneratorExit:  # the consumer stopped: close the upstream now
            await task.stream.aclose()
            task.end(L0Error("the pipeline was closed by its consumer",
                             ErrorCode.STREAM_ABORTED), "aborted")
            raise
        task.end(None)
        output = task.value
    else:
        output = made  # a value step
    if step.transform is not None:
        output = await _check(step, step.transform, output, ctx)
    outcome.output = output


def create_pipeline(steps: Iterable[Step | Branch], *, stop_on_error: bool = True,
                    name: str = "pipeline", **options: Any) -> Pipeline:
    """A reusable :class:`Pipeline`; ``options`` are ``l0.run``'s, shared by every step."""
    return Pipeline(steps, stop_on_error=stop_on_error, name=name, **options)


async def pipe(steps: Iterable[Step | Branch], input: Any, *, stop_on_error: bool = True,
               **options: Any) -> PipelineResult:
    """Run ``steps`` once on ``input`` (see :class:`Pipeline`)."""
    return await Pipeline(steps, stop_on_error=stop_on_error, **options).run(input)
