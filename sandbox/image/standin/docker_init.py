"""The stand-in's /root/docker_init.sh: apply this version's schema changes to rm, cm and cm_hb.

doc 003/004: "the script automatically applies the schema changes to the three databases".
doc 004: for 4.2.x targets it stops with "Version before 4.1.1 is not allowed to upgrade" when
the pre-upgrade version cannot be read from rm's `oms_version`; the recovery is to create the
table, REPLACE the pre-upgrade version into it and run the script again.
Idempotent: running it again at the same version changes nothing.
"""

from __future__ import annotations

import common
import schema
from common import VERSION, log
from versions import MIN_VERSION_FOR_4X_INIT, OMS_VERSION_DDL, UPGRADE_RULES, Version


def main() -> None:
    cfg = common.load_config()
    if common.faults().get("init_fail"):
        common.fail("ERROR sandbox fault: schema change failed (docker_init.sh)")
    conn = common.connect(cfg)
    cur = conn.cursor()
    rm, cm, hb = cfg["drc_rm_db"], cfg["drc_cm_db"], cfg["drc_cm_heartbeat_db"]
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s AND table_name='oms_version'", (rm,)
    )
    has_table = cur.fetchone()[0] == 1
    recorded: list[Version] = []
    if has_table:
        cur.execute(f"SELECT version FROM `{rm}`.oms_version")
        recorded = sorted(Version.parse(r[0]) for r in cur.fetchall())
    if VERSION >= Version.parse("4.2.0") and not recorded:
        common.fail("Version before 4.1.1 is not allowed to upgrade")
    if recorded:
        source = recorded[-1]
    else:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name='oms_project'",
            (rm,),
        )
        source = schema.schema_version_of({r[0] for r in cur.fetchall()})
    if VERSION >= Version.parse("4.2.0") and source < MIN_VERSION_FOR_4X_INIT:
        common.fail("Version before 4.1.1 is not allowed to upgrade")
    if source > VERSION:
        common.fail(f"ERROR metadata is at {source}, newer than this image ({VERSION})")
    if source < VERSION:
        rule = next((r for r in UPGRADE_RULES if r.target == VERSION), None)
        if rule is None or not rule.allows(source):
            common.fail(f"ERROR upgrade from {source} to {VERSION} is not supported")
    log(f"docker_init.sh: applying schema changes {source} -> {VERSION}")
    for role, db in (("rm", rm), ("cm", cm), ("cm_hb", hb)):
        cur.execute(f"USE `{db}`")
        for stmt in schema.migration_statements(role, source, VERSION):
            cur.execute(stmt)
    if schema.has_oms_version_table(VERSION):
        cur.execute(f"USE `{rm}`")
        cur.execute(OMS_VERSION_DDL)
        cur.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (str(VERSION),))
    cur.execute(
        f"REPLACE INTO `{cm}`.config_job (`key`, `value`) VALUES (%s, %s)", (common.cm_nodes_key(cfg), str(VERSION))
    )
    log(f"docker_init.sh: metadata initialized to {VERSION}")


if __name__ == "__main__":
    main()
