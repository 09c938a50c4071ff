"""Upgrade OMS Community Edition to V4.2.9-CE (doc 004, "Upgrade OMS Community Edition V4.2.9-CE").

Notice (doc 004): "OMS Community Edition V4.2.9-CE can only be upgraded from V4.2.0-CE to
V4.2.8-CE." Every node of every region; one cm_hb database per region.
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "upgrade_429",
    target="4.2.9-CE",
    doc="004",
    after_preflight=steps.preload_images,
    title="Upgrade OMS CE V4.2.0-CE .. V4.2.8-CE to V4.2.9-CE",
)

test_00_preflight = runbook.step(
    0, steps.PREFLIGHT, "004 Notice: only from V4.2.0-CE .. V4.2.8-CE; restrictions of 000/001"
)
test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "004 step 1: If the HA feature is enabled, disable it first")
test_02_stop_old = runbook.step(
    2, steps.STOP_OLD, "004 step 2.1: sudo docker stop ${CONTAINER_NAME} on IP1 and IP2 (T1)"
)
test_03_prune_heartbeats = runbook.step(
    3, steps.PRUNE, "004 step 3: delete from heatbeat_sequence where id < (select max(id) ...)"
)
test_04_backup = runbook.step(
    4, steps.BACKUP, "004 step 3.1: mysqldump --triggers=false rm, cm, every region's cm_hb; sizes not 0"
)
test_05_load_image = runbook.step(
    5, steps.LOAD_IMAGE, "004 step 3.1 (next): docker load -i <installation package> (started early, before step 2)"
)
test_06_start_new = runbook.step(6, steps.START_NEW, "004 step 3.2: docker run ... same mounts, -e IS_UPGRADE=true")
test_07_init_metadata = runbook.step(
    7, steps.INIT, "004 steps 4-5: docker exec; sleep 300 (polled); bash /root/docker_init.sh"
)
test_08_verify = runbook.step(8, steps.VERIFY, "004 step 7: every machine shows Online; oms_version is the target")
test_09_enable_ha = runbook.step(
    9, steps.ENABLE_HA, "004 step 8: enable HA, T2; perceiveStoreClientCheckpoint or refetchStoreIntervalMin > T2-T1"
)
test_10_after_upgrade = runbook.step(10, steps.AFTER, "004 step 8 table: task status remains unchanged")
