"""The probe: every assumption the runbooks make, checked on a deployment by reading only."""

from __future__ import annotations

from ..assumptions import ASSUMPTIONS
from ..context import Run
from ..redact import redact_obj
from ..runbook import Step, Touches
from .assumption_checks import check_all


def probe(run: Run) -> None:
    rows = check_all(run)
    run.evidence("assumptions: holds, observed, BROKEN or manual check", rows)
    run.evidence(
        "observed where the documents are silent (the runbooks cope with every plausible answer)",
        {r["key"]: r.get("seen") for r in rows if r["result"] == "observed"},
    )
    manual = [r for r in rows if r["result"] == "manual check"]
    run.evidence(
        "manual checks (not checkable by reading)",
        "\n".join(f"- {r['assumption']} ({r['source']}); it matters for {r['breaks']}" for r in manual),
    )
    with run.record.change() as f:  # for the summary (summary.json's "assumptions"), redacted as the evidence is
        f.assumptions = redact_obj({r["key"]: {k: r[k] for k in ("result", "seen", "why") if k in r} for r in rows})
    broken = [r for r in rows if r["result"] == "BROKEN"]
    held = sum(r["result"] == "holds" for r in rows)
    seen = sum(r["result"] == "observed" for r in rows)
    run.live(f"probe: {held} hold, {seen} observed, {len(broken)} broken, {len(manual)} not observable by reading")
    assert not broken, f"{len(broken)} of {len(ASSUMPTIONS)} assumptions do not hold on {run.env.name}:\n" + "\n".join(
        f"  - {r['key']}: {r['why']}  (would break: {r['breaks']})" for r in broken
    )


PROBE = Step(
    "probe",
    "Check every assumption of the runbooks (reads only)",
    probe,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB, Touches.CONSOLE, Touches.BACKUP}),
    False,
)
