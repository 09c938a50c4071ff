"""The Connector `dbType` check and fix (doc 000, 001/002), through the Cluster Manager's API.

"Before you upgrade OMS V3.2.2-CE ... you need to add the `dbType` parameter for the Connector
component. Otherwise, the data synchronization projects cannot run." "If any of the two
parameters [dbType, db_type] exists, no fix is required." Batch O&M: "If only one type of source
databases exist on the host", every Connector of one host IP at once.

The fix uses what is published (V4.0.0 "O&M operations for the Connector component"): the CM's
`updateByName` with `taskName` and `source.dbType`, accepted only for a stopped or abnormal
Connector: a running one is stopped first (`stopByName`) and started again afterwards
(`startByName`). In 3.3.1 the values are MYSQL, OCEANBASE, OB_MYSQL; a Connector that also lacks
`checkpoint` gets one (field notes): the time it was stopped, for its subtopic.

How Connectors are listed is not public before 4.1.1 (DescribeProjectComponents, doc): that is
chosen in ``list_connectors`` below, the one place, and the probe runbook checks it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from ..adapters.cm import CM
from ..context import Run
from ..errors import OmsupError, PreconditionRefused
from ..record import ConnectorFix, ConnectorRow, ConnectorSurvey
from ..redact import mask_config
from ..releases import release_of
from ..runbook import Step, Touches
from ..versions import Version, VersionError
from .readings import deployment_version

CREATED_ON_NEEDING_FIX = {Version.parse("3.2.1"), Version.parse("3.2.2")}
# The project's source endpoint type -> the Connector's dbType (doc: MYSQL, OB_MYSQL, OB_ORACLE,
# ORACLE, DB2_LUW, POSTGRESQL). Other types have no documented dbType: refused, never guessed.
DB_TYPES = {t: t for t in ("MYSQL", "OB_MYSQL", "OB_ORACLE", "ORACLE", "DB2_LUW", "POSTGRESQL")}


def has_db_type(source: dict[str, Any]) -> bool:
    return "dbType" in source or "db_type" in source


def list_connectors(run: Run, version: Version) -> list[dict[str, Any]]:
    """Every Connector with its project: {name, host, status, source, project{...}}.

    From 4.1.1 the published DescribeProjectComponents of every listed project (Incr-Sync
    components); before that the console publishes no Connector list, and this project reads the
    Cluster Manager's task table in cm (not public: chosen here, checked by the probe).
    """
    console = run.consoles[run.env.nodes[0].name]
    if release_of(version).console_lists_projects:
        out = []
        for p in console.list_projects():
            out += [{**c, "project": p} for c in console.components(str(p["id"]))]
        return out
    projects = {str(p["id"]): p for p in run.metadb.projects(run.env.metadb.rm)}
    return [
        {**c, "project": projects.get(c["project"], {"id": c["project"]})}
        for c in run.metadb.connector_tasks(run.env.metadb.cm)
    ]


def _created_on(project: dict[str, Any]) -> Version | None:
    try:
        return Version.parse(project.get("created_version") or project.get("createdVersion") or "")
    except VersionError:
        return None


def survey(run: Run) -> ConnectorSurvey:
    """Every Connector, which need dbType (and a checkpoint), and the plan (batch per host or one by one)."""
    version = deployment_version(run)
    rows = []
    for c in list_connectors(run, version):
        p, source = c["project"], c["source"]
        created = _created_on(p)
        src_type = str(p.get("source_type") or p.get("sourceEndpointType") or "")
        # created on 3.2.1/3.2.2 (doc); where the creation version is not known, lacking both is enough
        needs = not has_db_type(source) and (created is None or created in CREATED_ON_NEEDING_FIX)
        rows.append(
            ConnectorRow(
                id=c["name"],
                host=c.get("host"),
                project=p.get("name"),
                status=c.get("status"),
                created_on=str(created) if created else None,
                source_type=src_type,
                has_db_type=has_db_type(source),
                has_checkpoint="checkpoint" in source,
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


def _checkpoint(run: Run, name: str, stopped_at: int) -> str:
    """source.checkpoint for a Connector without one: {subtopic: the second it was stopped}."""
    version = deployment_version(run)
    source: dict[str, Any] = next((c["source"] for c in list_connectors(run, version) if c["name"] == name), {})
    subtopic = source.get("subtopic")
    if not isinstance(subtopic, str) or not subtopic:
        raise PreconditionRefused(
            f"Connector {name} lacks both dbType and a checkpoint, and its subtopic is not in its configuration",
            "set its checkpoint by hand (doc: O&M of the Connector, 'Pull back Light-Connector'), then run again",
        )
    return json.dumps({subtopic: str(stopped_at)})


def console_steps(plan: list[ConnectorFix]) -> str:
    """doc 000/001's console procedure for the Connectors of ``plan`` (Batch O&M where a host has one source type)."""
    out = []
    for p in plan:
        if p.how == "batch":
            out.append(
                f"OPS & Monitoring > Component > Connector > Batch O&M > Update: IP {p.host}, in source add "
                f"dbType={p.db_type} ({', '.join(p.connectors)}), Submit"
            )
        else:
            out.append(
                f"OPS & Monitoring > Component > Connector: Update of {p.connectors[0]} (on {p.host}), in source add "
                f"dbType={p.db_type}, Update"
            )
    return "; ".join(out)


def fix_db_type(run: Run) -> None:
    found = survey(run)
    run.evidence("Connectors before (dbType / db_type present?)", found.connectors)
    run.evidence("fix plan (a batch per host with one source type, else one by one)", found.plan)
    rows = {r.id: r for r in found.connectors}
    # the CM of each Connector's host (doc: curl http://${cm_url}:${cm_port}/...); its *ByName endpoints are
    # documented from V4.0.0 only: where they do not answer, the document's console procedure, before any change
    cms = {item.host: run.cm(item.host) for item in found.plan}
    seen = {host: cm.has_by_name_api() for host, cm in cms.items()}
    run.evidence("the CM's *ByName endpoints (documented from V4.0.0), per host", seen)
    missing = [host for host, (ok, _) in seen.items() if not ok]
    if missing:
        raise PreconditionRefused(
            f"the CM of {', '.join(missing)} does not answer the *ByName endpoints the V4.0.0 pages document "
            f"({'; '.join(seen[h][1] for h in missing)}): add dbType on the console instead, as doc 000/001 say",
            f"on the console: {console_steps(found.plan)}; then run the runbook again: it checks every Connector "
            "and goes on",
        )
    for item in found.plan:
        cm = cms[item.host]
        batch = [rows[c] for c in item.connectors]
        running = [r.id for r in batch if r.status == "RUNNING"]
        stopped: list[str] = []
        try:
            for name in running:  # doc: the CM updates only a stopped or abnormal Connector
                cm.stop_connector(name)
                stopped.append(name)
            stopped_at = int(time.time())
            for r in batch:
                source = {"dbType": item.db_type}
                if not r.has_checkpoint:
                    source["checkpoint"] = _checkpoint(run, r.id, stopped_at)
                cm.update_connector(r.id, source)
        finally:  # a Connector that ran runs again, whatever failed after it was stopped
            _start_again(run, cm, stopped)
    with run.record.change() as f:
        f.connector_fixes = found.plan
    verify_db_type(run)


def _start_again(run: Run, cm: CM, names: list[str]) -> None:
    """startByName (resume=false, as documented after an update) of every Connector this step stopped; one that
    does not start is reported, and the others are still started."""
    failed = []
    for name in names:
        try:
            cm.start_connector(name)
        except OmsupError as e:
            failed.append(f"{name}: {e.message}")
    if names:
        run.evidence("Connectors started again (startByName, resume=false)", {"started": names, "failed": failed})
    if failed:
        run.warn(
            "Connectors this step stopped did not start again: "
            + "; ".join(failed)
            + " (start them on the console: OPS & Monitoring > Component > Connector > Start)"
        )


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
        f"{'Batch O&M on host ' + p.host if p.how == 'batch' else 'Update ' + p.connectors[0]}: stop (if running), "
        f"updateByName source.dbType={p.db_type} (+ checkpoint where missing), start again  "
        f"({', '.join(p.connectors)})"
        for p in found.plan
    ]


# Checked through the console, which is down from the stop of the old containers on: a resumed
# upgrade past that point does not check it again (the fix is in the backup and the MetaDB);
# the stop step supersedes this one.
CONNECTOR_DBTYPE = Step(
    "connector_dbtype",
    "Add dbType to the Connectors that need it",
    fix_db_type,
    frozenset({Touches.CONSOLE, Touches.METADB}),
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
    frozenset({Touches.CONSOLE, Touches.METADB}),
    False,
)


def masked(connectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Connector configurations as they may be shown: sensitive values masked."""
    return [mask_config(c) for c in connectors]
