"""The probe's checks (omsup/assumptions.py lists what each checks and why): each reads the deployment through
the steps' own readings and the adapters, and changes nothing. ``CHECKS`` names the check of every assumption that
is not a manual one (a unit test keeps the two equal)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..assumptions import API_FLOOR, ASSUMPTIONS, Broken, api_version
from ..context import Run
from ..errors import NotReady, OmsupError
from ..releases import release_of
from ..versions import Version, VersionError
from .connectors import list_connectors
from .containers import binds_of, env_of
from .image import check_package
from .metadb_checks import (
    RESTORE_NEEDS,
    UPGRADE_NEEDS,
    check_clients,
    check_clocks,
    check_engine,
    check_grants,
    check_identity,
    check_ob_timeouts,
    read_config,
)
from .readings import deployment_version, image_version
from .serving import SERVING_LINE, host_down_seconds, programs, server_states, servers_online


def _each(run: Run, fn: Callable[[Any], Any]) -> dict[str, Any]:
    return {n.name: fn(n) for n in run.env.nodes}


# what the server check reports of the heartbeat period (a rehearsal reads it from the probe of its replica)
HEARTBEAT_PERIOD = "observed: seconds until every heartbeat moved (about the heartbeat period)"


def _node_version(run: Run) -> Version:
    return deployment_version(run)


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
    def one(n: Any) -> Any:
        ip = env_of(run.engines[n.name].inspect(run.env.container) or {}).get("OMS_HOST_IP")
        if ip != n.ip:
            raise Broken(f"node {n.name}: the container's OMS_HOST_IP is {ip!r}, the environment file says {n.ip}")
        return ip

    return _each(run, one)


def _supervisor(run: Run) -> Any:
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
    found = list_connectors(run, _node_version(run))
    return {
        "connectors": len(found),
        "sample": [
            {"name": c["name"], "status": c.get("status"), "source keys": sorted(c["source"])} for c in found[:3]
        ],
    }


def _unknown_action(run: Run) -> Any:
    try:
        data = run.consoles[run.env.nodes[0].name].action("OmsupProbeNoSuchAction")
    except NotReady as e:
        return f"refused: {e.message[:200]}"
    return f"answered success=true (data {str(data)[:80]!r}): a misspelt action would pass unnoticed"


def _metadb(run: Run) -> Any:
    return {
        "engine": check_engine(run, _node_version(run)),
        "clocks": check_clocks(run),
        "grants": check_grants(run, UPGRADE_NEEDS + RESTORE_NEEDS),
    }


def _ob_timeouts(run: Run) -> Any:
    return check_ob_timeouts(run, run.metadb.grants()) or "not OceanBase: nothing to raise"


def _ha_config(run: Run) -> Any:
    ha = run.metadb.ha_config(run.env.metadb.rm)  # a JSON object (obd), else Broken through MetaDBProblem
    absent = [k for k in ("refetchStoreIntervalMin", "perceiveStoreClientCheckpoint") if k not in ha]
    return {
        "ha.config": ha,
        "observed: keys absent (the documented default has neither; the runbooks write what they need)": absent,
    }


def _oms_version(run: Run) -> Any:
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
        HEARTBEAT_PERIOD: round(time.monotonic() - t0, 1),
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
    return check_clients(run, dump=True)


def _packages(run: Run) -> Any:
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


CHECKS: dict[str, Callable[[Run], Any]] = {
    "engine_api": _engines,
    "docker_cli": _docker_cli,
    "config_yaml": _config,
    "host_ip": _env_ip,
    "supervisor": _supervisor,
    "start_line": _start_line,
    "health": _health,
    "list_projects": _list_projects,
    "project_steps": _project_steps,
    "connectors": _connectors,
    "cm_by_name": _cm_by_name,
    "unknown_action": _unknown_action,
    "metadb": _metadb,
    "ob_dump_timeouts": _ob_timeouts,
    "ha_config": _ha_config,
    "oms_version": _oms_version,
    "server_state": _server_tables,
    "prune": _prune_plan,
    "prune_online": _prune_online,
    "digest": _digest,
    "chosen_tables": _chosen_tables,
    "clients": _clients,
    "packages": _packages,
    "init_flag": _init_flag,
    "init_once": _init_once,
}


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
        check = CHECKS.get(a.key)
        if check is None:
            row["result"] = "manual check"
        else:
            try:
                row["seen"] = json.loads(json.dumps(check(run), default=str))
                row["result"] = "holds" if a.kind == "documented" else "observed"
            except (Broken, OmsupError, AssertionError, VersionError) as e:
                row["result"], row["why"] = "BROKEN", str(e).splitlines()[0][:500]
        out.append(row)
    return out
