"""The check tick: guardrails, drift detection and checkpoints over the text of one attempt.

A :class:`Checks` is built fresh for every attempt (rules and detector hold
per-stream state, so an attempt never inherits another attempt's verdicts).
The reader calls :meth:`Checks.tick_before` every ``session.interval`` tokens
and :meth:`Checks.tick` (forced) and :meth:`Checks.complete` at the end of the
attempt; each check sees only the
text added since it last ran (O(delta)).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from l0_core.errors import ErrorCode, GuardrailError
from l0_core.events import ObservabilityEventType as T
from l0_core.guardrails.drift import DriftDetector, DriftResult, create_detector
from l0_core.guardrails.rule import Rule, Violation, create_rules

if TYPE_CHECKING:
    from l0_core.runtime.continuation import Resume
    from l0_core.runtime.session import Session

__all__ = ["Checks"]

log = logging.getLogger("l0")


class Checks:
    """Guardrail rules, the drift detector and the checkpoint of one attempt.

    ``checked`` / ``drift_checked`` count the parts each has seen; ``validated``
    the parts that passed every streaming check (safe to continue from).
    """

    __slots__ = ("checked", "d_off", "detector", "drift_checked", "g_off", "reported", "rules",
                 "session", "streaming", "validated")

    def __init__(self, session: Session, start: int, resume: Resume | None) -> None:
        self.session = session
        self.rules: list[Rule] = create_rules(session.guardrail_items)
        self.streaming: list[Rule] = [r for r in self.rules if getattr(r, "streaming", True)]
        self.detector: DriftDetector | None = create_detector(session.drift_item)
        self.reported: set[str] = set()
        self.checked = self.drift_checked = self.validated = start
        self.g_off = self.d_off = session.chars_at(start)
        if resume is not None and resume.checkpoint:
            for rule in self.streaming:  # the kept text is part of what the rules judge
                try:
                    rule.check_delta(resume.checkpoint, 0)
                except Exception as exc:
                    log.warning("l0: guardrail %s raised %r; ignored", rule.name, exc)

    @property
    def active(self) -> bool:
        """Whether anything runs on the tick while the text streams."""
        return bool(self.streaming or self.detector is not None)

    def tick_before(self) -> None:
        """:meth:`tick` before the newest part is delivered: if a check stops the
        attempt, that part never is."""
        rec = self.session.recorder
        if rec is not None:
            rec.upto = len(self.session.state.parts) - 1  # (recorded after these events)
            rec.harvest()  # token times at the tick's granularity
        try:
            self.tick()
        except GuardrailError:
            parts = self.session.state.parts
            self.session.state._truncate(len(parts) - 1)
            raise
        finally:
            if rec is not None:
                rec.upto = None

    def tick(self, force: bool = False) -> None:
        """Each check on the text added since it last ran, when its interval is due
        (``force``: at the end of the attempt, on whatever is left)."""
        s = self.session
        n = len(s.state.parts)
        iv = s.intervals
        if self.streaming and (n - self.checked >= iv.guardrails or (force and n > self.checked)):
            self._guardrails(n)
        if self.detector is not None and (
            n - self.drift_checked >= iv.drift or (force and n > self.drift_checked)
        ):
            self._drift(self.detector, n)
        good = self.checked if self.streaming else n
        if self.detector is not None and self.drift_checked < good:
            good = self.drift_checked
        self.validated = good
        if s.continuation is not None and good - s.state.checkpoint_parts >= iv.checkpoint:
            s.save_checkpoint(good)

    def _guardrails(self, n: int) -> None:
        parts = self.session.state.parts
        start = self.checked
        delta = "".join(parts[start:n]) if n - start > 1 else parts[start]
        found: list[Violation] = []
        retired = False
        for rule in self.streaming:
            try:
                got = rule.check_delta(delta, self.g_off)
            except Exception as exc:
                log.warning("l0: guardrail %s raised %r; ignored", rule.name, exc)
                continue
            if got:
                found.extend(got)
            retired = retired or not rule.streaming  # nothing more to check while streaming
        if retired:  # (check_complete still runs for every rule)
            self.streaming = [r for r in self.streaming if r.streaming]
        self.checked = n
        self.g_off += len(delta)
        if found:
            self.apply(found, streaming=True)

    def _drift(self, detector: DriftDetector, n: int) -> None:
        s = self.session
        delta = "".join(s.state.parts[self.drift_checked:n])
        offset = self.d_off
        self.d_off = offset + len(delta)
        self.drift_checked = n
        try:
            result = detector.check_delta(delta, offset)
        except Exception as exc:
            log.warning("l0: drift detector raised %r; ignored", exc)
            if s.listeners:
                s.emit(T.DRIFT_CHECK_SKIPPED, reason=f"the detector raised {exc!r}")
            return
        new = [t for t in result.types if t not in self.reported] if result else []
        if not new:
            if s.listeners:  # every check is reported; drift once, at its onset
                s.emit(T.DRIFT_CHECK_RESULT, detected=False, score=0.0, types=[], metrics={},
                       threshold=0.5)
            return
        assert result is not None
        self._report_drift(result, new)

    def _report_drift(self, result: DriftResult, new: list[str]) -> None:
        s = self.session
        self.reported.update(new)
        s.state.drift_detected = True
        s.state.drift_types.extend(new)
        s.emit(T.DRIFT_CHECK_RESULT, detected=True, score=result.confidence, types=new,
               metrics=dict.fromkeys(new, True), threshold=0.5)
        if s.drift_action != "flag":
            raise GuardrailError(
                f"drift detected: {', '.join(new)}",
                ErrorCode.DRIFT_DETECTED if s.drift_action == "retry"
                else ErrorCode.FATAL_GUARDRAIL_VIOLATION,
                metadata={"driftTypes": new, "confidence": result.confidence},
            )

    def complete(self, other_output: bool = False) -> None:
        """Every rule's ``check_complete`` on the whole text, at the end of the attempt.

        ``other_output``: the attempt produced media or tool calls, so rules that only
        judge whether there is any output (``judges_emptiness``) are skipped."""
        s = self.session
        rules = self.rules
        if other_output:
            rules = [r for r in rules if not getattr(r, "judges_emptiness", False)]
        content = s.state.content
        started = s.clock()
        s.emit(T.GUARDRAIL_PHASE_START, phase="post", ruleCount=len(rules))
        found: list[Violation] = []
        for i, rule in enumerate(rules):
            t0 = s.clock()
            callback_id = f"cb_{i}"
            s.emit(T.GUARDRAIL_RULE_START, index=i, ruleId=rule.name, callbackId=callback_id)
            try:
                got = list(rule.check_complete(content) or ())
            except Exception as exc:
                log.warning("l0: guardrail %s raised %r; ignored", rule.name, exc)
                got = []
            if not got:
                s.emit(T.GUARDRAIL_RULE_RESULT, index=i, ruleId=rule.name, passed=True,
                       violation=None)
            found.extend(got)
            s.emit(T.GUARDRAIL_RULE_END, index=i, ruleId=rule.name, passed=not got,
                   callbackId=callback_id, durationMs=(s.clock() - t0) * 1000.0)
        s.emit(T.GUARDRAIL_PHASE_END, phase="post", passed=not found,
               violations=[v.to_dict() for v in found],
               durationMs=(s.clock() - started) * 1000.0)
        if found:
            self.apply(found, streaming=False)

    def apply(self, found: list[Violation], *, streaming: bool) -> None:
        """Record violations; raise for the first that stops the attempt or the session."""
        s = self.session
        for i, v in enumerate(found):
            s.state.violations.append(v)
            s.emit(T.GUARDRAIL_RULE_RESULT, index=i, ruleId=v.rule, passed=False,
                   violation=v.to_dict(), streaming=streaming, _violation=v)
        for halting, code in ((True, ErrorCode.FATAL_GUARDRAIL_VIOLATION),
                              (False, ErrorCode.GUARDRAIL_VIOLATION)):
            hits = [v for v in found if (v.halts if halting else v.severity == "error")]
            if hits:
                raise GuardrailError(f"guardrail {hits[0].rule}: {hits[0].message}", code,
                                     violations=hits)


def _nothing_to_check() -> Checks:
    checks = Checks.__new__(Checks)
    checks.rules, checks.streaming, checks.detector = [], [], None
    checks.checked = checks.drift_checked = checks.validated = checks.g_off = checks.d_off = 0
    return checks


# Shared by every attempt of every session with nothing to check: it holds no state that
# changes (``active`` is false, so nothing ticks it or reads its counters).
NO_CHECKS = _nothing_to_check()
