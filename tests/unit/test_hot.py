"""The hot upgrade's parsers and rules (issue 30): docker top, the container's backup folders, the path planner,
the release facts, and which version a container runs after a hot upgrade (the run ledgers)."""

from __future__ import annotations

import pytest

from omsup.adapters.hot import parse_backup_folders, parse_top
from omsup.errors import HostProblem
from omsup.record import Facts, NodeFacts, Record, RolledBack, RunStatus, utc_now
from omsup.releases import release_of
from omsup.steps.hot import hot_upgraded_version
from omsup.versions import Version, VersionError, check_upgrade, rule_for, upgrade_chain

TOP = """PID                 PPID                COMMAND
4101                4080                python3 /opt/standin/supervisord.py
4120                4101                python3 /opt/standin/cm.py
4190                4101                python3 /opt/standin/sync.py store
"""


def test_docker_top_is_read_per_line():
    procs = parse_top(TOP, "top")
    assert [(p.pid, p.ppid) for p in procs] == [(4101, 4080), (4120, 4101), (4190, 4101)]
    assert procs[2].args == "python3 /opt/standin/sync.py store"


@pytest.mark.parametrize("text", ["", "UID PID\n1 2", "PID PPID COMMAND\nabc 1 x", "PID PPID CMD\n12"])
def test_docker_top_refuses_what_is_not_a_listing(text):
    with pytest.raises(HostProblem, match="docker top"):
        parse_top(text, "docker top")


def test_backup_folders_are_only_the_pages_folders():
    out = "/home/admin/logs/backup20261206223011\n/home/admin/logs/backup x\nls: cannot access\n/etc/backup1\n"
    assert parse_backup_folders(out) == ["/home/admin/logs/backup20261206223011"]


def test_the_hot_rule_is_the_pages_limit():
    rule = rule_for("4.2.13-CE")
    assert rule.kind == "hot" and rule.runbook == "hot_upgrade_4213" and rule.rollback == "hot_rollback_4213"
    check_upgrade("4.2.1-CE", "4.2.13-CE")
    check_upgrade("4.2.12-CE", "4.2.13-CE")
    with pytest.raises(VersionError, match="V4.2.1"):
        check_upgrade("4.2.0-CE", "4.2.13-CE")
    assert [str(r.target) for r in upgrade_chain("4.2.8-CE", "4.2.13-CE")] == ["4.2.13-CE"]
    with pytest.raises(VersionError, match="no documented cold upgrade leads to 4.2.11-CE"):
        upgrade_chain("4.2.9-CE", "4.2.11-CE")
    assert any("refresh the browser" in n for n in release_of("4.2.13").notes)


def _hot_run(state, env: str, container: str, status=RunStatus.COMPLETE, rolled_back=False) -> Record:
    facts = Facts(target="4.2.13-CE", environment_file="/e")
    facts.nodes["n1"] = NodeFacts(
        container_id=container, name="oms_ce", image="i", image_id="sha256:1", binds=[], env=[], user_env={},
        version="4.2.8-CE", cm_nodes=[],
    )  # fmt: skip
    rec, _ = Record.open(state, "hot_upgrade_4213", env, facts)
    if rolled_back:
        rec.data.rolled_back = RolledBack(by="x", at=utc_now())
    rec.finish(status)
    return rec


def test_the_version_a_container_runs_after_a_hot_upgrade_comes_from_the_ledgers(tmp_path):
    assert hot_upgraded_version(str(tmp_path), "prod", {"n1": "c1"}) is None
    _hot_run(tmp_path, "prod", "c1", status=RunStatus.ABANDONED)
    assert hot_upgraded_version(str(tmp_path), "prod", {"n1": "c1"}) is None  # not completed
    _hot_run(tmp_path, "prod", "c1")
    assert hot_upgraded_version(str(tmp_path), "prod", {"n1": "c1"}) == Version.parse("4.2.13")
    assert hot_upgraded_version(str(tmp_path), "prod", {"n1": "other"}) is None  # another container
    assert hot_upgraded_version(str(tmp_path), "staging", {"n1": "c1"}) is None  # another environment
    _hot_run(tmp_path / "b", "prod", "c1", rolled_back=True)
    assert hot_upgraded_version(str(tmp_path / "b"), "prod", {"n1": "c1"}) is None  # rolled back
