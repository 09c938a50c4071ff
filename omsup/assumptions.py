"""Every assumption the runbooks make about a deployment, in one list, each with its source.

The probe runbook (runbooks/probe) checks each one on a real deployment by reading only: no lock,
no ledger, no change. There are three kinds (``Assumption.kind``), the README's table lists them all:

- ``documented``: a vendor document, obd or a public failure signal states it, and a runbook breaks
  where it does not hold. The check raises ``Broken`` naming what is not so; the probe fails.
- ``observed``: the public sources are silent. Every plausible behaviour is one the runbooks cope
  with (the stand-in offers each as a variant); the check reports what this deployment does
  ("observed: ...") and never fails. It raises ``Broken`` only where what it saw would break a
  runbook whatever the unknowns.
- ``manual``: not observable by reading; listed with how the runbooks cope.

Sources: doc (the OMS CE documentation), obd, odc, the host-down guide, field notes
(shared/field-notes.md), or "not public" (the runbooks chose, in the place named).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .context import Run
from .errors import OmsupError
from .releases import release_of
from .versions import Version, VersionError

API_FLOOR = (1, 26)  # Docker >= 1.13, the documented baseline (OD V4.2.2 system requirements, CentOS 7)


class Broken(Exception):
    """An assumption that does not hold on this deployment."""


@dataclass(frozen=True)
class Assumption:
    key: str
    what: str  # what the runbooks take to be so, or (observed, manual) what is not known
    source: str
    breaks: str  # what would break if it were not so; for an unknown: how the runbooks cope whatever it is
    check: Callable[[Run], Any] | None  # None: not checkable by reading (a manual check)
    kind: Literal["documented", "observed", "manual"] = "documented"


def _each(run: Run, fn: Callable[[Any], Any]) -> dict[str, Any]:
    return {n.name: fn(n) for n in run.env.nodes}


def _node_version(run: Run) -> Version:
    from .steps.connectors import deployment_version

    return deployment_version(run)


def api_version(text: Any) -> tuple[int, int]:
    """An engine's ApiVersion ("1.43") as (1, 43); anything else as (0, 0), older than every engine."""
    m = re.fullmatch(r"(\d{1,4})\.(\d{1,4})", text) if isinstance(text, str) else None
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _engines(run: Run) -> Any:
    def one(n: Any) -> Any:
        v = run.engines[n.name].version()
        if api_version(v.get("ApiVersion")) < API_FLOOR:
            raise Broken(
                f"node {n.name}: the Docker engine speaks API {v.get('ApiVersion')}, older than the documented "
                "baseline (Docker 1.13, API 1.26)"
            )
        return {
            "version": v.get("Version"),
            "api": v.get("ApiVersion"),
            "min_api": v.get("MinAPIVersion"),
            "spoken": run.engines[n.name].api_version(),
        }

    return _each(run, one)


def _docker_cli(run: Run) -> Any:
    def one(n: Any) -> Any:
        rc, out = run.engines[n.name].cli_ps(run.env.container)
        if rc != 0:
            raise Broken(f"node {n.name}: `docker ps` as the SSH user exited {rc}: {out.strip()[-200:]}")
        return out.strip()

    return _each(run, one)


def _config(run: Run) -> Any:
    from .steps.containers import binds_of
    from .steps.metadb_checks import check_identity, read_config

    def one(n: Any) -> Any:
        attrs = run.engines[n.name].inspect(run.env.container)
        if attrs is None:
            raise Broken(f"node {n.name}: no container named {run.env.container}")
        cfg = read_config(run, n, binds_of(attrs))
        rc, inside = run.oms[n.name].config_text()
        if rc != 0:
            raise Broken(f"node {n.name}: `docker exec {run.env.container} cat` of config.yaml exited {rc}")
        check_identity(run, n, cfg)
        if n.ip not in [str(x) for x in cfg.get("cm_nodes") or []]:
            raise Broken(f"node {n.name}: its ip {n.ip} is not in its config.yaml's cm_nodes {cfg.get('cm_nodes')}")
        console_port, cm_port = run.remember_config(n.name, cfg)
        return {
            "console port (nginx_server_port, 8089 by default)": console_port,
            "CM port (cm_server_port, 8088 by default)": cm_port,
            **{
                k: cfg.get(k)
                for k in (
                    "oms_meta_host",
                    "oms_meta_port",
                    "oms_meta_user",
                    "drc_rm_db",
                    "drc_cm_db",
                    "drc_cm_heartbeat_db",
                    "cm_url",
                    "cm_nodes",
                )
            },
        }

    return _each(run, one)


def _env_ip(run: Run) -> Any:
    from .steps.containers import env_of

    def one(n: Any) -> Any:
        ip = env_of(run.engines[n.name].inspect(run.env.container) or {}).get("OMS_HOST_IP")
        if ip != n.ip:
            raise Broken(f"node {n.name}: the container's OMS_HOST_IP is {ip!r}, the environment file says {n.ip}")
        return ip

    return _each(run, one)


def _supervisor(run: Run) -> Any:
    from .steps.serving import programs

    def one(n: Any) -> Any:
        rc, version = run.oms[n.name].supervisor_version()
        states, _ = programs(run, n)
        missing = [p for p in ("nginx", "oms_console", "oms_drc_cm", "oms_drc_supervisor") if p not in states]
        if missing:
            raise Broken(
                f"node {n.name}: programs missing from `supervisorctl status`: {missing} (saw {states}; "
                f"supervisorctl version exited {rc})"
            )
        _, _, status_rc = run.oms[n.name].programs()
        return {
            "supervisor": version.strip() if rc == 0 else f"(supervisorctl version exited {rc})",
            "programs": states,
            "observed: `supervisorctl status` exit code with every program RUNNING": status_rc,
        }

    return _each(run, one)


def _start_line(run: Run) -> Any:
    """In each region, some node shows the start line: in docker logs after a fresh deployment, in its
    docker_init.sh log after an upgrade (the other nodes of a region start their console by hand)."""
    from .steps.serving import SERVING_LINE

    def where(n: Any) -> str | None:
        if SERVING_LINE in run.engines[n.name].logs(run.env.container, 2000):
            return "docker logs"
        tails = run.oms[n.name].init_log_tails(release_of(_node_version(run)).init_logs, 3)
        return "its docker_init.sh log" if any(SERVING_LINE in t for t in tails) else None

    return {n.name: where(n) or "nowhere (docker logs, docker_init.sh's log)" for n in run.env.nodes}


def _health(run: Run) -> Any:
    def one(n: Any) -> Any:
        h = run.consoles[n.name].health()
        if h.get("healthy") is not True:
            raise Broken(f"node {n.name}: /oms/health says healthy={h.get('healthy')!r}")
        return h

    return _each(run, one)


def _list_projects(run: Run) -> Any:
    if not release_of(_node_version(run)).console_lists_projects:
        return "not checked: ListProjects exists from 4.1.1 (the runbooks read rm's project tables before)"
    console = run.consoles[run.env.nodes[0].name]
    projects = console.list_projects()
    first = console.action("ListProjects", {"pageNumber": 1, "pageSize": 150}) or []
    return {"projects": len(projects), "first page": len(first)}


def _project_steps(run: Run) -> Any:
    if not release_of(_node_version(run)).console_lists_projects:
        return "not checked before 4.1.1"
    console = run.consoles[run.env.nodes[0].name]
    projects = console.list_projects()
    if not projects:
        return "no project to describe"
    steps = console.project_steps(str(projects[0]["id"]))
    return {"project": projects[0]["id"], "steps": [s.get("name") for s in steps]}


def _connectors(run: Run) -> Any:
    from .steps.connectors import list_connectors

    found = list_connectors(run, _node_version(run))
    return {
        "connectors": len(found),
        "sample": [
            {"name": c["name"], "status": c.get("status"), "source keys": sorted(c["source"])} for c in found[:3]
        ],
    }


def _unknown_action(run: Run) -> Any:
    from .errors import NotReady

    try:
        data = run.consoles[run.env.nodes[0].name].action("OmsupProbeNoSuchAction")
    except NotReady as e:
        return f"refused: {e.message[:200]}"
    return f"answered success=true (data {str(data)[:80]!r}): a misspelt action would pass unnoticed"


def _metadb(run: Run) -> Any:
    from .steps.metadb_checks import RESTORE_NEEDS, UPGRADE_NEEDS, check_clocks, check_engine, check_grants

    return {
        "engine": check_engine(run, _node_version(run)),
        "clocks": check_clocks(run),
        "grants": check_grants(run, UPGRADE_NEEDS + RESTORE_NEEDS),
    }


def _ob_timeouts(run: Run) -> Any:
    from .steps.metadb_checks import check_ob_timeouts

    return check_ob_timeouts(run, run.metadb.grants()) or "not OceanBase: nothing to raise"


def _ha_config(run: Run) -> Any:
    ha = run.metadb.ha_config(run.env.metadb.rm)  # a JSON object (obd), else Broken through MetaDBProblem
    absent = [k for k in ("refetchStoreIntervalMin", "perceiveStoreClientCheckpoint") if k not in ha]
    return {
        "ha.config": ha,
        "observed: keys absent (the documented default has neither; the runbooks write what they need)": absent,
    }


def _oms_version(run: Run) -> Any:
    from .steps.containers import image_version

    rows = run.metadb.oms_versions(run.env.metadb.rm)
    n = run.env.nodes[0]
    image = image_version(run, n, run.engines[n.name].inspect(run.env.container) or {})
    if rows is None:
        return f"observed: absent (the running image: {image}); doc 004's recovery creates it when docker_init.sh asks"
    cols = run.metadb.columns(run.env.metadb.rm, "oms_version")
    if cols[:2] != ["version", "gmt_modified"]:
        raise Broken(f"{run.env.metadb.rm}.oms_version has the columns {cols}, not version, gmt_modified (obd)")
    newest = max((Version.parse(v) for v in rows), default=None)
    said = (
        "names the running version"
        if newest == image
        else f"lags the running image ({image}): this deployment's docker_init.sh may not write it"
        if newest and image and newest < image
        else f"names {newest}, the running image {image}"
    )
    return {"rows": rows, "columns": cols, "observed": said}


def _server_tables(run: Run) -> Any:
    import time

    from .errors import NotReady
    from .steps.serving import host_down_seconds, server_states, servers_online

    cm_cols = run.metadb.columns(run.env.metadb.cm, "host")
    hb_cols = {r.cm_hb: run.metadb.columns(r.cm_hb, "heart_beat") for r in run.env.regions}
    if not {"ip", "host_status"} <= set(cm_cols):
        raise Broken(f"{run.env.metadb.cm}.host has the columns {cm_cols}, without ip and host_status")
    for db, cols in hb_cols.items():
        if not {"task_name", "host_ip", "gmt_modified"} <= set(cols):
            raise Broken(f"{db}.heart_beat has the columns {cols}, without task_name, host_ip and gmt_modified")
    states0 = server_states(run)
    first = {st["node"]: st["heartbeat_at"] for st in states0}
    # A running deployment has a cm.host row for each of its servers (the host-down guide reads host_status
    # there): an ip without one is unknown to OMS, and waiting checkHostDownIntervalSec would not change it.
    unknown = [st for st in states0 if st["host_status"] is None and st["heartbeat_at"] is None]
    if unknown:
        raise Broken(
            "no row in cm.host and no supervisor heartbeat for "
            + ", ".join(f"{st['node']} ({st['ip']})" for st in unknown)
            + ": OMS does not know this ip (a wrong ip in the environment file, or the container's OMS_HOST_IP)"
        )
    t0 = time.monotonic()
    try:
        states = servers_online(run)
    except NotReady as e:
        raise Broken(e.message) from None
    return {
        "servers": states,
        "observed: checkHostDownIntervalSec (s)": host_down_seconds(run),
        "observed: seconds until every heartbeat moved (about the heartbeat period)": round(time.monotonic() - t0, 1),
        "observed: heartbeat age by the MetaDB's clock (s)": {st["node"]: st["heartbeat_age_s"] for st in states},
        "first reading": first,
    }


def _prune_plan(run: Run) -> Any:

    return {r.cm_hb: run.metadb.explain_prune(r.cm_hb) for r in run.env.regions}


def _prune_online(run: Run) -> Any:
    out = {}
    for r in run.env.regions:
        cols = run.metadb.primary_key(r.cm_hb, "heatbeat_sequence")
        if cols != ["id"]:
            raise Broken(
                f"{r.cm_hb}.heatbeat_sequence has the primary key {cols or 'none'}, not (id): each id range "
                "of the online prune would read the whole table"
            )
        out[r.cm_hb] = {"primary_key": cols, "ids": run.metadb.heartbeat_ids(r.cm_hb)}
    return out


def _digest(run: Run) -> Any:
    return run.metadb.table_digests(run.env.metadb.rm)


def _chosen_tables(run: Run) -> Any:
    rm, cm = run.env.metadb.rm, run.env.metadb.cm
    found = {
        "rm.oms_project": run.metadb.columns(rm, "oms_project"),
        "rm.oms_project_step": run.metadb.columns(rm, "oms_project_step"),
        "cm.connector_task": run.metadb.columns(cm, "connector_task"),
    }
    if not release_of(_node_version(run)).console_lists_projects:
        for table, need in (
            ("rm.oms_project", {"id", "name", "type", "status", "created_version", "source_type"}),
            ("rm.oms_project_step", {"project_id", "step_name", "status"}),
            ("cm.connector_task", {"name", "project_id", "host_ip", "status", "source_config"}),
        ):
            if not need <= set(found[table]):
                raise Broken(f"{table} has the columns {found[table]}, without {sorted(need - set(found[table]))}")
    return found


def _clients(run: Run) -> Any:
    from .steps.metadb_checks import check_clients

    return check_clients(run, dump=True)


def _packages(run: Run) -> Any:
    from .steps.image import check_package

    out = {}
    for version in run.env.packages:
        out[str(version)] = {n.name: check_package(run, n, version).model_dump() for n in run.env.nodes}
    return out or "no installation package in the environment file"


def _init_flag(run: Run) -> Any:
    def one(n: Any) -> Any:
        flag = run.oms[n.name].init_flag()
        return f"present: {flag[:80]!r}" if flag else "absent"

    return _each(run, one)


def _cm_by_name(run: Run) -> Any:
    def one(n: Any) -> Any:
        exists, seen = run.cm(n.ip).has_by_name_api()
        return ("answered" if exists else "not answered") + f": {seen}"

    return _each(run, one)


def _init_once(run: Run) -> Any:
    def one(n: Any) -> Any:
        runs = run.oms[n.name].init_log_tails(release_of(_node_version(run)).init_logs)
        last = runs[-1].strip().splitlines()[-1][-200:] if runs else ""
        return f"{len(runs)} run(s) logged" + (f"; the last ends: {last!r}" if last else "")

    return _each(run, one)


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(
        "engine_api",
        "each node's Docker engine speaks API 1.26 (Docker 1.13) or newer; the client negotiates down to it",
        "OD V4.2.2 system requirements (CentOS 7, Docker >= 1.13); docker SDK",
        "every container operation",
        _engines,
    ),
    Assumption(
        "docker_cli",
        "the SSH user runs `docker` on the node (exec and load run there, as the document types)",
        "doc 004 (`docker exec`, `docker load -i`)",
        "docker_init.sh, loading the image, readiness",
        _docker_cli,
    ),
    Assumption(
        "config_yaml",
        "config.yaml, from the host and through docker exec, names the environment file's "
        "MetaDB (oms_meta_*, drc_*) and the node in cm_nodes; its ports (nginx_server_port, cm_server_port) "
        "or the defaults 8089 and 8088",
        "doc, obd; ports: OD deploy template",
        "the backup would dump another MetaDB than OMS uses; the console and the CM are reached on its ports",
        _config,
    ),
    Assumption(
        "host_ip",
        "each container's OMS_HOST_IP is the node's ip of the environment file",
        "the host-down guide (90% of Down servers: a wrong OMS_HOST_IP)",
        "the server check, the console",
        _env_ip,
    ),
    Assumption(
        "supervisor",
        "`supervisorctl status` lists nginx, oms_console, oms_drc_cm, oms_drc_supervisor",
        "obd, field notes, the host-down guide; its exit code is observed (supervisor 3.x exits 0 always, 4.x 3 "
        "while a program is not RUNNING) and never read by the runbooks",
        "the readiness wait before docker_init.sh",
        _supervisor,
    ),
    Assumption(
        "start_line",
        "where 'OMS service start successfully' appears: docker logs (a fresh deployment, obd) or docker_init.sh's "
        "output after an upgrade",
        "obd (docker logs after a deployment); after an upgrade: not public",
        "evidence only: the runbooks record where it appeared and wait for /oms/health",
        _start_line,
        "observed",
    ),
    Assumption(
        "health",
        "GET /oms/health answers data.healthy true on every node",
        "obd",
        "the waits for the console to serve",
        _health,
    ),
    Assumption(
        "list_projects",
        "ListProjects pages of at most 150 until a short page (totalCount may be null)",
        "doc (the sample envelope shows totalCount null)",
        "the project checks before and after",
        _list_projects,
    ),
    Assumption(
        "project_steps",
        "DescribeProjectSteps answers the steps of a project with their names",
        "doc, odc",
        "the real-time and switchover checks",
        _project_steps,
    ),
    Assumption(
        "connectors",
        "Connectors are listed by DescribeProjectComponents (4.1.1 on), before that from cm.connector_task",
        "doc from 4.1.1; not public before (omsup.steps.connectors.list_connectors)",
        "the dbType fix",
        _connectors,
    ),
    Assumption(
        "cm_by_name",
        "whether the CM answers the *ByName endpoints (stopByName, startByName, updateByName)",
        "V4.0.0 pages (700.o-m-connector.md); no CM API page for 3.2.2 .. 3.3.1",
        "the dbType fix calls them where they answer, and gives doc 000/001's console steps where they do not",
        _cm_by_name,
        "observed",
    ),
    Assumption(
        "unknown_action",
        "how the console answers an Action it does not know",
        "not public",
        "nothing: the runbooks call published actions only, each answer parsed strictly",
        _unknown_action,
        "observed",
    ),
    Assumption(
        "metadb",
        "the MetaDB engine is documented for the version (or overridden), its clock agrees with "
        "the nodes' in one time zone, the user has what a backup, the upgrade and a restore need",
        "community FAQ, OD system requirements",
        "the backup, the restore, T1/T2/T3",
        _metadb,
    ),
    Assumption(
        "ob_dump_timeouts",
        "on OceanBase, a mysqldump session gets the tenant's global ob_query_timeout and ob_trx_timeout (10 s and "
        "100 s by default, mysqldump cannot set them); the user may raise them for the dumps (SUPER or ALTER SYSTEM)",
        "tried here on seekdb 1.4 (error 4012 after 10 s of reading; a raised global value lets the dump through)",
        "the backup of a MetaDB whose biggest table takes longer to read than the timeout",
        _ob_timeouts,
    ),
    Assumption(
        "ha_config",
        "rm.oms_normal_config holds ha.config as a JSON object; refetchStoreIntervalMin and "
        "perceiveStoreClientCheckpoint may be absent (the documented default has neither)",
        "obd; OD system parameters (the default value); Modify HA configurations",
        "disabling and enabling HA (a missing key is written as the document asks)",
        _ha_config,
    ),
    Assumption(
        "oms_version",
        "rm.oms_version (version, gmt_modified): whether it exists, and whether its newest row names the running "
        "version (docker_init.sh writing the target there is not stated)",
        "obd (DDL; the version before an upgrade); doc 004's recovery",
        "evidence: the upgrade passes on the documented signals and warns where it still names the version before",
        _oms_version,
        "observed",
    ),
    Assumption(
        "server_state",
        "cm.host (ip, host_status ONLINE) and a moving supervisor heartbeat in heart_beat (task_name 'supervisor', "
        "host_ip, gmt_modified) within ha.config's checkHostDownIntervalSec; the heartbeat period and clock are observed",
        "the host-down guide; HA introduction (checkHostDownIntervalSec, 540 s by default)",
        "doc 004 step 7's check",
        _server_tables,
    ),
    Assumption(
        "prune",
        "the MetaDB takes doc 004's prune statement (EXPLAIN)",
        "doc 003/004",
        "pruning the heartbeats",
        _prune_plan,
    ),
    Assumption(
        "prune_online",
        "cm_hb.heatbeat_sequence has the primary key (id), and its rows below max(id) are history a running "
        "OMS does not read (doc 003/004 delete them; the upgrade deletes them before T1, in id ranges)",
        "doc 003/004 (the DELETE); the key: the table's DDL; that a running OMS does not read them: not public",
        "the downtime (the document's single DELETE would then run while OMS is stopped)",
        _prune_online,
    ),
    Assumption(
        "digest",
        "the MetaDB computes the content digest (sums of CRC32 and of the length of each row's text)",
        "this project's choice (no CHECKSUM TABLE on OceanBase)",
        "verifying backups and restores",
        _digest,
    ),
    Assumption(
        "chosen_tables",
        "before 4.1.1: rm.oms_project, rm.oms_project_step and cm.connector_task hold the projects and the Connectors",
        "not public (omsup.adapters.metadb)",
        "the project checks and the dbType fix before 4.1.1",
        _chosen_tables,
    ),
    Assumption(
        "clients",
        "mysqldump and mysql on the backup host; a --no-data dump works and the restore client reads it",
        "doc 003/004, field notes (mysqldump mismatches)",
        "the backup and the restore",
        _clients,
    ),
    Assumption(
        "packages",
        "each installation package named in the environment file is a complete `docker save` "
        "archive whose manifest names its version",
        "doc 004 (docker load -i)",
        "loading the image",
        _packages,
    ),
    Assumption(
        "init_flag",
        "whether docker_init.sh leaves a /root/init_flag.txt",
        "not public (an obd-like module reads one after docker_hot_update_init.sh; field notes, corrected)",
        "evidence only: docker_init.sh's success is its exit 0, then /oms/health and every server Online",
        _init_flag,
        "observed",
    ),
    Assumption(
        "init_once",
        "how many times docker_init.sh ran on this deployment, and how the last run ended",
        "doc 004; the vendor runs it again (doc 004, the hot-upgrade rollback, obd's reload)",
        "evidence: a resumed upgrade runs it again after a failure, as the vendor does (a few times, then the rollback)",
        _init_once,
        "observed",
    ),
    Assumption(
        "ha_write_effect",
        "whether a SQL write of ha.config takes effect in a running OMS",
        "not public (the documents use the console; no public reading of system parameters but the row)",
        "the runbooks write it while OMS runs (disable) and before it serves again (enable), and read the row back",
        None,
        "manual",
    ),
    Assumption(
        "console_after_init",
        "whether, after an upgrade, a node without its own docker_init.sh starts oms_console by itself",
        "not public (inferred from the vendor's multi-node procedures)",
        "`supervisorctl start oms_console` there once its region's init succeeded: a no-op where it runs",
        None,
        "manual",
    ),
    Assumption(
        "init_console_failure",
        "what docker_init.sh does when its own oms_console does not start",
        "not public",
        "the init step stops on a non-zero exit, or on the console's state in supervisor while it waits for "
        "/oms/health",
        None,
        "manual",
    ),
    Assumption(
        "hot_node_order",
        "the hot upgrade's order across several nodes",
        "not public (OD 309 is written for one host)",
        "one node at a time in the environment file's order: every other console and CM keeps serving, a failure "
        "leaves one node to roll back",
        None,
        "manual",
    ),
    Assumption(
        "hot_rerun",
        "whether docker_copy_dumpfile_to_container.sh or docker_hot_update_init.sh may run again after a failure or "
        "an interruption",
        "not public (OD 309 gives only its rollback)",
        "the run stops, not to be resumed, and names the rollback runbook and the container's backup folder",
        None,
        "manual",
    ),
    Assumption(
        "hot_programs",
        "whether docker_hot_update_init.sh, and docker_init.sh after the page's rollback, start the management "
        "programs step 5 stopped",
        "OD 309 has no step that starts them (so the scripts must); not stated",
        "the hot update waits for every one RUNNING and /oms/health; the rollback starts those left stopped",
        None,
        "manual",
    ),
    Assumption(
        "hot_components",
        "which processes in the container are the tasks' components that keep running through a hot upgrade",
        "OD 309 (the tasks are not affected); their processes: not public",
        "evidence: the processes that outlived step 5's stop, with their PIDs, and whether they still run after; "
        "the condition is the task and Incr-Sync component states, compared before and after",
        None,
        "manual",
    ),
)


def check_all(run: Run) -> list[dict[str, Any]]:
    """Every assumption: holds or observed (with what was seen), BROKEN (with why), or manual."""
    out = []
    for a in ASSUMPTIONS:
        row: dict[str, Any] = {
            "key": a.key,
            "kind": a.kind,
            "assumption": a.what,
            "source": a.source,
            "breaks": a.breaks,
        }
        if a.check is None:
            row["result"] = "manual check"
        else:
            try:
                row["seen"] = json.loads(json.dumps(a.check(run), default=str))
                row["result"] = "holds" if a.kind == "documented" else "observed"
            except (Broken, OmsupError, AssertionError, VersionError) as e:
                row["result"], row["why"] = "BROKEN", str(e).splitlines()[0][:500]
        out.append(row)
    return out


def markdown_table() -> str:
    """The README's table of the assumptions: documented (source) / observed by the probe / unknown and how the
    runbooks cope."""
    lines = [
        "| key | kind | what | source | what breaks, or how the runbooks cope |",
        "| --- | --- | --- | --- | --- |",
    ]
    for a in ASSUMPTIONS:
        kind = {"documented": "documented", "observed": "unknown, observed by the probe", "manual": "unknown"}[a.kind]
        cells = [f"`{a.key}`", kind, a.what, a.source, a.breaks]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m omsup.assumptions: the README's table
    print(markdown_table())
