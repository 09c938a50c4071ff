"""The run lifecycle: execute a step, verify it on resume, plan it, stop where asked; the outcomes.

Knows nothing of pytest or allure: the plugin calls ``Executor.execute`` from each step's test
and reads ``Outcomes`` for the terminal, the report and the exit code, so both show the same.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from . import history
from .audit import AUDIT
from .context import Run
from .errors import EvidenceLost, NothingToDo, PreconditionRefused, category_of
from .record import RunStatus, StepStatus
from .redact import printable, redact, redacted_copy
from .runbook import Kind, Runbook, RunbookStep


class ExitCode(IntEnum):
    """What a runbook run's exit code says (README, `pytest --help`); JUnit carries the same."""

    DONE = 0  # every step done (or the plan written, or stopped where --until said)
    FAILED = 1  # a step failed after changes began; the report says what changed
    INTERRUPTED = 2  # Ctrl-C or a signal
    USAGE = 4  # a usage or environment-file error
    REFUSED = 10  # refused before anything changed


EXIT_CODES_HELP = (
    "exit codes: 0 done; 1 a step failed after changes began; 2 interrupted; 4 usage or environment-file error; "
    "10 refused before any change"
)


class Status(StrEnum):
    PASSED = "passed"
    VERIFIED = "verified"  # done in an earlier attempt of this run; checked, not redone
    PLANNED = "planned"
    FAILED = "failed"
    NOT_RUN = "not run"  # after --until
    SKIPPED = "skipped"  # after a failed step


DONE = (Status.PASSED, Status.VERIFIED)


@dataclass
class StepOutcome:
    rs: RunbookStep
    status: Status = Status.NOT_RUN
    seconds: float | None = None
    error: str | None = None
    category: str | None = None
    reason: str | None = None  # why it did not run
    hint: str | None = None  # what to do next, as the failure said
    resumable: bool = True  # False: the failure said this run is not to be resumed
    nothing_to_do: bool = False  # the run changed nothing and there is nothing it can do: it is closed


class NotRun(Exception):
    """The step is not run this time (--until); the plugin reports it as skipped."""


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return printable(redact(text.splitlines()[0] if text.strip() else type(exc).__name__))


class Outcomes:
    """Every step's outcome in this run, in runbook order: the one source for terminal and report."""

    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook
        self.by_number = {rs.number: StepOutcome(rs) for rs in runbook.steps}
        self.first_failure: StepOutcome | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.by_number[n] for n in sorted(self.by_number))

    def get(self, rs: RunbookStep) -> StepOutcome:
        return self.by_number[rs.number]

    def failed(self, rs: RunbookStep, exc: BaseException, seconds: float | None = None) -> StepOutcome:
        o = self.get(rs)
        o.status, o.error, o.category = Status.FAILED, first_line(exc), category_of(exc)
        hint = getattr(exc, "hint", None)
        o.hint = printable(redact(hint), keep_newlines=True) if isinstance(hint, str) and hint else None
        o.resumable = getattr(exc, "resumable", True) is not False
        if seconds is not None:
            o.seconds = seconds
        if self.first_failure is None:
            self.first_failure = o
        return o

    def blocked(self, rs: RunbookStep) -> str | None:
        """Why ``rs`` must not run (an earlier step failed), recording it as skipped; or None."""
        f = self.first_failure
        if f is None or f.rs.number >= rs.number:
            return None
        o = self.get(rs)
        o.status = Status.SKIPPED
        o.reason = f"not run: step {f.rs.label} failed ({f.category}: {f.error})"
        return o.reason

    @property
    def all_done(self) -> bool:
        return all(o.status in DONE for o in self)


class Executor:
    def __init__(self, run: Run, outcomes: Outcomes) -> None:
        self.run = run
        self.outcomes = outcomes
        self.on_begin: list[Callable[[RunbookStep], None]] = []  # extension point (tests hold a run here)
        # where the whole traceback of a failed step is kept (redacted), by step key
        self.keep_traceback: Callable[[str, str], None] | None = None

    def execute(self, rs: RunbookStep) -> StepOutcome:
        """Do, verify, plan or leave out step ``rs``; record what happened.

        Raises:
            NotRun: the step is after --until.
            Exception: the step's failure (recorded first).
        """
        run, record, key = self.run, self.run.record, rs.step.key
        run.current = rs
        AUDIT.step = key
        o = self.outcomes.get(rs)
        t0 = time.monotonic()
        failure: BaseException
        try:
            if run.until is not None and rs.number > run.until:
                o.status = Status.NOT_RUN
                o.reason = (
                    f"stopped before step {rs.number} as asked (--until {run.until}); "
                    "run again without --until to resume"
                )
                raise NotRun(o.reason)
            if run.plan and rs.number > 0:  # plan mode: only the preflight runs
                lines = rs.step.plan(run) if rs.step.plan else [f"check (reads only): {rs.step.title} -- {rs.doc}"]
                run.would(lines)
                run.reporter.attach("plan: what this step would do", "\n".join(run.plans[rs.label]), False)
                o.status = Status.PLANNED
                return o
            if record.step_done(key):
                # a later step that began (even if it failed half way) changed what this step's check looks at
                later = [s for s in run.runbook.superseding(rs.step) if record.step_started(s.key)]
                if later:
                    with run.reporter.part(
                        f"already done in this run (resumed); its effect was replaced by {later[0].key}"
                    ):
                        pass
                else:
                    with run.reporter.part("already done in this run (resumed): verifying, not redoing"):
                        if rs.step.verify is not None:
                            self._verify(rs)
                o.status = Status.VERIFIED
                return o
            if rs.step.taken_once and (began := later_changes_begun(run, rs)):
                raise EvidenceLost(
                    f"step {rs.label} did not complete in this run, yet {began[0].label} began since: what it "
                    "takes is taken once, before any later change, and never again (taken now, it would describe "
                    "the changed deployment)",
                    "do not resume this run; finish the procedure, or roll back, by hand from what its ledger "
                    f"recorded ({record.path})",
                    resumable=False,
                )
            record.mark(key, "running", kind=(rs.step.changes, rs.step.no_way_back))
            for hook in self.on_begin:
                hook(rs)
            rs.step.do(run)
            record.mark(key, "done", seconds=round(time.monotonic() - t0, 2))
            o.status = Status.PASSED
            if rs.number == 0 and run.runbook.after_preflight is not None:
                run.runbook.after_preflight(run)
            return o
        except NotRun:
            raise
        except BaseException as e:  # noqa: BLE001 - recorded, then raised again (redacted) below
            self.outcomes.failed(rs, e)
            # nothing to do, and nothing done: closed (never resumed: it would only be refused again)
            if isinstance(e, NothingToDo) and not changes_began(run):
                o.nothing_to_do, o.resumable = True, False
            if not run.plan:
                # evidence that no longer verifies stays done: a later resume verifies it again, never redoes it
                status: StepStatus = "done" if isinstance(e, EvidenceLost) and record.step_done(key) else "failed"
                record.mark(key, status, error=o.error, category=o.category, hint=o.hint, resumable=o.resumable)
                if o.nothing_to_do:
                    record.finish(RunStatus.NOTHING_TO_DO)
            if self.keep_traceback is not None:
                self.keep_traceback(key, redact("".join(traceback.format_exception(e))))
            failure = redacted_copy(e)
        finally:
            o.seconds = round(time.monotonic() - t0, 2)
            events = AUDIT.of_step(key)
            if events:
                run.reporter.attach("every command, statement and request", "\n".join(e.line() for e in events), False)
            AUDIT.step = None
        # raised here, outside the handler: the original (with whatever secret its text held) is no
        # local of any frame a traceback shows
        raise failure from None

    def _verify(self, rs: RunbookStep) -> None:
        """The done step's check on resume. A step whose evidence is taken once (``Step.taken_once``) that
        no longer verifies after a later change began stops the run as evidence lost: it is never redone."""
        assert rs.step.verify is not None
        try:
            rs.step.verify(self.run)
            entry = self.run.record.data.steps.get(rs.step.key)
            if entry is not None and entry.error is not None:  # it verifies again: its failure becomes history
                self.run.record.mark(rs.step.key, "done")
        except Exception as e:
            began = later_changes_begun(self.run, rs) if rs.step.taken_once else []
            if not began or getattr(e, "resumable", True) is False:
                raise  # nothing changed after it: failed, and taken again by the next resume (or not to be resumed)
            raise EvidenceLost(
                f"step {rs.label} was done in this run and no longer verifies: {first_line(e)}. What it took is "
                f"taken once, before any later change, and never taken again once {began[0].label} began "
                "(taken now, it would describe the changed deployment)",
                "put it back as it was (the ledger lists each file's path, size and SHA-256; the old containers "
                f"as recorded), then run the same command again to resume; the ledger: {self.run.record.path}",
            ) from None

    @property
    def changes_began(self) -> bool:
        """Whether any step that changes the deployment began in this run (in any attempt)."""
        return changes_began(self.run)


def changes_began(run: Run | None) -> bool:
    """Whether a step that changes the deployment began in this run (history.changes_begun; never in plan mode)."""
    return run is not None and not run.plan and bool(history.changes_begun(run.record))


def later_changes_begun(run: Run, rs: RunbookStep) -> list[RunbookStep]:
    """The steps after ``rs`` in its runbook that change the deployment and began in this run."""
    began = set(history.changes_begun(run.record))
    return [s for s in run.runbook.steps if s.number > rs.number and s.step.key in began]


def exit_code(outcomes: Outcomes, run: Run | None, interrupted: bool) -> ExitCode:
    """0 done, 1 failed after changes began, 2 interrupted, 10 refused before any change."""
    if interrupted:
        return ExitCode.INTERRUPTED
    if outcomes.first_failure is None:
        return ExitCode.DONE
    book, first = outcomes.runbook, outcomes.first_failure
    if book.kind is Kind.REHEARSAL and first.rs.number == 0 and first.category == PreconditionRefused.category:
        return ExitCode.REFUSED  # its first step, which reads only: refused before it made anything, as a preflight
    if book.read_only:  # a check that does not hold (the probe): nothing was refused
        return ExitCode.FAILED
    return ExitCode.FAILED if changes_began(run) else ExitCode.REFUSED
