"""What each distribution ships: its own package only, typed (``py.typed``), with the
Apache-2.0 LICENSE, project URLs, and a README whose links work on PyPI."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LICENSE = ROOT / "LICENSE"

# (folder, distribution, package)
DISTRIBUTIONS = [
    (".", "l0-core", "l0_core"),
    ("l0-openai", "l0-openai", "l0_openai"),
    ("plugins/l0-plugin-example", "l0-plugin-example", "l0_plugin_example"),
    ("l0-sentry", "l0-sentry", "l0_sentry"),
    ("l0-otel", "l0-otel", "l0_otel"),
    ("l0-litellm", "l0-litellm", "l0_litellm"),
    ("plugins/l0-store-redis", "l0-store-redis", "l0_store_redis"),
    ("plugins/l0-store-postgres", "l0-store-postgres", "l0_store_postgres"),
]
IDS = [distribution for _, distribution, _ in DISTRIBUTIONS]


def _project(folder: str) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads(
        (ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def _build(folder: str, target: str, out: Path) -> Path:
    """Build one target (``wheel`` or ``sdist``) of the distribution in ``folder`` into ``out``."""
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", target, "-d", str(out)],
                   cwd=ROOT / folder, check=True, capture_output=True, timeout=300)
    (built,) = out.iterdir()
    return built


# -- built distributions (hatchling, no network) --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("folder", "distribution", "package"), DISTRIBUTIONS, ids=IDS)
def test_wheel_ships_its_package_typed_with_the_license(
    tmp_path: Path, folder: str, distribution: str, package: str
) -> None:
    wheel = zipfile.ZipFile(_build(folder, "wheel", tmp_path))
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names}
    # the root wheel never ships plugins/, the member folders or tests
    (dist_info,) = [top for top in tops if top.endswith(".dist-info")]
    assert tops == {package, dist_info}
    assert f"{package}/py.typed" in names
    assert wheel.read(f"{dist_info}/licenses/LICENSE") == LICENSE.read_bytes()
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0\n" in metadata
    assert "License-File: LICENSE\n" in metadata
    assert "Project-URL: Source, https://github.com/ai2070/l0-python\n" in metadata


@pytest.mark.slow
@pytest.mark.parametrize(("folder", "distribution", "package"), DISTRIBUTIONS, ids=IDS)
def test_sdist_ships_the_license_and_the_typed_package(
    tmp_path: Path, folder: str, distribution: str, package: str
) -> None:
    with tarfile.open(_build(folder, "sdist", tmp_path)) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", f"{package}/py.typed"} <= names
    assert not any(name.startswith(("plugins/", "l0-openai/", "l0-sentry/", "l0-otel/",
                                    "l0-litellm/", "tests/", "docs/", "bench/"))
                   for name in names if package == "l0_core")


# -- the sources ----------------------------------------------------------------------------------


def test_license_is_the_apache_2_text_and_each_distribution_has_a_copy() -> None:
    text = LICENSE.read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert text.rstrip().endswith("limitations under the License.")
    for folder, distribution, _ in DISTRIBUTIONS:
        project = _project(folder)
        assert project["license"] == "Apache-2.0", distribution
        assert project["license-files"] == ["LICENSE"], distribution
        # hatchling takes license files from the distribution's own folder: a copy, kept equal
        assert (ROOT / folder / "LICENSE").read_bytes() == LICENSE.read_bytes(), distribution


@pytest.mark.parametrize(("folder", "distribution", "package"), DISTRIBUTIONS, ids=IDS)
def test_every_package_is_typed(folder: str, distribution: str, package: str) -> None:
    assert (ROOT / folder / package / "py.typed").is_file()
    assert "Typing :: Typed" in _project(folder)["classifiers"]  # type: ignore[operator]


def test_project_urls_are_the_same_for_every_distribution() -> None:
    urls = [_project(folder)["urls"] for folder, _, _ in DISTRIBUTIONS]
    assert all(url == urls[0] for url in urls)
    assert urls[0]["Source"] == "https://github.com/ai2070/l0-python"  # type: ignore[index]


_LINK = re.compile(r"\]\(([^)\s]+)\)|<a\s[^>]*href=\"([^\"]+)\"|<img\s[^>]*src=\"([^\"]+)\"")


@pytest.mark.parametrize(("folder", "distribution", "package"), DISTRIBUTIONS, ids=IDS)
def test_the_readme_pypi_shows_links_absolutely(
    folder: str, distribution: str, package: str
) -> None:
    readme = ROOT / folder / str(_project(folder)["readme"])
    targets = [next(group for group in match.groups() if group)
               for match in _LINK.finditer(readme.read_text(encoding="utf-8"))]
    assert targets, f"{distribution}: its README links nowhere"
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#", "mailto:"))]
    assert relative == [], f"{distribution}: relative links do not work on PyPI"
