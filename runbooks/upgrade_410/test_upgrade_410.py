"""Upgrade OMS CE to V4.1.0-CE (OD V4.1.0 en-US/1300.upgrade-guide/300.multi-node-upgrade.md).

The multi-node procedure of doc 004 without `sleep 300` and the oms_version recovery; the overview's restrictions
(quasi-real-time, forward switchover done; dbType for projects created on V3.2.1/V3.2.2) and "clear the browser
cache". From V3.2.2-CE, V3.3.0-CE, V3.3.1-CE and V4.0.0-CE (its faq).
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "upgrade_410",
    target="4.1.0-CE",
    doc="OD V4.1.0",
    after_preflight=steps.preload_images,
    title="Upgrade OMS CE V3.2.2-CE .. V4.0.0-CE to V4.1.0-CE",
)

test_00_preflight = runbook.step(
    0, steps.PREFLIGHT, "OD V4.1.0 Restrictions: from V3.2.2-CE .. V4.0.0-CE (faq); quasi-real-time, switchover done"
)
test_01_connector_dbtype = runbook.step(
    1, steps.CONNECTOR_DBTYPE, "OD V4.1.0 Restrictions: add dbType for projects created on V3.2.1/V3.2.2"
)
test_02_disable_ha = runbook.step(2, steps.DISABLE_HA, "OD V4.1.0 step 1: If HA is enabled, disable it first")
test_03_stop_old = runbook.step(
    3, steps.STOP_OLD, "OD V4.1.0 step 2.1: sudo docker stop ${CONTAINER_NAME} on every node (T1)"
)
test_04_prune_heartbeats = runbook.step(
    4, steps.PRUNE, "OD V4.1.0 step 2.2: delete from heatbeat_sequence where id < (select max(id) ...)"
)
test_05_backup = runbook.step(
    5, steps.BACKUP, "OD V4.1.0 step 2.3: mysqldump --triggers=false rm, cm, every region's cm_hb; sizes not 0"
)
test_06_load_image = runbook.step(6, steps.LOAD_IMAGE, "OD V4.1.0 step 3: docker load -i <installation package>")
test_07_start_new = runbook.step(7, steps.START_NEW, "OD V4.1.0 step 4: docker run ... same mounts, -e IS_UPGRADE=true")
test_08_init_metadata = runbook.step(8, steps.INIT, "OD V4.1.0 steps 5-6: docker exec; bash /root/docker_init.sh")
test_09_verify = runbook.step(9, steps.VERIFY, "OD V4.1.0 step 7: every server shows Online")
test_10_enable_ha = runbook.step(
    10,
    steps.ENABLE_HA,
    "OD V4.1.0 step 8: enable HA, T2; perceiveStoreClientCheckpoint or refetchStoreIntervalMin > T2-T1",
)
test_11_after_upgrade = runbook.step(11, steps.AFTER, "OD V4.1.0 step 8 table: the project status remains unchanged")
