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


def test_the_lock_pins_every_declared_dependency_once():
    import re

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = conf["dependencies"] + conf["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=~!\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in declared}
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"requirements.lock: {line!r} is not name==version"
            key = name.lower().replace("_", "-")
            assert key not in pins, f"requirements.lock pins {name} twice"
            pins[key] = version
    assert names <= set(pins), (
        f"requirements.lock lacks {sorted(names - set(pins))}: regenerate it (its header says how)"
    )
    assert "omsup" not in pins
