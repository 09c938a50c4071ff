"""The wheel: built from the checkout, installed in a fresh virtual environment outside the repository.

`pytest --help` lists --env (the pytest11 entry point), `omsup --version` answers, the wheel
installs no top-level package but omsup (no `fixtures`, no `sandbox`), and a runbook runs from
a folder that has no conftest.py at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.plugin.test_runbook_plugin import RUNBOOK
from tests.unit.envfiles import BASE

from .conftest import ROOT

pytestmark = pytest.mark.integration


def sh(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # built from a copy of the checkout: the build leaves nothing in the checkout
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".venv", "node_modules", "reports", ".git", "build", "__pycache__", "*.egg-info"),
    )
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src), cwd=tmp)
    (wheel,) = (tmp / "dist").glob("omsup-*.whl")
    venv = tmp / "venv"
    sh(sys.executable, "-m", "venv", str(venv), cwd=tmp)
    sh(str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel), cwd=tmp)
    return {"wheel": wheel, "venv": venv, "tmp": tmp}


def test_the_wheel_installs_no_top_level_package_but_omsup(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"omsup"}, top
    assert "omsup/fixtures/runbook.py" in names and "omsup/plugin.py" in names
    assert not any(n.startswith(("sandbox/", "fixtures/", "tests/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(installed["wheel"]).read(entry).decode()
    assert "[pytest11]" in text and "omsup = omsup.plugin" in text and "omsup = omsup.cli:main" in text


def test_pytest_knows_the_options_and_omsup_answers_outside_the_repository(installed):
    bin_ = installed["venv"] / "bin"
    elsewhere = installed["tmp"] / "elsewhere"
    elsewhere.mkdir()
    help_text = sh(str(bin_ / "pytest"), "--help", cwd=elsewhere).stdout
    assert "--env=FILE" in help_text and "--plan" in help_text and "--until=N" in help_text
    version = sh(str(bin_ / "omsup"), "--version", cwd=elsewhere).stdout
    assert version.startswith("omsup ") and version.split()[1][0].isdigit()
    # without --env the plugin stays out of the way: an ordinary test session is untouched
    (elsewhere / "test_plain.py").write_text("def test_x():\n    assert True\n")
    out = sh(str(bin_ / "pytest"), "-q", "-p", "no:cacheprovider", cwd=elsewhere).stdout
    assert "1 passed" in out and "runbook" not in out


def test_a_runbook_runs_from_a_folder_without_conftest(installed, tmp_path):
    bin_ = installed["venv"] / "bin"
    env = json.loads(json.dumps(BASE))
    env["metadb"]["password"] = "meta-secret-1"
    env["console"]["password"] = "console-secret-1"
    env["state_dir"] = str(tmp_path / "state")
    env["backup"] = {"host": "local://", "dir": str(tmp_path / "backups")}
    (tmp_path / "backups").mkdir()
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    book = tmp_path / "runbooks" / "fake_rb"
    book.mkdir(parents=True)
    (book / "test_fake_rb.py").write_text(RUNBOOK)
    assert not (tmp_path / "conftest.py").exists()
    run_env = {"STEPLOG": str(tmp_path / "steps.log"), "PATH": "/usr/bin:/bin"}
    out = sh(
        str(bin_ / "pytest"),
        "runbooks/fake_rb",
        "--env",
        "env.yaml",
        "-p",
        "no:cacheprovider",
        cwd=tmp_path,
        env=run_env,
    ).stdout
    assert "4 passed" in out, out[-2000:]
    assert (tmp_path / "steps.log").read_text().split() == ["a", "b", "c", "d"]
    (folder,) = (tmp_path / "reports").iterdir()
    assert json.loads((folder / "summary.json").read_text())["outcome"] == "complete"


def test_the_wheel_carries_the_runbooks_every_one_of_them(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    books = sorted(p.name for p in (ROOT / "runbooks").iterdir() if (p / "__init__.py").exists())
    for name in books:
        for f in (ROOT / "runbooks" / name).glob("*.py"):
            assert f"omsup/runbooks/{name}/{f.name}" in names, f"{name}/{f.name} is not in the wheel (pyproject.toml)"


def test_the_installed_package_copies_its_runbooks_out_and_runs_the_probe_with_allure_on_path(
    installed, sandbox, tmp_path
):
    """issue 31's acceptance: a wheel in a fresh venv outside the checkout, Allure on PATH (and nowhere else:
    no OMSUP_ALLURE, no checkout beside the package), the probe against the sandbox from a copy of runbooks/,
    report.html written."""
    sandbox.fresh("--nodes", "1")
    bin_ = installed["venv"] / "bin"
    work = tmp_path / "ops"
    work.mkdir()
    out = sh(str(bin_ / "omsup"), "runbooks", str(work), cwd=work).stdout
    assert "runbooks copied" in out and (work / "runbooks" / "probe" / "test_probe.py").is_file()
    assert not (work / "conftest.py").exists()
    allure_dir = tmp_path / "allure-only"  # PATH holds allure (and node, which it runs on), nothing of the checkout
    allure_dir.mkdir()
    (allure_dir / "allure").symlink_to(ROOT / "node_modules" / ".bin" / "allure")
    node = shutil.which("node")
    assert node, "node is needed by Allure Report 3"
    (allure_dir / "node").symlink_to(node)
    path = f"{bin_}:{allure_dir}:/usr/local/bin:/usr/bin:/bin"
    run_env = {
        k: v for k, v in __import__("os").environ.items() if k not in ("OMSUP_ALLURE", "PYTHONPATH", "VIRTUAL_ENV")
    }
    run_env["PATH"] = path
    p = subprocess.run(
        [str(bin_ / "pytest"), "runbooks/probe", "--env", sandbox.env_file, "-p", "no:cacheprovider"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=900,
        env=run_env,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    (folder,) = (work / "reports").iterdir()
    html = folder / "report.html"
    assert html.is_file() and html.stat().st_size > 10_000 and not (folder / "RENDER.txt").exists()
    assert json.loads((folder / "summary.json").read_text())["outcome"] == "complete"
    # the installed package's code ran, not the checkout's
    assert str(ROOT) not in (folder / "summary.json").read_text()
