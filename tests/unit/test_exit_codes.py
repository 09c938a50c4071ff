"""The runbooks' exit codes (README "Exit codes"): 10 only where nothing was made or changed."""

from omsup import steps
from omsup.errors import BackupProblem, PreconditionRefused
from omsup.executor import ExitCode, Outcomes, exit_code
from omsup.runbook import Kind, Runbook
from omsup.versions import Version


def outcome_of(kind: Kind, read_only: bool, exc: BaseException, at: int = 0) -> ExitCode:
    book = Runbook("x", kind, Version(4, 2, 9), "004", "t", read_only=read_only)
    book.step(0, steps.PREFLIGHT, "the first step")
    book.step(1, steps.DISABLE_HA, "a later step")
    out = Outcomes(book)
    out.failed(book.steps[at], exc)
    return exit_code(out, None, interrupted=False)


def test_a_rehearsal_refused_at_its_first_step_exits_10_as_a_runbook_refused_does():
    assert outcome_of(Kind.REHEARSAL, True, PreconditionRefused("the scratch server holds rm")) == ExitCode.REFUSED
    assert outcome_of(Kind.UPGRADE, False, PreconditionRefused("too old")) == ExitCode.REFUSED


def test_a_read_only_check_that_does_not_hold_exits_1():
    assert outcome_of(Kind.REHEARSAL, True, BackupProblem("a dump lacks tables")) == ExitCode.FAILED
    # refused once the replica was being made (its scratch MetaDB did not answer): it had made things
    assert outcome_of(Kind.REHEARSAL, True, PreconditionRefused("no answer"), at=1) == ExitCode.FAILED
    assert outcome_of(Kind.MAINTENANCE, True, PreconditionRefused("a probe's check")) == ExitCode.FAILED
