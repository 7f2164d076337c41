"""``import l0_core`` is lazy (PEP 562): it builds no pydantic model and scans no entry
point; each public name is imported the first time it is read.

What a bare import loads is checked in a fresh interpreter, since this test process has
long since imported everything. No timing is asserted here: ``bench/run.py --sections
import`` measures it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import l0_core

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "l0_core" / "__init__.py"

# What ``import l0_core`` alone must leave unimported: pydantic (and the config models built
# from it), the plugin host and entry-point discovery, and the runtime.
NOT_IMPORTED_BY_A_BARE_IMPORT = (
    "pydantic",
    "l0_core.plugins.config",
    "l0_core.plugins.host",
    "l0_core.plugins.builtins",
    "pluggy",
    "importlib.metadata",
    "l0_core.runtime.session",
    "asyncio",
)


def _in_fresh_interpreter(code: str) -> object:
    """Run ``code`` in a new interpreter that imports this checkout's l0_core; it prints a
    JSON value as its last line."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bare_import_loads_no_pydantic_no_plugin_host_no_runtime() -> None:
    loaded = _in_fresh_interpreter(
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import l0_core\n"
        f"watched = {NOT_IMPORTED_BY_A_BARE_IMPORT!r}\n"
        "print(json.dumps({'new': sorted(set(sys.modules) - before),\n"
        "                  'watched': [m for m in watched if m in sys.modules]}))\n"
    )
    assert isinstance(loaded, dict)
    assert loaded["watched"] == []
    assert [m for m in loaded["new"] if m.startswith("l0_core")] == ["l0_core"]


def test_bare_import_builds_no_plugin_host() -> None:
    host_built = _in_fresh_interpreter(
        "import json, sys\n"
        "import l0_core\n"
        "print(l0_core.__version__, file=sys.stderr)\n"
        "host = sys.modules.get('l0_core.plugins.host')\n"
        "print(json.dumps(host is not None and host._host is not None))\n"
    )
    assert host_built is False


def test_reading_a_light_name_does_not_import_the_runtime() -> None:
    loaded = _in_fresh_interpreter(
        "import json, sys\n"
        "import l0_core as l0\n"
        "specs = l0.Guardrails.recommended()\n"
        "l0.ErrorCode, l0.Token\n"
        "print(json.dumps([m for m in ('pydantic', 'l0_core.runtime.session',\n"
        "                              'l0_core.plugins.host') if m in sys.modules]))\n"
    )
    assert loaded == []


def test_run_wrap_and_guardrails_resolve_in_a_fresh_interpreter() -> None:
    resolved = _in_fresh_interpreter(
        "import json, l0_core as l0\n"
        "print(json.dumps([l0.run.__module__, l0.wrap.__module__, l0.Guardrails.__module__]))\n"
    )
    assert resolved == [l0_core._EXPORTS[name] for name in ("run", "wrap", "Guardrails")]


@pytest.mark.parametrize("name", l0_core.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(l0_core, name)
    assert value is not None
    assert vars(l0_core)[name] is value  # kept: the next read is a plain attribute


def test_renamed_export_is_the_original() -> None:
    from l0_core.plugins.config import reload

    assert l0_core.reload_config is reload


def test_dir_lists_every_public_name() -> None:
    listed = dir(l0_core)
    assert set(l0_core.__all__) <= set(listed)
    assert listed == sorted(listed)
    assert "__version__" in listed


def test_unknown_attribute_raises_the_usual_attribute_error() -> None:
    unknown = "no_such_name"  # a variable: type checkers rightly reject l0_core.no_such_name
    with pytest.raises(AttributeError, match=r"^module 'l0_core' has no attribute 'no_such_name'$"):
        getattr(l0_core, unknown)
    assert getattr(l0_core, unknown, "default") == "default"
    assert not hasattr(l0_core, "_resolve_me")


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from l0_core import *", namespace)
    assert set(l0_core.__all__) <= set(namespace)


def _type_checking_imports() -> set[str]:
    """The names the ``if TYPE_CHECKING:`` block of l0_core/__init__.py imports."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If)
                and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    return {alias.asname or alias.name for node in block.body
            if isinstance(node, ast.ImportFrom) for alias in node.names}


def test_all_lazy_table_and_type_checking_imports_agree() -> None:
    lazy_names = set(l0_core._EXPORTS)
    assert lazy_names == set(l0_core.__all__) - {"__version__"}
    assert _type_checking_imports() == lazy_names


def test_lazy_table_points_where_the_type_checking_imports_do() -> None:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("l0_core"):
            for alias in node.names:
                renamed = "" if alias.asname is None else f":{alias.name}"
                assert l0_core._EXPORTS[alias.asname or alias.name] == node.module + renamed


def test_bench_import_section_runs_alone(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--sections", "import",
         "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7. Cold import" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) == {"meta", "import", "budgets"}
    section = data["import"]
    rows = {row["name"]: row for row in section["rows"]}
    assert set(rows) | {s["name"] for s in section["skipped"]} == {
        "python", "import pydantic", "import l0_core", "l0_core.run"}
    row = rows["import l0_core"]
    assert row["budget_ms"] == 100.0
    assert isinstance(row["budget_ok"], bool)  # reported, never asserted (shared machines)
    assert 0 < row["import_min_ms"] <= row["import_median_ms"] < row["wall_median_ms"]
