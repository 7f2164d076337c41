"""No test and no documented example leaves temporary files or directories behind.

Tests write under pytest's ``tmp_path`` (pytest prunes old runs itself); documentation
examples use ``tempfile.TemporaryDirectory()``, removed when its ``with`` block ends or by
``cleanup()``. The calls that create something nobody removes — ``mkdtemp()``, ``mkstemp()``,
``NamedTemporaryFile(delete=False)`` — are what this check finds, in every test, every
``docs/*.md`` (their python blocks run in the test suite) and every README.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAKY = re.compile(r"\b(?:mkdtemp|mkstemp)\s*\(|NamedTemporaryFile\([^)]*delete\s*=\s*False")

# docs/configuration.md belongs to other work in flight: its two examples call mkdtemp() and
# never remove the folder (the fix: ``with tempfile.TemporaryDirectory() as folder:``). Once it
# is fixed this test fails until the entry is removed, so the list cannot go stale.
KNOWN_LEAKS: set[str] = set()


def _checked_files() -> list[Path]:
    tests = list((ROOT / "tests").rglob("*.py"))
    plugin_tests = list((ROOT / "plugins").glob("*/tests/**/*.py"))
    docs = list((ROOT / "docs").rglob("*.md"))
    readmes = [ROOT / "README.md", *ROOT.glob("*/README.md"), *ROOT.glob("plugins/*/README.md")]
    here = Path(__file__).resolve()
    return [path for path in [*tests, *plugin_tests, *docs, *readmes]
            if path.resolve() != here and ".venv" not in path.parts]


def test_no_test_or_documented_example_leaves_temporary_files_behind() -> None:
    leaking = {
        path.relative_to(ROOT).as_posix()
        for path in _checked_files()
        if LEAKY.search(path.read_text(encoding="utf-8"))
    }
    assert leaking == KNOWN_LEAKS, (
        "use pytest's tmp_path in tests and tempfile.TemporaryDirectory() in examples; "
        "remove a fixed file from KNOWN_LEAKS"
    )


def test_the_check_finds_the_leaky_calls() -> None:
    assert LEAKY.search("folder = tempfile.mkdtemp()")
    assert LEAKY.search("fd, name = tempfile.mkstemp(suffix='.db')")
    assert LEAKY.search("tempfile.NamedTemporaryFile(mode='w', delete=False)")
    assert not LEAKY.search("with tempfile.TemporaryDirectory() as folder:")
    assert not LEAKY.search("tempfile.NamedTemporaryFile(mode='w')")
