"""Roll back an upgrade to V3.3.1-CE (doc 003 step 6, single-node deployment mode)."""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.rollback(
    "rollback_331",
    target="3.3.1-CE",
    doc="003",
    single_node=True,
    title="Roll back OMS CE V3.3.1-CE to V3.3.0-CE (single node)",
)

test_00_preflight = runbook.step(
    0, steps.ROLLBACK_PREFLIGHT, "003 step 6 (before anything): the SQL files of step 2 exist, complete"
)
test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "003 step 6.1: Follow the instructions in Step 1 to disable HA")
test_02_stop_new = runbook.step(2, steps.STOP_NEW, "003 step 6.2: Suspend the new container and record the time T3")
test_03_restore = runbook.step(3, steps.RESTORE, '003 steps 6.3-6.4: drop/create database; mysql -e "source ..."')
test_04_verify_restore = runbook.step(4, steps.VERIFY_RESTORE, "003 step 6.4: the databases are those of the SQL files")
test_05_restart_old = runbook.step(5, steps.RESTART_OLD, "003 step 6.5: Restart the container of V3.3.0-CE")
test_06_enable_ha = runbook.step(6, steps.ROLLBACK_ENABLE_HA, "003 step 6.6: enable HA and set refetchStoreIntervalMin")
test_07_projects_running_again = runbook.step(
    7, steps.RESUME_PROJECTS, "after 004 step 9 (zh docs, field notes): Incr-Sync/Full-Import may need a manual resume"
)
