"""Nothing lost on every path (issue 26): evidence taken once stays the evidence, signals end a run
cleanly, option files never outlive a run."""

import json
import shutil
from pathlib import Path

import pytest

from .conftest import assert_restored, ledger_paths
from .test_upgrade_429 import assert_passed, assert_stopped_at, backups_intact

pytestmark = pytest.mark.integration


def test_a_backup_that_does_not_verify_on_resume_after_the_init_is_never_taken_again(sandbox, tmp_path):
    """The review's HIGH finding: a backup unreadable for one resume after docker_init.sh, put back, and
    resumed again: the run completes with the first backups, and the rollback restores the pre-upgrade
    tables from them."""
    sandbox.fresh()
    assert_passed(sandbox.runbook("upgrade_429", "--until", "4"), 5)
    at_backup = sandbox.snapshot()
    first = backups_intact(sandbox)
    assert_passed(sandbox.runbook("upgrade_429", "--until", "7"), 8)  # docker_init.sh done: metadata migrated

    moved = Path(first[0]["path"])
    aside = tmp_path / moved.name
    shutil.move(moved, aside)  # the backup host does not answer for it, or it was moved
    p = sandbox.runbook("upgrade_429")
    assert_stopped_at(p, 4, f"backup {moved}", "is missing", "never taken again")
    assert "put it back" in p.output
    led = json.loads(ledger_paths("upgrade_429")[-1].read_text())
    assert led["steps"]["backup"]["status"] == "done", led["steps"]["backup"]  # still the evidence
    assert led["facts"]["backup_attempt"] == 1

    shutil.move(aside, moved)
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    led = json.loads(ledger_paths("upgrade_429")[-1].read_text())
    assert led["facts"]["backup_attempt"] == 1 and led["facts"]["backups"] == first  # the first backups
    assert not list(moved.parent.parent.glob("*-a2"))  # no second backup folder was ever made
    assert len(ledger_paths("upgrade_429")) == 1

    assert_passed(sandbox.runbook("rollback_429"), 8)
    assert_restored(at_backup, sandbox.snapshot())
