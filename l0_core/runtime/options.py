"""Small configuration models shared by the runtime and the config loader.

They are checked when they are made: a wrong value is a
:class:`~l0_core.errors.ConfigError` (a ``ValueError`` and a ``TypeError``) that
names the argument and says what it accepts, never a raw pydantic
``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from l0_core.errors import ConfigError

__all__ = ["CheckIntervals", "CheckedModel", "Timeout", "describe_value"]


def describe_value(value: Any, limit: int = 60) -> str:
    """``int 5``, ``str 'gpt-4o'``: a value's type and a short repr, for error messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


class CheckedModel(BaseModel):
    """A pydantic model whose wrong arguments raise :class:`ConfigError`.

    ``ACCEPTS`` says, per field, what the field accepts ("a positive number of
    seconds or None"); the message is built from it rather than from
    pydantic's wording, which names validators, not arguments.
    """

    ACCEPTS: ClassVar[Mapping[str, str]] = {}

    def __init__(self, /, *args: Any, **data: Any) -> None:
        name = type(self).__name__
        if args:
            raise ConfigError(
                f"{name}() takes keyword arguments only ({', '.join(type(self).model_fields)}), "
                f"not the positional {describe_value(args[0])}"
            )
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise self.config_error(exc) from None

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        # pydantic takes True for 1; no option of these models is a flag, so it is a mistake
        if isinstance(value, bool):
            raise ValueError("a bool is not accepted here")
        return value

    @classmethod
    def config_error(cls, error: ValidationError) -> ConfigError:
        """The :class:`ConfigError` for ``error``: one sentence per wrong argument.

        ``metadata["problems"]`` holds ``[argument, what is wrong]`` pairs, so that
        the config loader can name the key of a file instead.
        """
        by_alias = {f.alias: name for name, f in cls.model_fields.items() if f.alias}
        problems: list[list[str]] = []
        for problem in error.errors():
            given = str(problem["loc"][0]) if problem["loc"] else ""
            if any(given == seen for seen, _ in problems):
                continue  # a union reports each alternative; one sentence is enough
            if problem["type"] == "extra_forbidden":
                problems.append([given, f"is unknown; {cls.__name__} accepts "
                                        f"{', '.join(cls.model_fields)}"])
                continue
            accepts = cls.ACCEPTS.get(by_alias.get(given, given), "a valid value")
            wrong = f"must be {accepts}, not {describe_value(problem['input'])}"
            if problem["type"] == "value_error" and not isinstance(problem["input"], bool):
                wrong += f" ({problem['msg'].removeprefix('Value error, ')})"  # a validator's
            problems.append([given, wrong])
        sentences = "; ".join(f"{given} {wrong}" for given, wrong in problems)
        return ConfigError(f"{cls.__name__}: {sentences}", metadata={"problems": problems})


_SECONDS_OR_NONE = "a positive number of seconds or None"
_TOKENS = "a whole number of tokens, 1 or more"


class Timeout(CheckedModel):
    """Timers, in seconds; ``None`` turns one off.

    :param initial_token: from the start of an attempt (including connecting)
        to its first token.
    :param inter_token: the longest silence between two stream items once text
        flows. A stall is detected within ``inter_token * 1.25``.
    :param total: the whole session, retries and backoff included; when it
        runs out the session ends with ``TOTAL_TIMEOUT``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    ACCEPTS: ClassVar[Mapping[str, str]] = {
        "initial_token": _SECONDS_OR_NONE,
        "inter_token": _SECONDS_OR_NONE,
        "total": _SECONDS_OR_NONE,
    }

    initial_token: float | None = Field(30.0, gt=0)
    inter_token: float | None = Field(30.0, gt=0)
    total: float | None = Field(None, gt=0)


class CheckIntervals(CheckedModel):
    """How often (in tokens) streaming checks run.

    :param guardrails: run streaming guardrail checks on the text of every
        ``guardrails`` tokens. ``1`` checks each token before it is delivered;
        the default ``16`` (the existing L0 checks every 15) finds a violation
        at most fifteen tokens late (those are then announced with a
        ``Discard``): a check has a fixed cost of a few microseconds, which
        sixteen tokens share.
    :param drift: run the drift detector every ``drift`` tokens.
    :param checkpoint: save a checkpoint every ``checkpoint`` tokens (of text
        that passed the streaming checks).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    ACCEPTS: ClassVar[Mapping[str, str]] = {
        "guardrails": _TOKENS,
        "drift": _TOKENS,
        "checkpoint": _TOKENS,
    }

    guardrails: int = Field(16, ge=1)
    drift: int = Field(32, ge=1)
    checkpoint: int = Field(16, ge=1)
