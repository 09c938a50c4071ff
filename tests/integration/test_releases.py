"""Every documented cold upgrade and its rollback on the sandbox (issue 28), the tables compared independently.

One parametrized test on the small sandbox (one node, few heartbeats): the targets the seeds did not cover,
from the versions their pages name. The seeds' own targets (3.3.1, 4.0.0, 4.2.9) have their tests in
test_upgrade_3x.py and test_upgrade_429.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, assert_restored
from .test_upgrade_429 import assert_passed

pytestmark = pytest.mark.integration

CASES = [
    # (the version the sandbox runs, its target, upgrade runbook, rollback runbook, the upgrade's steps, its backup step)
    ("3.2.2-CE", "4.1.0", "upgrade_410", "rollback_410", 12, 5),  # OD V4.1.0: with the Connector fix
    ("4.1.1-CE", "4.2.0", "upgrade_420", "rollback_420", 11, 4),  # OD V4.2.0: only from 4.1.1
    ("4.2.0-CE", "4.2.1", "upgrade_421", "rollback_421", 11, 4),  # OD V4.2.1: only from 4.2.0
    ("4.2.1-CE", "4.2.2", "upgrade_422", "rollback_422", 11, 4),  # OD V4.2.2: only from 4.2.1
    ("4.2.4-CE", "4.2.6", "upgrade_426", "rollback_426", 11, 4),  # field notes: 4.2.6 from 4.2.4
]


@pytest.mark.parametrize(("start", "target", "up", "down", "steps", "backup"), CASES, ids=[c[2] for c in CASES])
def test_a_documented_cold_upgrade_and_its_rollback(sandbox, start, target, up, down, steps, backup):
    sandbox.fresh("--version", start, "--nodes", "1", "--heartbeat-rows", "2000")
    old = sandbox.containers()["n1"]["oms_ce"]
    assert_passed(sandbox.runbook(up, "--until", str(backup)), backup + 1)
    at_backup = sandbox.snapshot()
    p = sandbox.runbook(up)
    assert_passed(p, steps)
    now = sandbox.containers()["n1"]["oms_ce"]
    assert now["running"] and target in now["image"] and now["binds"] == old["binds"]
    summary = json.loads((sandbox.last_report(up) / "summary.json").read_text())
    assert summary["versions"] == {"before": start, "target": f"{target}-CE"}
    assert_passed(sandbox.runbook(down), 8)
    back = sandbox.containers()["n1"]["oms_ce"]
    assert back["id"] == old["id"] and back["running"]
    assert_restored(at_backup, sandbox.snapshot())


@pytest.mark.parametrize(
    ("source", "target", "said"),
    [
        ("3.3.1-CE", "4.0.0-CE", ["-> 4.0.0-CE", "pytest runbooks/upgrade_400 --env FILE"]),
        (
            "4.1.1-CE",
            "4.2.9-CE",
            ["-> 4.2.0-CE", "pytest runbooks/upgrade_420 --env FILE", "-> 4.2.9-CE", "pytest runbooks/upgrade_429"],
        ),
        ("4.1.0-CE", "4.2.0-CE", ["4.1.1-CE changed the metadata", "Deploy 4.2.0-CE anew"]),
        ("4.2.9-CE", "4.2.13-CE", ["-> 4.2.13-CE  (doc OD 309, hot: in place", "pytest runbooks/hot_upgrade_4213"]),
        ("4.2.0-CE", "4.2.13-CE", ["-> 4.2.1-CE", "-> 4.2.13-CE", "back: pytest runbooks/hot_rollback_4213"]),
        ("4.2.9-CE", "4.2.11-CE", ["no documented cold upgrade leads to 4.2.11-CE", "a runbook for 4.2.13-CE"]),
    ],
)
def test_omsup_path_plans_across_every_documented_upgrade(source, target, said):
    p = subprocess.run(
        [sys.executable, "-m", "omsup", "path", source, target], cwd=ROOT, capture_output=True, text=True
    )
    out = p.stdout + p.stderr
    for s in said:
        assert s in out, out
