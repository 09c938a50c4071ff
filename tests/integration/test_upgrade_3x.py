"""The other documented upgrades on the sandbox: V3.3.1-CE (doc 003) and V4.0.0-CE (doc 001/002),
with the Connector dbType fix, and their rollbacks."""

import json

import pytest

from .conftest import assert_restored, without_volatile
from .test_upgrade_429 import assert_passed, assert_stopped_at

pytestmark = pytest.mark.integration


def connector_sources(sandbox) -> dict[str, dict]:
    cm = sandbox.status()["metadb"]["cm"]
    rows = sandbox.sql("SELECT name, source_config FROM connector_task", cm)
    return {r[0].split(":")[2].split("-incr-")[1]: json.loads(r[1]) for r in rows}  # by the short name: orders-1 ...


def has_type(source: dict) -> bool:
    return "dbType" in source or "db_type" in source


@pytest.mark.parametrize(
    ("start", "runbook", "target", "rollback", "steps", "metadb"),
    [
        ("3.3.0-CE", "upgrade_331", "3.3.1", "rollback_331", 12, "oceanbase"),
        ("3.3.0-CE", "upgrade_331", "3.3.1", "rollback_331", 12, "mariadb"),
        ("3.2.2-CE", "upgrade_400", "4.0.0", "rollback_400", 12, "oceanbase"),
        ("3.3.1-CE", "upgrade_400", "4.0.0", "rollback_400", 12, "oceanbase"),  # OD V4.0.0 faq (it was refused)
    ],
)
def test_upgrade_fixes_dbtype_and_rollback_restores(sandbox, start, runbook, target, rollback, steps, metadb):
    sandbox.fresh("--version", start, "--nodes", "1", "--metadb", metadb)
    before = connector_sources(sandbox)
    assert any(not has_type(s) for s in before.values())  # Connectors left by projects created on 3.2.2
    old = sandbox.containers()
    assert_passed(sandbox.runbook(runbook, "--until", "5"), 6)  # up to and with the backup
    at_backup = sandbox.snapshot()
    p = sandbox.runbook(runbook)
    assert_passed(p, steps)
    after = connector_sources(sandbox)
    needing = {"orders-2", "events-1", "events-2"}  # created on 3.2.2, without dbType/db_type
    for cid in needing:
        assert after[cid]["dbType"] in ("MYSQL", "OB_MYSQL"), (cid, after[cid])
    assert after["users-1"] == before["users-1"]  # db_type present: left alone
    assert "checkpoint" in after["events-2"] and "checkpoint" not in before["events-2"]  # it lacked one too
    if start != "3.2.2-CE":  # a project created on 3.3.0 does not need it
        assert not has_type(after["archive-1"])
    (ctr,) = [c for name, c in sandbox.containers()["n1"].items() if name == "oms_ce"]
    assert ctr["image"].endswith(f":feature_{target}-ce") and ctr["binds"] == old["n1"]["oms_ce"]["binds"]
    if target == "4.0.0":
        assert "clear the browser cache" in p.output.lower()
        summary = json.loads((sandbox.last_report(runbook) / "summary.json").read_text())
        assert any("browser cache" in a for a in summary["operator_actions"])
    assert_passed(sandbox.runbook(rollback), 8)
    (ctr,) = [c for name, c in sandbox.containers()["n1"].items() if name == "oms_ce"]
    assert ctr["id"] == old["n1"]["oms_ce"]["id"] and ctr["running"]
    assert ctr["image"].endswith(f":feature_{start.removesuffix('-CE')}-ce")
    assert_restored(at_backup, sandbox.snapshot())  # equal tables, seen independently


def test_upgrade_331_from_322_is_refused_with_the_documented_path(sandbox):
    sandbox.fresh("--version", "3.2.2-CE", "--nodes", "1")
    snap, ctrs = without_volatile(sandbox.snapshot()), sandbox.containers()
    p = sandbox.runbook("upgrade_331")
    assert_stopped_at(p, 0, "V3.2.2-CE > V3.3.0-CE > V3.3.1-CE")
    assert without_volatile(sandbox.snapshot()) == snap and sandbox.containers() == ctrs


def test_single_node_runbook_refuses_several_nodes(sandbox):
    sandbox.fresh("--version", "3.3.0-CE", "--nodes", "2")
    assert_stopped_at(sandbox.runbook("upgrade_331"), 0, "single-node procedure")


def test_connector_dbtype_alone_uses_batch_om_where_a_host_has_one_source_type(sandbox):
    sandbox.fresh("--version", "3.3.0-CE", "--nodes", "2")
    p = sandbox.runbook("connector_dbtype")
    assert_passed(p, 2)
    ledger = json.loads((sandbox.last_report("connector_dbtype") / "ledger.json").read_text())
    plan = ledger["facts"]["connector_fixes"]
    # n2 (127.0.0.12) carries OB_MYSQL and TIDB sources: one by one; n1 only MYSQL and POSTGRESQL
    hows = {(x["host"], x["how"]) for x in plan}
    assert ("127.0.0.12", "one") in hows
    after = connector_sources(sandbox)
    assert after["events-1"]["dbType"] == "OB_MYSQL" and after["orders-2"]["dbType"] == "MYSQL"
    assert_passed(sandbox.runbook("connector_dbtype"), 2)  # idempotent: nothing left to fix


def test_omsup_path_331_to_400_names_upgrade_400(sandbox):
    import subprocess
    import sys

    from .conftest import ROOT

    p = subprocess.run(
        [sys.executable, "-m", "omsup", "path", "3.3.1-CE", "4.0.0-CE"], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0 and "-> 4.0.0-CE" in p.stdout and "runbooks/upgrade_400" in p.stdout, p.stdout + p.stderr


def test_without_the_cm_by_name_api_the_dbtype_step_gives_the_consoles_steps_and_resumes(sandbox):
    """Variant cm-no-byname (the *ByName endpoints are documented from V4.0.0 only): on 3.3.0 the step calls
    nothing, stops before any change with doc 000's console procedure; done by hand, the run goes on."""
    sandbox.fresh("--version", "3.3.0-CE", "--nodes", "1", "--variant", "cm-no-byname")
    before = connector_sources(sandbox)
    p = sandbox.runbook("upgrade_331")
    assert_stopped_at(p, 1, "does not answer the *ByName endpoints", "OPS & Monitoring > Component > Connector")
    assert connector_sources(sandbox) == before  # nothing was changed
    cm = sandbox.status()["metadb"]["cm"]
    for name, raw in sandbox.sql("SELECT name, source_config FROM connector_task", cm):  # the console, by hand
        src = json.loads(raw)
        if not has_type(src):
            src["dbType"] = "MYSQL"
            sandbox.sql(f"UPDATE connector_task SET source_config='{json.dumps(src)}' WHERE name='{name}'", cm)
    assert_passed(sandbox.runbook("upgrade_331"), 12)


def test_a_connector_stopped_for_its_fix_runs_again_whatever_fails_after(sandbox):
    """The CM updates only a stopped Connector (doc): a running one is stopped, and when its update then fails
    it is started again (startByName, resume=false), and the run stops naming the failure."""
    sandbox.fresh("--version", "3.3.0-CE", "--nodes", "1")
    cm = sandbox.status()["metadb"]["cm"]
    running = {r[0] for r in sandbox.sql("SELECT name FROM connector_task WHERE status='RUNNING'", cm)}
    assert running
    sandbox.fault("cm-update-fails")
    p = sandbox.runbook("connector_dbtype")
    assert p.returncode != 0 and "sandbox fault: the update failed" in p.output, p.output[-3000:]
    assert {r[0] for r in sandbox.sql("SELECT name FROM connector_task WHERE status='RUNNING'", cm)} == running
    events = (sandbox.last_report("connector_dbtype") / "events.jsonl").read_text()
    assert "startByName?taskName=" in events and "resume=false" in events
    sandbox.fault("clear")
    assert_passed(sandbox.runbook("connector_dbtype"), 2)
