r"""The ``latex`` rule: environments, display math and inline math must be balanced.

Only output that looks like LaTeX is checked: one that has an environment
(``\begin{...}``/``\end{...}``), display math (``$$``, ``\[``), ``\(`` or a
common math command (``\frac``, ``\sum``...). Dollar signs in prose ("$5 and
$10") alone never count.

While streaming, a ``\end{x}`` with no open environment or closing another
one is reported at once (``error``). At the end: unclosed environments, an odd
number of ``$$``, unbalanced ``\[ \]`` or ``\( \)`` (``error``), and an odd
number of inline ``$`` (``warning``, since ``$`` is also a currency sign).

The scanner reads LaTeX tokens (a backslash and what follows, ``$$``, ``$``)
from each delta; a token cut by the end of a delta (``\beg``, ``\begin{ali``,
a ``$`` that may become ``$$``) is carried to the next one, so the work per
delta is O(len(delta)).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from l0_core.guardrails.rule import Severity, Violation
from l0_core.guardrails.rules._base import BuiltinRule, check_severity

__all__ = ["LatexRule"]

_TOKEN = re.compile(
    r"""
    \\(?P<env>begin|end)[ \t]{0,8}\{(?P<envname>[^{}\n]{0,50})\}
    |(?P<partial_env>\\(?:begin|end)[ \t]{0,8}(?:\{[^{}\n]{0,50})?\Z)
    |\\(?P<cmd>[A-Za-z]+)(?P<cmd_end>\Z)?
    |\\(?P<sym>.)
    |(?P<lone>\\\Z)
    |(?P<dd>\$\$)
    |(?P<d>\$)(?P<d_end>\Z)?
    """,
    re.VERBOSE | re.DOTALL,
)

_MATH_WORDS = """frac dfrac tfrac sqrt sum prod int iint oint lim infty partial nabla cdot
    cdots ldots
    times div pm mp leq geq neq approx equiv sim propto alpha beta gamma delta epsilon
    varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi
    varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega mathbb mathbf
    mathcal mathrm mathit mathsf operatorname left right big Big bigg Bigg binom overline
    underline hat bar vec dot ddot tilde widehat widetilde forall exists in notin subset
    subseteq supset cup cap emptyset rightarrow leftarrow Rightarrow Leftarrow leftrightarrow
    mapsto to log ln exp sin cos tan arcsin arccos arctan sinh cosh tanh det dim ker max min
    sup inf arg deg gcd Pr documentclass usepackage section subsection textbf textit emph
    label ref cite eqref tag text displaystyle"""
_MATH_COMMANDS = frozenset(_MATH_WORDS.split())


class LatexRule(BuiltinRule):
    """Registered as ``latex``.

    :param inline_severity: for an odd number of inline ``$`` (``warning``).
    :param severity: for everything else (``error``).
    """

    name = "latex"
    default_severity: ClassVar[Severity] = "error"

    __slots__ = ("_carry", "_dd", "_dd_pos", "_dollar", "_dollar_pos", "_env_dead", "_envs",
                 "_evidence", "_inline_sev", "_paren", "_paren_bad", "_square",
                 "_square_bad")

    def __init__(
        self,
        *,
        inline_severity: Severity = "warning",
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            severity=severity, recoverable=recoverable, streaming=streaming, **options
        )
        self._inline_sev = check_severity(inline_severity, self.name)
        self._reset()

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "inline_severity": self._inline_sev}

    def _reset(self) -> None:
        self._carry = ""
        self._envs: list[tuple[str, int]] = []  # open environments and where they began
        self._env_dead = False  # an environment error was reported: stop checking them
        self._evidence = False  # the text looks like LaTeX
        self._dd = 0  # $$ seen
        self._dd_pos = -1
        self._dollar = 0  # inline $ seen
        self._dollar_pos = -1
        self._square = 0  # open \[
        self._square_bad = -1  # where a \] came with no \[ open
        self._paren = 0
        self._paren_bad = -1

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:
        carry = self._carry
        if not carry and "\\" not in delta and "$" not in delta:
            return None
        text = carry + delta
        base = offset - len(carry)
        self._carry = ""
        found: list[Violation] | None = None
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind in ("partial_env", "lone", "cmd_end", "d_end"):
                self._carry = text[m.start() :]  # may still grow into another token
                break
            if kind == "envname":
                v = self._env(m.group("env"), m.group("envname").strip(), base + m.start())
                if v is not None:
                    if found is None:
                        found = []
                    found.append(v)  # (appended: one delta may hold many)
            elif kind == "cmd":
                if not self._evidence and m.group("cmd") in _MATH_COMMANDS:
                    self._evidence = True
            else:  # "sym", "dd" or "d"
                self._delimiter(kind, m.group("sym"), base + m.start())
        return found

    def _delimiter(self, kind: str | None, sym: str | None, pos: int) -> None:
        """Count a math delimiter at ``pos``: ``$$``, ``$``, or an escaped symbol
        (``\\[``, ``\\]``, ``\\(``, ``\\)``; any other one is no delimiter)."""
        if kind == "dd":
            self._dd += 1
            self._dd_pos = pos
            self._evidence = True
        elif kind == "d":
            self._dollar += 1
            self._dollar_pos = pos
        elif sym == "[":
            self._square += 1
            self._evidence = True
        elif sym == "]":
            if self._square:
                self._square -= 1
            elif self._square_bad < 0:
                self._square_bad = pos
        elif sym == "(":
            self._paren += 1
            self._evidence = True
        elif sym == ")":
            if self._paren:
                self._paren -= 1
            elif self._paren_bad < 0:
                self._paren_bad = pos

    def _env(self, which: str, env: str, pos: int) -> Violation | None:
        self._evidence = True
        if self._env_dead:
            return None
        envs = self._envs
        if which == "begin":
            envs.append((env, pos))
            return None
        if not envs:
            self._env_dead = True
            return self._violation(
                f"\\end{{{env}}} with no open environment", pos,
                f"remove the \\end{{{env}}} or add \\begin{{{env}}}",
            )
        top, _ = envs.pop()
        if top != env:
            self._env_dead = True
            return self._violation(
                f"\\end{{{env}}} closes \\begin{{{top}}}", pos,
                f"close \\begin{{{top}}} with \\end{{{top}}}",
            )
        return None

    def _finish(self, content: str) -> list[Violation] | None:
        if self._carry:  # a token cut by the end of the text: read it as it is
            carry, self._carry = self._carry, ""
            self._scan_final(carry, len(content) - len(carry))
        found: list[Violation] = []
        if not self._evidence:
            return found or None
        if self._envs and not self._env_dead:
            names = ", ".join(name for name, _ in self._envs)
            found.append(
                self._violation(
                    f"unclosed environment(s): {names}", self._envs[0][1],
                    "add the missing \\end{...}",
                )
            )
        if self._dd % 2:
            found.append(
                self._violation("an odd number of $$: display math is not closed",
                                self._dd_pos, "close the display math with $$")
            )
        if self._square_bad >= 0:
            found.append(self._violation("\\] with no open \\[", self._square_bad))
        elif self._square:
            found.append(self._violation("\\[ is never closed with \\]", len(content),
                                         "close the display math with \\]"))
        if self._paren_bad >= 0:
            found.append(self._violation("\\) with no open \\(", self._paren_bad))
        elif self._paren:
            found.append(self._violation("\\( is never closed with \\)", len(content),
                                         "close the inline math with \\)"))
        if self._dollar % 2:
            found.append(
                self._violation(
                    "an odd number of inline $: inline math may not be closed",
                    self._dollar_pos, "close the inline math with $ (or write \\$)",
                    severity=self._inline_sev,
                )
            )
        return found or None

    def _scan_final(self, text: str, base: int) -> None:
        """The carried tail at the end of the text, where no token can grow any more."""
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "d_end":  # a last "$"
                self._dollar += 1
                self._dollar_pos = base + m.start()
            elif kind == "cmd_end":  # a last command
                if m.group("cmd") in _MATH_COMMANDS:
                    self._evidence = True
            elif kind == "partial_env":  # "\begin{name" cut by the end: LaTeX, but no environment
                self._evidence = True
