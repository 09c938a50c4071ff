"""Metadata initialization: `bash /root/docker_init.sh` in the new container (doc 003 step 4, doc 004 steps 4-5).

doc 004: once per region when the nodes' cm_nodes are identical, on every node otherwise; when it
answers "Version before 4.1.1 is not allowed to upgrade", create `oms_version` in rm, REPLACE the
version before the upgrade into it, and run it again (the one documented re-run).

docker_init.sh is never run again blindly (obd treats a re-run as unsafe): its start is recorded
before it runs; a resumed run that finds a completed init in place (a non-empty /root/init_flag.txt
and, from 4.2.1, oms_version at the target) goes on; one that began and did not finish stops the
run with what to check. Success is its exit status 0, the init flag, and oms_version: obd does not
trust the exit status alone.

The other nodes of a region (same cm_nodes, no init of their own) do not start their console by
themselves after an upgrade: there `supervisorctl start oms_console` (inferred from the vendor's
multi-node procedures; this is the one place that does it).
"""

from __future__ import annotations

from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem
from ..record import InitAttempt, Recovery, utc_now
from ..runbook import Step, Touches
from ..versions import MIN_VERSION_FOR_4X_INIT, OMS_VERSION_DDL, OMS_VERSION_TABLE_FROM, Version
from .serving import INIT_NEEDS, SERVING_LINE, start_console, wait_programs, wait_serving

INIT_TOO_OLD = "Version before 4.1.1 is not allowed to upgrade"
INIT_FLAG = "/root/init_flag.txt"  # obd: non-empty when docker_init.sh succeeded
INIT_LOGS = "/home/admin/logs/docker_init.log.*"  # obdiag


def output_summary(out: str, lines: int = 12) -> tuple[str, str]:
    """A failed tool's output for a message: its last non-empty line (where scripts say what went
    wrong) and its last ``lines`` lines, indented."""
    kept = [x for x in str(out).strip().splitlines() if x.strip()]
    last = kept[-1].strip() if kept else "(no output)"
    return last, "\n".join("    " + x for x in kept[-lines:])


def init_targets(run: Run) -> list[Node]:
    """doc 004: once per region when the nodes' cm_nodes are identical, on every node otherwise."""
    out: list[Node] = []
    for region in run.env.regions:
        lists = {tuple(run.node_facts(n.name).cm_nodes) for n in region.nodes}
        out.extend(region.nodes[:1] if len(lists) == 1 else region.nodes)
    return out


def _flag(run: Run, n: Node) -> str:
    rc, out = run.engines[n.name].exec(run.env.container, "cat", INIT_FLAG)
    return out.strip() if rc == 0 else ""


def _at_target(run: Run) -> bool:
    """oms_version names the target (from 4.2.1, where the table exists; before that, nothing to read)."""
    target = run.runbook.target
    if target < OMS_VERSION_TABLE_FROM:
        return True
    rows = run.metadb.oms_versions(run.env.metadb.rm) or []
    return any(Version.parse(v) == target for v in rows)


def _recover_oms_version(run: Run) -> None:
    """doc 004: create oms_version in rm and REPLACE the version before the upgrade."""
    assert run.facts.versions is not None
    source = Version.parse(run.facts.versions.source)
    assert source >= MIN_VERSION_FOR_4X_INIT, (
        f"docker_init.sh says '{INIT_TOO_OLD}' and the version before the upgrade is {source}: "
        "doc 004 allows the recovery only from V4.1.1-CE on"
    )
    rm = run.env.metadb.rm
    run.metadb.execute(OMS_VERSION_DDL, db=rm)
    run.metadb.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (str(source),), db=rm)
    with run.record.change() as f:
        f.oms_version_recovery = Recovery(version=str(source), at=utc_now())


def _attempt(run: Run, n: Node, after: str | None = None) -> InitAttempt:
    """Run docker_init.sh once; its start (and the metadata's shape then) on disk before it runs."""
    a = InitAttempt(started=utc_now(), after=after, schema_before=run.metadb.schema_fingerprint(_databases(run)))
    with run.record.change() as f:
        f.init_outputs.setdefault(n.name, []).append(a)
    rc, out = run.engines[n.name].exec(run.env.container, "bash", "/root/docker_init.sh")
    with run.record.change():
        a.rc, a.output, a.flag = rc, out[-4000:], _flag(run, n) or None
    return a


def _databases(run: Run) -> list[str]:
    return [db for _, db in run.env.databases()]


def _init_on(run: Run, n: Node) -> None:
    history = run.facts.init_outputs.get(n.name) or []
    last = history[-1] if history else None
    if last is not None and _succeeded(run, last):
        return
    flag = _flag(run, n)
    if flag and _at_target(run):  # completed, perhaps after the run that started it stopped
        with run.record.change() as f:
            f.init_outputs.setdefault(n.name, []).append(
                InitAttempt(started=utc_now(), rc=0, flag=flag, recognized=True)
            )
        return
    if last is not None and run.metadb.schema_fingerprint(_databases(run)) != last.schema_before:
        # it began, did not succeed, and changed the metadata: running it again on half-migrated
        # metadata is not safe (obd treats a re-run as unsafe)
        raise ContainerProblem(
            f"node {n.name}: docker_init.sh began at {last.started} and did not finish"
            + (f" (exit {last.rc}: {output_summary(last.output)[0]})" if last.rc is not None else " (the run stopped)")
            + "; it changed the metadata's tables meanwhile",
            f"check its log ({INIT_LOGS} in the container), {INIT_FLAG} and {run.env.metadb.rm}.oms_version. Running "
            "it again on half-migrated metadata is not safe: restore the backups (the rollback runbook) and upgrade "
            "again, or complete the migration by hand and move this run's ledger aside deliberately",
        )
    # never run, or run and failed before it changed anything (the tables are as they were): not blind
    a = _attempt(run, n)
    if a.rc != 0 and INIT_TOO_OLD in a.output:
        _recover_oms_version(run)
        a = _attempt(run, n, after="oms_version recovery (doc 004)")
    run.evidence(
        f"{n.name}: docker_init.sh output",
        "\n---\n".join(f"exit {x.rc}, init flag {x.flag!r}\n{x.output}" for x in run.facts.init_outputs[n.name]),
    )
    if not _succeeded(run, a):
        last_line, shown = output_summary(a.output)
        # docker_init.sh changes the MetaDB: when that does not answer, that is the cause to name
        run.metadb.blame_if_down(
            f"node {n.name}: /root/docker_init.sh exited {a.rc} ({last_line})", "running the runbook again resumes here"
        )
        why = (
            f"exited {a.rc}"
            if a.rc != 0
            else f"exited 0 but left no {INIT_FLAG}"
            if not a.flag
            else f"exited 0 but {run.env.metadb.rm}.oms_version does not name {run.runbook.target}"
        )
        raise ContainerProblem(
            f"node {n.name}: /root/docker_init.sh {why}: {last_line}\n  its last lines:\n{shown}",
            f"see {INIT_LOGS} in the container; a resumed run runs it again only if it changed "
            "no table of the metadata",
        )


def _succeeded(run: Run, a: InitAttempt) -> bool:
    return a.rc == 0 and bool(a.flag) and _at_target(run)


def init_metadata(run: Run) -> None:
    targets = init_targets(run)
    others = [n for n in run.env.nodes if n not in targets]
    # Every node ready at once, the others too: none of them waits for its cm and supervisor after the
    # init (the downtime), and a node that does not come up stops the run before any schema changed.
    run.each_node(
        lambda n: wait_programs(run, n, INIT_NEEDS),
        what="oms_drc_cm and oms_drc_supervisor RUNNING (ready for docker_init.sh)",
    )
    for n in targets:  # one after the other: every run changes the shared rm and cm schemas
        _init_on(run, n)
    if run.facts.oms_version_recovery:
        run.evidence("oms_version recovery applied (doc 004)", run.facts.oms_version_recovery)
    if others:
        run.each_node(lambda n: start_console(run, n), others, what="oms_console started (no init of its own)")
    run.each_node(lambda n: wait_serving(run, n), what="console serves")
    with run.record.change() as f:
        f.serving_again = utc_now()
    lines = {
        n.name: any(SERVING_LINE in a.output for a in run.facts.init_outputs.get(n.name, []))
        or SERVING_LINE in run.engines[n.name].logs(run.env.container, 200)
        for n in targets
    }
    run.evidence(f"'{SERVING_LINE}' in docker_init.sh's output or docker logs", lines)


def verify_init(run: Run) -> None:
    run.each_node(lambda n: wait_serving(run, n), what="console serves")


def plan_init(run: Run) -> list[str]:
    targets = init_targets(run)
    return (
        [
            f"{n.name}: poll until oms_drc_cm and oms_drc_supervisor are RUNNING in `supervisorctl status`, then "
            f"docker exec {run.env.container} bash /root/docker_init.sh once (success: exit 0, {INIT_FLAG}, "
            f"oms_version; on '{INIT_TOO_OLD}': create oms_version, REPLACE the old version, run again)"
            for n in targets
        ]
        + [
            f"{n.name}: poll until oms_drc_cm and oms_drc_supervisor are RUNNING (beside the nodes above, before "
            "their init); after it, supervisorctl start oms_console (supervisor leaves one that runs alone)"
            for n in run.env.nodes
            if n not in targets
        ]
        + ["every node: poll /oms/health until healthy"]
    )


INIT = Step(
    "init_metadata",
    "Initialize metadata (docker_init.sh)",
    init_metadata,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB, Touches.CONSOLE}),
    True,
    plan_init,
    verify_init,
)
