"""After the upgrade: the version, every server Online, health, and the task states (doc 004 steps 7-8).

doc 004 step 7: "check whether the list of machines and the status of the machines are normal.
The Online status is displayed for each machine." Step 8's HA table: "The task status remains
unchanged."
"""

from __future__ import annotations

from ..context import Run
from ..record import Verified
from ..runbook import Step, Touches
from ..versions import Version
from .projects import list_projects
from .readings import image_version
from .serving import servers_online, serving


def oms_version_reading(run: Run, rows: list[str] | None) -> str:
    """What rm.oms_version says after the upgrade, by the project's rule (README, "The assumptions"):

    - its newest row is the target: "target";
    - it is the version before the upgrade, or there is no row: "source" / "none". No public source says
      docker_init.sh writes the target there (doc 004 and obd only write the version *before* an
      upgrade), so a product that leaves it is plausible: said plainly as a warning, and the upgrade passes
      on the documented signals (docker_init.sh exit 0, /oms/health, every server Online, the new image);
    - any other version: a failure. No behaviour of the documented procedure leaves a version that is
      neither the one before nor the target: the metadata is not what this upgrade made of it.
    """
    target = run.runbook.target
    source = Version.parse(run.facts.versions.source) if run.facts.versions else None
    newest = max((Version.parse(v) for v in rows), default=None) if rows else None
    if newest == target:
        return "target"
    if rows is None and not run.release.has_oms_version:  # releases before the table (the project's choice)
        return "none"
    assert newest is None or newest == source, (
        f"{run.env.metadb.rm}.oms_version names {newest}: neither the version before the upgrade ({source}) nor its "
        f"target ({target}); the metadata is not what this upgrade made of it"
    )
    run.warn(
        f"{run.env.metadb.rm}.oms_version "
        + (f"still names {newest}, the version before the upgrade" if newest else "has no row")
        + f": this release's docker_init.sh did not write {target} there (no public source says it does). The upgrade "
        "passed on the documented signals: docker_init.sh exited 0, /oms/health is healthy, every server is Online "
        "and every node runs the new image"
    )
    return "source" if newest else "none"


def verify_upgrade(run: Run) -> None:
    target = run.runbook.target
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    run.evidence("oms_version rows", rows)
    servers = servers_online(run)
    run.evidence("servers", servers)
    health = {n.name: run.consoles[n.name].health() for n in run.env.nodes}
    run.evidence("health", health)
    for name, h in health.items():
        assert h.get("healthy") is True, f"node {name}: /oms/health says healthy={h.get('healthy')!r}"
    images = {}
    for n in run.env.nodes:
        attrs = run.engines[n.name].inspect(run.env.container) or {}
        found = image_version(run, n, attrs)
        assert found == target, f"node {n.name} runs {found}, expected {target}"
        images[n.name] = str(found)
    names = oms_version_reading(run, rows)  # after the documented signals: a warning follows what held
    with run.record.change() as f:
        f.verified = Verified(oms_version=rows, servers=servers, images=images, oms_version_names=names)
    as_rehearsed(run, names)


def as_rehearsed(run: Run, names: str) -> None:
    """--rehearsal: what production did where the documents are silent, against what the rehearsal observed. A
    difference is a warning (the documented signals above decided the step): the product behaved otherwise on
    production than on its replica, which an operator should know."""
    observed = (run.facts.rehearsed_with or {}).get("observed")
    if not observed:
        return
    seen = {
        "oms_version names the target": names == "target",
        "docker_init.sh left a flag file": any(a.flag for tries in run.facts.init_outputs.values() for a in tries),
        "docker_init.sh ran more than once on a node": any(len(t) > 1 for t in run.facts.init_outputs.values()),
        "a console was started by hand (supervisorctl start oms_console)": bool(run.facts.consoles_started),
    }
    rehearsed = {
        "oms_version names the target": bool((observed.get("oms_version") or {}).get("names_the_target")),
        "docker_init.sh left a flag file": bool(observed.get("init_flag_written")),
        "docker_init.sh ran more than once on a node": any(len(t) > 1 for t in (observed.get("init") or {}).values()),
        "a console was started by hand (supervisorctl start oms_console)": bool(
            observed.get("consoles_started_by_hand")
        ),
    }
    differ = [f"{k}: rehearsal {rehearsed[k]}, production {v}" for k, v in seen.items() if rehearsed[k] != v]
    run.evidence("as rehearsed", {"production": seen, "rehearsal": rehearsed})
    for d in differ:
        run.warn(f"not as rehearsed: {d}")


VERIFY = Step(
    "verify",
    "Verify version, servers Online, health",
    verify_upgrade,
    frozenset({Touches.METADB, Touches.CONSOLE, Touches.ENGINES}),
    False,
    None,
    verify_upgrade,
)


def after_upgrade(run: Run) -> None:
    """doc 004 HA table: every task's status remains unchanged by the upgrade."""
    before = {p.id: p for p in run.facts.projects_before or []}
    after = {p.id: p for p in list_projects(run, run.runbook.target)}
    rows = [
        {"id": pid, "name": p.name, "before": p.status, "after": after[pid].status if pid in after else None}
        for pid, p in before.items()
    ]
    run.evidence("task status before and after (doc 004 HA table: remains unchanged)", rows)
    changed = [r for r in rows if r["before"] != r["after"]]
    assert not changed, f"task status changed across the upgrade: {changed}"
    with run.record.change() as f:
        f.projects_after = list(after.values())
    # the run ends on a deployment that works: every node still serves
    gone = [n.name for n in run.env.nodes if not serving(run, n)]
    assert not gone, (
        f"at the end of the upgrade, node(s) {', '.join(gone)} no longer serve (health or log line missing)"
    )


AFTER = Step(
    "after_upgrade",
    "Task states as the HA table expects",
    after_upgrade,
    frozenset({Touches.CONSOLE, Touches.ENGINES, Touches.METADB}),
    False,
)
