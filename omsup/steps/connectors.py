"""The Connector `dbType` check and fix (doc 000, 001/002).

"Before you upgrade OMS V3.2.2-CE ... you need to add the `dbType` parameter for the Connector
component. Otherwise, the data synchronization projects cannot run." "If you use V3.3.0 and it
contains data synchronization projects created by using V3.2.1 or V3.2.2, the preceding issue
may occur." "If any of the two parameters [dbType, db_type] exists, no fix is required."
Batch O&M: "If only one type of source databases exist on the host", every Connector of one host
IP at once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..context import Run
from ..errors import PreconditionRefused
from ..record import ConnectorFix, ConnectorRow, ConnectorSurvey
from ..runbook import Step, Touches
from ..versions import Version

CREATED_ON_NEEDING_FIX = {Version.parse("3.2.1"), Version.parse("3.2.2")}
# The project's source endpoint type -> the Connector's dbType (doc: MYSQL, OB_MYSQL, OB_ORACLE,
# ORACLE, DB2_LUW, POSTGRESQL). Other types have no documented dbType: refused, never guessed.
DB_TYPES = {t: t for t in ("MYSQL", "OB_MYSQL", "OB_ORACLE", "ORACLE", "DB2_LUW", "POSTGRESQL")}


def has_db_type(config: dict[str, Any]) -> bool:
    source = config.get("source") or {}
    return "dbType" in source or "db_type" in source


def survey(run: Run) -> ConnectorSurvey:
    """Every Connector, which need dbType, the value each needs, and the plan (batch per host or one by one)."""
    console = run.consoles[run.env.nodes[0].name]
    projects: dict[str, dict[str, Any]] = {}
    connectors = console.connectors()
    rows = []
    for c in connectors:
        pid = str(c.get("projectId"))
        if pid not in projects:
            projects[pid] = console.project(pid)
        p = projects[pid]
        created = Version.parse(p.get("createdVersion") or "0.0.0")
        needs = not has_db_type(c.get("config") or {}) and created in CREATED_ON_NEEDING_FIX
        src_type = str(p.get("sourceEndpointType") or "")
        rows.append(
            ConnectorRow(
                id=str(c["id"]),
                host=c.get("hostIp"),
                project=p.get("name"),
                created_on=str(created),
                source_type=src_type,
                has_db_type=has_db_type(c.get("config") or {}),
                needs_fix=needs,
                db_type=DB_TYPES.get(src_type),
            )
        )
    unknown = [r for r in rows if r.needs_fix and r.db_type is None]
    if unknown:
        raise PreconditionRefused(
            "Connectors need dbType but their source type has no documented value: "
            + ", ".join(f"{r.id} ({r.source_type or 'unknown'})" for r in unknown),
            "add dbType to these by hand on the console (OPS & Monitoring > Component > Connector > Update)",
        )
    by_host: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_host[str(r.host)].add(r.source_type)
    plan: list[ConnectorFix] = []
    for host in sorted({str(r.host) for r in rows if r.needs_fix}):
        fixes = [r for r in rows if r.needs_fix and str(r.host) == host]
        if len(by_host[host]) == 1:
            plan.append(
                ConnectorFix(how="batch", host=host, db_type=str(fixes[0].db_type), connectors=[r.id for r in fixes])
            )
        else:
            plan += [ConnectorFix(how="one", host=host, db_type=str(r.db_type), connectors=[r.id]) for r in fixes]
    return ConnectorSurvey(connectors=rows, plan=plan)


def fix_db_type(run: Run) -> None:
    found = survey(run)
    run.evidence("Connectors before (dbType / db_type present?)", found.connectors)
    run.evidence("fix plan", found.plan)
    console = run.consoles[run.env.nodes[0].name]
    configs = {c["id"]: c["config"] for c in console.connectors()}
    for item in found.plan:
        if item.how == "batch":
            console.batch_update_connectors(item.host, {"dbType": item.db_type})
        else:
            cid = item.connectors[0]
            config = dict(configs[cid])
            config["source"] = {**(config.get("source") or {}), "dbType": item.db_type}
            console.update_connector(cid, config)
    with run.record.change() as f:
        f.connector_fixes = found.plan
    verify_db_type(run)


def verify_db_type(run: Run) -> None:
    after = survey(run)
    run.evidence("Connectors after", after.connectors)
    missing = [r.id for r in after.connectors if r.needs_fix]
    assert not missing, f"Connectors still without dbType/db_type: {missing}"


def plan_db_type(run: Run) -> list[str]:
    try:
        found = survey(run)
    except PreconditionRefused as e:
        return [f"refuse: {e.message}"]
    if not found.plan:
        return ["no Connector needs dbType"]
    return [
        f"{'Batch O&M on host ' + p.host if p.how == 'batch' else 'Update ' + p.connectors[0]}: "
        f"source.dbType = {p.db_type}  ({', '.join(p.connectors)})"
        for p in found.plan
    ]


# Checked through the console, which is down from the stop of the old containers on: a resumed
# upgrade past that point does not check it again (the fix is in the backup and the MetaDB);
# the stop step supersedes this one.
CONNECTOR_DBTYPE = Step(
    "connector_dbtype",
    "Add dbType to the Connectors that need it",
    fix_db_type,
    frozenset({Touches.CONSOLE}),
    True,
    plan_db_type,
    verify_db_type,
)


def survey_step(run: Run) -> None:
    found = survey(run)
    run.evidence("Connectors (dbType / db_type present?)", found.connectors)
    run.evidence("fix plan", found.plan)
    with run.record.change() as f:
        f.connector_survey = found


CONNECTOR_SURVEY = Step(
    "connector_survey",
    "List the Connectors lacking dbType (changes nothing)",
    survey_step,
    frozenset({Touches.CONSOLE}),
    False,
)
