"""The stand-in's MetaDB schema: the base tables and each version's schema changes.

Shared by the sandbox (which seeds a deployment "as of" a version) and by the stand-in's
``/root/docker_init.sh`` (which applies the changes between two versions), so that both
agree on what every version's metadata looks like.

Table names and columns come from shared/oms-interfaces.md (doc, obd). Where they are not
public (the Online/Offline column of ``host``, the Connector configuration table, the console
user table) the stand-in chooses, and says so next to the table.
"""

from __future__ import annotations

try:  # inside the image, versions.py sits beside this file
    from versions import KNOWN_VERSIONS, OMS_VERSION_TABLE_FROM, Version
except ImportError:  # on the host, it is the library's module
    from omsup.versions import KNOWN_VERSIONS, OMS_VERSION_TABLE_FROM, Version

BASE = Version.parse("3.2.2")

RM_TABLES = [
    # obd reads ha.config here: select cfg_value from oms_normal_config where cfg_name='ha.config'
    """CREATE TABLE IF NOT EXISTS `oms_normal_config` (
      `cfg_name` varchar(128) NOT NULL, `cfg_value` text, `gmt_modified` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
      PRIMARY KEY (`cfg_name`)) DEFAULT CHARSET = utf8mb4""",
    """CREATE TABLE IF NOT EXISTS `cluster_info` (
      `region` varchar(64) NOT NULL, `region_cn` varchar(64) DEFAULT '', `cm_url` varchar(255) NOT NULL,
      `code` int NOT NULL, `is_default_cm` tinyint NOT NULL DEFAULT 0, PRIMARY KEY (`code`)) DEFAULT CHARSET = utf8mb4""",
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
    # Not public: how the console stores its users. The stand-in keeps a salted SHA-256.
    """CREATE TABLE IF NOT EXISTS `oms_user` (
      `name` varchar(64) NOT NULL, `salt` varchar(64) NOT NULL, `password_sha256` char(64) NOT NULL,
      PRIMARY KEY (`name`)) DEFAULT CHARSET = utf8mb4""",
]

CM_TABLES = [
    """CREATE TABLE IF NOT EXISTS `resource_group` (
      `id` int NOT NULL, `name` varchar(64) NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARSET = utf8mb4""",
    # The server list. Not public: which column holds Online/Offline. The stand-in keeps the
    # time of the node's last heartbeat and derives Online from it (see standin/server.py).
    """CREATE TABLE IF NOT EXISTS `host` (
      `id` int NOT NULL AUTO_INCREMENT, `resource_group_id` int NOT NULL, `ip` varchar(64) NOT NULL,
      `region` varchar(64) NOT NULL DEFAULT '', `gmt_heartbeat` datetime(3) NULL,
      PRIMARY KEY (`id`), UNIQUE KEY `uk_ip` (`ip`)) DEFAULT CHARSET = utf8mb4""",
    """CREATE TABLE IF NOT EXISTS `config_job` (
      `key` varchar(255) NOT NULL, `value` text, PRIMARY KEY (`key`)) DEFAULT CHARSET = utf8mb4""",
    # Not public: where Connector component configurations live. The stand-in keeps the
    # component's JSON configuration (with its `source` section) per component.
    """CREATE TABLE IF NOT EXISTS `connector_config` (
      `id` varchar(64) NOT NULL, `project_id` varchar(64) NOT NULL, `host_ip` varchar(64) NOT NULL,
      `config` text NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARSET = utf8mb4""",
]

HB_TABLES = [
    # Verbatim columns from the doc, with the vendor's spelling.
    """CREATE TABLE IF NOT EXISTS `heatbeat_sequence` (
      `id` bigint NOT NULL AUTO_INCREMENT, `gmt_created` datetime NOT NULL, `gmt_modified` datetime NOT NULL,
      PRIMARY KEY (`id`)) DEFAULT CHARSET = utf8mb4""",
]

# Each version's "schema changes" (what docker_init.sh applies): one nullable column per
# version in a table of each of rm, cm and cm_hb, so an upgrade visibly changes all three
# databases and a rollback must restore all three. Not public: the real changes.
MIGRATION_TABLES = {"rm": "oms_project", "cm": "host", "cm_hb": "heatbeat_sequence"}


def migration_column(v: Version) -> str:
    return f"f_{v.short}"


def versions_between(lo: Version, hi: Version) -> list[Version]:
    """Versions in (lo, hi], oldest first."""
    return [v for v in KNOWN_VERSIONS if lo < v <= hi]


def migration_statements(role: str, lo: Version, hi: Version) -> list[str]:
    """Idempotent statements that take database ``role`` (rm, cm, cm_hb) from ``lo`` to ``hi``."""
    table = MIGRATION_TABLES[role]
    return [
        f"ALTER TABLE `{table}` ADD COLUMN IF NOT EXISTS `{migration_column(v)}` varchar(32) NULL"
        for v in versions_between(lo, hi)
    ]


def base_statements(role: str) -> list[str]:
    return {"rm": RM_TABLES, "cm": CM_TABLES, "cm_hb": HB_TABLES}[role]


def has_oms_version_table(v: Version) -> bool:
    return v >= OMS_VERSION_TABLE_FROM


def schema_version_of(columns: set[str]) -> Version:
    """The newest version whose change is present, from the columns of rm's oms_project."""
    found = BASE
    for v in KNOWN_VERSIONS:
        if v > BASE and migration_column(v) in columns:
            found = v
    return found
