"""Interruptions: the runbook process killed (SIGKILL) or interrupted (SIGINT) at every step of
upgrade_429 and rollback_429. After each, a new run resumes or refuses with a clear reason, and
nothing is lost: the pre-upgrade backups stay valid and the deployment can always be completed or
rolled back."""

import signal
import subprocess
import sys

import pytest

from omsup.runbook import Runbook

from .conftest import ROOT, assert_restored, ledger_paths
from .test_faults import old_containers_kept
from .test_upgrade_429 import assert_passed, backups_intact

pytestmark = pytest.mark.integration


def steps_of(name: str) -> list[str]:
    import importlib

    mod = importlib.import_module(f"runbooks.{name}.test_{name}")
    book: Runbook = mod.runbook
    return [s.step.key for s in book.steps]


def interrupt_at(sandbox, runbook: str, step: str, sig: int) -> str:
    """Run ``runbook``, and deliver ``sig`` while ``step`` runs; return the output."""
    proc = sandbox.start_paused(runbook, step)
    proc.send_signal(sig)
    try:
        out = proc.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired as e:  # never leave it running into the next test
        proc.kill()
        rest = proc.communicate()[0]
        raise AssertionError(
            f"{runbook} held at {step} did not end within 120 s of signal {sig}:\n{rest[-3000:]}"
        ) from e
    assert proc.returncode != 0
    return out


def after_interruption(sandbox, sig: int, out: str) -> None:
    if sig == signal.SIGKILL:  # a killed run leaves its lock: the next run says who holds it
        refused = sandbox.runbook("upgrade_429", "--until", "0")
        assert refused.returncode != 0 and "another run holds the lock" in refused.output
        assert "omsup unlock --env" in refused.output
        unlock = subprocess.run(
            [sys.executable, "-m", "omsup", "unlock", "--env", sandbox.env_file],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert unlock.returncode == 0 and "released the lock" in unlock.stdout, unlock.stderr
    else:
        assert "KeyboardInterrupt" in out or "Interrupted" in out, out[-2000:]


def test_upgrade_then_rollback_interrupted_at_every_step(sandbox):
    sandbox.fresh()
    old = sandbox.containers()
    at_backup = None
    for i, step in enumerate(steps_of("upgrade_429")):
        for sig in (signal.SIGINT, signal.SIGKILL):
            out = interrupt_at(sandbox, "upgrade_429", step, sig)
            after_interruption(sandbox, sig, out)
            old_containers_kept(sandbox, old)
            if i > 4:  # the backups of step 4 stay valid whatever happens later
                backups_intact(sandbox)
        if step == "backup":
            assert_passed(sandbox.runbook("upgrade_429", "--until", str(i)), i + 1)
            at_backup = sandbox.snapshot()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    ledgers = ledger_paths("upgrade_429")
    assert len(ledgers) == 1  # one run, resumed 22 times, never started anew
    for ctrs in sandbox.containers().values():
        assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.9_ce") and ctrs["oms_ce"]["running"]

    for step in steps_of("rollback_429"):
        for sig in (signal.SIGINT, signal.SIGKILL):
            out = interrupt_at(sandbox, "rollback_429", step, sig)
            if sig == signal.SIGKILL:
                subprocess.run(
                    [sys.executable, "-m", "omsup", "unlock", "--env", sandbox.env_file],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                )
            backups_intact(sandbox)
            old_containers_kept(sandbox, old)
    assert_passed(sandbox.runbook("rollback_429"), 8)
    for node, ctrs in sandbox.containers().items():
        assert ctrs["oms_ce"]["id"] == old[node]["oms_ce"]["id"] and ctrs["oms_ce"]["running"]
    assert at_backup is not None
    assert_restored(at_backup, sandbox.snapshot())
