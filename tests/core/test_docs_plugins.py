"""The plugin documentation keeps up with the contract, and every documented example runs.

(a) every hook in ``l0_core/plugins/hookspecs.py`` and each of its parameters is documented in
    ``docs/plugins.md``;
(b) every hook is exercised by some test file under ``tests/`` or ``plugins/``;
(c) every ```python block in ``docs/*.md`` runs; the blocks of one document run in order in
    one fresh namespace (a block preceded by a ``<!-- no-test -->`` line is skipped: only for
    code that cannot run here).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from l0_core.plugins import config, hookspecs
from l0_core.plugins import host as plugins

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PLUGINS_MD = DOCS / "plugins.md"
SKIP_MARK = "<!-- no-test -->"

HOOKS = {
    name: fn
    for name, fn in vars(hookspecs).items()
    if name.startswith("l0_") and inspect.isfunction(fn)
}


def test_hookspecs_are_found() -> None:
    assert set(HOOKS) >= {"l0_register_adapters", "l0_register_guardrails",
                          "l0_register_retry_policies", "l0_register_observers",
                          "l0_classify_error", "l0_wrap_client"}


# -- (a) every hook and parameter is documented -------------------------------------------------


def _section(text: str, hook: str) -> str:
    """The text under the heading that names ``hook``, up to the next heading."""
    match = re.search(rf"^(#+) .*`{hook}\(.*$", text, re.MULTILINE)
    assert match is not None, f"docs/plugins.md has no heading for the hook {hook}"
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_and_parameter_is_documented(hook: str) -> None:
    section = _section(PLUGINS_MD.read_text(encoding="utf-8"), hook)
    for parameter in inspect.signature(HOOKS[hook]).parameters:
        assert f"`{parameter}`" in section, (
            f"docs/plugins.md: the section of {hook} does not describe its parameter "
            f"`{parameter}`"
        )
    for topic in ("**When:**", "**Arguments:**", "**Returns:**"):
        assert topic in section, f"docs/plugins.md: the section of {hook} lacks {topic}"


@pytest.mark.parametrize(
    "topic",
    ["L0_DISABLE_PLUGIN_AUTOLOAD", "L0_PLUGINS", "L0_DISABLE_PLUGINS", "entry-points.l0",
     "l0 plugins", "l0_core.testing", "PluginHost", "register_plugin", "ConfigError",
     "FIRST_PARTY"],
)
def test_plugins_guide_covers(topic: str) -> None:
    assert topic in PLUGINS_MD.read_text(encoding="utf-8")


# -- (b) every hook is tested -----------------------------------------------------------------


def _test_files() -> list[Path]:
    here = Path(__file__).resolve()
    return [
        path
        for top in (ROOT / "tests", ROOT / "plugins")
        for path in top.rglob("test_*.py")
        if path.resolve() != here and ".venv" not in path.parts
    ]


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_a_test(hook: str) -> None:
    users = [p for p in _test_files()
             if re.search(rf"\b{hook}\b", p.read_text(encoding="utf-8"))]
    assert users, f"no test file under tests/ or plugins/ mentions the hook {hook}"


# -- (c) every python block in docs/*.md runs ----------------------------------------------------
#
# Each document runs like a fresh interpreter session: its blocks run in order in one new
# namespace (so a guide may import once at the top), with fresh plugin and config state.


def _python_blocks(doc: Path) -> list[tuple[int, str, bool]]:
    """``(first line, source, skipped)`` of every ```python block of ``doc``."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()),
                          "")
            blocks.append((start + 1, "\n".join(lines[start:end]) + "\n", before == SKIP_MARK))
            i = end
        i += 1
    return blocks


DOC_FILES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]  # the README quickstart too


def test_docs_have_python_examples() -> None:
    for name in ("plugins.md", "configuration.md"):
        assert [b for b in _python_blocks(DOCS / name) if not b[2]], f"{name} has no examples"


@pytest.fixture
def fresh_process_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """As in a new process: default plugins, no config files in reach, no L0_* variables."""
    for var in [v for v in __import__("os").environ if v.startswith("L0_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    plugins.reset_host()
    config.set_config(None)
    yield
    plugins.reset_host()
    config.set_config(None)


def run_block(source: str, line: int, filename: str, namespace: dict[str, Any]) -> None:
    """Run one block; tracebacks point at the block's lines in the document."""
    padded = "\n" * (line - 1) + source
    code = compile(padded, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                   dont_inherit=True)
    if code.co_flags & inspect.CO_COROUTINE:  # top-level await
        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)


@pytest.mark.usefixtures("fresh_process_state")
@pytest.mark.parametrize("doc", DOC_FILES, ids=[d.name for d in DOC_FILES])
def test_python_blocks_run(doc: Path) -> None:
    filename = str(doc.relative_to(ROOT))
    namespace: dict[str, Any] = {"__name__": f"docs_{doc.stem}"}
    for line, source, skipped in _python_blocks(doc):
        if skipped:
            continue
        try:
            run_block(source, line, filename, namespace)
        except BaseException as exc:
            raise AssertionError(
                f"{filename}: the python block at line {line} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def test_no_test_marker_skips_a_block(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("```python\nx = 1\n```\n\n<!-- no-test -->\n```python\nraise SystemExit\n```\n"
                   "```python\ny = await __import__('asyncio').sleep(0, result=x)\n```\n")
    blocks = _python_blocks(doc)
    assert [(b[0], b[2]) for b in blocks] == [(2, False), (7, True), (10, False)]
    namespace: dict[str, Any] = {}
    for line, source, skipped in blocks:
        if not skipped:
            run_block(source, line, "x.md", namespace)
    assert namespace["y"] == 1
