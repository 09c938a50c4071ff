"""Upgrade OMS CE to V4.2.0-CE (OD V4.2.0 en-US/1300.upgrade-guide/300.multi-node-upgrade.md).

"Currently, it is only supported to upgrade from OMS Community Edition V4.1.1 to Community Edition V4.2.0."
The multi-node procedure of doc 004 without `sleep 300` and the oms_version recovery, plus "clear the browser
cache", and after a rollback the JDBCWriter or connector component may need a manual recovery.
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "upgrade_420",
    target="4.2.0-CE",
    doc="OD V4.2.0",
    after_preflight=steps.preload_images,
    title="Upgrade OMS CE V4.1.1-CE to V4.2.0-CE",
)

test_00_preflight = runbook.step(
    0, steps.PREFLIGHT, "OD V4.2.0 Restrictions: only from V4.1.1-CE; quasi-real-time, switchover done"
)
test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "OD V4.2.0 step 1: If HA is enabled, disable it first")
test_02_stop_old = runbook.step(
    2, steps.STOP_OLD, "OD V4.2.0 step 2.1: sudo docker stop ${CONTAINER_NAME} on every node (T1)"
)
test_03_prune_heartbeats = runbook.step(
    3, steps.PRUNE, "OD V4.2.0 step 2.2: delete from heatbeat_sequence where id < (select max(id) ...)"
)
test_04_backup = runbook.step(
    4, steps.BACKUP, "OD V4.2.0 step 2.3: mysqldump --triggers=false rm, cm, every region's cm_hb; sizes not 0"
)
test_05_load_image = runbook.step(5, steps.LOAD_IMAGE, "OD V4.2.0 step 3: docker load -i <installation package>")
test_06_start_new = runbook.step(6, steps.START_NEW, "OD V4.2.0 step 4: docker run ... same mounts, -e IS_UPGRADE=true")
test_07_init_metadata = runbook.step(7, steps.INIT, "OD V4.2.0 steps 5-6: docker exec; bash /root/docker_init.sh")
test_08_verify = runbook.step(8, steps.VERIFY, "OD V4.2.0 step 7: every server shows Online")
test_09_enable_ha = runbook.step(
    9,
    steps.ENABLE_HA,
    "OD V4.2.0 step 8: enable HA, T2; perceiveStoreClientCheckpoint or refetchStoreIntervalMin > T2-T1",
)
test_10_after_upgrade = runbook.step(10, steps.AFTER, "OD V4.2.0 step 8 table: the project status remains unchanged")
