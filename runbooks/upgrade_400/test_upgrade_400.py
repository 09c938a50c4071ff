"""Upgrade OMS CE to V4.0.0-CE (docs 001/002: overview and restrictions).

The overview lists the same operations as doc 003 (disable HA, back up, start the new container
with the same MetaDB and the same three mounts, enable HA), which this runbook performs with the
shared steps; doc 001 adds: "After the upgrade is complete, clear the browser cache". From V3.3.1-CE too:
"V3.2.2-CE, V3.3.0-CE and V3.3.1-CE can be directly upgraded to V4.0.0-CE" (OD V4.0.0 faq, field notes).
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "upgrade_400",
    target="4.0.0-CE",
    doc="001",
    single_node=True,
    after_preflight=steps.preload_images,
    title="Upgrade OMS CE V3.2.2-CE, V3.3.0-CE or V3.3.1-CE to V4.0.0-CE",
    notes=("Clear the browser cache before you log on to OMS (doc 001, step 6).",),
)

test_00_preflight = runbook.step(
    0,
    steps.PREFLIGHT,
    "001 Restrictions: from V3.2.2-CE or V3.3.0-CE (V4.0.0 faq: and V3.3.1-CE); quasi-real-time, switchover done",
)
test_01_connector_dbtype = runbook.step(
    1, steps.CONNECTOR_DBTYPE, "001 Restrictions: add dbType for projects created on V3.2.1/V3.2.2"
)
test_02_disable_ha = runbook.step(2, steps.DISABLE_HA, "001 step 1: If HA is enabled, disable it first")
test_03_stop_old = runbook.step(3, steps.STOP_OLD, "001 step 2 (as 003 step 2.1): docker stop; record T1")
test_04_prune_heartbeats = runbook.step(4, steps.PRUNE, "001 step 2 (as 003 step 2.2): prune heatbeat_sequence")
test_05_backup = runbook.step(5, steps.BACKUP, "001 step 2: Back up the databases (mysqldump, as 003 step 2.3)")
test_06_load_image = runbook.step(6, steps.LOAD_IMAGE, "001 step 3: the V4.0.0-CE image (docker load -i)")
test_07_start_new = runbook.step(
    7, steps.START_NEW, "001 step 3: same MetaDB, the three mounts unchanged, IS_UPGRADE=true"
)
test_08_init_metadata = runbook.step(8, steps.INIT, "003 step 4: bash /root/docker_init.sh")
test_09_verify = runbook.step(9, steps.VERIFY, "001 step 3: the new container serves V4.0.0-CE on the same MetaDB")
test_10_enable_ha = runbook.step(10, steps.ENABLE_HA, "001 step 4: enable HA and configure the parameters (T2)")
test_11_after_upgrade = runbook.step(11, steps.AFTER, "004 step 8 table: task status remains unchanged")
