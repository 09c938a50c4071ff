"""Metadata initialization: `bash /root/docker_init.sh` in the new container (doc 003 step 4, doc 004 steps 4-5).

doc 004: once per region when the nodes' cm_nodes are identical, on every node otherwise; when it
answers "Version before 4.1.1 is not allowed to upgrade", create `oms_version` in rm, REPLACE the
version before the upgrade into it, and run it again.

Success is what the documents and public failure signals give: docker_init.sh exits 0, and then the
product serves (/oms/health healthy on every node, obd's reading; every server Online, the next
step). What no public source states is evidence, recorded for every attempt and never the only sign
either way: a /root/init_flag.txt (obd-like modules read one after their hot-update script; no source
says docker_init.sh writes it), the oms_version rows before and after, the start line (in its output or
in docker logs), and the metadata's tables and columns before and after.

The vendor runs docker_init.sh again (doc 004 after the recovery, the hot-upgrade rollback, obd's
reload and online upgrade: field notes), so a resume after a failed or interrupted init runs it again,
as an operator following the vendor would; a few times in a run (MAX_ATTEMPTS per node), then the run
stops and says to roll back.

The other nodes of a region (same cm_nodes, no init of their own) may not start their console by
themselves after an upgrade (not public): there `supervisorctl start oms_console` is run once their
region's init succeeded, which changes nothing where it already runs (this is the one place that
does it).
"""

from __future__ import annotations

from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem
from ..record import InitAttempt, Recovery, utc_now
from ..runbook import Step, Touches, command
from ..versions import Version
from .serving import INIT_NEEDS, SERVING_LINE, start_console, wait_programs, wait_serving

INIT_TOO_OLD = "Version before 4.1.1 is not allowed to upgrade"
INIT_FLAG = "/root/init_flag.txt"  # evidence only: no public source says docker_init.sh writes it
INIT_LOGS = "/home/admin/logs/docker_init.log.*"  # obdiag (omsup.releases: Release.init_logs)
MAX_ATTEMPTS = 3  # docker_init.sh runs of one node in one run, the documented recovery's re-run included


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


def _recover_oms_version(run: Run) -> None:
    """doc 004: create oms_version in rm and REPLACE the version before the upgrade."""
    assert run.facts.versions is not None
    source = Version.parse(run.facts.versions.source)
    if not run.release.init_recovery:
        raise ContainerProblem(
            f"docker_init.sh says '{INIT_TOO_OLD}', and the upgrade page of {run.runbook.target} documents no "
            "recovery for it",
            "doc 004 (V4.2.9-CE) documents one: if the version before the upgrade is V4.1.1-CE or later, create "
            f"oms_version in {run.env.metadb.rm} and REPLACE that version into it, then run the runbook again",
        )
    assert run.release.recovery_allows(source), (
        f"docker_init.sh says '{INIT_TOO_OLD}' and the version before the upgrade is {source}: "
        "doc 004 allows the recovery only from V4.1.1-CE on"
    )
    run.metadb.recover_oms_version(run.env.metadb.rm, str(source))
    with run.record.change() as f:
        f.oms_version_recovery = Recovery(version=str(source), at=utc_now())


def _attempt(run: Run, n: Node, after: str | None = None) -> InitAttempt:
    """Run docker_init.sh once; its start (and the metadata then) on disk before it runs, what it did after."""
    dbs = _databases(run)
    a = InitAttempt(
        started=utc_now(),
        after=after,
        schema_before=run.metadb.schema_fingerprint(dbs),
        oms_version_before=run.metadb.oms_versions(run.env.metadb.rm),
    )
    with run.record.change() as f:
        f.init_outputs.setdefault(n.name, []).append(a)
    rc, out = run.oms[n.name].run_init(run.release.init_script)
    with run.record.change():
        a.rc, a.output, a.ended = rc, out[-4000:], utc_now()
    flag, schema_after = run.oms[n.name].init_flag(), run.metadb.schema_fingerprint(dbs)
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    with run.record.change():
        a.flag, a.schema_after, a.oms_version_after = flag, schema_after, rows
    return a


def _databases(run: Run) -> list[str]:
    return [db for _, db in run.env.databases()]


def _init_on(run: Run, n: Node) -> None:
    history = run.facts.init_outputs.get(n.name) or []
    if history and history[-1].rc == 0:  # it succeeded in an earlier attempt of this run
        return
    ran = [a for a in history if not a.recognized]
    if len(ran) >= MAX_ATTEMPTS:
        last = ran[-1]
        rb = run.runbook.rollback_runbook
        back = command(rb, run.env.source) if rb else "its rollback"
        raise ContainerProblem(
            f"node {n.name}: docker_init.sh ran {len(ran)} times in this run and did not succeed (last: "
            + (f"exit {last.rc}: {output_summary(last.output)[0]}" if last.rc is not None else "interrupted")
            + ")",
            f"see {INIT_LOGS} in the container and the attempts in the report; go back with the rollback "
            f"({back}), or fix the cause by hand "
            "and call this run off",
            resumable=False,
        )
    # never run, failed, or interrupted: run it (again, as the vendor does)
    a = _attempt(run, n, after="again after a failed or interrupted attempt" if ran else None)
    if a.rc != 0 and INIT_TOO_OLD in a.output:
        _recover_oms_version(run)
        a = _attempt(run, n, after="oms_version recovery (doc 004)")
    run.evidence(f"{n.name}: docker_init.sh attempts (exit, init flag, oms_version, schema)", _shown(run, n))
    if a.rc != 0:
        last_line, shown = output_summary(a.output)
        # docker_init.sh changes the MetaDB: when that does not answer, that is the cause to name
        run.metadb.blame_if_down(
            f"node {n.name}: /root/docker_init.sh exited {a.rc} ({last_line})", "running the runbook again resumes here"
        )
        raise ContainerProblem(
            f"node {n.name}: /root/docker_init.sh exited {a.rc}: {last_line}\n  its last lines:\n{shown}",
            f"see {INIT_LOGS} in the container; fix the cause and run the runbook again: it runs docker_init.sh "
            f"again, as the vendor does (at most {MAX_ATTEMPTS} times in a run), or roll back",
        )


def _shown(run: Run, n: Node) -> list[dict[str, object]]:
    return [
        {
            "started": x.started,
            "after": x.after,
            "exit": x.rc,
            "init flag": x.flag or f"none ({INIT_FLAG} absent or empty)",
            "oms_version before": x.oms_version_before,
            "oms_version after": x.oms_version_after,
            "schema changed": None if x.schema_after is None else x.schema_after != x.schema_before,
            "output (tail)": x.output[-1500:],
        }
        for x in run.facts.init_outputs.get(n.name, [])
    ]


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
        n.name: "docker_init.sh's output"
        if any(SERVING_LINE in a.output for a in run.facts.init_outputs.get(n.name, []))
        else "docker logs"
        if SERVING_LINE in run.engines[n.name].logs(run.env.container, 200)
        else "nowhere"
        for n in run.env.nodes
    }
    run.evidence(f"where '{SERVING_LINE}' appeared (evidence, not a condition)", lines)


def verify_init(run: Run) -> None:
    run.each_node(lambda n: wait_serving(run, n), what="console serves")


def plan_init(run: Run) -> list[str]:
    targets = init_targets(run)
    return (
        [
            f"{n.name}: poll until oms_drc_cm and oms_drc_supervisor are RUNNING in `supervisorctl status`, then "
            f"docker exec {run.env.container} bash /root/docker_init.sh (success: exit 0, then the console serves; "
            f"{INIT_FLAG}, oms_version and the start line recorded as evidence; on '{INIT_TOO_OLD}': create "
            "oms_version, REPLACE the old version, run again)"
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
    no_way_back=True,
)
