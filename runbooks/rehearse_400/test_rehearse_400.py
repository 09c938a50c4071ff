"""Rehearse the upgrade to V4.0.0-CE and its rollback on a replica, before production (issue 29).

    pytest runbooks/rehearse_400 --env prod.yaml [--keep-replica]

Reads only on the deployment (no lock, no ledger there): dumps its MetaDB, saves the image its containers run,
reads each node's config.yaml. On this machine (as root) it builds a replica in network namespaces of its own, a
scratch OceanBase-kernel MetaDB holding the dumps, runs upgrade_400 and then rollback_400 on it exactly as
production will, writes rehearsal.json and removes the replica. Then:

    pytest runbooks/upgrade_400 --env prod.yaml --rehearsal reports/rehearse_400-.../rehearsal.json
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.rehearsal(
    "rehearse_400",
    target="4.0.0-CE",
    doc="001",
    title="Rehearse upgrade_400 and rollback_400 on a replica of the deployment",
)

test_00_take = runbook.step(0, steps.REHEARSAL_TAKE, "issue 29: what the rehearsal takes from production, reading only")
test_01_replica = runbook.step(
    1, steps.REHEARSAL_REPLICA, "issue 29: the replica, isolated, from the deployment's images"
)
test_02_upgrade = runbook.step(2, steps.REHEARSE_UPGRADE, "001: upgrade_400 on the replica, as production will run it")
test_03_rollback = runbook.step(3, steps.REHEARSE_ROLLBACK, "001 rollback: rollback_400 on the replica")
test_04_observe = runbook.step(4, steps.REHEARSAL_OBSERVE, "issue 29: rehearsal.json")
