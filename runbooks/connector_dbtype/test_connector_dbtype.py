"""Add the Connector `dbType` parameter where projects created on V3.2.1/V3.2.2 need it (docs 000, 001)."""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.maintenance(
    "connector_dbtype", doc="000", title="Connector dbType check and fix (single update, or Batch O&M by host IP)"
)

test_00_survey = runbook.step(
    0, steps.CONNECTOR_SURVEY, "000 Restrictions: check dbType or db_type in the Connector's Source"
)
test_01_fix = runbook.step(
    1, steps.CONNECTOR_DBTYPE, "000 Restrictions: Update, or Batch O&M when one source type per host"
)
