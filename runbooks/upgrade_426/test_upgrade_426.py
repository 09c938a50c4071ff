"""Upgrade OMS CE to V4.2.6-CE (the OD en site's upgrade guide (field notes: 4.2.6 from 4.2.4)).

The field notes name this path (V4.2.6-CE from V4.2.4-CE, the OD en site); its page is in no copy searched
here, so its steps are the 4.2.x pages' (V4.2.0 .. V4.2.2, doc 004), which are the same but for their versions.
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "upgrade_426",
    target="4.2.6-CE",
    doc="OD 4.2.6",
    after_preflight=steps.preload_images,
    title="Upgrade OMS CE V4.2.4-CE to V4.2.6-CE",
)

test_00_preflight = runbook.step(0, steps.PREFLIGHT, "OD 4.2.6 Restrictions: only from V4.2.4-CE (field notes)")
test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "OD 4.2.6 step 1: If HA is enabled, disable it first")
test_02_stop_old = runbook.step(
    2, steps.STOP_OLD, "OD 4.2.6 step 2.1: sudo docker stop ${CONTAINER_NAME} on every node (T1)"
)
test_03_prune_heartbeats = runbook.step(
    3, steps.PRUNE, "OD 4.2.6 step 2.2: delete from heatbeat_sequence where id < (select max(id) ...)"
)
test_04_backup = runbook.step(
    4, steps.BACKUP, "OD 4.2.6 step 2.3: mysqldump --triggers=false rm, cm, every region's cm_hb; sizes not 0"
)
test_05_load_image = runbook.step(5, steps.LOAD_IMAGE, "OD 4.2.6 step 3: docker load -i <installation package>")
test_06_start_new = runbook.step(6, steps.START_NEW, "OD 4.2.6 step 4: docker run ... same mounts, -e IS_UPGRADE=true")
test_07_init_metadata = runbook.step(7, steps.INIT, "OD 4.2.6 steps 5-6: docker exec; bash /root/docker_init.sh")
test_08_verify = runbook.step(8, steps.VERIFY, "OD 4.2.6 step 7: every server shows Online")
test_09_enable_ha = runbook.step(
    9,
    steps.ENABLE_HA,
    "OD 4.2.6 step 8: enable HA, T2; perceiveStoreClientCheckpoint or refetchStoreIntervalMin > T2-T1",
)
test_10_after_upgrade = runbook.step(10, steps.AFTER, "OD 4.2.6 step 8 table: the project status remains unchanged")
