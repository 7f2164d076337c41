"""Each distribution's wheel ships its own package only."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("folder", "package"),
    [(".", "l0_core"), ("l0-openai", "l0_openai"), ("plugins/l0-plugin-example",
                                                    "l0_plugin_example")],
)
def test_wheel_ships_only_its_package(tmp_path: Path, folder: str, package: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(ROOT / folder), "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {package}
