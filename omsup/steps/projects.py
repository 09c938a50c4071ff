"""The migration and synchronization projects: listed before and after, held to the documents' rules.

ListProjects and DescribeProjectSteps from V4.1.1-CE (doc); before that the console has no
project list, and the MetaDB adapter reads rm's project tables (this project's choice, kept in
that adapter).
"""

from __future__ import annotations

from typing import Any

from ..context import Run
from ..projects import forbidden_reason
from ..record import Project
from ..versions import LIST_PROJECTS_FROM, Version


def list_projects(run: Run, version: Version) -> list[Project]:
    """Every project with its steps and, where the documents forbid an upgrade, why."""
    found: list[dict[str, Any]]
    if version >= LIST_PROJECTS_FROM:
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
