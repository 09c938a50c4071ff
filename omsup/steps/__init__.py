"""The shared steps runbooks compose. Each is written once."""

from .common import DISABLE_HA
from .rollback import ENABLE_HA as ROLLBACK_ENABLE_HA
from .rollback import PREFLIGHT as ROLLBACK_PREFLIGHT
from .rollback import RESTART_OLD, RESTORE, STOP_NEW, VERIFY_RESTORE
from .upgrade import AFTER, BACKUP, ENABLE_HA, INIT, LOAD_IMAGE, PREFLIGHT, PRUNE, START_NEW, STOP_OLD, VERIFY

__all__ = [
    "AFTER", "BACKUP", "DISABLE_HA", "ENABLE_HA", "INIT", "LOAD_IMAGE", "PREFLIGHT", "PRUNE", "RESTART_OLD", "RESTORE",
    "ROLLBACK_ENABLE_HA", "ROLLBACK_PREFLIGHT", "START_NEW", "STOP_NEW", "STOP_OLD", "VERIFY", "VERIFY_RESTORE",
]
