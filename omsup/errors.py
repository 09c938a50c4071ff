"""The project's small exception family.

Every error says what was expected, what was seen, and what to do next. ``category`` is the
failure category shown in the audit report (see omsup/report.py).
"""

from __future__ import annotations

from dataclasses import dataclass


class OmsupError(Exception):
    """Base of the project's errors: a message an operator can act on."""

    category = "Runbook error"

    def __init__(self, message: str, hint: str | None = None, resumable: bool = True) -> None:
        self.message = message
        self.hint = hint
        self.resumable = resumable  # False: the run that met it is not to be resumed (the hint says what then)
        super().__init__(self._text())

    def _text(self) -> str:
        return self.message + (f"\n  next: {self.hint}" if self.hint else "")

    def add_note_to_message(self, note: str) -> None:
        """Add a line to the message (kept before the hint)."""
        self.message += f"\n  {note}"
        self.args = (self._text(),)


@dataclass(frozen=True)
class Problem:
    """One mistake of a file: its key (and line), what was expected, what was seen, what to do."""

    key: str
    expected: str
    seen: object
    hint: str | None = None
    line: int | None = None

    def describe(self) -> str:
        seen_s = "nothing" if self.seen is None else repr(self.seen)
        if len(seen_s) > 200:
            seen_s = seen_s[:200] + "..."
        where = f"line {self.line}: " if self.line else ""
        return f"{where}key '{self.key}': expected {self.expected}, saw {seen_s}"


class ConfigError(OmsupError):
    """The environment file is wrong: which file, which keys (and lines), what was expected and seen."""

    category = "Precondition refused"

    def __init__(
        self, file: str, key: str, expected: str, seen: object, hint: str | None = None, line: int | None = None
    ) -> None:
        self._setup(file, [Problem(key, expected, seen, hint, line)])

    @classmethod
    def many(cls, file: str, problems: list[Problem]) -> ConfigError:
        """Every problem of ``file`` in one error (in the order of the file)."""
        err = cls.__new__(cls)
        err._setup(file, sorted(problems, key=lambda p: (p.line or 0, p.key)))
        return err

    def _setup(self, file: str, problems: list[Problem]) -> None:
        self.file, self.problems = file, problems
        first = problems[0]
        self.key, self.expected, self.seen = first.key, first.expected, first.seen
        if len(problems) == 1:
            message = f"{file}: {first.describe()}"
            hint = first.hint or f"fix '{first.key}' in {file} and run again"
        else:
            lines = [f"{file}: {len(problems)} problems, fix them all and run again:"]
            for p in problems:
                lines.append(f"  {p.describe()}" + (f"\n      next: {p.hint}" if p.hint else ""))
            message, hint = "\n".join(lines), f"fix the {len(problems)} problems above in {file}"
        OmsupError.__init__(self, message, hint)


class PreconditionRefused(OmsupError):
    category = "Precondition refused"


class NothingToDo(PreconditionRefused):
    """There is nothing the runbook can do (the deployment is already where it would take it, or
    what it needs does not exist): a run that changed nothing is closed (its record says so), since
    running it again would only be refused the same way. Raised in a run that did change something,
    it is a refusal like any other."""


class BackupProblem(OmsupError):
    category = "Backup problem"


class DumpLacksTables(BackupProblem):
    """mysqldump exited 0, its completion marker written, without a table the database has (see MetaDB.dump)."""


class ContainerProblem(OmsupError):
    category = "Container problem"


class MetaDBProblem(OmsupError):
    category = "MetaDB problem"


class NotReady(OmsupError):
    category = "OMS not ready"


class HostProblem(OmsupError):
    category = "Host problem"


class EvidenceLost(OmsupError):
    """What a step took once (backups, T1, the old containers' facts) no longer verifies after a later
    change began: it is put back, never taken again."""

    category = "Evidence lost"


class LedgerError(OmsupError):
    category = "Precondition refused"


def category_of(exc: BaseException) -> str:
    """The report's failure category of an exception: the project's own, or a failed check."""
    cat = getattr(exc, "category", None)
    if isinstance(cat, str):
        return cat
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted"
    return "Check failed" if isinstance(exc, AssertionError) else "Runbook error"
