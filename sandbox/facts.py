"""What the stand-in knows of the real OMS CE: the documented facts, each with its public source.

Written from shared/oms-interfaces.md and shared/field-notes.md, never from the runbooks' code:
nothing under sandbox/ imports omsup. This module is also copied into the stand-in image, so it
uses the standard library only. Sources: doc = the OMS CE documentation (shared/seeds, or
oceanbase/oms-doc), obd = oceanbase/obdeploy, odc = oceanbase/odc, obdiag = oceanbase/obdiag.

Where the public sources are silent the stand-in has a default behaviour (``CHOICES``) and offers
each other plausible behaviour as a variant (``VARIANTS``, `python -m sandbox up --variant NAME`,
several at once): the runbooks must pass on every one of them, since a real deployment may behave
either way. The probe runbook (runbooks/probe) reports which one a real deployment shows.
"""

from __future__ import annotations

import re

# -- versions and upgrades (doc 000, 001/002, 004; field notes) -------------------------------------
VERSIONS = (
    "3.2.2", "3.3.0", "3.3.1", "4.0.0", "4.1.0", "4.1.1",
    "4.2.0", "4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "4.2.7", "4.2.8", "4.2.9",
    "4.2.10", "4.2.11", "4.2.12", "4.2.13",
)  # fmt: skip
# target: the versions docker_init.sh of that target migrates from (doc 000: 3.2.2 > 3.3.0 > 3.3.1;
# doc 001: 4.0.0 from 3.2.2 (and 3.3.0); doc 004: 4.2.9 from 4.2.0 .. 4.2.8)
UPGRADES = {
    "3.3.0": ("3.2.2",),
    "3.3.1": ("3.3.0",),
    # OD V4.0.0 faq: "V3.2.2-CE, V3.3.0-CE and V3.3.1-CE can be directly upgraded to V4.0.0-CE"
    "4.0.0": ("3.2.2", "3.3.0", "3.3.1"),
    "4.1.0": ("3.2.2", "3.3.0", "3.3.1", "4.0.0"),  # OD V4.1.0 faq
    "4.2.0": ("4.1.1",),  # OD V4.2.0 overview: "only supported to upgrade from ... V4.1.1"
    "4.2.1": ("4.2.0",),  # OD V4.2.1 overview
    "4.2.2": ("4.2.1",),  # OD V4.2.2 overview
    "4.2.6": ("4.2.4",),  # field notes (OD en site)
    "4.2.9": ("4.2.0", "4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "4.2.7", "4.2.8"),
}
# The hot upgrade (oceanbase/oms-doc zh-CN/1300.upgrade-guide/309.hot-upgrade.md, commit 4a24c729; field notes):
# in place, from OMS V4.2.1 on; its scripts come with the new image. The pages that describe it are of the
# 4.2.11 era: the stand-in gives the scripts to 4.2.10 .. 4.2.13 (HOT_TARGETS).
HOT_FROM = "4.2.1"
HOT_TARGETS = ("4.2.10", "4.2.11", "4.2.12", "4.2.13")
HOT_SCRIPTS = (
    "docker_dump_file_from_image.sh",
    "docker_copy_dumpfile_to_container.sh",
    "docker_copy_dumpfile_rollback.sh",
    "docker_hot_update_init.sh",
)
# `supervisorctl stop nginx oms_console oms_drc_cm oms_drc_supervisor sshd` (the page's step 5)
HOT_STOPPED_PROGRAMS = ("nginx", "oms_console", "oms_drc_cm", "oms_drc_supervisor", "sshd")


def has_hot_scripts(v: str) -> bool:
    return v.removesuffix("-CE") in HOT_TARGETS


INIT_TOO_OLD = "Version before 4.1.1 is not allowed to upgrade"  # doc 004, verbatim
INIT_MIN_SOURCE_4X = "4.1.1"  # doc 004, obd ("Must be higher than 4.1.1")
LIST_PROJECTS_FROM = "4.1.1"  # doc: ListProjects and DescribeProjectComponents exist from V4.1.1-CE
OMS_VERSION_DDL = """CREATE TABLE IF NOT EXISTS `oms_version` (
  `version` varchar(64) NOT NULL COMMENT 'Version',
  `gmt_modified` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`version`)
) DEFAULT CHARSET = utf8mb4 COMMENT = 'Version Table'"""  # obd, verbatim


def vkey(v: str) -> tuple[int, int, int]:
    """``4.2.8`` (or ``4.2.8-CE``) as a comparable tuple."""
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        raise ValueError(f"not a version: {v!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def ce(v: str) -> str:
    """``4.2.8`` -> ``4.2.8-CE``, as OMS writes it into oms_version (doc 004)."""
    return v.removesuffix("-CE") + "-CE"


# -- images (doc 003/004; field notes: tags and repositories in practice) ---------------------------
def image_repository(v: str) -> str:
    """The repository an installation package loads as: `oms`, `oms-ce` from 4.2.11 on (field notes)."""
    return "oceanbase/oms-ce" if vkey(v) >= (4, 2, 11) else "oceanbase/oms"


def image_tag(v: str) -> str:
    """Tags in practice: feature_x.y.z_ce (4.2.7 and later, field notes), feature_x.y.z-ce (doc 004's form)."""
    return f"feature_{v}_ce" if vkey(v) >= (4, 2, 7) else f"feature_{v}-ce"


def image_ref(v: str) -> str:
    return f"{image_repository(v)}:{image_tag(v)}"


# -- the container (doc 003/004, obd) -------------------------------------------------------------
CONFIG_PATH = "/home/admin/conf/config.yaml"
LOGS, STORE, RUN = "/home/admin/logs", "/home/ds/store", "/home/ds/run"
CERT, KEY = "/etc/pki/nginx/oms_server.crt", "/etc/pki/nginx/oms_server.key"  # with them nginx serves HTTPS only
CONSOLE_PORT, CM_PORT = 8089, 8088  # obd: console/nginx 8089, cm 8088 (ghana 8090, supervisor 9000, sshd 2023)
# the ports are configurable in config.yaml (OD deploy template; field notes): 8089 and 8088 are the defaults
CONSOLE_PORT_KEY, CM_PORT_KEY = "nginx_server_port", "cm_server_port"
START_LINE = "OMS service start successfully"  # obd waits for it in docker logs after a fresh deploy
# Not written by docker_init.sh (no public source says it is: it belongs to an obd-like module's
# docker_hot_update_init.sh, field notes, corrected); written only with the variant init-flag.
INIT_FLAG = "/root/init_flag.txt"
INIT_LOG_PREFIX = "/home/admin/logs/docker_init.log"  # obdiag: docker_init.log.<date>.<time>
# supervisord programs (obd, field notes); 3.3.0 adds crond
PROGRAMS = ("nginx", "oms_console", "oms_drc_cm", "oms_drc_supervisor", "sshd")


def programs(v: str) -> tuple[str, ...]:
    return (*PROGRAMS, "crond") if vkey(v) >= (3, 3, 0) else PROGRAMS


# -- the MetaDB (doc, obd, the host-down guide) -------------------------------------------------------
# ha.config's documented default value (oceanbase/oms-doc zh-CN/1000.system-management/400.system-parameters/
# 100.modify-system-parameters.md, commit 060c184c): neither refetchStoreIntervalMin nor
# perceiveStoreClientCheckpoint, which appear only on "Modify HA configurations" (field notes). The sandbox
# enables HA (enable true), as on a production deployment.
HA_CONFIG_DOCUMENTED = {
    "enable": False, "enableHost": False, "enableStore": True, "enableConnector": True, "enableJdbcWriter": True,
    "subtopicStoreNumberThreshold": 5, "checkRequestIntervalSec": 600, "checkHostDownIntervalSec": 540,
    "checkModuleExceptionIntervalSec": 240, "clearAbnormalResourceHours": 72,
}  # fmt: skip
HA_CONFIG = {**HA_CONFIG_DOCUMENTED, "enable": True}
HA_MODIFIED_KEYS = {"refetchStoreIntervalMin": 30, "perceiveStoreClientCheckpoint": False}  # "Modify HA configurations"
# HA introduction: a host is marked down after checkHostDownIntervalSec without heartbeats (540 s by default)
HOST_DOWN_KEY, HOST_DOWN_DEFAULT = "checkHostDownIntervalSec", 540
HOST_ONLINE = "ONLINE"  # the host-down guide: SELECT ip, host_status FROM host -> ONLINE

# -- HTTP (doc, odc) ----------------------------------------------------------------------------------
ENVELOPE_KEYS = ("success", "errorDetail", "code", "message", "advice", "requestId", "pageNumber", "pageSize",
                 "totalCount", "cost", "data")  # fmt: skip  # doc, verbatim order
LIST_PAGE_MAX = 150  # doc: pageSize default 10, maximum 150
CM_ENVELOPE_KEYS = ("errCode", "errMsg", "errorDetail", "isSuccess", "result", "retryable")  # field notes
LOCK_AFTER_FAILED_LOGINS = 5  # field notes: five wrong console passwords lock the account

# -- where the public sources are silent: the stand-in's default, and every other plausible behaviour --------
CHOICES = {
    "oms_version_from": (
        "4.2.1",
        "which release introduced rm.oms_version: 4.2.0 lacks it, so it takes doc 004's recovery",
    ),
    "host_offline_value": ("OFFLINE", "the host_status of a host that is not ONLINE"),
    "heart_beat_columns": (
        "task_type, task_name, host_ip, gmt_created, gmt_modified",
        "the heart_beat table (the guide selects these columns)",
    ),
    "heartbeat_period_seconds": (1, "how often oms_drc_supervisor writes its heartbeat (not public)"),
    "console_waits_for_init": (
        True,
        "with IS_UPGRADE=true oms_console stays STOPPED until docker_init.sh ran in that container, or "
        "`supervisorctl start oms_console` (inferred from the enterprise procedure)",
    ),
    "init_reads_oms_version_from": (
        "4.2.3",
        "the first release whose docker_init.sh reads the version before the upgrade from rm.oms_version and stops "
        "with doc 004's message without it: the V4.2.0 .. V4.2.2 pages document no recovery for upgrades from a "
        "release without the table, doc 004 (4.2.9, from 4.2.0 .. 4.2.8) does",
    ),
    "init_rerun": (
        "safe: it finds the metadata of these cm_nodes migrated and changes nothing",
        "docker_init.sh run again (the vendor does: doc 004 after the recovery, the hot-upgrade rollback, obd's "
        "reload and online upgrade)",
    ),
    "init_newer_metadata": (
        "no schema change, succeeds",
        "docker_init.sh run on metadata newer than its release: the hot upgrade's rollback does it (OD 309 step 7: "
        "docker_copy_dumpfile_rollback.sh, then /root/docker_init.sh, the metadata left as the new release made it)",
    ),
    "init_starts_programs": (
        "every management program not running",
        "what docker_init.sh starts at its end: after the hot upgrade's rollback the page has no other step that "
        "starts the programs its step 5 stopped (variant init-starts-console-only: only oms_console)",
    ),
    "hot_update_starts_programs": (
        True,
        "docker_hot_update_init.sh starts the management programs the page's step 5 stopped (no step of the page "
        "starts them otherwise)",
    ),
    "sync_components_detached": (
        True,
        "the Store and Incr-Sync processes outlive `supervisorctl stop oms_drc_supervisor` (the hot-upgrade page: "
        "the tasks keep running)",
    ),
    "init_writes_oms_version": (True, "docker_init.sh REPLACEs the target into rm.oms_version (likely, not stated)"),
    "start_line_after_upgrade": (
        "init output",
        "after an upgrade the start line is printed by docker_init.sh, not in docker logs",
    ),
    "init_console_failure": (
        "exit 1, no start line",
        "docker_init.sh whose own oms_console does not get RUNNING (supervisorctl's answer) prints an ERROR "
        "instead of the start line and exits 1; the metadata is migrated before",
    ),
    "unknown_action": ("HTTP 200, success false, code PARAM_ERROR", "how /api/v2 answers an Action it does not know"),
    "connector_listing_before_4_1_1": (
        "cm.connector_task(name, project_id, host_ip, status, source_config)",
        "where Connectors are listed before DescribeProjectComponents (4.1.1)",
    ),
    "projects_before_4_1_1": ("rm.oms_project, rm.oms_project_step", "where projects are read before ListProjects"),
    "checkpoint_value": ("{subtopic: seconds}", "the source.checkpoint a Connector without one is given"),
    "cm_by_name_before_4_0_0": (True, "the CM's *ByName endpoints on 3.x (documented from the V4.0.0 pages only)"),
}

# Each variant: a behaviour the public sources leave open, other than the default (CHOICES) above. Several may
# be combined (`up --variant A --variant B`). The stand-in's processes read the list from the node's logs
# mount, the one place the old and the new container of a node both see.
VARIANTS = {
    "init-flag": "docker_init.sh writes a non-empty /root/init_flag.txt when it succeeds (as an obd-like module's "
    "hot-update script does)",
    "oms-version-not-written": "docker_init.sh leaves rm.oms_version as it was: the newest row still names the "
    "version before the upgrade",
    "start-line-in-docker-logs": "after an upgrade the start line is printed in docker logs (by the console's start), "
    "not by docker_init.sh",
    "console-starts-itself": "with IS_UPGRADE=true oms_console starts by itself on every node, without docker_init.sh "
    "or supervisorctl",
    "supervisor-3": "supervisor 3.x: `supervisorctl status` exits 0 whatever the programs' states",
    "slow-heartbeat": "oms_drc_supervisor writes its heartbeat every 20 seconds",
    "heartbeat-local-time": "heart_beat.gmt_modified is written in the container's time zone, 8 hours behind the "
    "MetaDB's clock (the FAQ's 8-hour offsets)",
    "ha-full": "ha.config carries refetchStoreIntervalMin and perceiveStoreClientCheckpoint too",
    "custom-ports": "config.yaml sets nginx_server_port 18089 and cm_server_port 18088",
    "init-starts-console-only": "docker_init.sh starts only oms_console at its end, leaving the other management "
    "programs as they are (after the hot upgrade's rollback they stay stopped)",
    "cm-no-byname": "before 4.0.0 the CM has no *ByName endpoint (404): the Connector is updated on the console",
}
VARIANT_FILE = ".sandbox-variants.json"  # in the logs mount, beside the faults
VARIANT_ENV = "OMS_STANDIN_VARIANTS"  # and in the container's environment (comma-separated)
SLOW_HEARTBEAT_SECONDS = 20
HEARTBEAT_OFFSET_HOURS = 8
CUSTOM_PORTS = {CONSOLE_PORT_KEY: 18089, CM_PORT_KEY: 18088}


def console_port(cfg: dict) -> int:
    return int(cfg.get(CONSOLE_PORT_KEY) or CONSOLE_PORT)


def cm_port(cfg: dict) -> int:
    return int(cfg.get(CM_PORT_KEY) or CM_PORT)
