"""The probe: checks every assumption the runbooks make about a deployment, by reading only.

    pytest runbooks/probe --env prod.yaml

No lock, no ledger, no change. Exit 0 when every assumption holds; otherwise 1, naming each broken
assumption and what it would break. What cannot be checked by reading is listed in the report as
a manual check. The list, with each assumption's source: omsup/assumptions.py.
"""

from omsup import steps
from omsup.runbook import Runbook

runbook = Runbook.maintenance(
    "probe", doc="interfaces", title="Check the runbooks' assumptions (reads only)", read_only=True
)

test_00_probe = runbook.step(0, steps.PROBE, "shared/oms-interfaces.md, shared/field-notes.md: every assumption")
