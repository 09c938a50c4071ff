"""The project's small exception family.

Every error says what was expected, what was seen, and what to do next. ``category`` is the
failure category shown in the audit report (see omsup/report.py).
"""

from __future__ import annotations


class OmsupError(Exception):
    """Base of the project's errors: a message an operator can act on."""

    category = "Runbook error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self._text())

    def _text(self) -> str:
        return self.message + (f"\n  next: {self.hint}" if self.hint else "")

    def add_note_to_message(self, note: str) -> None:
        """Add a line to the message (kept before the hint)."""
        self.message += f"\n  {note}"
        self.args = (self._text(),)


class ConfigError(OmsupError):
    """The environment file is wrong: which file, which key, what was expected and seen."""

    category = "Precondition refused"

    def __init__(self, file: str, key: str, expected: str, seen: object, hint: str | None = None) -> None:
        self.file, self.key, self.expected, self.seen = file, key, expected, seen
        seen_s = "nothing" if seen is None else repr(seen)
        if len(seen_s) > 200:
            seen_s = seen_s[:200] + "..."
        super().__init__(f"{file}: key '{key}': expected {expected}, saw {seen_s}",
                         hint or f"fix '{key}' in {file} and run again")


class PreconditionRefused(OmsupError):
    category = "Precondition refused"


class BackupProblem(OmsupError):
    category = "Backup problem"


class ContainerProblem(OmsupError):
    category = "Container problem"


class MetaDBProblem(OmsupError):
    category = "MetaDB problem"


class NotReady(OmsupError):
    category = "OMS not ready"


class HostProblem(OmsupError):
    category = "Host problem"


class LedgerError(OmsupError):
    category = "Precondition refused"


def category_of(exc: BaseException) -> str:
    """The report's failure category of an exception: the project's own, or a failed check."""
    cat = getattr(exc, "category", None)
    if isinstance(cat, str):
        return cat
    return "Check failed" if isinstance(exc, AssertionError) else "Runbook error"
