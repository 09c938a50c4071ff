"""Roll back an upgrade to V4.2.9-CE (doc 004 step 9, "(Optional) If you want to perform a rollback")."""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.rollback(
    "rollback_429", target="4.2.9-CE", doc="004", title="Roll back OMS CE V4.2.9-CE to the version before the upgrade"
)

test_00_preflight = runbook.step(
    0, steps.ROLLBACK_PREFLIGHT, "004 step 9 (before anything): the backups of step 2 exist, complete"
)
test_01_disable_ha = runbook.step(
    1, steps.DISABLE_HA, "004 step 9.1: Perform the operation in Step 1 to disable the HA feature"
)
test_02_stop_new = runbook.step(2, steps.STOP_NEW, "004 step 9.2: sudo docker stop ${CONTAINER_NAME}; record T3")
test_03_restore = runbook.step(
    3, steps.RESTORE, '004 steps 9.3-9.4: drop/create database; mysql -e "source <file>.sql"'
)
test_04_verify_restore = runbook.step(4, steps.VERIFY_RESTORE, "004 step 9.4: the databases are those of the backup")
test_05_restart_old = runbook.step(
    5, steps.RESTART_OLD, "004 step 9.5: Restart the OMS Community Edition V4.2.8-CE container"
)
test_06_enable_ha = runbook.step(6, steps.ROLLBACK_ENABLE_HA, "003 step 6.6: enable HA and set refetchStoreIntervalMin")
test_07_projects_running_again = runbook.step(
    7, steps.RESUME_PROJECTS, "after 004 step 9 (zh docs, field notes): Incr-Sync/Full-Import may need a manual resume"
)
