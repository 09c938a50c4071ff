"""The sandbox MetaDB: a private MariaDB server (Debian packages) on a loopback port.

It holds the rm, cm and per-region cm_hb databases of one OMS CE deployment, seeded with the
tables of shared/oms-interfaces.md as of a given version.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil

import pymysql

from omsup.versions import OMS_VERSION_DDL, Version

from . import paths
from .image.standin import schema
from .procs import SandboxError, pid_alive, run, start_daemon, stop_pid, wait_for

ROOT = paths.STATE_DIR / "metadb"
SOCK = ROOT / "mysqld.sock"
PIDFILE = ROOT / "mariadbd.pid"
LOG = ROOT / "mariadbd.log"

# ha.config with the documented keys and defaults (oms-interfaces.md), HA enabled as on a
# production deployment.
HA_CONFIG = {
    "enable": True,
    "checkRequestIntervalSec": 600,
    "enableHost": False,
    "checkHostDownIntervalSec": 540,
    "enableStore": True,
    "checkModuleExceptionIntervalSec": 240,
    "subtopicStoreNumberThreshold": 5,
    "refetchStoreIntervalMin": 30,
    "perceiveStoreClientCheckpoint": False,
    "clearAbnormalResourceHours": 72,
    "enableConnector": True,
}


def password() -> str:
    return paths.secret("metadb_password").read_text(encoding="utf-8")


def root_conn(db: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(unix_socket=str(SOCK), user="root", database=db, autocommit=True, charset="utf8mb4")


def running() -> bool:
    return pid_alive(PIDFILE) is not None and SOCK.exists()


def start() -> None:
    if running():
        return
    if shutil.which("mariadbd") is None:
        raise SandboxError("mariadbd is not installed: apt-get install mariadb-server mariadb-client")
    datadir = ROOT / "data"
    if not (datadir / "mysql").exists():
        ROOT.mkdir(parents=True, exist_ok=True)
        run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            timeout=120,
        )
    start_daemon(
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={SOCK}",
            f"--pid-file={ROOT}/server.pid",
            f"--port={paths.METADB_PORT}",
            f"--bind-address={paths.METADB_HOST}",
            "--user=root",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
            f"--log-error={LOG}",
        ],
        ROOT / "stdout.log",
        PIDFILE,
    )
    wait_for(lambda: root_conn().ping() is None, 60, "the sandbox MariaDB", LOG)
    with root_conn() as c, c.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (paths.METADB_USER, password()))
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (paths.METADB_USER, password()))
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO `{paths.METADB_USER}`@'%' WITH GRANT OPTION")


def stop() -> None:
    stop_pid(PIDFILE, timeout=60)


def db_names(version: Version, regions: int) -> dict:
    """Database names as on a real deployment: rm_428, cm_428, cm_hb_428 (or cm_hb_428_1, _2)."""
    s = version.short
    hb = [f"cm_hb_{s}"] if regions == 1 else [f"cm_hb_{s}_{i}" for i in range(1, regions + 1)]
    return {"rm": f"rm_{s}", "cm": f"cm_{s}", "cm_hb": hb}


# A few projects in realistic states: (id, name, type, status, created on, steps)
_REALTIME = [
    ("TRANSFER_PRECHECK", "FINISHED"),
    ("STRUCT_TRANSFER", "FINISHED"),
    ("FULL_TRANSFER", "FINISHED"),
    ("INCR_TRANSFER", "MONITORING"),
]
PROJECTS = [
    (
        "np_5c1e0a7f1b",
        "mysql_orders_to_ob",
        "MIGRATION",
        "RUNNING",
        "3.2.2",
        "MYSQL",
        [*_REALTIME, ("FULL_VERIFIER", "FINISHED"), ("TRANSFER_APP_SWITCH", "FINISHED")],
    ),
    ("np_6a2d8c3e4f", "ob_events_to_kafka", "SYNC", "RUNNING", "3.2.2", "OB_MYSQL", _REALTIME),
    (
        "np_7b3e9d4f50",
        "tidb_users_to_ob",
        "MIGRATION",
        "FINISHED",
        "3.2.2",
        "TIDB",
        [*_REALTIME[:3], ("INCR_TRANSFER", "FINISHED"), ("TRANSFER_APP_SWITCH", "FINISHED")],
    ),
    ("np_8c4fae5061", "pg_archive_to_ob", "MIGRATION", "RELEASED", "3.3.0", "POSTGRESQL", _REALTIME[:3]),
]
# Connector configurations: (id, project, host ip index, source section). Those created on
# 3.2.2 lack dbType/db_type, as doc 000/001 describe.
CONNECTORS = [
    ("conn-orders-1", "np_5c1e0a7f1b", 0, {"type": "StoreSource", "dbType": "MYSQL"}),
    ("conn-orders-2", "np_5c1e0a7f1b", 0, {"type": "StoreSource"}),
    ("conn-events-1", "np_6a2d8c3e4f", 1, {"type": "StoreSource"}),
    ("conn-events-2", "np_6a2d8c3e4f", 1, {"type": "StoreSource"}),
    ("conn-users-1", "np_7b3e9d4f50", 1, {"type": "KafkaSource", "db_type": "TIDB"}),
    ("conn-archive-1", "np_8c4fae5061", 0, {"type": "StoreSource"}),
]


def seed(
    version: Version,
    regions: list[dict],
    nodes: list[dict],
    heartbeat_rows: int,
    console_password: str,
    bulk_mb: int = 0,
) -> dict:
    """Create and fill the deployment's databases as of ``version`` (idempotent: skips if present)."""
    names = db_names(version, len(regions))
    with root_conn() as c, c.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name=%s", (names["rm"],))
        if cur.fetchone():
            return names
        for role, dbs in (("rm", [names["rm"]]), ("cm", [names["cm"]]), ("cm_hb", names["cm_hb"])):
            for db in dbs:
                cur.execute(f"CREATE DATABASE `{db}` DEFAULT CHARACTER SET utf8mb4")
                cur.execute(f"USE `{db}`")
                for stmt in schema.base_statements(role) + schema.migration_statements(role, schema.BASE, version):
                    cur.execute(stmt)
        cur.execute(f"USE `{names['rm']}`")
        if schema.has_oms_version_table(version):
            cur.execute(OMS_VERSION_DDL)
            cur.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (str(version),))
        cur.execute(
            "INSERT INTO oms_normal_config (cfg_name, cfg_value) VALUES ('ha.config', %s)", (json.dumps(HA_CONFIG),)
        )
        for r in regions:
            cur.execute(
                "INSERT INTO cluster_info (region, region_cn, cm_url, code, is_default_cm) VALUES (%s,%s,%s,%s,%s)",
                (r["name"], r["name"], r["cm_url"], r["code"], 1 if r["code"] == 0 else 0),
            )
        for pid, name, typ, status, created, source, steps in PROJECTS:
            if Version.parse(created) > version:
                created = str(version).removesuffix("-CE")
            cur.execute(
                "INSERT INTO oms_project (id, name, type, status, created_version, source_type) "
                "VALUES (%s,%s,%s,%s,%s,%s)",
                (pid, name, typ, status, f"{created}-CE", source),
            )
            for i, (step, st) in enumerate(steps):
                cur.execute("INSERT INTO oms_project_step VALUES (%s,%s,%s,%s)", (pid, step, st, i))
            if typ == "SYNC":
                cur.execute("INSERT INTO oms_sync_project VALUES (%s,%s)", (name, status))
        salt = secrets.token_hex(8)
        cur.execute(
            "INSERT INTO oms_user VALUES ('admin', %s, %s)",
            (salt, hashlib.sha256((salt + console_password).encode()).hexdigest()),
        )
        cur.execute(f"USE `{names['cm']}`")
        for r in regions:
            cur.execute("INSERT INTO resource_group VALUES (%s, %s)", (r["code"] + 1, r["name"]))
        for n in nodes:
            cur.execute(
                "INSERT INTO host (resource_group_id, ip, region, gmt_heartbeat) VALUES (%s,%s,%s,NULL)",
                (n["region_code"] + 1, n["ip"], n["region"]),
            )
        for cid, pid, host_i, source in CONNECTORS:
            ip = nodes[host_i % len(nodes)]["ip"]
            cfg = {"source": source, "sink": {"type": "DatahubSink"}, "coordinator": {"bridgeQueueSize": 256}}
            cur.execute("INSERT INTO connector_config VALUES (%s,%s,%s,%s)", (cid, pid, ip, json.dumps(cfg)))
        if bulk_mb:
            # Bulk for benchmarks and the big-MetaDB tests: 1 KiB configuration history rows in cm.
            cur.execute(
                f"INSERT INTO `{names['cm']}`.config_job (`key`, `value`) SELECT CONCAT('history.', seq), "
                f"REPEAT(SHA2(seq, 256), 16) FROM seq_1_to_{int(bulk_mb) * 1024}"
            )
        for hb in names["cm_hb"]:
            # A heartbeat table of realistic size: one row a second for heartbeat_rows seconds.
            cur.execute(
                f"INSERT INTO `{hb}`.heatbeat_sequence (gmt_created, gmt_modified) "
                f"SELECT NOW() - INTERVAL seq SECOND, NOW() - INTERVAL seq SECOND FROM seq_1_to_{int(heartbeat_rows)} "
                "ORDER BY seq DESC"
            )
    return names


def set_projects(state: str) -> None:
    """Fault helper: put the sync project out of real time / undo the forward switchover, or restore."""
    st = paths.load_state() or {}
    rm = st.get("metadb", {}).get("rm")
    if not rm:
        raise SandboxError("no sandbox is up: run `python -m sandbox up` first")
    with root_conn(rm) as c, c.cursor() as cur:
        if state == "not-realtime":
            cur.execute(
                "UPDATE oms_project_step SET status='RUNNING' WHERE project_id='np_6a2d8c3e4f' "
                "AND step_name='INCR_TRANSFER'"
            )
        elif state == "switchover-not-done":
            cur.execute(
                "UPDATE oms_project_step SET status='INIT' WHERE project_id='np_5c1e0a7f1b' "
                "AND step_name='TRANSFER_APP_SWITCH'"
            )
        else:
            cur.execute(
                "UPDATE oms_project_step SET status='MONITORING' WHERE project_id='np_6a2d8c3e4f' "
                "AND step_name='INCR_TRANSFER'"
            )
            cur.execute(
                "UPDATE oms_project_step SET status='FINISHED' WHERE project_id='np_5c1e0a7f1b' "
                "AND step_name='TRANSFER_APP_SWITCH'"
            )
