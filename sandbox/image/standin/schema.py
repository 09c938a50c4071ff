"""The stand-in's MetaDB schema: the base tables and each version's schema changes.

Shared by the sandbox (which seeds a deployment "as of" a version) and by the stand-in's
``/root/docker_init.sh`` (which applies the changes between two versions), so that both agree on
what every version's metadata looks like. Plain SQL that MariaDB, MySQL 8 and OceanBase (MySQL
mode) all take.

Table names and columns come from shared/oms-interfaces.md and field-notes.md (doc, obd, the
host-down guide). Where they are not public (the console user table's columns, the Connector
task table, the project tables) the stand-in chooses; see facts.CHOICES.
"""

from __future__ import annotations

try:  # inside the image, facts.py sits beside this file
    import facts
except ImportError:  # on the host it is the sandbox's module
    from sandbox import facts  # type: ignore[no-redef]

BASE = "3.2.2"

RM_TABLES = [
    # obd reads ha.config here: select cfg_value from oms_normal_config where cfg_name='ha.config'
    """CREATE TABLE IF NOT EXISTS `oms_normal_config` (
      `cfg_name` varchar(128) NOT NULL, `cfg_value` text, `gmt_modified` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
      PRIMARY KEY (`cfg_name`)) DEFAULT CHARSET = utf8mb4""",
    """CREATE TABLE IF NOT EXISTS `cluster_info` (
      `region` varchar(64) NOT NULL, `region_cn` varchar(64) DEFAULT '', `cm_url` varchar(255) NOT NULL,
      `code` int NOT NULL, `is_default_cm` tinyint NOT NULL DEFAULT 0, PRIMARY KEY (`code`)) DEFAULT CHARSET = utf8mb4""",
    # Not public: the project tables (facts.CHOICES projects_before_4_1_1)
    """CREATE TABLE IF NOT EXISTS `oms_project` (
      `id` varchar(64) NOT NULL, `name` varchar(128) NOT NULL, `type` varchar(16) NOT NULL,
      `status` varchar(32) NOT NULL, `created_version` varchar(32) NOT NULL, `source_type` varchar(32) NOT NULL,
      `gmt_create` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (`id`)) DEFAULT CHARSET = utf8mb4""",
    # Step names and statuses as odc's OMS client sees them (shared/oms-interfaces.md).
    """CREATE TABLE IF NOT EXISTS `oms_project_step` (
      `project_id` varchar(64) NOT NULL, `step_name` varchar(64) NOT NULL, `status` varchar(32) NOT NULL,
      `step_order` int NOT NULL DEFAULT 0, PRIMARY KEY (`project_id`, `step_name`)) DEFAULT CHARSET = utf8mb4""",
    """CREATE TABLE IF NOT EXISTS `oms_sync_project` (
      `project_name` varchar(128) NOT NULL, `project_status` varchar(32) NOT NULL,
      PRIMARY KEY (`project_name`)) DEFAULT CHARSET = utf8mb4""",
    # field notes: rm.oms_user.login_failure_times, is_locked (five wrong passwords lock the account).
    # Not public: how the password is kept; the stand-in keeps a salted SHA-256.
    """CREATE TABLE IF NOT EXISTS `oms_user` (
      `name` varchar(64) NOT NULL, `salt` varchar(64) NOT NULL, `password_sha256` char(64) NOT NULL,
      `login_failure_times` int NOT NULL DEFAULT 0, `is_locked` tinyint NOT NULL DEFAULT 0,
      PRIMARY KEY (`name`)) DEFAULT CHARSET = utf8mb4""",
]

CM_TABLES = [
    """CREATE TABLE IF NOT EXISTS `resource_group` (
      `id` int NOT NULL, `name` varchar(64) NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARSET = utf8mb4""",
    # The server list; the host-down guide: SELECT ip, host_status FROM host -> ONLINE.
    """CREATE TABLE IF NOT EXISTS `host` (
      `id` int NOT NULL AUTO_INCREMENT, `resource_group_id` int NOT NULL, `ip` varchar(64) NOT NULL,
      `region` varchar(64) NOT NULL DEFAULT '', `host_status` varchar(16) NOT NULL DEFAULT 'OFFLINE',
      `gmt_modified` datetime(3) NULL, PRIMARY KEY (`id`), UNIQUE KEY `uk_ip` (`ip`)) DEFAULT CHARSET = utf8mb4""",
    """CREATE TABLE IF NOT EXISTS `config_job` (
      `key` varchar(255) NOT NULL, `value` text, PRIMARY KEY (`key`)) DEFAULT CHARSET = utf8mb4""",
    # Not public: where the Connectors are kept (facts.CHOICES connector_listing_before_4_1_1).
    """CREATE TABLE IF NOT EXISTS `connector_task` (
      `name` varchar(255) NOT NULL, `project_id` varchar(64) NOT NULL, `host_ip` varchar(64) NOT NULL,
      `status` varchar(16) NOT NULL, `source_config` text NOT NULL, PRIMARY KEY (`name`)) DEFAULT CHARSET = utf8mb4""",
]

HB_TABLES = [
    # Verbatim columns from the doc, with the vendor's spelling.
    """CREATE TABLE IF NOT EXISTS `heatbeat_sequence` (
      `id` bigint NOT NULL AUTO_INCREMENT, `gmt_created` datetime NOT NULL, `gmt_modified` datetime NOT NULL,
      PRIMARY KEY (`id`)) DEFAULT CHARSET = utf8mb4""",
    # The host-down guide: SELECT task_type, host_ip, gmt_created, gmt_modified FROM heart_beat
    # where task_name='supervisor' (facts.CHOICES heart_beat_columns).
    """CREATE TABLE IF NOT EXISTS `heart_beat` (
      `id` bigint NOT NULL AUTO_INCREMENT, `task_type` varchar(64) NOT NULL, `task_name` varchar(128) NOT NULL,
      `host_ip` varchar(64) NOT NULL, `gmt_created` datetime NOT NULL, `gmt_modified` datetime NOT NULL,
      PRIMARY KEY (`id`), UNIQUE KEY `uk_task_host` (`task_name`, `host_ip`)) DEFAULT CHARSET = utf8mb4""",
]

# Each version's "schema changes" (what docker_init.sh applies): one nullable column per version
# in a table of each of rm, cm and cm_hb, so an upgrade visibly changes all three databases and a
# rollback must restore all three. Not public: the real changes.
MIGRATION_TABLES = {"rm": "oms_project", "cm": "host", "cm_hb": "heatbeat_sequence"}


def migration_column(v: str) -> str:
    return "f_" + v.replace(".", "")


def versions_between(lo: str, hi: str) -> list[str]:
    """Versions in (lo, hi], oldest first."""
    return [v for v in facts.VERSIONS if facts.vkey(lo) < facts.vkey(v) <= facts.vkey(hi)]


def has_column(cur, db: str, table: str, column: str) -> bool:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema=%s AND table_name=%s AND column_name=%s",
        (db, table, column),
    )
    return cur.fetchone()[0] > 0


def migrate(cur, role: str, db: str, lo: str, hi: str, strict: bool = False) -> list[str]:
    """Take database ``db`` (its ``role``: rm, cm, cm_hb) from ``lo`` to ``hi``; returns the columns added.

    With ``strict`` a change already applied is an error, as a migration script run twice fails
    (ERROR 1060 Duplicate column name); otherwise it is skipped (seeding).
    """
    table, added = MIGRATION_TABLES[role], []
    for v in versions_between(lo, hi):
        col = migration_column(v)
        if has_column(cur, db, table, col):
            if strict:
                raise RuntimeError(f"ERROR 1060 (42S21): Duplicate column name '{col}' in {db}.{table}")
            continue
        cur.execute(f"ALTER TABLE `{db}`.`{table}` ADD COLUMN `{col}` varchar(32) NULL")
        added.append(col)
    return added


def base_statements(role: str) -> list[str]:
    return {"rm": RM_TABLES, "cm": CM_TABLES, "cm_hb": HB_TABLES}[role]


def has_oms_version_table(v: str) -> bool:
    return facts.vkey(v) >= facts.vkey(facts.CHOICES["oms_version_from"][0])


def schema_version_of(columns: set[str]) -> str:
    """The newest version whose change is present, from the columns of rm's oms_project."""
    found = BASE
    for v in facts.VERSIONS:
        if facts.vkey(v) > facts.vkey(BASE) and migration_column(v) in columns:
            found = v
    return found
