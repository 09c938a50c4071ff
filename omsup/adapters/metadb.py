"""The MetaDB, through PyMySQL (statements) and the MySQL client tools (dump and restore).

One choke point for statements (``_exec``: logged once, redacted, errors become
``MetaDBProblem``); the client tools run on the backup host through the host adapter, with the
credentials in a 0600 option file, never on a command line. Everything here works on OceanBase
(MySQL mode), MySQL 8 and MariaDB alike: no CHECKSUM TABLE (a syntax error on OceanBase), no
statistics from information_schema.tables (0 on OceanBase), no `--events`; on OceanBase a session
gets a query and transaction timeout that long statements fit in (the tenant's default is 10 s).
Table contents are compared by a digest the server computes: the rows never pass through here.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shlex
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from .. import audit
from ..envfile import MetaDB as MetaDBConfig
from ..errors import BackupProblem, DumpLacksTables, HostProblem, MetaDBProblem
from ..redact import excerpt, redact
from ..versions import OMS_VERSION_DDL
from .hosts import Host

# doc 003/004: the prune statement, verbatim.
PRUNE_SQL = "delete from heatbeat_sequence where id < (select max(id) from heatbeat_sequence);"
# The same for servers that refuse a subquery on the target table (MySQL error 1093).
PRUNE_SQL_DERIVED = (
    "delete from heatbeat_sequence where id < (select m from (select max(id) m from heatbeat_sequence) t);"
)
DUMP_MARKER = "-- Dump completed"
# mysqldump as doc 004 has it (--triggers=false), with one consistent snapshot (obd uses
# --single-transaction) and nothing the OceanBase kernel refuses (no --events)
DUMP_OPTIONS = "--single-transaction --quick --triggers=false --hex-blob --default-character-set=utf8mb4"
# SHOW ENGINE INNODB STATUS, its TRANSACTIONS section (MariaDB 10.x and MySQL 8 print these lines alike)
INNODB_PURGE_PATTERNS = (
    r"Trx id counter (\d+)",
    r"Purge done for trx's n:o < (\d+)",
    r"History list length (\d+)",
)
OB_LONG_US = 86400000000  # one day, in OceanBase's microseconds
DDL_TIMEOUT_S = 300  # the restore's DROP/CREATE DATABASE: far more than either needs
# What a mysqldump session of the tenant gets by default (global); mysqldump cannot set session
# variables (it refuses init-command), and a dump that reads longer than ob_query_timeout (10 s by
# default) fails with error 4012, one longer than ob_trx_timeout (--single-transaction) too.
OB_DUMP_GLOBALS = ("ob_query_timeout", "ob_trx_timeout", "ob_trx_idle_timeout")
NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # charsets and collations, before they reach a statement
SAMPLE_ROWS = 1000


# The mysql client's own error lines ("ERROR 1146 (42S02) at line 5: ..."); MariaDB's client (10.11, seen here)
# prints the failing statement between two lines of 14 dashes before it: a dump's INSERT, the MetaDB's rows.
CLIENT_ERROR_LINE = re.compile(r"^ERROR \d+ \([0-9A-Z]{5}\)( at line \d+)?: .*$", re.M)
CLIENT_ECHO = re.compile(r"^-{14}\n.*?(\n-{14}\n|\Z)", re.S | re.M)


def ob_session_timeouts(query_us: int) -> str:
    """The statement that gives an OceanBase session its own timeouts (that session only), not the tenant's global
    ones: omsup's own sessions and the restore's client."""
    return f"SET SESSION ob_query_timeout = {query_us}, ob_trx_timeout = {OB_LONG_US}"


def client_error(stderr: str, tail: int = 1000) -> str:
    """What a failed mysql client run said, for a message: its ERROR lines (the last three), else the end of what
    it printed without any statement it echoed (rows of the MetaDB never reach the terminal, log or report)."""
    lines = [m.group(0) for m in CLIENT_ERROR_LINE.finditer(stderr)]
    if lines:
        return redact("\n".join(lines[-3:]))[-tail:]
    rest = CLIENT_ECHO.sub("", stderr).strip()
    if not rest:
        return "(the client printed only the statement)" if stderr.strip() else "(nothing)"
    return redact(rest)[-tail:]


def parse_innodb_purge(text: str) -> tuple[int, int, int] | None:
    """(transaction id counter, purged below, history list length) from SHOW ENGINE INNODB STATUS."""
    found = [re.search(p, text) for p in INNODB_PURGE_PATTERNS]
    if not all(found):
        return None
    counter, purged, history = (int(m.group(1)) for m in found if m)
    return counter, purged, history


def quote_ident(name: str) -> str:
    """A MySQL identifier in backticks, a backtick inside doubled."""
    return "`" + str(name).replace("`", "``") + "`"


def _option_value(value: str) -> str:
    """Quote a value for a MySQL option file (double quotes; backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Content digests the MetaDB computes per table over each row's text (row_text), as SQL that works on
# OceanBase, MySQL and MariaDB alike. A backup records which one it took; a rollback compares like with
# like. crc32+len (the default since 2026-11-24): the sums of the rows' CRC32 and of their lengths, one
# scan at about half the cost of crc32+md5 (0.5 s against 1.1 s for 400 MB on OceanBase), which the
# backups of earlier versions recorded.
DIGESTS = {
    "crc32+len": "COALESCE(SUM(CRC32(r)), 0), COALESCE(SUM(LENGTH(r)), 0)",
    "crc32+md5": "COALESCE(SUM(CRC32(r)), 0), COALESCE(SUM(CAST(CONV(SUBSTR(MD5(r), 1, 15), 16, 10) AS UNSIGNED)), 0)",
}
DIGEST = "crc32+len"


def row_text(columns: list[str]) -> str:
    """One row as text, NULL and '' told apart: CONCAT_WS of 'v'+value or 'n' per column."""
    return "CONCAT_WS(0x1f, " + ", ".join(f"IFNULL(CONCAT('v', {quote_ident(c)}), 'n')" for c in columns) + ")"


def parse_ha_config(raw: Any, what: str) -> dict[str, Any]:
    """A JSON object kept in a MetaDB column: ha.config (enable, perceiveStoreClientCheckpoint, ...)."""
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", "replace")
    try:
        value = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        raise MetaDBProblem(f"{what} is not JSON: {excerpt(raw)!r}") from None
    if not isinstance(value, dict):
        raise MetaDBProblem(f"{what} is not a JSON object: {excerpt(raw)!r}")
    return value


def parse_source_config(raw: Any) -> dict[str, Any]:
    """connector_task.source_config: a JSON object, or {} for anything else (shown as not readable)."""
    try:
        return parse_ha_config(raw, "connector_task.source_config")
    except MetaDBProblem:
        return {}


class MetaDB:
    def __init__(self, cfg: MetaDBConfig, oceanbase: bool | None = None) -> None:
        """``oceanbase``: the engine where the caller knows it (a rehearsal's private seekdb, reached only through
        its namespace's clients: no session of this process could tell); None: told apart on the first session."""
        self.cfg = cfg
        self.label = f"{cfg.host}:{cfg.port}"
        self._local = threading.local()
        self._oceanbase: bool | None = oceanbase

    # -- statements ------------------------------------------------------------------------
    def _conn(self) -> pymysql.connections.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.ping()
                return conn
            except pymysql.err.MySQLError:
                self._local.conn = None
        conn = self._connect(OB_LONG_US // 1_000_000)
        self._local.conn = conn
        return conn

    def _connect(self, timeout_s: int) -> pymysql.connections.Connection:
        """A new connection whose statements may run ``timeout_s`` (the client's read timeout and, on
        OceanBase, the session's ob_query_timeout)."""
        with audit.call(
            "metadb", self.label, f"connect as {self.cfg.user}" + (" (TLS)" if self.cfg.ssl_ca else "")
        ) as rec:
            conn = self._open(timeout_s)
            rec.outcome = f"connected, server {conn.get_server_info()}"
        us = timeout_s * 1_000_000
        if self._oceanbase is None:
            # With the hint OceanBase gives this statement its own timeout, not the tenant's global one (seen on
            # seekdb with ob_query_timeout = 1 us: about 3 in 100 plain `SELECT VERSION()` ran out, none with it);
            # MySQL warns of a hint it does not know (WL#8017: "Bad syntax in a hint will cause a warning"); MariaDB
            # 10.x reads /*+ */ as a comment (the sandbox's MariaDB engine runs this statement).
            hinted = f"SELECT /*+ QUERY_TIMEOUT({us}) */ VERSION()"
            self._oceanbase = "oceanbase" in str(self._statement(lambda: conn, hinted)[1][0][0]).lower()
        if self._oceanbase:
            self._statement(lambda: conn, ob_session_timeouts(us))
        return conn

    def _open(self, timeout_s: int) -> pymysql.connections.Connection:
        return pymysql.connect(
            # PyMySQL would encode a str password as latin-1; the server hashes the bytes it is sent,
            # and the mysql/mysqldump clients (and OMS's JDBC driver) send UTF-8. So bytes, UTF-8.
            host=self.cfg.host,
            port=self.cfg.port,
            user=self.cfg.user,
            password=self.cfg.password.value.encode(),
            autocommit=True,
            connect_timeout=10,
            read_timeout=timeout_s,
            write_timeout=timeout_s,
            charset="utf8mb4",
            ssl={"ca": self.cfg.ssl_ca, "check_hostname": True} if self.cfg.ssl_ca else None,
        )

    def _statement(
        self,
        conn: Callable[[], pymysql.connections.Connection],
        sql: str,
        args: Any = None,
        db: str | None = None,
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """One statement (``USE db`` first where asked), recorded as it ran, its arguments in it; what the
        connection needs first (the kept connection's ping, a new connection) is part of its call."""
        with audit.call("metadb", self.label, f"[{db}] {sql}" if db else sql) as rec, conn().cursor() as cur:
            rec.action = (f"[{db}] " if db else "") + cur.mogrify(sql, args)
            if db:
                cur.execute(f"USE {quote_ident(db)}")
            n = cur.execute(sql, args)
            rows = list(cur.fetchall())
            rec.outcome = f"{n} row(s)"
        return n, rows

    def _exec(
        self, sql: str, args: Any = None, db: str | None = None, timeout_s: int | None = None
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """The one way statements reach the MetaDB: recorded (``_statement``), redacted, errors as MetaDBProblem.
        With ``timeout_s`` the statement runs on a connection of its own that gives up after that long."""
        shown = f"[{db}] {sql}" if db else sql
        own: list[pymysql.connections.Connection] = []

        def connection() -> pymysql.connections.Connection:
            if not timeout_s:
                return self._conn()
            own.append(self._connect(timeout_s))
            return own[0]

        try:
            return self._statement(connection, sql, args, db)
        except pymysql.err.MySQLError as e:
            if not own:
                self._local.conn = None
            if e.args and e.args[0] == 1093:  # see prune_heartbeats
                raise
            raise MetaDBProblem(
                f"MetaDB {self.label} (user {self.cfg.user}): `{redact(shown)[:300]}` failed: {redact(e)}",
                "check that the MetaDB runs and answers for this user; then run the runbook again to resume",
            ) from None
        finally:
            if own and own[0].open:
                own[0].close()

    def query(self, sql: str, args: Any = None, db: str | None = None) -> list[tuple[Any, ...]]:
        return self._exec(sql, args, db)[1]

    def execute(self, sql: str, args: Any = None, db: str | None = None, timeout_s: int | None = None) -> int:
        return self._exec(sql, args, db, timeout_s)[0]

    def ping(self) -> str:
        return str(self.query("SELECT VERSION()")[0][0])

    def blame_if_down(self, what_failed: str, then: str) -> None:
        """After ``what_failed`` (a client tool, docker_init.sh): when the MetaDB does not answer,
        that is the cause to name, as a MetaDB problem."""
        try:
            self.ping()
        except MetaDBProblem as e:
            raise MetaDBProblem(
                f"{what_failed}, and the MetaDB does not answer: {e}", f"bring the MetaDB back; {then}"
            ) from None

    # -- what the server is ------------------------------------------------------------------
    def server(self) -> dict[str, Any]:
        """VERSION(), the version comment, the time zone and the server's clocks (NOW, UTC)."""
        row = self.query(
            "SELECT VERSION(), @@version_comment, @@time_zone, @@system_time_zone, NOW(), UTC_TIMESTAMP()"
        )[0]
        return {
            "version": str(row[0]),
            "comment": str(row[1]),
            "time_zone": str(row[2]),
            "system_time_zone": str(row[3]),
            "now": row[4],
            "utc": row[5],
        }

    def grants(self) -> list[str]:
        """SHOW GRANTS of the connected user (password hashes cut out)."""
        rows = self.query("SHOW GRANTS")
        return [re.sub(r"IDENTIFIED BY PASSWORD\s+'[^']*'", "IDENTIFIED BY PASSWORD <hash>", str(r[0])) for r in rows]

    def existing_databases(self) -> set[str]:
        return {r[0] for r in self.query("SELECT schema_name FROM information_schema.schemata")}

    def charset(self, db: str) -> tuple[str, str]:
        rows = self.query(
            "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
            "WHERE schema_name=%s",
            (db,),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else ("utf8mb4", "utf8mb4_general_ci")

    def tables(self, db: str) -> list[str]:
        return sorted(str(r[0]) for r in self.query("SHOW FULL TABLES WHERE Table_type='BASE TABLE'", db=db))

    def columns(self, db: str, table: str) -> list[str]:
        return [
            str(r[0])
            for r in self.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name=%s "
                "ORDER BY ordinal_position",
                (db, table),
            )
        ]

    def has_table(self, db: str, table: str) -> bool:
        return bool(
            self.query("SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name=%s", (db, table))
        )

    def schema_fingerprint(self, dbs: list[str]) -> str:
        """A digest of the tables and columns of ``dbs``: whether a schema change touched them."""
        rows = self.query(
            "SELECT table_schema, table_name, column_name, column_type FROM information_schema.columns "
            "WHERE table_schema IN (" + ",".join(["%s"] * len(dbs)) + ") "
            "ORDER BY table_schema, table_name, ordinal_position",
            dbs,
        )
        return hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()[:32]

    def estimate_bytes(self, db: str) -> int:
        """About how many bytes a dump of ``db`` takes: per table, its rows times the text length of a
        sample of them (information_schema's table statistics read 0 on OceanBase)."""
        total = 0
        for t in self.tables(db):
            cols = self.columns(db, t)
            rows = int(self.query(f"SELECT COUNT(*) FROM {quote_ident(t)}", db=db)[0][0])
            if rows and cols:
                avg = self.query(
                    f"SELECT AVG(LENGTH(r)) FROM (SELECT {row_text(cols)} AS r FROM {quote_ident(t)} "
                    f"LIMIT {SAMPLE_ROWS}) s",
                    db=db,
                )[0][0]
                total += int(rows * float(avg or 0)) + rows * 8  # + the dump's quoting and separators
        return total

    def table_digests(self, db: str, kind: str = DIGEST) -> dict[str, dict[str, Any]]:
        """Per base table: its row count and a content digest the server computes over every row's text
        (``kind``, one of DIGESTS), equal before a dump and after its restore."""
        if kind not in DIGESTS:
            raise MetaDBProblem(
                f"content digest {kind!r} is not one this version computes ({', '.join(sorted(DIGESTS))})",
                "compare with the omsup version that took the backup",
            )
        out: dict[str, dict[str, Any]] = {}
        for t in self.tables(db):
            cols = self.columns(db, t)
            rows, a, b = self.query(
                f"SELECT COUNT(*), {DIGESTS[kind]} FROM (SELECT {row_text(cols)} AS r FROM {quote_ident(t)}) d", db=db
            )[0]
            out[t] = {"rows": int(rows), "digest": f"{int(a):x}-{int(b):x}", "kind": kind}
        return out

    # -- OMS system parameters ---------------------------------------------------------------
    # Not public: an API for system parameters. ha.config lives in rm's oms_normal_config (obd
    # reads it there), so the runbooks read and write it there, in this one place.
    def ha_config(self, rm: str) -> dict[str, Any]:
        rows = self.query("SELECT cfg_value FROM oms_normal_config WHERE cfg_name='ha.config'", db=rm)
        if not rows:
            raise MetaDBProblem(
                f"{rm}.oms_normal_config has no ha.config row",
                "check metadb.rm in the environment file names the rm database",
            )
        return parse_ha_config(rows[0][0], f"{rm}.oms_normal_config ha.config")

    def write_ha_config(self, rm: str, value: dict[str, Any]) -> None:
        self.execute(
            "UPDATE oms_normal_config SET cfg_value=%s WHERE cfg_name='ha.config'",
            (json.dumps(value, separators=(",", ":")),),
            db=rm,
        )

    def recover_oms_version(self, rm: str, version: str) -> None:
        """doc 004's recovery: create rm.oms_version (obd's DDL) and REPLACE the version before the upgrade."""
        self.execute(OMS_VERSION_DDL, db=rm)
        self.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (version,), db=rm)

    def delete_oms_versions(self, rm: str, versions: list[str]) -> int:
        """DELETE the rows of rm.oms_version naming ``versions``; returns how many went."""
        if not versions:
            return 0
        marks = ", ".join(["%s"] * len(versions))
        return self.execute(f"DELETE FROM oms_version WHERE version IN ({marks})", tuple(versions), db=rm)

    def oms_versions(self, rm: str) -> list[str] | None:
        """Rows of rm's oms_version, or None when the table does not exist."""
        if not self.has_table(rm, "oms_version"):
            return None
        return [str(r[0]) for r in self.query("SELECT version FROM oms_version ORDER BY gmt_modified, version", db=rm)]

    # -- server state (the vendor's host-down guide) ------------------------------------------
    def host_status(self, cm: str) -> dict[str, str]:
        """cm: SELECT ip, host_status FROM host (ONLINE for a server that is up)."""
        return {str(ip): str(status) for ip, status in self.query("SELECT ip, host_status FROM host", db=cm)}

    def supervisor_heartbeats(self, cm_hb: str) -> dict[str, tuple[str, int | None]]:
        """cm_hb: heart_beat rows with task_name='supervisor': host ip -> (gmt_modified as written, seconds
        since it by the MetaDB's clock). The time as written tells whether the heartbeat moves between two
        readings, whatever clock or time zone wrote it; the age is evidence only."""
        rows = self.query(
            "SELECT host_ip, CAST(gmt_modified AS CHAR), TIMESTAMPDIFF(SECOND, gmt_modified, NOW()) FROM heart_beat "
            "WHERE task_name='supervisor'",
            db=cm_hb,
        )
        return {str(ip): (str(at), None if age is None else int(age)) for ip, at, age in rows}

    # -- not public: where these are read before the console lists them (4.1.1) ---------------
    # The runbooks read rm's project tables and cm's Connector tasks here, in this one place; the
    # probe runbook checks that they exist on a deployment.
    def projects(self, rm: str) -> list[dict[str, Any]]:
        out = []
        for pid, name, typ, status, created, src in self.query(
            "SELECT id, name, type, status, created_version, source_type FROM oms_project ORDER BY id", db=rm
        ):
            steps = self.query("SELECT step_name, status FROM oms_project_step WHERE project_id=%s", (pid,), db=rm)
            out.append(
                {
                    "id": pid,
                    "name": name,
                    "type": typ,
                    "status": status,
                    "created_version": created,
                    "source_type": src,
                    "steps": [{"name": s, "status": st} for s, st in steps],
                }
            )
        return out

    def connector_tasks(self, cm: str) -> list[dict[str, Any]]:
        out = []
        for name, pid, host, status, raw in self.query(
            "SELECT name, project_id, host_ip, status, source_config FROM connector_task ORDER BY name", db=cm
        ):
            out.append(
                {
                    "name": str(name),
                    "project": str(pid),
                    "host": str(host),
                    "status": str(status),
                    "source": parse_source_config(raw),
                }
            )
        return out

    # -- changes -----------------------------------------------------------------------------
    def is_oceanbase(self) -> bool:
        if self._oceanbase is None:
            self.ping()  # through the choke point: a MetaDB that does not answer is a MetaDBProblem
        return bool(self._oceanbase)

    def ob_globals(self) -> dict[str, int]:
        """The tenant's global values of OB_DUMP_GLOBALS (what a new session, a mysqldump's, gets)."""
        cols = ", ".join(f"@@global.{v}" for v in OB_DUMP_GLOBALS)
        return {k: int(v) for k, v in zip(OB_DUMP_GLOBALS, self.query(f"SELECT {cols}")[0], strict=True)}

    def set_ob_globals(self, values: dict[str, int]) -> None:
        for name, value in values.items():
            if name not in OB_DUMP_GLOBALS:
                raise MetaDBProblem(f"{name} is not one of {OB_DUMP_GLOBALS}; nothing was set")
            self.execute(f"SET GLOBAL {name} = %s", (int(value),))

    def innodb_purge(self) -> tuple[int, int, int] | None:
        """From SHOW ENGINE INNODB STATUS (MariaDB and MySQL print it alike): the transaction id counter,
        the number below which InnoDB has purged every committed transaction (the rows they deleted are
        gone from the indexes; until then every scan steps over them), and the history list length.
        None where the server does not show it (OceanBase; no PROCESS privilege)."""
        if self.is_oceanbase():
            return None
        try:
            rows = self.query("SHOW ENGINE INNODB STATUS")
        except MetaDBProblem:
            return None
        return parse_innodb_purge(str(rows[0][-1]) if rows and rows[0] else "")

    def heartbeat_counts(self, cm_hb: str) -> tuple[int, int | None, int | None]:
        """COUNT(*), MAX(id), MIN(id) of cm_hb's heatbeat_sequence."""
        n, hi, lo = self.query("SELECT COUNT(*), MAX(id), MIN(id) FROM heatbeat_sequence", db=cm_hb)[0]
        return int(n), (None if hi is None else int(hi)), (None if lo is None else int(lo))

    def count_heartbeats_below(self, cm_hb: str, top: int) -> int:
        """How many heartbeats lie below ``top`` (a scan of the pruned range: quick once the rows are gone)."""
        return int(self.query("SELECT COUNT(*) FROM heatbeat_sequence WHERE id < %s", (top,), db=cm_hb)[0][0])

    def explain_prune(self, cm_hb: str) -> list[list[str]]:
        """EXPLAIN of doc 004's prune statement (the probe: the MetaDB takes it)."""
        return [list(map(str, r)) for r in self.query("EXPLAIN " + PRUNE_SQL.rstrip(";"), db=cm_hb)]

    def primary_key(self, db: str, table: str) -> list[str]:
        """The columns of ``table``'s primary key, in order."""
        keys = self.query(f"SHOW KEYS FROM {quote_ident(table)} WHERE Key_name = 'PRIMARY'", db=db)
        return [str(k[4]).lower() for k in keys]  # Column_name

    def heartbeat_ids(self, cm_hb: str) -> tuple[int | None, int | None]:
        """MIN(id) and MAX(id) of cm_hb's heatbeat_sequence."""
        lo, hi = self.query("SELECT MIN(id), MAX(id) FROM heatbeat_sequence", db=cm_hb)[0]
        return (None if lo is None else int(lo)), (None if hi is None else int(hi))

    def delete_heartbeats(self, cm_hb: str, lo: int, hi: int) -> int:
        """The heartbeats with lo <= id < hi (one short statement of the online prune)."""
        return self.execute("DELETE FROM heatbeat_sequence WHERE id >= %s AND id < %s", (lo, hi), db=cm_hb)

    def prune_heartbeats(self, cm_hb: str) -> int:
        try:
            return self.execute(PRUNE_SQL, db=cm_hb)
        except pymysql.err.OperationalError as e:  # 1093: the server refuses the verbatim form
            if not e.args or e.args[0] != 1093:
                raise
            return self.execute(PRUNE_SQL_DERIVED, db=cm_hb)

    def drop_and_create(self, db: str, charset: str, collation: str) -> None:
        """doc 003/004 rollback: drop database X; create database X."""
        if not NAME_RE.fullmatch(charset) or not NAME_RE.fullmatch(collation):
            raise MetaDBProblem(
                f"{db}: the recorded character set {charset!r} or collation {collation!r} is not a "
                "plain name; nothing was dropped",
                "check the run ledger",
            )
        # bounded: a DROP that waits on a lock (seen once on OceanBase just after a restart) stops the
        # run with a MetaDBProblem, resumable, instead of holding the outage for a day
        self.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)}", timeout_s=DDL_TIMEOUT_S)
        self.execute(
            f"CREATE DATABASE {quote_ident(db)} DEFAULT CHARACTER SET {charset} COLLATE {collation}",
            timeout_s=DDL_TIMEOUT_S,
        )

    # -- client tools on the backup host -----------------------------------------------------
    # Option files are named after the run that writes them: the id of the lock it holds, or "ro" for a run
    # that reads only (the probe, a plan). A run that holds the lock removes every other one a killed run left.
    option_tag = "ro"

    def remove_stale_option_files(self, host: Host, folder: str) -> list[str]:
        """Remove the option files under ``folder`` (the environment's backup folder) that no run can be using:
        those of another run that held the lock (only one holds it: this one), and read-only runs' older than
        ten minutes. Returns the paths removed."""
        r = host.run(
            "test -d %s || exit 0; find %s -maxdepth 2 -type f -name '.omsup-client-*.cnf' ! -name %s "
            "\\( ! -name '.omsup-client-ro-*' -o -mmin +10 \\) -print -delete",
            folder,
            folder,
            f".omsup-client-{self.option_tag}-*",
            quiet=True,
        )
        return [x for x in r.stdout.splitlines() if x.strip()]

    @contextmanager
    def option_file(self, host: Host, folder: str) -> Iterator[str]:
        """A 0600 MySQL option file with the credentials on ``host``, removed afterwards (by a run that
        is killed meanwhile: by the next run that holds the lock, ``remove_stale_option_files``)."""
        path = f"{folder}/.omsup-client-{self.option_tag}-{secrets.token_hex(6)}.cnf"
        body = (
            f"[client]\nhost={self.cfg.host}\nport={self.cfg.port}\nuser={_option_value(self.cfg.user)}\n"
            f"password={_option_value(self.cfg.password.value)}\n"
        )
        if self.cfg.ssl_ca:
            body += f"ssl-ca={_option_value(self.cfg.ssl_ca)}\nssl-verify-server-cert\n"
        created = not host.is_dir(folder)  # a folder made only for this file goes with it (a plan leaves nothing)
        try:
            host.make_private_dir(folder)
            host.put_secret_file(path, body)
        except HostProblem as e:
            raise BackupProblem(
                f"cannot write the MySQL client's option file into the backup folder: {e.message}",
                f"check the free space and permissions of {folder} on {host.label}, then run again",
            ) from None
        try:
            yield path
        finally:
            host.remove(path)
            if created:
                host.remove_empty_dir(folder)

    def client_versions(self, host: Host) -> dict[str, str | None]:
        """`mysqldump --version` and `mysql --version` on ``host`` (None: not there)."""
        out: dict[str, str | None] = {}
        for tool in ("mysqldump", "mysql"):
            r = host.run(f"{tool} --version", quiet=True)
            out[tool] = r.stdout.strip() if r.rc == 0 and r.stdout.strip() else None
        return out

    def dump_schema_head(self, host: Host, folder: str, db: str) -> tuple[int, str, str]:
        """A `--no-data` dump of ``db`` to stdout (small; nothing written to disk): its exit code (1 also
        when it lacks the completion marker), its first line, and its error output."""
        with self.option_file(host, folder) as cnf:
            r = host.run(f"mysqldump --defaults-extra-file=%s {DUMP_OPTIONS} --no-data %s", cnf, db, quiet=True)
        first = r.stdout.splitlines()[0] if r.stdout.strip() else ""
        rc = r.rc if r.rc != 0 else (0 if DUMP_MARKER in r.stdout[-300:] else 1)
        return rc, first, redact(r.stderr.strip())[-500:]

    def dump(self, host: Host, folder: str, db: str, dest: str) -> tuple[int, str]:
        """doc 004: mysqldump ... --triggers=false <db> > <file>.sql, never overwriting a file; returns
        the size and SHA-256 of what was written, read back right after it was written (from the page
        cache).

        The dump goes to ``dest.partial`` and is renamed to ``dest`` only when complete (mv -n
        never clobbers; set -C: the shell's `>` does not either). Hashed after the dump, not in a
        pipe beside it: on the 2-core bench machine `mysqldump | tee | sha256sum` took 2.9 s for the
        400 MB cm where `mysqldump > file` then `openssl dgst` took 2.15 s (the plain dump: 1.64 s).
        """
        partial = dest + ".partial"
        listed = set(self.tables(db))  # what the dump must hold (read again after it, see below)
        with self.option_file(host, folder) as cnf:
            q = shlex.quote
            pipe = (
                f"set -C; test ! -e {q(partial)} || exit 17; umask 077; mysqldump --defaults-extra-file="
                f"{q(cnf)} {DUMP_OPTIONS} {q(db)} > {q(partial)}"
            )
            result = host.run("bash -c %s", pipe)
            if result.rc != 0:
                self.blame_if_down(
                    f"mysqldump of {db} on {host.label} exited {result.rc}",
                    "run again to take a new backup (the partial file is kept for inspection)",
                )
                raise BackupProblem(
                    f"mysqldump of {db} on {host.label} into {partial} exited {result.rc}: "
                    f"{redact(result.stderr.strip())[-1000:]}",
                    f"check the free space and permissions of {folder}; the partial file is kept for inspection",
                )
        # mysqldump can exit 0 with its completion marker and no table at all: MariaDB's 10.11 client against
        # OceanBase, when its session's ob_query_timeout runs out while it lists the tables (seen here with these
        # options: nothing printed, exit 0, a "complete" dump of nothing). So the tables are counted in it: a
        # base table there before the dump and still there after it must be in it.
        missing = listed - self.dumped_tables(host, partial)
        if missing:
            missing &= set(self.tables(db))  # one dropped meanwhile (OMS running: the hot upgrade) is not missing
        if missing:
            raise DumpLacksTables(
                f"mysqldump of {db} on {host.label} into {partial} exited 0 but the dump lacks {len(missing)} of "
                f"the {len(listed)} tables {db} has ({', '.join(sorted(missing)[:5])}"
                f"{', ...' if len(missing) > 5 else ''}); what mysqldump printed: "
                f"{redact(result.stderr.strip())[-1000:] or '(nothing)'}",
                "it is no backup: check what mysqldump printed and the MetaDB's timeouts; the partial file is kept "
                "for inspection; run again to take a new backup",
            )
        try:
            facts = host.file_facts(partial)  # the host's one way of hashing a file (openssl, else sha256sum)
        except HostProblem as e:
            raise BackupProblem(
                f"the dump of {db}: {e.message}", "check the backup host's openssl or coreutils; run again"
            ) from None
        if facts is None:
            raise BackupProblem(
                f"the dump of {db} at {partial} on {host.label} could not be hashed (neither openssl nor sha256sum?)",
                "check the backup host's openssl or coreutils; run again to take a new backup",
            )
        host.rename_no_clobber(partial, dest, what=f"move the dump of {db} into place")
        return int(facts["size"]), str(facts["sha256"])

    def dumped_tables(self, host: Host, path: str) -> set[str]:
        """The tables whose CREATE TABLE a dump at ``path`` on ``host`` holds (mysqldump starts each at a line's
        start, its name in backquotes, a backquote in it doubled; a data line never starts so: INSERT INTO)."""
        r = host.run("grep -a -o -E %s %s", r"^(/\*!50001 )?CREATE TABLE `([^`]|``)+`", path, quiet=True)
        if r.rc not in (0, 1):  # 1: no line matched
            raise BackupProblem(
                f"the tables in the dump {path} on {host.label} could not be read: grep exited {r.rc}: "
                f"{r.stderr.strip()[-300:]}",
                "check the backup host's grep and the file; run again to take a new backup",
            )
        return {m.split("CREATE TABLE ", 1)[1][1:-1].replace("``", "`") for m in r.stdout.splitlines() if m}

    def script(self, host: Host, folder: str, sql: str, what: str) -> str:
        """Statements run through the mysql client on ``host`` (the rehearsal's scratch MetaDB, reached only from
        its namespace), fed on stdin from a 0600 file removed afterwards: a statement that holds a password never
        reaches a command line or the record. What the client printed; refused with ``what`` when it fails."""
        path = f"{folder}/.omsup-script-{secrets.token_hex(6)}.sql"
        with self.option_file(host, folder) as cnf:
            host.put_secret_file(path, sql)
            try:
                result = host.run(
                    "mysql --defaults-extra-file=%s --default-character-set=utf8mb4 -N < %s",
                    cnf,
                    path,
                    said=client_error,
                )
            finally:
                host.remove(path)
        if result.rc != 0:
            raise MetaDBProblem(
                f"{what} on {self.label} (from {host.label}) exited {result.rc}: {client_error(result.stderr)}"
            )
        return result.stdout

    def restore(self, host: Host, folder: str, db: str, src: str) -> None:
        """doc 003/004 rollback: mysql ... -e "source <file>.sql" -D<db> (fed on stdin here)."""
        # On OceanBase the client's session would get the tenant's global ob_query_timeout (10 s by default) and
        # ob_trx_timeout, as a dump's does: one statement of the dump running longer would stop the rollback. The
        # session sets its own (`mysql --init-command`; only there: MySQL refuses the variables).
        init = f"--init-command='{ob_session_timeouts(OB_LONG_US)}' " if self.is_oceanbase() else ""
        with self.option_file(host, folder) as cnf:
            result = host.run(
                f"mysql --defaults-extra-file=%s {init}--default-character-set=utf8mb4 -D %s < %s",
                cnf, db, src, said=client_error,
            )  # fmt: skip
        if result.rc != 0:
            self.blame_if_down(
                f"the restore of {db} on {host.label} exited {result.rc}",
                "run the rollback again: it restores from the same verified backups",
            )
            raise MetaDBProblem(
                f"restore of {db} from {src} on {host.label} exited {result.rc}: {client_error(result.stderr)}",
                "fix the cause (is the MetaDB up?) and run the rollback again: it restores from the same verified backups",
            )
