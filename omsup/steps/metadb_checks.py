"""The MetaDB's preconditions, checked in the preflight of every upgrade and rollback, before anything changes.

- engine and version: documented for the OMS version (omsup.versions.METADB_SUPPORT), or an explicit
  override in the environment file, whose reason the report records;
- identity: the MetaDB of the environment file is the one every node's config.yaml names;
- clocks: the MetaDB's and each node's clocks agree, in one time zone (OD: NTP and one time zone);
- grants: what the backup, the upgrade and a restore need, seen in SHOW GRANTS before the first DROP;
- the client tools on the backup host: there, a `--no-data` dump that succeeds, and a dump the
  restore client can read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..adapters import oms
from ..adapters.metadb import OB_LONG_US
from ..context import Run
from ..envfile import Node
from ..errors import PreconditionRefused
from ..versions import Version, metadb_engine, metadb_rule_for, metadb_supported

CLOCK_TOLERANCE = 10.0  # seconds between the MetaDB's and a node's clock
MARIADB_SANDBOX_LINE = "enable the sandbox mode"  # MariaDB's mysqldump writes /*M!999999\- enable the sandbox mode */
# what the upgrade changes (ha.config, the prune, docker_init.sh and the oms_version recovery run as
# this user) and what a restore needs (drop and create the databases, load the dumps)
UPGRADE_NEEDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER")
RESTORE_NEEDS = ("SELECT", "INSERT", "CREATE", "DROP", "ALTER", "INDEX")
GRANT_RE = re.compile(r"^GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s", re.I)


# -- engine and version --------------------------------------------------------------------------
def check_engine(run: Run, oms: Version) -> dict[str, Any]:
    server = run.metadb.server()
    engine, numbers = metadb_engine(server["version"], server["comment"])
    found = {"engine": engine, "version": server["version"], "comment": server["comment"], "oms": str(oms)}
    rule = metadb_supported(oms, engine, numbers)
    if rule is not None:
        return {**found, "supported_by": rule.source}
    reason = run.env.metadb.unlisted_engine_reason
    documented = metadb_rule_for(oms)
    listed = (
        ", ".join(f"{n} {'.'.join(map(str, v))} or later" if v else n for n, v in documented.engines)
        if documented
        else "no engine listed"
    )
    if reason:
        return {**found, "override": reason, "documented": listed}
    raise PreconditionRefused(
        f"the MetaDB {run.metadb.label} is {engine} ({server['version']}); OMS {oms} is documented on {listed}"
        + (f" ({documented.source})" if documented else ""),
        "move the MetaDB to a documented engine; to go on deliberately, set metadb.unlisted_engine_reason: <why> in "
        "the environment file (the report records it)",
    )


# -- config.yaml names this MetaDB -------------------------------------------------------------------
def read_config(run: Run, node: Node, binds: list[str]) -> dict[str, Any]:
    """The node's config.yaml: from the host path of its bind, else through `docker exec ... cat`."""
    return oms.read_config(run.hosts[node.name], run.engines[node.name], run.env.container, binds, node.name)


def check_identity(run: Run, node: Node, cfg: dict[str, Any]) -> None:
    """config.yaml's oms_meta_* and drc_* name the MetaDB and the databases of the environment file."""
    region = next(r for r in run.env.regions if r.name == node.region)
    m = run.env.metadb
    for key, want in (
        ("oms_meta_host", m.host),
        ("oms_meta_port", m.port),
        ("oms_meta_user", m.user),
        ("drc_rm_db", m.rm),
        ("drc_cm_db", m.cm),
        ("drc_cm_heartbeat_db", region.cm_hb),
    ):
        if str(cfg.get(key)) != str(want):
            raise PreconditionRefused(
                f"node {node.name}: config.yaml has {key}={cfg.get(key)!r}, the environment file says {want!r}",
                "the environment file must describe the MetaDB this deployment uses (metadb.*, the region's cm_hb)",
            )


# -- clocks ------------------------------------------------------------------------------------------
def check_clocks(run: Run) -> dict[str, Any]:
    """Each node's clock within CLOCK_TOLERANCE of the MetaDB's, and the same UTC offset."""
    server = run.metadb.server()
    db_utc = server["utc"].replace(tzinfo=UTC).timestamp()
    db_offset = round((server["now"] - server["utc"]).total_seconds() / 60)
    seen: dict[str, Any] = {
        "metadb": {"utc": server["utc"].isoformat(), "offset_min": db_offset, "time_zone": server["time_zone"]}
    }

    def clock(n: Node) -> dict[str, Any]:
        now, offset = run.hosts[n.name].clock()
        return {
            "utc": datetime.fromtimestamp(now, UTC).isoformat(),
            "offset_min": offset,
            "skew_s": round(now - db_utc, 1),
        }

    nodes = run.each_node(clock, what="clock")
    seen["nodes"] = nodes
    for name, c in nodes.items():
        if abs(c["skew_s"]) > CLOCK_TOLERANCE:
            raise PreconditionRefused(
                f"node {name}'s clock is {c['skew_s']:+.0f} s off the MetaDB's (tolerance {CLOCK_TOLERANCE:.0f} s)",
                "synchronize the clocks (NTP) of the MetaDB and the OMS hosts: OMS requires it (skew shows up as "
                "PreCheckAction timeouts)",
            )
        if c["offset_min"] != db_offset:
            raise PreconditionRefused(
                f"node {name} is at UTC{c['offset_min'] / 60:+g} h, the MetaDB answers at UTC{db_offset / 60:+g} h "
                f"(time_zone {server['time_zone']})",
                "put the MetaDB and the OMS hosts in one time zone, as OMS requires (T1, T2 and T3 are compared "
                "across them)",
            )
    return seen


# -- grants --------------------------------------------------------------------------------------------
def privileges(grants: list[str], db: str) -> set[str]:
    """What SHOW GRANTS gives on database ``db`` (global grants included)."""
    out: set[str] = set()
    for g in grants:
        m = GRANT_RE.match(g.strip())
        if not m:
            continue
        scope = m.group(2).replace("`", "").replace('"', "")
        if scope in ("*.*", f"{db}.*"):  # db "*": the global scope alone
            privs = {p.strip().upper() for p in m.group(1).split(",")}
            out |= {"ALL"} if any(p.startswith("ALL") for p in privs) else privs
    return out


def check_grants(run: Run, needs: tuple[str, ...]) -> dict[str, Any]:
    grants = run.metadb.grants()
    missing = {}
    for _, db in run.env.databases():
        have = privileges(grants, db)
        lacking = [p for p in needs if "ALL" not in have and p not in have]
        if lacking:
            missing[db] = lacking
    if missing:
        raise PreconditionRefused(
            f"the MetaDB user {run.env.metadb.user} lacks "
            + "; ".join(f"{', '.join(v)} on {k}" for k, v in missing.items())
            + f" (SHOW GRANTS: {grants})",
            "grant them before anything changes: a backup needs SELECT, the upgrade "
            f"{', '.join(UPGRADE_NEEDS)}, and a restore (the way back) {', '.join(RESTORE_NEEDS)}",
        )
    return {"grants": grants, "needed": list(needs)}


# -- OceanBase: the dumps' sessions may read longer than the tenant's default timeouts -------------------
GLOBAL_PRIVILEGES = ("ALL", "SUPER", "ALTER SYSTEM")


def check_ob_timeouts(run: Run, grants: list[str]) -> dict[str, Any] | None:
    """On OceanBase, the backup raises the tenant's global query and transaction timeouts for the dumps
    (mysqldump cannot set its session's, and the default ob_query_timeout is 10 s): the user must be allowed
    to, unless they are high enough already. Elsewhere nothing to check."""
    if not run.metadb.is_oceanbase():
        return None
    values = run.metadb.ob_globals()
    low = {k: v for k, v in values.items() if v < OB_LONG_US}
    allowed = bool(privileges(grants, "*") & set(GLOBAL_PRIVILEGES))
    if low and not allowed:
        raise PreconditionRefused(
            f"the MetaDB is OceanBase and its global {', '.join(f'{k}={v}us' for k, v in low.items())} would "
            f"stop a dump that reads longer; mysqldump cannot raise them for its session, and {run.env.metadb.user} "
            f"may not raise them for the dumps (SHOW GRANTS: {grants})",
            "grant the user SUPER (or ALTER SYSTEM) on the tenant, or raise them yourself before the upgrade "
            f"(SET GLOBAL ob_query_timeout = {OB_LONG_US}, ob_trx_timeout = {OB_LONG_US}, ob_trx_idle_timeout = "
            f"{OB_LONG_US}) and set them back after it",
        )
    return {"globals": values, "to_raise_for_the_dumps": sorted(low), "allowed": allowed}


# -- the client tools on the backup host ----------------------------------------------------------------
def check_clients(run: Run, dump: bool, dump_heads: list[str] | None = None) -> dict[str, Any]:
    """mysqldump (for a backup) and mysql (for a restore) on the backup host, and dumps the restore
    client reads: a `--no-data` dump of every database (``dump``), or the first lines of dumps taken."""
    bh = run.backup_host
    versions = run.metadb.client_versions(bh)
    needed = ("mysqldump", "mysql") if dump else ("mysql",)
    absent = [t for t in needed if versions.get(t) is None]
    if absent:
        raise PreconditionRefused(
            f"{' and '.join(absent)} not found on the backup host {bh.label}",
            "install the MySQL client tools there (Debian: mariadb-client, or mysql-client) before anything changes",
        )
    heads: dict[str, str] = {}
    if dump:
        for _, db in run.env.databases():
            rc, first, err = run.metadb.dump_schema_head(bh, run.env.backup_dir, db)
            if rc != 0:
                raise PreconditionRefused(
                    f"a --no-data dump of {db} on {bh.label} fails: {err or 'no completion marker'}",
                    "a mysqldump the MetaDB refuses would fail the backup after OMS stopped "
                    "(a MySQL 8 mysqldump needs --column-statistics=0 against older servers)",
                )
            heads[db] = first
    mariadb_client = "mariadb" in str(versions.get("mysql")).lower()
    for db, first in list(heads.items()) + [(f"dump {i}", h) for i, h in enumerate(dump_heads or [])]:
        if MARIADB_SANDBOX_LINE in first and not mariadb_client:
            raise PreconditionRefused(
                f"{db} starts with MariaDB's line {first.strip()!r}, which the restore client "
                f"({versions.get('mysql')}) may refuse",
                "restore with MariaDB's mysql client, or take the backups with a mysqldump of the restore client's kind",
            )
    return {"versions": versions, "first_lines": heads}
