"""Upgrade OMS CE to V3.3.1-CE in single-node deployment mode (doc 003; restrictions in doc 000).

Path (doc 000): V3.2.2-CE > V3.3.0-CE > V3.3.1-CE, one version at a time.
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "upgrade_331",
    target="3.3.1-CE",
    doc="003",
    single_node=True,
    after_preflight=steps.preload_images,
    title="Upgrade OMS CE V3.3.0-CE to V3.3.1-CE (single node)",
)

test_00_preflight = runbook.step(
    0, steps.PREFLIGHT, "000 Restrictions: only from V3.3.0-CE; real-time, switchover done"
)
test_01_connector_dbtype = runbook.step(
    1, steps.CONNECTOR_DBTYPE, "000 Restrictions: add dbType for projects created on V3.2.2"
)
test_02_disable_ha = runbook.step(2, steps.DISABLE_HA, "003 step 1: If HA is enabled, disable it first")
test_03_stop_old = runbook.step(3, steps.STOP_OLD, "003 step 2.1: sudo docker stop ${CONTAINER_NAME}; record T1")
test_04_prune_heartbeats = runbook.step(
    4, steps.PRUNE, "003 step 2.2: delete from heatbeat_sequence where id < (select max(id) ...)"
)
test_05_backup = runbook.step(
    5, steps.BACKUP, "003 step 2.3: mysqldump --triggers=false rm_330, cm_330, cm_hb_330; sizes not 0"
)
test_06_load_image = runbook.step(
    6, steps.LOAD_IMAGE, "003 step 3: the V3.3.1-CE image (docker load -i, as in doc 004)"
)
test_07_start_new = runbook.step(7, steps.START_NEW, "003 step 3: docker run ... same three mounts, -e IS_UPGRADE=true")
test_08_init_metadata = runbook.step(8, steps.INIT, "003 step 4: bash /root/docker_init.sh")
test_09_verify = runbook.step(9, steps.VERIFY, "003 step 4: schema changes applied; the console serves V3.3.1-CE")
test_10_enable_ha = runbook.step(10, steps.ENABLE_HA, "003 step 5: enable HA, T2; refetchStoreIntervalMin > T2 - T1")
test_11_after_upgrade = runbook.step(11, steps.AFTER, "004 step 8 table: task status remains unchanged")
