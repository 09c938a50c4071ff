"""Rules about past runs (omsup/history.py, issue 28 point 4): read from the record alone, the same whatever steps
a later omsup has; ledgers written before 0.4.0 read by 0.3.0's classification."""

from __future__ import annotations

from omsup import history
from omsup.record import Facts, Record, RunStatus, UpgradeRef
from omsup.steps import STEPS


def ledger(tmp_path, runbook: str = "upgrade_429") -> Record:
    return Record.open(tmp_path, runbook, "prod", Facts(target="4.2.9-CE", environment_file="prod.yaml"))[0]


def test_a_step_is_read_as_its_run_recorded_it(tmp_path):
    rec = ledger(tmp_path)
    rec.mark("preflight", "done", kind=(False, False))
    rec.mark("stop_old", "done", kind=(True, False))
    rec.mark("start_new", "failed", kind=(True, True))
    assert history.changes_begun(rec) == ["stop_old", "start_new"]
    assert history.no_way_back_begun(rec) == ["start_new"]
    # what a later omsup says of a key does not change what this run recorded
    rec.mark("renamed_in_a_later_release", "running", kind=(False, False))
    assert "renamed_in_a_later_release" not in history.changes_begun(Record.load(rec.path))


def test_a_ledger_before_0_4_is_read_by_0_3s_classification(tmp_path):
    rec = ledger(tmp_path)
    for key in ("preflight", "disable_ha", "init_metadata"):
        rec.mark(key, "done")  # no kind: as 0.3.0 wrote them
    assert rec.data.steps["preflight"].changes is None
    assert history.changes_begun(rec) == ["disable_ha", "init_metadata"]
    assert history.no_way_back_begun(rec) == ["init_metadata"]
    rec.mark("a_step_0_3_never_had", "running")  # unknown: the safe reading, a change without a way back
    assert history.no_way_back_begun(rec) == ["init_metadata", "a_step_0_3_never_had"]


def test_the_steps_of_0_3_kept_their_classification():
    """A step of 0.3.0 whose classification changed would read old ledgers wrongly: it needs a new key."""
    changed = {
        k: (history.LEDGER_0_3[k], (s.changes, s.no_way_back))
        for k, s in STEPS.items()
        if k in history.LEDGER_0_3 and history.LEDGER_0_3[k] != (s.changes, s.no_way_back)
    }
    assert not changed, changed


def test_the_undoable_upgrade_and_a_half_done_rollback(tmp_path):
    refused = ledger(tmp_path)
    refused.mark("preflight", "failed", kind=(False, False))
    refused.finish(RunStatus.NOTHING_TO_DO)
    up = ledger(tmp_path)
    up.mark("stop_old", "done", kind=(True, False))
    up.finish()
    again = ledger(tmp_path)  # run again by mistake after it completed: refused at its preflight
    again.mark("preflight", "failed", kind=(False, False))
    runs = Record.runs(tmp_path, "upgrade_429", "prod")
    assert history.undoable_among(runs, "upgrade_429", "prod", tmp_path).run_id == up.run_id
    rb = ledger(tmp_path, "rollback_429")
    with rb.change() as f:
        f.upgrade = UpgradeRef(
            run_id=up.run_id, ledger=str(up.path), t1=None, versions=None, backups=[], nodes={}, ha_before=None
        )
    assert history.rollback_under_way(tmp_path, "prod") is None  # nothing changed yet
    rb.mark("stop_new", "running", kind=(True, False))
    half = history.rollback_under_way(tmp_path, "prod")
    assert half is not None and half[0].run_id == rb.run_id and half[1] == ["stop_new"]
