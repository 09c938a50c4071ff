"""The MetaDB, through PyMySQL (statements) and the MySQL client tools (dump and restore).

One choke point for statements (``_exec``: logged once, redacted, errors become
``MetaDBProblem``); the client tools run on the backup host through the host adapter, with
the credentials in a 0600 option file, never on a command line.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from ..audit import AUDIT
from ..envfile import MetaDB as MetaDBConfig
from ..errors import BackupProblem, MetaDBProblem
from ..redact import redact
from .hosts import Host

# doc 003/004: the prune statement, verbatim.
PRUNE_SQL = "delete from heatbeat_sequence where id < (select max(id) from heatbeat_sequence);"
# The same for servers that refuse a subquery on the target table (MySQL error 1093).
PRUNE_SQL_DERIVED = (
    "delete from heatbeat_sequence where id < (select m from (select max(id) m from heatbeat_sequence) t);"
)
DUMP_MARKER = "-- Dump completed"


def _option_value(value: str) -> str:
    """Quote a value for a MySQL option file (double quotes; backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MetaDB:
    def __init__(self, cfg: MetaDBConfig) -> None:
        self.cfg = cfg
        self.label = f"{cfg.host}:{cfg.port}"
        self._local = threading.local()

    # -- statements ------------------------------------------------------------------------
    def _conn(self) -> pymysql.connections.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.ping()
                return conn
            except pymysql.err.MySQLError:
                self._local.conn = None
        self._local.conn = pymysql.connect(
            # PyMySQL would encode a str password as latin-1; the server hashes the bytes it is sent,
            # and the mysql/mysqldump clients (and OMS's JDBC driver) send UTF-8. So bytes, UTF-8.
            host=self.cfg.host,
            port=self.cfg.port,
            user=self.cfg.user,
            password=self.cfg.password.value.encode(),
            autocommit=True,
            connect_timeout=10,
            read_timeout=3600,
            write_timeout=3600,
            charset="utf8mb4",
        )
        return self._local.conn

    def _exec(self, sql: str, args: Any = None, db: str | None = None) -> tuple[int, list[tuple[Any, ...]]]:
        t0 = time.monotonic()
        shown = f"[{db}] {sql}" if db else sql
        try:
            conn = self._conn()
            with conn.cursor() as cur:
                shown = (f"[{db}] " if db else "") + cur.mogrify(sql, args)
                if db:
                    cur.execute(f"USE `{db}`")
                n = cur.execute(sql, args)
                rows = list(cur.fetchall())
        except pymysql.err.MySQLError as e:
            AUDIT.record("metadb", self.label, shown, f"error: {e}", time.monotonic() - t0)
            self._local.conn = None
            if e.args and e.args[0] == 1093:  # see prune_heartbeats
                raise
            raise MetaDBProblem(
                f"MetaDB {self.label} (user {self.cfg.user}): `{redact(shown)[:300]}` failed: {redact(e)}",
                "check that the MetaDB runs and answers for this user; then run the runbook again to resume",
            ) from e
        AUDIT.record("metadb", self.label, shown, f"{n} row(s)", time.monotonic() - t0)
        return n, rows

    def query(self, sql: str, args: Any = None, db: str | None = None) -> list[tuple[Any, ...]]:
        return self._exec(sql, args, db)[1]

    def execute(self, sql: str, args: Any = None, db: str | None = None) -> int:
        return self._exec(sql, args, db)[0]

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

    def existing_databases(self) -> set[str]:
        return {r[0] for r in self.query("SELECT schema_name FROM information_schema.schemata")}

    def sizes(self, dbs: list[str]) -> dict[str, int]:
        rows = self.query(
            "SELECT table_schema, COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
            "WHERE table_schema IN (" + ",".join(["%s"] * len(dbs)) + ") GROUP BY table_schema",
            dbs,
        )
        out = {db: 0 for db in dbs}
        out.update({r[0]: int(r[1]) for r in rows})
        return out

    def charset(self, db: str) -> tuple[str, str]:
        rows = self.query(
            "SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
            "WHERE schema_name=%s",
            (db,),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else ("utf8mb4", "utf8mb4_general_ci")

    def table_stats(self, db: str) -> dict[str, dict[str, int | None]]:
        """Row count and CHECKSUM TABLE of every base table, for comparing after a restore."""
        tables = [r[0] for r in self.query("SHOW FULL TABLES WHERE Table_type='BASE TABLE'", db=db)]
        out: dict[str, dict[str, int | None]] = {}
        for t in sorted(tables):
            rows = self.query(f"SELECT COUNT(*) FROM `{t}`", db=db)[0][0]
            chk = self.query(f"CHECKSUM TABLE `{t}`", db=db)[0][1]
            out[t] = {"rows": int(rows), "checksum": None if chk is None else int(chk)}
        return out

    def has_table(self, db: str, table: str) -> bool:
        return bool(
            self.query("SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name=%s", (db, table))
        )

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
        try:
            value = json.loads(rows[0][0])
        except ValueError as e:
            raise MetaDBProblem(f"{rm}.oms_normal_config ha.config is not JSON: {rows[0][0]!r:.200}") from e
        if not isinstance(value, dict):
            raise MetaDBProblem(f"{rm}.oms_normal_config ha.config is not a JSON object: {rows[0][0]!r:.200}")
        return value

    def write_ha_config(self, rm: str, value: dict[str, Any]) -> None:
        self.execute(
            "UPDATE oms_normal_config SET cfg_value=%s WHERE cfg_name='ha.config'",
            (json.dumps(value, separators=(",", ":")),),
            db=rm,
        )

    def oms_versions(self, rm: str) -> list[str] | None:
        """Rows of rm's oms_version, or None when the table does not exist."""
        if not self.has_table(rm, "oms_version"):
            return None
        return [str(r[0]) for r in self.query("SELECT version FROM oms_version ORDER BY gmt_modified, version", db=rm)]

    # Before V4.1.1-CE the console has no ListProjects (doc). Not public: the project tables'
    # columns; the runbooks read rm's oms_project / oms_project_step here, in this one place.
    def projects(self, rm: str) -> list[dict[str, Any]]:
        out = []
        for pid, name, typ, status in self.query("SELECT id, name, type, status FROM oms_project ORDER BY id", db=rm):
            steps = self.query("SELECT step_name, status FROM oms_project_step WHERE project_id=%s", (pid,), db=rm)
            out.append(
                {
                    "id": pid,
                    "name": name,
                    "type": typ,
                    "status": status,
                    "steps": [{"name": s, "status": st} for s, st in steps],
                }
            )
        return out

    def prune_heartbeats(self, cm_hb: str) -> int:
        try:
            return self.execute(PRUNE_SQL, db=cm_hb)
        except pymysql.err.OperationalError as e:  # 1093: the server refuses the verbatim form
            if not e.args or e.args[0] != 1093:
                raise
            return self.execute(PRUNE_SQL_DERIVED, db=cm_hb)

    def drop_and_create(self, db: str, charset: str, collation: str) -> None:
        """doc 003/004 rollback: drop database X; create database X."""
        self.execute(f"DROP DATABASE IF EXISTS `{db}`")
        self.execute(f"CREATE DATABASE `{db}` DEFAULT CHARACTER SET {charset} COLLATE {collation}")

    # -- client tools on the backup host -----------------------------------------------------
    @contextmanager
    def option_file(self, host: Host, folder: str) -> Iterator[str]:
        """A 0600 MySQL option file with the credentials on ``host``, removed afterwards."""
        path = f"{folder}/.omsup-client-{secrets.token_hex(6)}.cnf"
        body = (
            f"[client]\nhost={self.cfg.host}\nport={self.cfg.port}\nuser={_option_value(self.cfg.user)}\n"
            f"password={_option_value(self.cfg.password.value)}\n"
        )
        host.put_secret_file(path, body)
        try:
            yield path
        finally:
            host.run("rm -f -- %s", path)

    def dump(self, host: Host, folder: str, db: str, dest: str) -> None:
        """doc 004: mysqldump ... --triggers=false <db> > <file>.sql, never overwriting a file.

        --single-transaction makes the dump one consistent snapshot of InnoDB tables. The dump goes
        to ``dest.partial`` and is renamed to ``dest`` only when complete (mv -n never clobbers).
        """
        with self.option_file(host, folder) as cnf:
            partial = dest + ".partial"
            result = host.run(
                "set -o noclobber; umask 077; mysqldump --defaults-extra-file=%s --single-transaction --quick "
                "--triggers=false --hex-blob --default-character-set=utf8mb4 %s > %s",
                cnf,
                db,
                partial,
            )
            if result.rc != 0:
                self.blame_if_down(
                    f"mysqldump of {db} on {host.label} exited {result.rc}",
                    "run again to take a new backup (the partial file is kept for inspection)",
                )
                raise BackupProblem(
                    f"mysqldump of {db} on {host.label} into {partial} exited {result.rc}: "
                    f"{redact(result.stderr.strip()[-1000:])}",
                    f"check the free space and permissions of {folder}; the partial file is kept for inspection",
                )
        host.check("test ! -e %s && mv -n -- %s %s", dest, partial, dest, what=f"move the dump of {db} into place")

    def restore(self, host: Host, folder: str, db: str, src: str) -> None:
        """doc 003/004 rollback: mysql ... -e "source <file>.sql" -D<db> (fed on stdin here)."""
        with self.option_file(host, folder) as cnf:
            result = host.run("mysql --defaults-extra-file=%s --default-character-set=utf8mb4 -D %s < %s", cnf, db, src)
        if result.rc != 0:
            raise MetaDBProblem(
                f"restore of {db} from {src} on {host.label} exited {result.rc}: {redact(result.stderr.strip()[-1000:])}",
                "fix the cause (is the MetaDB up?) and run the rollback again: it restores from the same verified backups",
            )
