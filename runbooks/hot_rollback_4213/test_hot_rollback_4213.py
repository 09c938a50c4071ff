"""Roll back a hot upgrade to V4.2.13-CE (OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md step 7: "如果热升级脚本执行
失败，可以使用 docker_copy_dumpfile_rollback.sh 进行回滚").

In place, node by node in the reverse order: the container's files from before step 6 put back from
/home/admin/logs/backup<ts>, then /root/docker_init.sh again. The MetaDB is not restored (the page does not):
its backups stay where the upgrade took them.
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.rollback(
    "hot_rollback_4213",
    target="4.2.13-CE",
    doc="OD 309",
    title="Roll back a hot upgrade to V4.2.13-CE, in place",
)

test_00_preflight = runbook.step(
    0, steps.HOT_ROLLBACK_PREFLIGHT, "309 step 7 (rollback): the upgrade's backup folders and rollback script"
)
test_01_hot_rollback = runbook.step(
    1,
    steps.HOT_ROLLBACK,
    "309 step 7 (rollback): sh docker_copy_dumpfile_rollback.sh ${CONTAINER} /home/admin/logs/backup<ts>; "
    "docker exec ${CONTAINER} /root/docker_init.sh",
)
test_02_verify = runbook.step(
    2, steps.HOT_ROLLBACK_VERIFY, "309 (after the rollback): the same containers serve the release before"
)
