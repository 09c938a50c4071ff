"""The wheel's package list names every runbook folder (a runbook left out would be missing from an install)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_runbook_folder_is_a_package_of_the_wheel():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = {p.removeprefix("omsup.runbooks.") for p in conf["packages"] if p.startswith("omsup.runbooks.")}
    folders = {p.name for p in (ROOT / "runbooks").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert listed == folders, (
        f"pyproject.toml [tool.setuptools] packages: add {folders - listed}, drop {listed - folders}"
    )
    assert conf["package-dir"]["omsup.runbooks"] == "runbooks" and "omsup.runbooks" in conf["packages"]
