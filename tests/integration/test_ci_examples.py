"""The example pipelines of docs/ci/ (GitLab CI, GitHub Actions): what they promise, and the very commands
they run, against the sandbox (secrets from the environment as a CI's secret store gives them, no stdin)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, STATE

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "docs" / "ci" / "omsup-ci.sh"


def ci(action: str, env_file: str, reports: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "true", "OMSUP_ENV": env_file, "OMSUP_REPORTS": str(reports), **extra}
    return subprocess.run(
        ["bash", str(SCRIPT), action],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_both_pipelines_run_the_script_one_at_a_time_with_secrets_from_the_store():
    gl = yaml.safe_load((ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text())
    gh = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    # the same commands in both
    gl_scripts = {job: gl[job]["script"] for job in ("probe", "upgrade", "rollback")}
    assert gl_scripts == {a: [f"bash docs/ci/omsup-ci.sh {a}"] for a in ("probe", "upgrade", "rollback")}
    gh_steps = gh["jobs"]["omsup"]["steps"]
    assert any(s.get("run", "").startswith("bash docs/ci/omsup-ci.sh") for s in gh_steps)
    # the probe on a schedule, the changes on demand
    assert any("schedule" in r["if"] and "probe" in r["if"] for r in gl["probe"]["rules"])
    assert all(r.get("when") == "manual" for j in ("upgrade", "rollback") for r in gl[j]["rules"])
    assert gh[True]["schedule"] and gh[True]["workflow_dispatch"]["inputs"]["action"]["options"] == [
        "probe",
        "upgrade",
        "rollback",
    ]  # yaml reads `on:` as True
    # a control machine's set-up: no engine, no MariaDB server, no sshd, no browser
    assert "bash scripts/setup.sh --control" in " ".join(gl["default"]["before_script"])
    assert any(s.get("run", "").startswith("bash scripts/setup.sh --control") for s in gh_steps)
    # one operator at a time
    assert gl["default"]["resource_group"] and gh["concurrency"]["cancel-in-progress"] is False
    # junit and the run folder kept
    assert gl["default"]["artifacts"]["reports"]["junit"] == "reports/*/junit.xml"
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in gh_steps)
    # secrets from the store, host keys verified
    text = (ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text() + (
        ROOT / "docs" / "ci" / "github-actions.yml"
    ).read_text()
    assert "${{ secrets.OMS_META_PASSWORD }}" in text and "known_hosts" in text
    assert "StrictHostKeyChecking=no" not in text
    for line in text.splitlines():  # every secret a pipeline sets comes from the store
        if re.search(r"(PASSWORD|KEY|KNOWN)\w*:\s", line) and not line.lstrip().startswith("#"):
            assert "${{ secrets." in line, line


def test_the_pipeline_commands_against_the_sandbox(sandbox, tmp_path):
    sandbox.fresh()
    secrets = {
        name: (STATE / "secrets" / name).read_text(encoding="utf-8") for name in ("metadb_password", "console_password")
    }

    def from_the_store(d: dict) -> None:
        d["metadb"]["password"] = {"env": "OMS_META_PASSWORD"}
        d["console"]["password"] = {"env": "OMS_CONSOLE_PASSWORD"}

    env_file = sandbox.edited_env(from_the_store)
    store = {"OMS_META_PASSWORD": secrets["metadb_password"], "OMS_CONSOLE_PASSWORD": secrets["console_password"]}
    reports = tmp_path / "reports"
    for action, book, steps in (("probe", "probe", 1), ("upgrade", "upgrade_429", 11), ("rollback", "rollback_429", 8)):
        p = ci(action, env_file, reports, **store)
        assert p.returncode == 0, f"{action}:\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}"
        folder = Path(p.stdout.strip().splitlines()[-1].split("run folder: ", 1)[1])
        assert folder.parent == reports and folder.name.startswith(f"{book}-")
        junit = (folder / "junit.xml").read_text()
        assert junit.count("<testcase") == steps and 'name="omsup.exit_code" value="0"' in junit
        for secret in secrets.values():
            assert secret not in p.stdout + p.stderr and secret[:14] not in junit
    # one operator at a time: a run held elsewhere refuses before any change (10), and the job fails
    lock = Path(yaml.safe_load(Path(env_file).read_text())["backup"]["dir"]) / "sandbox" / ".omsup.lock"
    lock.write_text(
        json.dumps(
            {
                "runbook": "upgrade_429",
                "operator": "eve",
                "user": "eve",
                "machine": "elsewhere",
                "pid": 1,
                "since": "2026-11-24T00:00:00Z",
            }
        )
    )
    try:
        p = ci("upgrade", env_file, reports, **store)
        assert p.returncode == 10 and "another run holds the lock" in p.stdout, p.stdout[-2000:]
        # the job's log says where things stand: the lock first
        said = p.stdout.split("\nnext:\n", 1)[1]
        assert said.startswith("  a run holds the lock: upgrade_429 by eve"), p.stdout[-2000:]
    finally:
        lock.unlink()
    assert socket.gethostname() != "elsewhere"
    # a job without its environment file or with a wrong action is a usage error (4)
    assert ci("upgrade", str(tmp_path / "missing.yaml"), reports).returncode == 4
    assert ci("deploy", env_file, reports).returncode == 4
