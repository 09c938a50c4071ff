"""The migration and synchronization projects: listed before and after, held to the documents' rules.

ListProjects and DescribeProjectSteps from V4.1.1-CE (doc); before that the console has no
project list, and the MetaDB adapter reads rm's project tables (this project's choice, kept in
that adapter).
"""

from __future__ import annotations

from typing import Any

from ..context import Run
from ..errors import PreconditionRefused
from ..projects import RUNNING, forbidden_reason
from ..record import Project
from ..releases import release_of
from ..runbook import Step, Touches
from ..versions import Version
from .restore import mark_rolled_back


def list_projects(run: Run, version: Version) -> list[Project]:
    """Every project with its steps and, where the documents forbid an upgrade, why."""
    found: list[dict[str, Any]]
    if release_of(version).console_lists_projects:
        console = run.consoles[run.env.nodes[0].name]
        found = [{**p, "steps": console.project_steps(str(p["id"]))} for p in console.list_projects()]
    else:
        found = run.metadb.projects(run.env.metadb.rm)
    return [
        Project(
            id=str(p["id"]),
            name=p.get("name"),
            type=p.get("type"),
            status=p.get("status"),
            steps={str(s.get("name")): s.get("status") for s in p["steps"]},
            forbidden=forbidden_reason(p, p["steps"]),
        )
        for p in found
    ]


# == after a rollback: the projects that ran before run again =========================================
def projects_running_again(run: Run) -> None:
    """The projects RUNNING before the upgrade are RUNNING again; those that are not are resumed with
    the published ResumeProject and reported (after a rollback Incr-Sync or Full-Import may need a
    manual resume: field notes). Then the upgrade's record is marked rolled back: it is not rolled
    back a second time."""
    up = run.facts.upgrade
    if up is None:
        raise PreconditionRefused(
            "this rollback's ledger has no copy of the upgrade's record", "run the rollback from its preflight"
        )
    version = Version.parse(up.versions.source) if up.versions else run.runbook.target
    wanted = [p for p in up.projects_before or [] if (p.status or "").upper() in RUNNING]
    now = {p.id: p for p in list_projects(run, version)}
    stopped = [p for p in wanted if (now[p.id].status if p.id in now else None) not in RUNNING]
    resumed: list[str] = []
    lists = release_of(version).console_lists_projects
    if stopped and lists:
        console = run.consoles[run.env.nodes[0].name]
        for p in stopped:
            console.resume_project(p.id)
            resumed.append(p.id)
        now = {p.id: p for p in list_projects(run, version)}
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "before the upgrade": p.status,
            "now": now[p.id].status if p.id in now else None,
            "resumed": p.id in resumed,
        }
        for p in wanted
    ]
    run.evidence("projects that ran before the upgrade, after the rollback", rows)
    with run.record.change() as f:
        f.resumed_projects = resumed
    still = [r for r in rows if r["now"] not in RUNNING]
    assert not still, (
        f"projects that ran before the upgrade do not run after the rollback: {still}; resume them in "
        "the console ("
        + ("ResumeProject did not bring them back" if lists else f"OMS {version} publishes no ResumeProject")
        + ")"
    )
    mark_rolled_back(run, up.ledger)


RESUME_PROJECTS = Step(
    "projects_running_again",
    "Projects that ran before run again (ResumeProject)",
    projects_running_again,
    frozenset({Touches.CONSOLE, Touches.METADB}),
    True,
)
