"""The sandbox MetaDB: an OceanBase-kernel server (seekdb, the default) or MariaDB, on loopback.

OMS CE 4.x keeps its MetaDB in OceanBase (MySQL mode) or MySQL 8 (field notes), so the sandbox's
default is the OceanBase kernel: the standalone seekdb server shipped in the pylibseekdb wheel
(shared/machine-notes.md: `seekdb --nodaemon --base-dir DIR --port P ...`, SQL after ~2 s, it
listens on 0.0.0.0 whatever bind_address says, so root gets a strong password). MariaDB (Debian's
mariadb-server) stays as the second engine (`sandbox up --metadb mariadb`).

Both hold the rm, cm and per-region cm_hb databases of one OMS CE deployment, seeded with the
tables of sandbox/image/standin/schema.py as of a given version, through SQL both engines take.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import secrets
import shutil
import time
from pathlib import Path

import pymysql

from . import facts, paths
from .image.standin import schema
from .procs import SandboxError, pid_alive, run, start_daemon, stop_pid, wait_for

ROOT = paths.STATE_DIR / "metadb"
PIDFILE = ROOT / "server.pid.sandbox"
ENGINES = ("oceanbase", "mariadb")
PORTS = {"oceanbase": paths.OCEANBASE_PORT, "mariadb": paths.MARIADB_PORT}


def engine() -> str:
    """The engine of the sandbox that is up (or was asked for)."""
    try:
        return (ROOT / "engine").read_text().strip()
    except OSError:
        return "oceanbase"


def port() -> int:
    return PORTS[engine()]


def password() -> str:
    return paths.secret("metadb_password").read_text(encoding="utf-8")


def root_password() -> str:
    return paths.secret("metadb_root_password").read_text(encoding="utf-8")


def root_conn(db: str | None = None) -> pymysql.connections.Connection:
    """root over TCP on loopback, with its password (both engines)."""
    return pymysql.connect(
        host=paths.METADB_HOST,
        port=port(),
        user="root",
        password=root_password().encode(),
        database=db,
        autocommit=True,
        charset="utf8mb4",
        connect_timeout=5,
    )


def running() -> bool:
    return pid_alive(PIDFILE) is not None


def seekdb_binary() -> Path:
    spec = importlib.util.find_spec("pylibseekdb")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError(
            "pylibseekdb is not installed: pip install 'pylibseekdb==1.4.0.post1' "
            "(or run the README's setup), or use --metadb mariadb"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "seekdb"


def _host_offset() -> str:
    """The machine's UTC offset now, as +HH:MM: the MetaDB and the nodes share one time zone (OD)."""
    off = time.localtime().tm_gmtoff
    sign = "+" if off >= 0 else "-"
    return f"{sign}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"


def _start_oceanbase() -> None:
    data = ROOT / "data"
    data.mkdir(parents=True, exist_ok=True)
    first = not (data / "etc").exists()
    start_daemon(
        [
            str(seekdb_binary()),
            "--nodaemon",
            "--base-dir",
            str(data),
            "--port",
            str(port()),
            "--parameter",
            "memory_budget=1G",
            "--parameter",
            "datafile_size=256M",
            "--parameter",
            "log_disk_size=2G",
            "--parameter",
            "cpu_count=2",
        ],
        ROOT / "seekdb.out",
        PIDFILE,
    )

    def answers(pw: str | None) -> bool:
        kw = {"password": pw.encode()} if pw else {}
        pymysql.connect(host=paths.METADB_HOST, port=port(), user="root", connect_timeout=2, **kw).close()
        return True

    wait_for(
        lambda: answers(None if first else root_password()),
        120,
        "the sandbox OceanBase MetaDB (seekdb)",
        data / "log" / "seekdb.log",
    )
    if first:
        c = pymysql.connect(host=paths.METADB_HOST, port=port(), user="root", autocommit=True)
        with c.cursor() as cur:
            cur.execute("ALTER SYSTEM SET syslog_level='WARN'")  # machine notes: ~30 MB of log a minute at INFO
            cur.execute(f"SET GLOBAL time_zone='{_host_offset()}'")  # a fresh server answers in +08:00
            cur.execute("ALTER USER root IDENTIFIED BY %s", (root_password(),))
        c.close()


def _start_mariadb() -> None:
    if shutil.which("mariadbd") is None:
        raise SandboxError("mariadbd is not installed: apt-get install mariadb-server mariadb-client")
    data, sock = ROOT / "data", ROOT / "mysqld.sock"
    first = not (data / "mysql").exists()
    if first:
        ROOT.mkdir(parents=True, exist_ok=True)
        run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
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
            f"--datadir={data}",
            f"--socket={sock}",
            f"--pid-file={ROOT}/server.pid",
            f"--port={port()}",
            f"--bind-address={paths.METADB_HOST}",
            "--user=root",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
            f"--log-error={ROOT / 'mariadbd.log'}",
        ],
        ROOT / "stdout.log",
        PIDFILE,
    )
    wait_for(
        lambda: pymysql.connect(unix_socket=str(sock), user="root").close() is None,
        60,
        "the sandbox MariaDB",
        ROOT / "mariadbd.log",
    )
    if first:
        c = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
        with c.cursor() as cur:  # root over TCP too, with a password, as on the OceanBase server
            cur.execute("CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY %s", (root_password(),))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION")
        c.close()


def start(which: str | None = None) -> None:
    """Start the MetaDB (``which`` engine the first time; the one it was afterwards)."""
    if which is not None:
        ROOT.mkdir(parents=True, exist_ok=True)
        if (ROOT / "engine").exists() and engine() != which:
            raise SandboxError(f"the sandbox MetaDB is {engine()}; run `python -m sandbox down` first")
        (ROOT / "engine").write_text(which)
    if running():
        return
    _start_oceanbase() if engine() == "oceanbase" else _start_mariadb()
    with root_conn() as c, c.cursor() as cur:
        cur.execute(f"CREATE USER IF NOT EXISTS '{paths.METADB_USER}'@'%%' IDENTIFIED BY %s", (password(),))
        cur.execute(f"ALTER USER '{paths.METADB_USER}'@'%%' IDENTIFIED BY %s", (password(),))
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{paths.METADB_USER}'@'%'")


def stop() -> None:
    stop_pid(PIDFILE, timeout=60)


def version() -> str:
    with root_conn() as c, c.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return str(cur.fetchone()[0])


def db_names(version: str, regions: int) -> dict:
    """Database names as on a real deployment: rm_428, cm_428, cm_hb_428 (or cm_hb_428_1, _2)."""
    s = version.replace(".", "")
    hb = [f"cm_hb_{s}"] if regions == 1 else [f"cm_hb_{s}_{i}" for i in range(1, regions + 1)]
    return {"rm": f"rm_{s}", "cm": f"cm_{s}", "cm_hb": hb}


# A few projects in realistic states: (id, name, type, status, created on, source type, steps)
_REALTIME = [
    ("TRANSFER_PRECHECK", "FINISHED"),
    ("STRUCT_TRANSFER", "FINISHED"),
    ("FULL_TRANSFER", "FINISHED"),
    ("INCR_TRANSFER", "MONITORING"),
]
PROJECTS = [
    ("np_5c1e0a7f1b", "mysql_orders_to_ob", "MIGRATION", "RUNNING", "3.2.2", "MYSQL",
     [*_REALTIME, ("FULL_VERIFIER", "FINISHED"), ("TRANSFER_APP_SWITCH", "FINISHED")]),
    ("np_6a2d8c3e4f", "ob_events_to_kafka", "SYNC", "RUNNING", "3.2.2", "OB_MYSQL", _REALTIME),
    ("np_7b3e9d4f50", "tidb_users_to_ob", "MIGRATION", "FINISHED", "3.2.2", "TIDB",
     [*_REALTIME[:3], ("INCR_TRANSFER", "FINISHED"), ("TRANSFER_APP_SWITCH", "FINISHED")]),
    ("np_8c4fae5061", "pg_archive_to_ob", "MIGRATION", "RELEASED", "3.3.0", "POSTGRESQL", _REALTIME[:3]),
]  # fmt: skip
# Connectors: (name suffix, project, host ip index, status, source section). Those created on 3.2.2
# lack dbType/db_type, as doc 000/001 describe; one also lacks its checkpoint (field notes).
CONNECTORS = [
    ("orders-1", "np_5c1e0a7f1b", 0, "RUNNING", {"type": "StoreSource", "dbType": "MYSQL", "checkpoint": {"s0": "0"}}),
    ("orders-2", "np_5c1e0a7f1b", 0, "RUNNING", {"type": "StoreSource", "checkpoint": {"s0": "0"}}),
    ("events-1", "np_6a2d8c3e4f", 1, "RUNNING", {"type": "StoreSource", "checkpoint": {"s1": "0"}}),
    ("events-2", "np_6a2d8c3e4f", 1, "RUNNING", {"type": "StoreSource", "subtopic": "s1"}),
    ("users-1", "np_7b3e9d4f50", 1, "STOPPED", {"type": "KafkaSource", "db_type": "TIDB", "checkpoint": {"s2": "0"}}),
    ("archive-1", "np_8c4fae5061", 0, "STOPPED", {"type": "StoreSource", "checkpoint": {"s3": "0"}}),
]  # fmt: skip
DIGITS = (
    "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL "
    "SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
)
CHUNK = 100_000


def _numbers(start: int, count: int) -> str:
    """A derived table of the numbers start .. start+count-1 as column n, in SQL every engine takes."""
    cols = " + ".join(f"{10**i} * d{i}.d" for i in range(5))
    joins = ", ".join(f"{DIGITS} d{i}" for i in range(5))
    return f"(SELECT {start} + {cols} AS n FROM {joins}) nums WHERE n < {start + count}"


def _long_session(cur) -> None:
    if engine() == "oceanbase":  # the tenant's default query timeout is 10 s (field notes)
        cur.execute("SET SESSION ob_query_timeout = 3600000000, ob_trx_timeout = 3600000000")


def fill(cur, table: str, columns: str, select: str, total: int) -> None:
    """INSERT ``total`` generated rows (``select`` uses n, counting down), in chunks of 100 000."""
    _long_session(cur)
    done = 0
    while done < total:
        count = min(CHUNK, total - done)
        cur.execute(
            f"INSERT INTO {table} ({columns}) SELECT {select} FROM {_numbers(total - done - count, count)} "
            "ORDER BY n DESC"
        )
        done += count


def seed(
    version: str,
    regions: list[dict],
    nodes: list[dict],
    heartbeat_rows: int,
    console_password: str,
    bulk_mb: int = 0,
    ha_config: dict | None = None,
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
                for stmt in schema.base_statements(role):
                    cur.execute(stmt)
                schema.migrate(cur, role, db, schema.BASE, version)
        cur.execute(f"USE `{names['rm']}`")
        if schema.has_oms_version_table(version):
            cur.execute(facts.OMS_VERSION_DDL)
            cur.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (facts.ce(version),))
        cur.execute(
            "INSERT INTO oms_normal_config (cfg_name, cfg_value) VALUES ('ha.config', %s)",
            (json.dumps(ha_config if ha_config is not None else facts.HA_CONFIG, separators=(",", ":")),),
        )
        for r in regions:
            cur.execute(
                "INSERT INTO cluster_info (region, region_cn, cm_url, code, is_default_cm) VALUES (%s,%s,%s,%s,%s)",
                (r["name"], r["name"], r["cm_url"], r["code"], 1 if r["code"] == 0 else 0),
            )
        for pid, name, typ, status, created, source, steps in PROJECTS:
            if facts.vkey(created) > facts.vkey(version):
                created = version
            cur.execute(
                "INSERT INTO oms_project (id, name, type, status, created_version, source_type) "
                "VALUES (%s,%s,%s,%s,%s,%s)",
                (pid, name, typ, status, facts.ce(created), source),
            )
            for i, (step, st) in enumerate(steps):
                cur.execute(
                    "INSERT INTO oms_project_step (project_id, step_name, status, step_order) VALUES (%s,%s,%s,%s)",
                    (pid, step, st, i),
                )
            if typ == "SYNC":
                cur.execute("INSERT INTO oms_sync_project VALUES (%s,%s)", (name, status))
        salt = secrets.token_hex(8)
        cur.execute(
            "INSERT INTO oms_user (name, salt, password_sha256) VALUES ('admin', %s, %s)",
            (salt, hashlib.sha256((salt + console_password).encode()).hexdigest()),
        )
        cur.execute(f"USE `{names['cm']}`")
        for r in regions:
            cur.execute("INSERT INTO resource_group VALUES (%s, %s)", (r["code"] + 1, r["name"]))
        for n in nodes:
            cur.execute(
                "INSERT INTO host (resource_group_id, ip, region, host_status, gmt_modified) VALUES "
                "(%s,%s,%s,'OFFLINE',NULL)",
                (n["region_code"] + 1, n["ip"], n["cm_region"]),
            )
        for suffix, pid, host_i, status, source in CONNECTORS:
            ip = nodes[host_i % len(nodes)]["ip"]
            name = f"{ip}-9000:connector_v2:{pid}-incr-{suffix}:0000000001"
            cur.execute(
                "INSERT INTO connector_task (name, project_id, host_ip, status, source_config) VALUES (%s,%s,%s,%s,%s)",
                (name, pid, ip, status, json.dumps(source)),
            )
        if bulk_mb:  # 1 KiB rows of configuration history in cm, for benchmarks and the big-MetaDB tests
            fill(
                cur,
                f"`{names['cm']}`.config_job",
                "`key`, `value`",
                "CONCAT('history.', n), REPEAT(MD5(n), 32)",
                int(bulk_mb) * 1024,
            )
        for hb in names["cm_hb"]:  # a heartbeat table of realistic size: one row a second
            fill(
                cur,
                f"`{hb}`.heatbeat_sequence",
                "gmt_created, gmt_modified",
                "NOW() - INTERVAL n SECOND, NOW() - INTERVAL n SECOND",
                int(heartbeat_rows),
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
        elif state == "suspended":
            cur.execute("UPDATE oms_project SET status='SUSPEND' WHERE id='np_6a2d8c3e4f'")
        else:
            cur.execute(
                "UPDATE oms_project_step SET status='MONITORING' WHERE project_id='np_6a2d8c3e4f' "
                "AND step_name='INCR_TRANSFER'"
            )
            cur.execute(
                "UPDATE oms_project_step SET status='FINISHED' WHERE project_id='np_5c1e0a7f1b' "
                "AND step_name='TRANSFER_APP_SWITCH'"
            )


def set_time_zone(offset: str | None) -> None:
    """Fault helper: the MetaDB's global time zone (None: the machine's)."""
    with root_conn() as c, c.cursor() as cur:
        cur.execute(f"SET GLOBAL time_zone='{offset or _host_offset()}'")


def set_grants(full: bool) -> None:
    """Fault helper: the MetaDB user with every privilege, or without DROP and CREATE."""
    with root_conn() as c, c.cursor() as cur:
        if full:
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{paths.METADB_USER}'@'%'")
        else:
            cur.execute(f"REVOKE ALL PRIVILEGES ON *.* FROM '{paths.METADB_USER}'@'%'")
            cur.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE, ALTER, INDEX, LOCK TABLES, SHOW VIEW ON *.* "
                f"TO '{paths.METADB_USER}'@'%'"
            )


def add_projects(count: int) -> None:
    """Fault helper: ``count`` more (released) projects, so ListProjects takes several pages."""
    st = paths.load_state() or {}
    rm = st.get("metadb", {}).get("rm")
    with root_conn(rm) as c, c.cursor() as cur:
        for i in range(count):
            cur.execute(
                "INSERT INTO oms_project (id, name, type, status, created_version, source_type) VALUES "
                "(%s, %s, 'MIGRATION', 'RELEASED', %s, 'MYSQL')",
                (f"np_zz{i:06d}", f"old_project_{i}", facts.ce(st["args"]["version"].removesuffix("-CE"))),
            )
