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

import re
from dataclasses import dataclass
from typing import Any, Literal

API_FLOOR = (1, 26)  # Docker >= 1.13, the documented baseline (OD V4.2.2 system requirements, CentOS 7)


class Broken(Exception):
    """An assumption that does not hold on this deployment."""


@dataclass(frozen=True)
class Assumption:
    key: str
    what: str  # what the runbooks take to be so, or (observed, manual) what is not known
    source: str
    breaks: str  # what would break if it were not so; for an unknown: how the runbooks cope whatever it is
    kind: Literal["documented", "observed", "manual"] = "documented"  # manual: not checkable by reading


def api_version(text: Any) -> tuple[int, int]:
    """An engine's ApiVersion ("1.43") as (1, 43); anything else as (0, 0), older than every engine."""
    m = re.fullmatch(r"(\d{1,4})\.(\d{1,4})", text) if isinstance(text, str) else None
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(
        "engine_api",
        "each node's Docker engine speaks API 1.26 (Docker 1.13) or newer; the client negotiates down to it",
        "OD V4.2.2 system requirements (CentOS 7, Docker >= 1.13); docker SDK",
        "every container operation",
    ),
    Assumption(
        "docker_cli",
        "the SSH user runs `docker` on the node (exec and load run there, as the document types)",
        "doc 004 (`docker exec`, `docker load -i`)",
        "docker_init.sh, loading the image, readiness",
    ),
    Assumption(
        "config_yaml",
        "config.yaml, from the host and through docker exec, names the environment file's "
        "MetaDB (oms_meta_*, drc_*) and the node in cm_nodes; its ports (nginx_server_port, cm_server_port) "
        "or the defaults 8089 and 8088",
        "doc, obd; ports: OD deploy template",
        "the backup would dump another MetaDB than OMS uses; the console and the CM are reached on its ports",
    ),
    Assumption(
        "host_ip",
        "each container's OMS_HOST_IP is the node's ip of the environment file",
        "the host-down guide (90% of Down servers: a wrong OMS_HOST_IP)",
        "the server check, the console",
    ),
    Assumption(
        "supervisor",
        "`supervisorctl status` lists nginx, oms_console, oms_drc_cm, oms_drc_supervisor",
        "obd, field notes, the host-down guide; its exit code is observed (supervisor 3.x exits 0 always, 4.x 3 "
        "while a program is not RUNNING) and never read by the runbooks",
        "the readiness wait before docker_init.sh",
    ),
    Assumption(
        "start_line",
        "where 'OMS service start successfully' appears: docker logs (a fresh deployment, obd) or docker_init.sh's "
        "output after an upgrade",
        "obd (docker logs after a deployment); after an upgrade: not public",
        "evidence only: the runbooks record where it appeared and wait for /oms/health",
        "observed",
    ),
    Assumption(
        "health",
        "GET /oms/health answers data.healthy true on every node",
        "obd",
        "the waits for the console to serve",
    ),
    Assumption(
        "list_projects",
        "ListProjects pages of at most 150 until a short page (totalCount may be null)",
        "doc (the sample envelope shows totalCount null)",
        "the project checks before and after",
    ),
    Assumption(
        "project_steps",
        "DescribeProjectSteps answers the steps of a project with their names",
        "doc, odc",
        "the real-time and switchover checks",
    ),
    Assumption(
        "connectors",
        "Connectors are listed by DescribeProjectComponents (4.1.1 on), before that from cm.connector_task",
        "doc from 4.1.1; not public before (omsup.steps.connectors.list_connectors)",
        "the dbType fix",
    ),
    Assumption(
        "cm_by_name",
        "whether the CM answers the *ByName endpoints (stopByName, startByName, updateByName)",
        "V4.0.0 pages (700.o-m-connector.md); no CM API page for 3.2.2 .. 3.3.1",
        "the dbType fix calls them where they answer, and gives doc 000/001's console steps where they do not",
        "observed",
    ),
    Assumption(
        "unknown_action",
        "how the console answers an Action it does not know",
        "not public",
        "nothing: the runbooks call published actions only, each answer parsed strictly",
        "observed",
    ),
    Assumption(
        "metadb",
        "the MetaDB engine is documented for the version (or overridden), its clock agrees with "
        "the nodes' in one time zone, the user has what a backup, the upgrade and a restore need",
        "community FAQ, OD system requirements",
        "the backup, the restore, T1/T2/T3",
    ),
    Assumption(
        "ob_dump_timeouts",
        "on OceanBase, a mysqldump session gets the tenant's global ob_query_timeout and ob_trx_timeout (10 s and "
        "100 s by default, mysqldump cannot set them); the user may raise them for the dumps (SUPER or ALTER SYSTEM); "
        "the restore's `mysql` session and omsup's own sessions set their own (session only, nothing global)",
        "tried here on seekdb 1.4 (error 4012 after 10 s of reading; a raised global value lets the dump through)",
        "the backup of a MetaDB whose biggest table takes longer to read than the timeout",
    ),
    Assumption(
        "ha_config",
        "rm.oms_normal_config holds ha.config as a JSON object; refetchStoreIntervalMin and "
        "perceiveStoreClientCheckpoint may be absent (the documented default has neither)",
        "obd; OD system parameters (the default value); Modify HA configurations",
        "disabling and enabling HA (a missing key is written as the document asks)",
    ),
    Assumption(
        "oms_version",
        "rm.oms_version (version, gmt_modified): whether it exists, and whether its newest row names the running "
        "version (docker_init.sh writing the target there is not stated)",
        "obd (DDL; the version before an upgrade); doc 004's recovery",
        "evidence: the upgrade passes on the documented signals and warns where it still names the version before",
        "observed",
    ),
    Assumption(
        "server_state",
        "cm.host (ip, host_status ONLINE) and a moving supervisor heartbeat in heart_beat (task_name 'supervisor', "
        "host_ip, gmt_modified) within ha.config's checkHostDownIntervalSec; the heartbeat period and clock are observed",
        "the host-down guide; HA introduction (checkHostDownIntervalSec, 540 s by default)",
        "doc 004 step 7's check",
    ),
    Assumption(
        "prune",
        "the MetaDB takes doc 004's prune statement (EXPLAIN)",
        "doc 003/004",
        "pruning the heartbeats",
    ),
    Assumption(
        "prune_online",
        "cm_hb.heatbeat_sequence has the primary key (id), and its rows below max(id) are history a running "
        "OMS does not read (doc 003/004 delete them; the upgrade deletes them before T1, in id ranges)",
        "doc 003/004 (the DELETE); the key: the table's DDL; that a running OMS does not read them: not public",
        "the downtime (the document's single DELETE would then run while OMS is stopped)",
    ),
    Assumption(
        "digest",
        "the MetaDB computes the content digest (sums of CRC32 and of the length of each row's text)",
        "this project's choice (no CHECKSUM TABLE on OceanBase)",
        "verifying backups and restores",
    ),
    Assumption(
        "chosen_tables",
        "before 4.1.1: rm.oms_project, rm.oms_project_step and cm.connector_task hold the projects and the Connectors",
        "not public (omsup.adapters.metadb)",
        "the project checks and the dbType fix before 4.1.1",
    ),
    Assumption(
        "clients",
        "mysqldump and mysql on the backup host; a --no-data dump works and the restore client reads it",
        "doc 003/004, field notes (mysqldump mismatches)",
        "the backup and the restore",
    ),
    Assumption(
        "packages",
        "each installation package named in the environment file is a complete `docker save` "
        "archive whose manifest names its version",
        "doc 004 (docker load -i)",
        "loading the image",
    ),
    Assumption(
        "init_flag",
        "whether docker_init.sh leaves a /root/init_flag.txt",
        "not public (an obd-like module reads one after docker_hot_update_init.sh; field notes, corrected)",
        "evidence only: docker_init.sh's success is its exit 0, then /oms/health and every server Online",
        "observed",
    ),
    Assumption(
        "init_once",
        "how many times docker_init.sh ran on this deployment, and how the last run ended",
        "doc 004; the vendor runs it again (doc 004, the hot-upgrade rollback, obd's reload)",
        "evidence: a resumed upgrade runs it again after a failure, as the vendor does (a few times, then the rollback)",
        "observed",
    ),
    Assumption(
        "ha_write_effect",
        "whether a SQL write of ha.config takes effect in a running OMS",
        "not public (the documents use the console; no public reading of system parameters but the row)",
        "the runbooks write it while OMS runs (disable) and before it serves again (enable), and read the row back",
        "manual",
    ),
    Assumption(
        "console_after_init",
        "whether, after an upgrade, a node without its own docker_init.sh starts oms_console by itself",
        "not public (inferred from the vendor's multi-node procedures)",
        "`supervisorctl start oms_console` there once its region's init succeeded: a no-op where it runs",
        "manual",
    ),
    Assumption(
        "init_console_failure",
        "what docker_init.sh does when its own oms_console does not start",
        "not public",
        "the init step stops on a non-zero exit, or on the console's state in supervisor while it waits for "
        "/oms/health",
        "manual",
    ),
    Assumption(
        "hot_node_order",
        "the hot upgrade's order across several nodes",
        "not public (OD 309 is written for one host)",
        "one node at a time in the environment file's order: every other console and CM keeps serving, a failure "
        "leaves one node to roll back",
        "manual",
    ),
    Assumption(
        "hot_rerun",
        "whether docker_copy_dumpfile_to_container.sh or docker_hot_update_init.sh may run again after a failure or "
        "an interruption",
        "not public (OD 309 gives only its rollback)",
        "the run stops, not to be resumed, and names the rollback runbook and the container's backup folder",
        "manual",
    ),
    Assumption(
        "hot_programs",
        "whether docker_hot_update_init.sh, and docker_init.sh after the page's rollback, start the management "
        "programs step 5 stopped",
        "OD 309 has no step that starts them (so the scripts must); not stated",
        "the hot update waits for every one RUNNING and /oms/health; the rollback starts those left stopped",
        "manual",
    ),
    Assumption(
        "hot_components",
        "which processes in the container are the tasks' components that keep running through a hot upgrade",
        "OD 309 (the tasks are not affected); their processes: not public",
        "evidence: the processes that outlived step 5's stop, with their PIDs, and whether they still run after; "
        "the condition is the task and Incr-Sync component states, compared before and after",
        "manual",
    ),
)


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
