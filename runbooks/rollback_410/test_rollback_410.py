"""Roll back an upgrade to V4.1.0-CE (OD V4.1.0 en-US/1300.upgrade-guide/300.multi-node-upgrade.md, step 9: "(Optional) Perform the rollback operation")."""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.rollback(
    "rollback_410",
    target="4.1.0-CE",
    doc="OD V4.1.0",
    title="Roll back OMS CE V4.1.0-CE to the version before the upgrade",
)

test_00_preflight = runbook.step(
    0, steps.ROLLBACK_PREFLIGHT, "OD V4.1.0 step 9 (before anything): the backups of step 2 exist, complete"
)
test_01_disable_ha = runbook.step(
    1, steps.DISABLE_HA, "OD V4.1.0 step 9.1: Perform the operation in Step 1 to disable HA"
)
test_02_stop_new = runbook.step(2, steps.STOP_NEW, "OD V4.1.0 step 9.2: sudo docker stop ${CONTAINER_NAME}; record T3")
test_03_restore = runbook.step(
    3, steps.RESTORE, 'OD V4.1.0 steps 9.3-9.4: drop/create database; mysql -e "source <file>.sql"'
)
test_04_verify_restore = runbook.step(
    4, steps.VERIFY_RESTORE, "OD V4.1.0 step 9.4: the databases are those of the backup"
)
test_05_restart_old = runbook.step(
    5, steps.RESTART_OLD, "OD V4.1.0 step 9.5: Restart the container of the version before"
)
test_06_enable_ha = runbook.step(
    6, steps.ROLLBACK_ENABLE_HA, "OD V4.1.0 step 9.6: enable HA and set refetchStoreIntervalMin"
)
test_07_projects_running_again = runbook.step(
    7,
    steps.RESUME_PROJECTS,
    "OD V4.1.0 step 9.6: you may need to manually recover the JDBCWriter or connector component",
)
