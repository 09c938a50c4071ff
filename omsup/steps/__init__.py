"""The shared steps runbooks compose, each written once, grouped by operation."""

from ..runbook import Step
from .backup import BACKUP
from .connectors import CONNECTOR_DBTYPE, CONNECTOR_SURVEY
from .containers import STOP_NEW, STOP_OLD
from .ha import DISABLE_HA, ENABLE_HA, ROLLBACK_ENABLE_HA
from .heartbeats import PRUNE
from .hot import (
    HOT_DUMP,
    HOT_ROLLBACK,
    HOT_ROLLBACK_PREFLIGHT,
    HOT_ROLLBACK_VERIFY,
    HOT_SCRIPTS,
    HOT_UPDATE,
    HOT_VERIFY,
)
from .image import LOAD_IMAGE, preload_images
from .init import INIT
from .preflight import PREFLIGHT, ROLLBACK_PREFLIGHT
from .probe import PROBE
from .projects import RESUME_PROJECTS
from .rehearsal import REHEARSAL_OBSERVE, REHEARSAL_REPLICA, REHEARSAL_TAKE, REHEARSE_ROLLBACK, REHEARSE_UPGRADE
from .restore import RESTORE, VERIFY_RESTORE
from .start import RESTART_OLD, START_NEW
from .verify import AFTER, VERIFY

__all__ = [
    "AFTER",
    "BACKUP",
    "CONNECTOR_DBTYPE",
    "CONNECTOR_SURVEY",
    "DISABLE_HA",
    "ENABLE_HA",
    "HOT_DUMP",
    "HOT_ROLLBACK",
    "HOT_ROLLBACK_PREFLIGHT",
    "HOT_ROLLBACK_VERIFY",
    "HOT_SCRIPTS",
    "HOT_UPDATE",
    "HOT_VERIFY",
    "INIT",
    "LOAD_IMAGE",
    "PREFLIGHT",
    "PROBE",
    "PRUNE",
    "REHEARSAL_OBSERVE",
    "REHEARSAL_REPLICA",
    "REHEARSAL_TAKE",
    "REHEARSE_ROLLBACK",
    "REHEARSE_UPGRADE",
    "RESTART_OLD",
    "RESTORE",
    "RESUME_PROJECTS",
    "ROLLBACK_ENABLE_HA",
    "ROLLBACK_PREFLIGHT",
    "START_NEW",
    "STOP_NEW",
    "STOP_OLD",
    "VERIFY",
    "VERIFY_RESTORE",
    "preload_images",
]

# every shared step by the key a run record names it by (omsup status titles a recorded step by it)
STEPS: dict[str, Step] = {s.key: s for name in __all__ if isinstance(s := globals()[name], Step)}
