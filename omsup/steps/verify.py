"""After the upgrade: the version, every server Online, health, and the task states (doc 004 steps 7-8).

doc 004 step 7: "check whether the list of machines and the status of the machines are normal.
The Online status is displayed for each machine." Step 8's HA table: "The task status remains
unchanged."
"""

from __future__ import annotations

from ..context import Run
from ..record import Verified
from ..runbook import Step, Touches
from ..versions import OMS_VERSION_TABLE_FROM, Version
from .containers import image_version
from .projects import list_projects
from .serving import servers_online, serving


def verify_upgrade(run: Run) -> None:
    target = run.runbook.target
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    run.evidence("oms_version rows", rows)
    if target >= OMS_VERSION_TABLE_FROM:
        assert rows, f"{run.env.metadb.rm}.oms_version does not exist after the upgrade"
    if rows:
        newest = max(Version.parse(v) for v in rows)
        assert newest == target, f"oms_version says {newest}, expected {target}"
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
    with run.record.change() as f:
        f.verified = Verified(oms_version=rows, servers=servers, images=images)


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
