"""Metadata initialization: `bash /root/docker_init.sh` in the new container (doc 003 step 4, doc 004 steps 4-5).

doc 004: once per region when the nodes' cm_nodes are identical, on every node otherwise; when it
answers "Version before 4.1.1 is not allowed to upgrade", create `oms_version` in rm, REPLACE the
version before the upgrade into it, and run it again.
"""

from __future__ import annotations

from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem
from ..record import InitAttempt, Recovery, utc_now
from ..runbook import Step, Touches
from ..versions import MIN_VERSION_FOR_4X_INIT, OMS_VERSION_DDL, Version
from .serving import READY_TIMEOUT, init_ready, wait_serving, wait_until

INIT_TOO_OLD = "Version before 4.1.1 is not allowed to upgrade"


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
    assert source >= MIN_VERSION_FOR_4X_INIT, (
        f"docker_init.sh says '{INIT_TOO_OLD}' and the version before the upgrade is {source}: "
        "doc 004 allows the recovery only from V4.1.1-CE on"
    )
    rm = run.env.metadb.rm
    run.metadb.execute(OMS_VERSION_DDL, db=rm)
    run.metadb.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (str(source),), db=rm)
    with run.record.change() as f:
        f.oms_version_recovery = Recovery(version=str(source), at=utc_now())


def init_metadata(run: Run) -> None:
    def ready(n: Node) -> str:
        run.live(f"{n.name}: waiting until the container is ready for docker_init.sh")
        wait_until(
            lambda: init_ready(run, n),
            READY_TIMEOUT,
            lambda: (
                f"node {n.name}: `supervisorctl status` does not answer in the new container; "
                f"last log lines:\n{run.engines[n.name].logs(run.env.container, 15)}"
            ),
            interval=0.2,
            live=lambda m: run.live(f"{n.name}: readiness for docker_init.sh: {m}"),
        )
        return "ready"

    targets = init_targets(run)
    run.each_node(ready, targets, what="ready for docker_init.sh")
    for n in targets:  # sequential: every run changes the shared rm and cm schemas
        rc, out = run.engines[n.name].exec(run.env.container, "bash", "/root/docker_init.sh")
        attempts = [InitAttempt(rc=rc, output=out[-4000:])]
        if rc != 0 and INIT_TOO_OLD in out:
            _recover_oms_version(run)
            rc, out = run.engines[n.name].exec(run.env.container, "bash", "/root/docker_init.sh")
            attempts.append(InitAttempt(rc=rc, output=out[-4000:], after="oms_version recovery (doc 004)"))
        with run.record.change() as f:
            f.init_outputs[n.name] = attempts
        run.evidence(f"{n.name}: docker_init.sh output", "\n---\n".join(f"exit {a.rc}\n{a.output}" for a in attempts))
        if rc != 0:
            last, shown = output_summary(out)
            # docker_init.sh changes the MetaDB: when that does not answer, that is the cause to name
            run.metadb.blame_if_down(
                f"node {n.name}: /root/docker_init.sh exited {rc} ({last})",
                "running the runbook again resumes here (docker_init.sh is idempotent)",
            )
            raise ContainerProblem(
                f"node {n.name}: /root/docker_init.sh exited {rc}: {last}\n  its last lines:\n{shown}",
                "fix the cause; running the runbook again resumes here (docker_init.sh is idempotent)",
            )
    if run.facts.oms_version_recovery:
        run.evidence("oms_version recovery applied (doc 004)", run.facts.oms_version_recovery)
    run.each_node(lambda n: wait_serving(run, n), what="console serves")
    with run.record.change() as f:
        f.serving_again = utc_now()


def verify_init(run: Run) -> None:
    run.each_node(lambda n: wait_serving(run, n), what="console serves")


def plan_init(run: Run) -> list[str]:
    return [
        f"{n.name}: poll until `supervisorctl status` answers, then docker exec {run.env.container} bash "
        f"/root/docker_init.sh (on '{INIT_TOO_OLD}': create oms_version, REPLACE the old version, run again)"
        for n in init_targets(run)
    ] + ["every node: poll /oms/health until healthy and 'OMS service start successfully'"]


INIT = Step(
    "init_metadata",
    "Initialize metadata (docker_init.sh)",
    init_metadata,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB, Touches.CONSOLE}),
    True,
    plan_init,
    verify_init,
)
