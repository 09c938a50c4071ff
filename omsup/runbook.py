"""Runbooks as data: a runbook is an ordered list of shared steps, each naming its document step.

A runbook module declares::

    runbook = Runbook("upgrade_429", kind="upgrade", target="4.2.9-CE", doc="004")
    test_00_preflight = runbook.step(0, steps.PREFLIGHT_UPGRADE, "004 Notice: only from V4.2.0-CE .. V4.2.8-CE")
    test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "004 step 1: If the HA feature is enabled, disable it first.")

Each ``step`` call makes one ordered pytest test, chained with pytest-dependency so that a
failed step skips every later one with a message naming it. Numbering gaps, repeats or
unknown steps fail at import (collection), never during an upgrade.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import allure
import pytest

from .versions import Version

if TYPE_CHECKING:
    from .context import Run


@dataclass(frozen=True)
class Step:
    """A shared step: what it does, how to verify it when a run resumes, what it would do."""

    key: str
    title: str
    do: Callable[[Run], None]
    plan: Callable[[Run], list[str]] | None = None  # None: the step changes nothing (runs in plan mode)
    verify: Callable[[Run], None] | None = None  # on resume; None: the ledger's record suffices
    # Later steps that, once begun (even if they failed half way), end the checking of this step's
    # effect on resume: they replace it (HA enabled after it was disabled), or change what its check
    # looks at (the old containers restarted after the new ones were stopped).
    superseded_by: tuple[str, ...] = ()


@dataclass
class RunbookStep:
    number: int
    step: Step
    doc: str
    runbook: Runbook

    @property
    def dep_name(self) -> str:
        return f"{self.runbook.name} step {self.number}: {self.step.title}"

    @property
    def label(self) -> str:
        return f"{self.number}. {self.step.title}"


@dataclass
class Runbook:
    name: str
    kind: str  # upgrade | rollback
    target: str
    doc: str
    title: str = ""
    single_node: bool = False
    upgrade_runbook: str | None = None  # for a rollback: the runbook whose run it undoes
    notes: tuple[str, ...] = ()  # operator actions the document asks for, shown in the report
    after_preflight: Callable[[Run], None] | None = None  # work to start once the preflight passed
    steps: list[RunbookStep] = field(default_factory=list)

    @property
    def target_version(self) -> Version:
        return Version.parse(self.target)

    def step(self, number: int, step: Step, doc: str) -> Callable[..., None]:
        """Declare step ``number``; returns the pytest test that performs it."""
        expected = len(self.steps)
        if number != expected:
            raise RuntimeError(f"runbook {self.name}: step {step.title!r} is numbered {number}, expected {expected}"
                               " (steps are numbered 0, 1, 2, ... in order)")
        if not isinstance(step, Step):
            raise RuntimeError(f"runbook {self.name}: step {number} is not a known step: {step!r}")
        if any(s.step.key == step.key for s in self.steps):
            raise RuntimeError(f"runbook {self.name}: step {step.key!r} appears twice")
        rs = RunbookStep(number, step, doc, self)
        previous = self.steps[-1] if self.steps else None
        self.steps.append(rs)

        def test(run: Run) -> None:
            run.execute(rs)

        test.__name__ = f"test_{number:02d}_{step.key}"
        test.__doc__ = f"{step.title} ({doc})"
        test.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
        marks = [
            pytest.mark.dependency(name=rs.dep_name, depends=[previous.dep_name] if previous else [], scope="session"),
            pytest.mark.runbook_step(rs),
        ]
        decorated: Any = test
        for m in marks:
            decorated = m(decorated)
        decorated = allure.title(f"{rs.label}")(decorated)
        decorated = allure.description(f"Implements: {doc}")(decorated)
        decorated = allure.label("runbook", self.name)(decorated)
        return allure.story(rs.label)(allure.feature(self.name)(decorated))
