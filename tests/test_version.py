"""The version has one source: ``intacct_connect.__version__`` (hatchling reads it from there)."""

import tomllib
from pathlib import Path

from packaging.version import Version

import intacct_connect

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_a_pep_440_version() -> None:
    assert str(Version(intacct_connect.__version__)) == intacct_connect.__version__


def test_pyproject_reads_the_version_from_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"], "the version belongs in __init__.py only"
    assert "version" in pyproject["project"]["dynamic"]
    path = pyproject["tool"]["hatch"]["version"]["path"]
    assert (ROOT / path).resolve() == Path(intacct_connect.__file__).resolve()
