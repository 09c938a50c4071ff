"""Roll back an upgrade to V4.0.0-CE (doc 001 step 5 "Perform the rollback operation", as doc 003 step 6)."""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.rollback(
    "rollback_400",
    target="4.0.0-CE",
    doc="001",
    single_node=True,
    title="Roll back OMS CE V4.0.0-CE to the version before",
)

test_00_preflight = runbook.step(
    0, steps.ROLLBACK_PREFLIGHT, "001 Background: the backup file can be used for rollback"
)
test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "003 step 6.1: disable HA")
test_02_stop_new = runbook.step(2, steps.STOP_NEW, "003 step 6.2: stop the new container; record T3")
test_03_restore = runbook.step(3, steps.RESTORE, "003 steps 6.3-6.4: drop/create database; restore from the SQL files")
test_04_verify_restore = runbook.step(4, steps.VERIFY_RESTORE, "003 step 6.4: the databases are those of the SQL files")
test_05_restart_old = runbook.step(5, steps.RESTART_OLD, "003 step 6.5: restart the old container")
test_06_enable_ha = runbook.step(6, steps.ROLLBACK_ENABLE_HA, "003 step 6.6: enable HA and set refetchStoreIntervalMin")
test_07_projects_running_again = runbook.step(
    7, steps.RESUME_PROJECTS, "after 004 step 9 (zh docs, field notes): Incr-Sync/Full-Import may need a manual resume"
)
