"""The rollback steps (doc 003 step 6, doc 004 step 9), shared by every rollback runbook.

Nothing is dropped before the preflight has verified every backup (exists, size, SHA-256,
completion marker) and the old containers; each backup is verified again right before its
database is dropped. The new containers are kept, stopped and renamed, never removed.
"""

from __future__ import annotations

from typing import Any

from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem, PreconditionRefused
from ..ledger import Ledger
from ..runbook import Step
from . import common as c
from .upgrade import recheck_backup, verify_backups


def upgrade_ledger(run: Run) -> Ledger:
    name = run.runbook.upgrade_runbook or ""
    led = Ledger.latest(run.env.state_dir, name, run.env.name)
    if led is None:
        raise PreconditionRefused(
            f"no run ledger of {name} for environment {run.env.name} under {run.env.state_dir}",
            "a rollback undoes a recorded upgrade; point state_dir at the folder the upgrade used")
    return led


def _facts(run: Run) -> dict[str, Any]:
    """The upgrade's facts, as recorded by this rollback's preflight."""
    facts = run.ledger.get("upgrade")
    if not facts:
        raise PreconditionRefused("this rollback's ledger has no copy of the upgrade's record",
                                  "run the rollback from its preflight")
    return dict(facts)


# == 0. Preflight ================================================================================
def preflight(run: Run) -> None:
    up = upgrade_ledger(run)
    f = up.facts
    run.evidence("upgrade run ledger", {"path": str(up.path), "status": up.data.get("status"),
                                         "steps": up.data.get("steps")})
    if not up.step_done("backup"):
        raise PreconditionRefused(f"the upgrade run {up.run_id} has no verified backups (its backup step did not "
                                  "finish), so there is nothing to roll back to",
                                  "if the databases were never changed, just restart the old containers")
    if not f.get("t1") and not run.env.ha.perceive_store_client_checkpoint:
        raise PreconditionRefused(f"the upgrade run {up.run_id} recorded no T1")
    # backups: every file listed, with its size, SHA-256 and completion marker
    run.ledger.set("upgrade", {"run_id": up.run_id, "ledger": str(up.path), "t1": f.get("t1"),
                               "versions": f.get("versions"), "backups": f.get("backups"),
                               "nodes": f.get("nodes"), "ha_before": f.get("ha_before")})
    run.ledger.set("backups", f.get("backups"))  # verify_backups reads the manifest from this run's ledger
    verify_backups(run)

    def old_container(n: Node) -> dict[str, Any]:
        _reachable_engine(run, n)
        nf = (f.get("nodes") or {}).get(n.name)
        if not nf:
            raise PreconditionRefused(f"the upgrade ledger has no record of node {n.name}")
        attrs = run.engines[n.name].inspect(nf["container_id"])
        if attrs is None:
            raise PreconditionRefused(f"node {n.name}: the old container {nf['container_id'][:12]} "
                                      f"({nf.get('kept_as') or nf['name']}) no longer exists; cannot roll back",
                                      "restore it from its image with the recorded binds before rolling back")
        if attrs["Image"] != nf["image_id"]:
            raise PreconditionRefused(f"node {n.name}: the old container now has image {attrs['Image'][:19]}, "
                                      f"recorded {nf['image_id'][:19]}")
        if c.binds_of(attrs) != nf["binds"]:
            raise PreconditionRefused(f"node {n.name}: the old container's binds changed: {c.binds_of(attrs)}")
        return {"container": nf["container_id"][:12], "name_now": attrs["Name"].lstrip("/"), "image": nf["image"]}

    found = run.each_node(old_container, what="old container present")
    run.metadb.ping()
    run.evidence("old containers", found)


def _reachable_engine(run: Run, n: Node) -> None:
    run.hosts[n.name].check("true", what="reach the host")
    run.engines[n.name].ping()


def verify_preflight(run: Run) -> None:
    _facts(run)


PREFLIGHT = Step("rollback_preflight", "Preflight (changes nothing)", preflight, None, verify_preflight)


# == 2. Stop the new containers ==================================================================
def _new_id(run: Run, n: Node) -> str | None:
    return ((_facts(run).get("nodes") or {}).get(n.name) or {}).get("new_container_id")


def stop_new(run: Run) -> None:
    c.stop_containers(run, "t3", lambda n: _new_id(run, n), "new", gone_ok=True)
    verify_new_stopped(run)
    run.evidence("T3", run.ledger.get("t3"))


def verify_new_stopped(run: Run) -> None:
    def check(n: Node) -> None:
        new_id = _new_id(run, n)
        attrs = run.engines[n.name].inspect(new_id) if new_id else None
        assert attrs is None or not attrs["State"].get("Running"), f"node {n.name}: the new container still runs"
        old = run.engines[n.name].inspect(_facts(run)["nodes"][n.name]["container_id"])
        assert old is not None and not old["State"].get("Running"), f"node {n.name}: the old container is not stopped"

    run.each_node(check, what="no OMS container runs")


def plan_stop_new(run: Run) -> list[str]:
    return [f"{n.name}: docker stop {run.env.container}  (the new container; record T3 before)" for n in run.env.nodes]


STOP_NEW = Step("stop_new", "Stop the new containers, record T3", stop_new, plan_stop_new, verify_new_stopped,
                superseded_by=("restart_old",))


# == 3. Drop, create, restore ====================================================================
def restore(run: Run) -> None:
    bh = run.backup_host
    done: dict[str, Any] = run.ledger.get("restored") or {}
    for b in _facts(run)["backups"]:
        db = b["db"]
        if done.get(db) == "restored":
            continue
        recheck_backup(bh, b, f"; nothing of {db} was dropped")  # verified again right before anything is dropped
        run.live(f"restore: {db} from {b['path']}")
        done[db] = "dropping"
        run.ledger.set("restored", done)
        run.metadb.drop_and_create(db, b.get("charset") or "utf8mb4", b.get("collation") or "utf8mb4_general_ci")
        done[db] = "restoring"
        run.ledger.set("restored", done)
        run.metadb.restore(bh, run.env.backup.dir, db, b["path"])
        done[db] = "restored"
        run.ledger.set("restored", done)
    run.evidence("restored", done)


def verify_restore(run: Run) -> None:
    """Per-table row counts and checksums equal those recorded when each backup was taken."""
    diffs = []
    report = {}
    for b in _facts(run)["backups"]:
        now = run.metadb.table_stats(b["db"])
        report[b["db"]] = {"at_backup": b["tables"], "now": now}
        if now != b["tables"]:
            for t in sorted(set(now) | set(b["tables"])):
                if now.get(t) != b["tables"].get(t):
                    diffs.append(f"{b['db']}.{t}: backup {b['tables'].get(t)}, now {now.get(t)}")
    run.evidence("tables: at backup time and after the restore", report)
    assert not diffs, "restored tables differ from the backup:\n  " + "\n  ".join(diffs)
    before = (_facts(run).get("versions") or {}).get("oms_version_before")
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    run.evidence("oms_version after the restore", {"now": rows, "before the upgrade": before})
    assert rows == before, f"oms_version is {rows}, before the upgrade it was {before}"


def plan_restore(run: Run) -> list[str]:
    out = []
    for b in (upgrade_ledger(run).facts.get("backups") or []):
        out += [f"verify {b['path']} (size {b['size']}, sha256 {b['sha256'][:16]}...)",
                f"DROP DATABASE `{b['db']}`; CREATE DATABASE `{b['db']}`",
                f"mysql --defaults-extra-file=<0600 file> -D {b['db']} < {b['path']}"]
    return out


RESTORE = Step("restore", "Drop, recreate and restore rm, cm and every cm_hb", restore, plan_restore)
VERIFY_RESTORE = Step("verify_restore", "Verify the restore (row counts, checksums, oms_version)", verify_restore,
                      None, verify_restore, superseded_by=("restart_old",))


# == 5. Restart the old containers ===============================================================
def restart_old(run: Run) -> None:
    up = _facts(run)

    def restart(n: Node) -> dict[str, Any]:
        nf = up["nodes"][n.name]
        eng = run.engines[n.name]
        holder = eng.inspect(run.env.container)
        if holder is not None and holder["Id"] != nf["container_id"]:
            if holder["Id"] != nf.get("new_container_id"):
                raise ContainerProblem(f"node {n.name}: {run.env.container} is a container this rollback does not know "
                                       f"({holder['Id'][:12]})", "investigate before going on")
            kept = f"{run.env.container}-failed-{up['versions']['target']}-{run.ledger.run_id}"
            eng.rename(holder["Id"], kept)  # the new container is kept, stopped, under another name
            c.set_node_fact(run, n.name, "new_kept_as", kept)
        old = eng.inspect(nf["container_id"])
        if old is None:
            raise ContainerProblem(f"node {n.name}: the old container {nf['container_id'][:12]} is gone")
        if old["Name"].lstrip("/") != run.env.container:
            eng.rename(nf["container_id"], run.env.container)
        if not (eng.inspect(nf["container_id"]) or {}).get("State", {}).get("Running"):
            eng.start(nf["container_id"])  # doc: docker restart <old container>
        return check_old(run, n)

    run.each_node(restart, what="old container restarted")
    run.each_node(lambda n: c.wait_serving(run, n), what="console serves")
    servers = c.servers_online(run)
    run.evidence("servers", servers)


def check_old(run: Run, n: Node) -> dict[str, Any]:
    nf = _facts(run)["nodes"][n.name]
    attrs = run.engines[n.name].inspect(run.env.container)
    assert attrs is not None and attrs["Id"] == nf["container_id"], f"node {n.name}: {run.env.container} is not the old container"
    assert attrs["Image"] == nf["image_id"], f"node {n.name}: runs image {attrs['Image'][:19]}, expected {nf['image_id'][:19]}"
    assert c.binds_of(attrs) == nf["binds"], f"node {n.name}: binds {c.binds_of(attrs)} differ from {nf['binds']}"
    c.require_running(run, n)
    return {"image": nf["image"], "binds": nf["binds"]}


def verify_restarted(run: Run) -> None:
    run.each_node(lambda n: check_old(run, n), what="old container runs")
    c.servers_online(run)


def plan_restart(run: Run) -> list[str]:
    return [f"{n.name}: docker rename {run.env.container} {run.env.container}-failed-<target>-<run id>; docker rename "
            f"<old container> {run.env.container}; docker start {run.env.container}; wait until it serves"
            for n in run.env.nodes]


RESTART_OLD = Step("restart_old", "Restart the old containers", restart_old, plan_restart, verify_restarted)


# == 6. Enable HA ================================================================================
def enable_ha(run: Run) -> None:
    if not run.ledger.get("t1"):
        run.ledger.set("t1", _facts(run).get("t1"))
    c.enable_ha_after(run, "t1", "t3")


ENABLE_HA = Step("rollback_enable_ha", "Enable HA with refetchStoreIntervalMin > T3 - T1", enable_ha,
                 lambda run: [f"set ha.config enable=true, refetchStoreIntervalMin > T3 - T1 "
                              f"(+{run.env.ha.refetch_margin_min} min margin); read back"],
                 lambda run: c.verify_ha_enabled(run, "t1", "t3"))
