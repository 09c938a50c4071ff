"""Hot upgrade of OMS CE to V4.2.13-CE (OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md, "OMS 社区版热升级").

In place: the new release's files are copied into the running container and only the management programs
restart; the tasks keep running. Limits (the page): OMS V4.2.1-CE or later; no task created before or during
it; the browser refreshed after. Nodes one at a time (omsup.steps.hot says why).
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.upgrade(
    "hot_upgrade_4213",
    target="4.2.13-CE",
    doc="OD 309",
    after_preflight=steps.preload_images,
    title="Hot upgrade OMS CE V4.2.1-CE .. V4.2.12-CE to V4.2.13-CE",
)

test_00_preflight = runbook.step(
    0, steps.PREFLIGHT, "309 limits: OMS V4.2.1-CE or later; no task being created (the project list recorded)"
)
test_01_load_image = runbook.step(1, steps.LOAD_IMAGE, "309 step 2 notice: load the new image (OMS_IMAGE) first")
test_02_hot_scripts = runbook.step(
    2,
    steps.HOT_SCRIPTS,
    "309 step 2: docker run -d --net host --name oms-config-tool ${OMS_IMAGE} bash; docker cp the three scripts; "
    "docker rm -f oms-config-tool",
)
test_03_backup = runbook.step(3, steps.BACKUP, "309 step 3: mysqldump --triggers=false rm, cm, cm_hb")
test_04_hot_dump = runbook.step(4, steps.HOT_DUMP, "309 step 4: sh docker_dump_file_from_image.sh ${OMS_IMAGE}")
test_05_hot_update = runbook.step(
    5,
    steps.HOT_UPDATE,
    "309 steps 5-7, node by node: supervisorctl stop nginx oms_console oms_drc_cm oms_drc_supervisor sshd; "
    "sh docker_copy_dumpfile_to_container.sh; docker exec ... /root/docker_hot_update_init.sh",
)
test_06_hot_verify = runbook.step(
    6, steps.HOT_VERIFY, "309 (after step 7): the same containers serve, every server Online, the tasks unchanged"
)
