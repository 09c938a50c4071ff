"""Nothing lost on every path (issue 26): evidence taken once stays the evidence, signals end a run
cleanly, option files never outlive a run."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import STATE, assert_restored, ledger_paths
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
    # each step's entry says what the step is (omsup/history.py reads a past run by it)
    kinds = {k: (e["changes"], e["no_way_back"]) for k, e in led["steps"].items()}
    assert kinds["backup"] == (True, False) and kinds["init_metadata"] == (True, True), kinds
    assert kinds["preflight"] == (False, False) and len(kinds) == 11, kinds
    assert not list(moved.parent.parent.glob("*-a2"))  # no second backup folder was ever made
    assert len(ledger_paths("upgrade_429")) == 1

    assert_passed(sandbox.runbook("rollback_429"), 8)
    assert_restored(at_backup, sandbox.snapshot())


def ended_cleanly(sandbox, proc: subprocess.Popen, sig: int, step: str, timeout: float = 60) -> None:
    """The run ended within ``timeout`` of ``sig`` as an interrupted run does: exit 2, the step recorded as
    interrupted, its folder written, the lock released, no MySQL option file left on the backup host."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the run did not end within {timeout} s of {signal.Signals(sig).name}") from None
    name = signal.Signals(sig).name
    assert proc.returncode == 2, out[-3000:]
    assert f"interrupted by {name}" in out and time.monotonic() - t0 < timeout
    entry = json.loads(ledger_paths("upgrade_429")[-1].read_text())["steps"][step]
    assert (entry["status"], entry["category"], entry["error"]) == ("failed", "Interrupted", f"interrupted by {name}")
    summary = json.loads((sandbox.last_report("upgrade_429") / "summary.json").read_text())
    assert summary["exit_code"] == 2 and summary["outcome"] == "interrupted"
    assert (sandbox.last_report("upgrade_429") / "junit.xml").exists()
    backups = STATE / "backups"
    assert not (backups / "sandbox" / ".omsup.lock").exists()
    assert not list(backups.rglob(".omsup-client-*.cnf")), list(backups.rglob(".omsup-client-*.cnf"))


def test_sigterm_and_sighup_at_several_steps_and_during_the_dumps(sandbox, tmp_path):
    sandbox.fresh()
    for step, sig in (("disable_ha", signal.SIGTERM), ("stop_old", signal.SIGHUP)):
        ended_cleanly(sandbox, sandbox.start_paused("upgrade_429", step), sig, step)

    # during the dumps: a mysqldump that takes its time (it would hold the run for five minutes)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "dumping"
    real = shutil.which("mysqldump")
    (bin_dir / "mysqldump").write_text(f'#!/bin/sh\ntouch {started}\nsleep 300\nexec {real} "$@"\n')
    (bin_dir / "mysqldump").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    proc = sandbox.start("upgrade_429", path=path)
    deadline = time.monotonic() + 120
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.1)
    assert list((STATE / "backups").rglob(".omsup-client-*.cnf"))  # the dump's option file is there now
    ended_cleanly(sandbox, proc, signal.SIGTERM, "backup", timeout=30)
    left = [p for p in Path("/proc").glob("[0-9]*/cmdline") if _cmdline(p) == b"sleep\x00300\x00"]
    assert not left, "the dump's child processes were left running"

    ended_cleanly(sandbox, sandbox.start_paused("upgrade_429", "init_metadata"), signal.SIGHUP, "init_metadata")
    assert_passed(sandbox.runbook("upgrade_429"), 11)  # the same command resumes and completes
    backups_intact(sandbox)
    assert len(ledger_paths("upgrade_429")) == 1


def _cmdline(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""
