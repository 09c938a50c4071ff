"""The shared steps runbooks compose. Each is written once."""

from .common import DISABLE_HA
from .connectors import CONNECTOR_DBTYPE, CONNECTOR_SURVEY
from .rollback import ENABLE_HA as ROLLBACK_ENABLE_HA
from .rollback import PREFLIGHT as ROLLBACK_PREFLIGHT
from .rollback import RESTART_OLD, RESTORE, STOP_NEW, VERIFY_RESTORE
from .upgrade import (
    AFTER,
    BACKUP,
    ENABLE_HA,
    INIT,
    LOAD_IMAGE,
    PREFLIGHT,
    PRUNE,
    START_NEW,
    STOP_OLD,
    VERIFY,
    preload_images,
)

__all__ = [
    "AFTER", "BACKUP", "CONNECTOR_DBTYPE", "CONNECTOR_SURVEY", "DISABLE_HA", "ENABLE_HA", "INIT", "LOAD_IMAGE", "PREFLIGHT", "PRUNE", "RESTART_OLD", "RESTORE",
    "ROLLBACK_ENABLE_HA", "ROLLBACK_PREFLIGHT", "START_NEW", "STOP_NEW", "STOP_OLD", "VERIFY", "VERIFY_RESTORE",
    "preload_images",
]
