"""upgrade_429 and rollback_429 end to end on the sandbox, checked independently of the runbooks."""

import json
from pathlib import Path

import pytest

from .conftest import STATE, assert_restored, ledger_paths, without_volatile

pytestmark = pytest.mark.integration


def assert_stopped_at(p, step: int, *texts: str, code: int | None = None) -> None:
    """The run stopped at ``step``: exit 10 when nothing had changed (a refusal), 1 otherwise."""
    out = p.output
    expected = code if code is not None else (10 if step == 0 else 1)
    assert p.returncode == expected, out[-3000:]
    assert f"STOPPED at step {step}." in out, out[-3000:]
    for t in texts:
        assert t in out, f"{t!r} not in output:\n{out[-3000:]}"


def assert_passed(p, steps: int) -> None:
    assert p.returncode == 0 and f"{steps} passed" in p.output, p.output[-4000:]


def backups_intact(sandbox, runbook: str = "upgrade_429") -> list[dict]:
    """Every backup the upgrade's ledger lists still has its recorded SHA-256 (nothing lost)."""
    import hashlib

    ledgers = ledger_paths(runbook)
    manifest = json.loads(ledgers[-1].read_text())["facts"].get("backups") or []
    for b in manifest:
        assert hashlib.sha256(Path(b["path"]).read_bytes()).hexdigest() == b["sha256"], b["path"]
    return manifest


def test_plan_changes_nothing(sandbox):
    sandbox.fresh()
    snap, ctrs, ha = without_volatile(sandbox.snapshot()), sandbox.containers(), sandbox.ha()
    p = sandbox.runbook("upgrade_429", "--plan")
    assert p.returncode == 0, p.output[-3000:]
    assert "plan 6. Start the new containers with the old binds:" in p.output and "IS_UPGRADE=true" in p.output
    assert without_volatile(sandbox.snapshot()) == snap
    assert sandbox.containers() == ctrs and sandbox.ha() == ha
    assert not (STATE / "ledgers").exists() and not list((STATE / "backups").iterdir())
    images = {t for c in sandbox.engine("n1").images.list() for t in c.tags}
    assert not any("4.2.9" in t for t in images)


@pytest.mark.parametrize("metadb", ["oceanbase", "mariadb"])
def test_upgrade_then_rollback_restores_what_was_there(sandbox, metadb):
    sandbox.fresh("--metadb", metadb)
    old = sandbox.containers()
    assert_passed(sandbox.runbook("upgrade_429", "--until", "4"), 5)  # up to and with the backup
    at_backup = sandbox.snapshot()  # what the rollback must give back, seen independently
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    st = sandbox.status()
    rm = st["metadb"]["rm"]
    now = sandbox.containers()
    for node, ctrs in now.items():
        assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.9_ce") and ctrs["oms_ce"]["running"]
        assert ctrs["oms_ce"]["binds"] == old[node]["oms_ce"]["binds"]
        kept = [c for name, c in ctrs.items() if name.startswith("oms_ce-pre-4.2.8-CE-")]
        assert len(kept) == 1 and kept[0]["id"] == old[node]["oms_ce"]["id"] and not kept[0]["running"]
    assert max(r[0] for r in sandbox.sql("SELECT version FROM oms_version", rm)) == "4.2.9-CE"
    ha = sandbox.ha()
    assert ha["enable"] is True and ha["refetchStoreIntervalMin"] >= 1  # written as doc 004 asks: > T2 - T1
    manifest = backups_intact(sandbox)
    assert {b["db"] for b in manifest} == {"rm_428", "cm_428", "cm_hb_428"}
    for b in manifest:
        text = Path(b["path"]).read_text()
        assert b["size"] > 0 and text.rstrip().splitlines()[-1].startswith("-- Dump completed")
    report = sandbox.last_report("upgrade_429")
    summary = json.loads((report / "summary.json").read_text())
    assert summary["outcome"] == "complete" and summary["times"]["T1"] and summary["times"]["T2"]
    assert (report / "report.html").exists()

    # the same command again by mistake: refused, naming the completed run; nothing changes, and that
    # run is closed (running it again would only be refused again)
    upgraded = without_volatile(sandbox.snapshot())
    again = sandbox.runbook("upgrade_429")
    assert_stopped_at(again, 0, "the deployment already runs 4.2.9-CE, the target of upgrade_429: run ")
    assert "completed it at" in again.output and "to go back, run the rollback" in again.output
    assert sandbox.containers() == now and without_volatile(sandbox.snapshot()) == upgraded
    refused = sandbox.last_report("upgrade_429")
    said = json.loads((refused / "summary.json").read_text())["failed_step"]
    assert said["next"] == (
        f"nothing to upgrade; to go back, run the rollback of this upgrade: pytest runbooks/rollback_429 --env "
        f"{sandbox.env_file}"
    ), said
    assert said["nothing_to_do"] is True and "nothing later ran; it changed nothing and is closed" in again.output
    assert f"**Next**: {said['next']}" in (refused / "summary.md").read_text()
    assert json.loads(ledger_paths("upgrade_429")[-1].read_text())["status"] == "nothing to do"

    assert_passed(sandbox.runbook("rollback_429"), 8)  # the completed upgrade's, not the refused run's
    back = sandbox.containers()
    for node, ctrs in back.items():
        assert ctrs["oms_ce"]["id"] == old[node]["oms_ce"]["id"] and ctrs["oms_ce"]["running"]
        assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.8_ce")
        assert ctrs["oms_ce"]["binds"] == old[node]["oms_ce"]["binds"]
        assert any(n.startswith("oms_ce-failed-4.2.9-CE-") and not c["running"] for n, c in ctrs.items())
    assert_restored(at_backup, sandbox.snapshot())
    assert sandbox.sql("SELECT version FROM oms_version", rm) == [("4.2.8-CE",)]
    ha = sandbox.ha()
    assert ha["enable"] is True
    twice = sandbox.runbook("rollback_429")
    assert_stopped_at(twice, 0, "was rolled back already")
    assert "it changed nothing and is closed" in twice.output
    assert json.loads(ledger_paths("rollback_429")[-1].read_text())["status"] == "nothing to do"

    # upgraded again after the rollback (a new run: the refused one is closed) and rolled back again: that upgrade's
    assert_passed(sandbox.runbook("upgrade_429", "--until", "4"), 5)
    at_backup = sandbox.snapshot()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    assert_passed(sandbox.runbook("rollback_429"), 8)
    assert_restored(at_backup, sandbox.snapshot())
    ups = [json.loads(p.read_text()) for p in ledger_paths("upgrade_429")]
    assert [(u["status"], bool(u["rolled_back"])) for u in ups] == [
        ("complete", True),
        ("nothing to do", False),
        ("complete", True),
    ]
    last = json.loads(ledger_paths("rollback_429")[-1].read_text())
    assert last["facts"]["upgrade"]["run_id"] == ups[2]["run_id"]
    assert ups[2]["rolled_back"]["by"] == last["run_id"]


def test_from_420_without_oms_version_takes_the_documented_recovery(sandbox):
    sandbox.fresh("--version", "4.2.0-CE")
    rm = sandbox.status()["metadb"]["rm"]
    assert not sandbox.sql(f"SHOW TABLES FROM {rm} LIKE 'oms_version'")
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    rows = sorted(r[0] for r in sandbox.sql("SELECT version FROM oms_version", rm))
    assert rows == ["4.2.0-CE", "4.2.9-CE"]
    report = sandbox.last_report("upgrade_429")
    summary = json.loads((report / "summary.json").read_text())
    assert summary["oms_version_recovery"]["version"] == "4.2.0-CE"
    assert "Version before 4.1.1 is not allowed to upgrade" in (report / "summary.md").read_text()
    attachments = " ".join(p.read_text(errors="ignore") for p in (report / "allure-results").glob("*attachment*"))
    assert "Version before 4.1.1 is not allowed to upgrade" in attachments


def test_from_410_preflight_refuses_and_changes_nothing(sandbox):
    sandbox.fresh("--version", "4.1.0-CE")
    snap, ctrs, ha = without_volatile(sandbox.snapshot()), sandbox.containers(), sandbox.ha()
    p = sandbox.runbook("upgrade_429")
    assert_stopped_at(p, 0, "can only be upgraded from V4.2.0-CE to V4.2.8-CE", "not run: step 0. Preflight")
    assert without_volatile(sandbox.snapshot()) == snap
    assert sandbox.containers() == ctrs and ha["enable"] is True and sandbox.ha() == ha
    summary = json.loads((sandbox.last_report("upgrade_429") / "summary.json").read_text())
    assert summary["outcome"] == "failed" and summary["steps"][0]["category"] == "Precondition refused"
    assert all(s["status"] == "skipped" for s in summary["steps"][1:])


def test_two_regions_over_ssh(sandbox):
    sandbox.fresh("--nodes", "3", "--regions", "2", "--ssh")
    old = sandbox.containers()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    for node, ctrs in sandbox.containers().items():
        assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.9_ce")
        assert ctrs["oms_ce"]["binds"] == old[node]["oms_ce"]["binds"]
    manifest = backups_intact(sandbox)
    assert {b["db"] for b in manifest} == {"rm_428", "cm_428", "cm_hb_428_1", "cm_hb_428_2"}
    events = (sandbox.last_report("upgrade_429") / "events.jsonl").read_text()
    assert '"target": "n3"' in events
    # docker_init.sh ran once per region (cm_nodes identical within a region)
    inits = [
        e for e in map(json.loads, events.splitlines()) if e["event"] == "call" and "docker_init.sh" in e["action"]
    ]
    assert sorted({e["node"] for e in inits}) == ["n1", "n3"]
    assert_passed(sandbox.runbook("rollback_429"), 8)
    for node, ctrs in sandbox.containers().items():
        assert ctrs["oms_ce"]["id"] == old[node]["oms_ce"]["id"] and ctrs["oms_ce"]["running"]


def test_own_cm_nodes_runs_init_on_every_node(sandbox):
    sandbox.fresh("--own-cm-nodes")
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    events = (sandbox.last_report("upgrade_429") / "events.jsonl").read_text()
    inits = {json.loads(x)["node"] for x in events.splitlines() if "bash /root/docker_init.sh" in x}
    assert inits == {"n1", "n2"}


def test_https_console_is_verified_against_the_private_ca(sandbox):
    import http.client
    import urllib.error
    import urllib.request

    env = sandbox.fresh("--https")
    text = Path(env).read_text()
    assert "ca_file:" in text and "scheme: https" in text
    with pytest.raises((OSError, http.client.HTTPException)):  # HTTPS only: plain HTTP gets no answer
        urllib.request.urlopen("http://127.0.0.11:8089/oms/health", timeout=3)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # not trusted without the CA
        urllib.request.urlopen("https://127.0.0.11:8089/oms/health", timeout=3)
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    events = (sandbox.last_report("upgrade_429") / "events.jsonl").read_text()
    assert "GET https://127.0.0.11:8089/oms/health" in events


@pytest.mark.parametrize("metadb", ["oceanbase", "mariadb"])
def test_old_heartbeats_go_before_t1_and_the_documents_delete_still_runs_at_its_step(sandbox, metadb):
    """The same end state as doc 004 (only the newest heartbeat in the dump of cm_hb), with the years of
    heartbeats deleted before T1 in short statements and the document's DELETE logged at its own step.
    On InnoDB (MariaDB) the run also waits, before T1, until those deletions are purged."""
    sandbox.fresh("--heartbeat-rows", "300000", "--metadb", metadb)
    hb = sandbox.status()["metadb"]["cm_hb"][0]
    before = sandbox.sql("SELECT COUNT(*), MAX(id) FROM heatbeat_sequence", hb)[0]
    assert before[0] >= 300000
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    led = json.loads(sorted((STATE / "ledgers" / "upgrade_429").glob("*/ledger.json"))[-1].read_text())["facts"]
    online, at_step = led["prune_online"][hb], led["prune"][hb]
    assert online["below_id"] >= before[1] and online["deleted"] >= before[0] - 1 and online["statements"] > 1
    assert online["ended"] <= led["t1"]  # all of it before the downtime began
    assert at_step["rows_after"] == 1 and at_step["deleted"] < 1000  # the rows written since, no more
    events = [json.loads(x) for x in (sandbox.last_report("upgrade_429") / "events.jsonl").read_text().splitlines()]
    ranges = [
        e for e in events if e["system"] == "metadb" and "DELETE FROM heatbeat_sequence WHERE id >=" in e["action"]
    ]
    assert ranges and {e["step"] for e in ranges} == {"stop_old"} and max(e["time"] for e in ranges) <= led["t1"]
    doc = [e for e in events if "delete from heatbeat_sequence where id < (select" in e["action"]]
    assert doc and {e["step"] for e in doc} == {"prune_heartbeats"}
    dump = Path(next(b["path"] for b in led["backups"] if b["db"] == hb)).read_text()
    inserts = [x for x in dump.splitlines() if x.startswith("INSERT INTO `heatbeat_sequence`")]
    assert len(inserts) == 1 and inserts[0].count("),(") == 0  # one row, as after the document's DELETE
    md = (sandbox.last_report("upgrade_429") / "summary.md").read_text()
    assert f"Heartbeats of {hb}: {online['deleted']} old rows" in md and "deleted before T1 while OMS ran" in md
    purge = led["prune_purge"]  # and before T1, the wait until the MetaDB removed the deleted rows
    # how fast the MetaDB's own background purge goes is its business (a loaded 2-core machine: OceanBase's pruned
    # range still read in 0.155 s after 120 s once): the wait is evidence, never a stop, and the summary says which
    if purge["settled"]:
        assert "The MetaDB had removed those rows before T1" in md, purge
    else:
        assert f"The MetaDB had not removed those rows after {purge['seconds']} s of waiting" in md, purge
        assert "the run went on" in md
    if metadb == "mariadb":
        assert not purge["settled"] or purge["seen"]["purged_below"] >= purge["seen"]["trx_counter"], purge
        waits = [e for e in events if e["action"] == "SHOW ENGINE INNODB STATUS"]
    else:  # OceanBase: its compactions remove them; the pruned range reads quickly again
        assert set(purge["seen"]["read_s"]) == {hb}, purge
        probe = f"[{hb}] SELECT COUNT(*) FROM heatbeat_sequence WHERE id < {online['below_id']}"
        waits = [e for e in events if e["action"] == probe]
    assert waits and {e["step"] for e in waits} == {"stop_old"} and max(e["time"] for e in waits) <= led["t1"]


def test_a_project_not_running_after_the_rollback_is_resumed_and_reported(sandbox):
    """After a rollback a synchronization project may need a manual resume (field notes): the rollback's
    last step resumes what ran before the upgrade with the published ResumeProject, and says so."""
    sandbox.fresh()
    rm = sandbox.status()["metadb"]["rm"]
    project = "np_6a2d8c3e4f"
    assert sandbox.sql(f"SELECT status FROM oms_project WHERE id='{project}'", rm) == [("RUNNING",)]
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    proc = sandbox.start_paused("rollback_429", "projects_running_again")
    sandbox.fault("project-suspended")  # after the restore, as a connector that did not come back
    assert sandbox.sql(f"SELECT status FROM oms_project WHERE id='{project}'", rm) == [("SUSPEND",)]
    sandbox.release(proc)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0 and "8 passed" in out, out[-3000:]
    assert sandbox.sql(f"SELECT status FROM oms_project WHERE id='{project}'", rm) == [("RUNNING",)]
    led = json.loads(sorted((STATE / "ledgers" / "rollback_429").glob("*/ledger.json"))[-1].read_text())["facts"]
    assert led["resumed_projects"] == [project]
    events = [json.loads(x) for x in (sandbox.last_report("rollback_429") / "events.jsonl").read_text().splitlines()]
    resumes = [e for e in events if e["system"] == "console" and "ResumeProject" in e["action"]]
    assert len(resumes) == 1 and resumes[0]["step"] == "projects_running_again" and project in resumes[0]["action"]


def test_a_failed_early_image_load_stops_the_run_before_any_container_stops(sandbox, tmp_path):
    """The image load starts right after the preflight, while OMS still runs; when it fails, nothing is
    stopped: the run stops at step 2 with the old containers running, and resumes once the package is sound."""
    import tarfile

    sandbox.fresh()
    old = sandbox.containers()
    package = Path(sandbox.status()["packages"]["4.2.9-CE"])
    aside = tmp_path / package.name
    aside.write_bytes(package.read_bytes())
    with tarfile.open(aside) as t:  # what the preflight reads: gzip sound, manifest with its tags
        manifest = t.extractfile("manifest.json").read()  # type: ignore[union-attr]
    (tmp_path / "manifest.json").write_bytes(manifest)
    with tarfile.open(package, "w:gz") as t:  # but no layers: docker load fails
        t.add(tmp_path / "manifest.json", arcname="manifest.json")
    try:
        p = sandbox.runbook("upgrade_429")
        assert_stopped_at(p, 2, "loading the new image after the preflight failed, so no container was stopped")
        for node, ctrs in sandbox.containers().items():
            assert ctrs["oms_ce"]["id"] == old[node]["oms_ce"]["id"] and ctrs["oms_ce"]["running"]
        led = json.loads(sorted((STATE / "ledgers" / "upgrade_429").glob("*/ledger.json"))[-1].read_text())
        assert not led["facts"].get("t1")  # the downtime never began
    finally:
        package.write_bytes(aside.read_bytes())
    assert_passed(sandbox.runbook("upgrade_429"), 11)
