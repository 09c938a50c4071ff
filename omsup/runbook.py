"""Runbooks as data: a runbook is an ordered list of shared steps, each naming its document step.

A runbook module declares::

    runbook = Runbook.upgrade("upgrade_429", target="4.2.9-CE", doc="004", title="...")
    test_00_preflight = runbook.step(0, steps.PREFLIGHT, "004 Notice: only from V4.2.0-CE .. V4.2.8-CE")
    test_01_disable_ha = runbook.step(1, steps.DISABLE_HA, "004 step 1: If the HA feature is enabled, disable it first.")

Each ``step`` call makes one ordered test function; the pytest plugin (omsup.plugin) orders them,
chains them so that a failed step skips every later one, and reports them. Numbering gaps,
repeats, unknown steps, a step placed before one it supersedes, and a target version without a
documented upgrade rule fail at import (collection), never during an upgrade.

This module knows nothing of pytest or allure.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .releases import release_of
from .versions import UpgradeRule, Version, VersionError, rule_for

if TYPE_CHECKING:
    from .context import Run


RUNBOOK_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # a runbook's name (its folder under runbooks/)


class Touches(StrEnum):
    """The outside systems a step talks to."""

    HOSTS = "hosts"
    ENGINES = "container engines"
    METADB = "MetaDB"
    CONSOLE = "OMS console"
    BACKUP = "backup host"


class Kind(StrEnum):
    UPGRADE = "upgrade"
    ROLLBACK = "rollback"
    MAINTENANCE = "maintenance"
    REHEARSAL = "rehearsal"


@dataclass(frozen=True, eq=False)
class Step:
    """A shared step: what it does, what it touches, how to verify it on resume, what it would do.

    ``supersedes``: earlier steps whose effect this one replaces once it has begun (even if it
    failed half way): HA enabled after it was disabled, the old containers restarted after the
    new ones were stopped. A resumed run does not check a superseded step's effect again.

    ``taken_once``: what the step records is evidence a later step or the rollback relies on (the
    backups, T1 or T3, the old containers' binds and image, the version before the upgrade, the
    upgrade's record a rollback copies). Once a later step that changes the deployment began, it is
    never taken again: taken then, it would describe the changed deployment (a backup of migrated
    metadata, the binds of the new containers). The executor enforces it for every runbook: when it
    no longer verifies on resume, the run stops saying what is missing and how to put it back, and
    the step stays done.
    """

    key: str
    title: str
    do: Callable[[Run], None]
    touches: frozenset[Touches]
    changes: bool  # False: reads only (a failure there means nothing was changed by it)
    plan: Callable[[Run], list[str]] | None = None  # None: nothing to plan (a check that runs in plan mode)
    verify: Callable[[Run], None] | None = None  # on resume; None: the record's entry suffices
    supersedes: tuple[Step, ...] = ()
    taken_once: bool = False
    # once it began, only finishing the run (or, for an upgrade, its rollback) leaves a deployment that works:
    # new containers may run on migrated metadata, or a database was dropped. Such a run is never abandoned.
    no_way_back: bool = False

    def __repr__(self) -> str:
        return f"Step({self.key})"


@dataclass(eq=False)
class RunbookStep:
    number: int
    step: Step
    doc: str
    runbook: Runbook

    @property
    def label(self) -> str:
        return f"{self.number}. {self.step.title}"

    @property
    def dependency_name(self) -> str:
        return f"{self.runbook.name} step {self.number}: {self.step.title}"


class StepRunner:
    """What a runbook's test function calls: implemented by the plugin's fixture ``omsup_run``."""

    def run_step(self, rs: RunbookStep) -> None:  # pragma: no cover - an interface
        raise NotImplementedError


@dataclass(eq=False)
class Runbook:
    name: str
    kind: Kind
    target: Version
    doc: str
    title: str
    single_node: bool = False
    read_only: bool = False  # reads only: no lock, no ledger on disk (the probe)
    notes: tuple[str, ...] = ()  # operator actions the document asks for, shown in the report
    after_preflight: Callable[[Run], None] | None = None  # work to start once the preflight passed
    folder: str | None = None  # where a rehearsal's runbook lives (its neighbours are the runbooks it rehearses)
    steps: list[RunbookStep] = field(default_factory=list)

    # -- the kinds of runbook ------------------------------------------------------------------
    @classmethod
    def upgrade(cls, name: str, target: str, doc: str, title: str, **kw: Any) -> Runbook:
        """A documented upgrade: its target must have a documented upgrade rule naming this runbook."""
        v = _target(name, target)
        rule = _rule(name, v)
        if rule.runbook != name:
            raise RuntimeError(f"runbook {name}: the upgrade rule for {v} names runbook {rule.runbook!r}")
        kw.setdefault("notes", release_of(v).notes)  # what the target's page asks the operator to do by hand
        return cls(name, Kind.UPGRADE, v, doc, title, **kw)

    @classmethod
    def rollback(cls, name: str, target: str, doc: str, title: str, **kw: Any) -> Runbook:
        """The rollback of the documented upgrade to ``target`` (whose runbook's record it reads)."""
        v = _target(name, target)
        rule = _rule(name, v)
        if rule.runbook is None:
            raise RuntimeError(f"runbook {name}: no upgrade runbook for {v} to roll back")
        if rule.rollback != name:
            raise RuntimeError(f"runbook {name}: the upgrade rule for {v} names rollback {rule.rollback!r}")
        return cls(name, Kind.ROLLBACK, v, doc, title, **kw)

    @classmethod
    def rehearsal(cls, name: str, target: str, doc: str, title: str, **kw: Any) -> Runbook:
        """A dress rehearsal of the documented upgrade to ``target`` and its rollback, on a replica: reads only on
        the deployment (no lock, no ledger of its own there); the runbooks it rehearses are its neighbours."""
        v = _target(name, target)
        rule = _rule(name, v)
        if rule.runbook is None or rule.rollback is None:
            raise RuntimeError(f"runbook {name}: the upgrade to {v} has no cold runbook and rollback to rehearse")
        kw.setdefault("read_only", True)
        book = cls(name, Kind.REHEARSAL, v, doc, title, **kw)
        book.folder = str(Path(sys._getframe(1).f_globals.get("__file__", ".")).resolve().parent)
        return book

    @classmethod
    def maintenance(cls, name: str, doc: str, title: str, **kw: Any) -> Runbook:
        """A procedure that upgrades nothing (the Connector fix, the probe)."""
        return cls(name, Kind.MAINTENANCE, Version(0, 0, 0), doc, title, **kw)

    @property
    def rollback_runbook(self) -> str | None:
        """For an upgrade: the runbook that rolls a run of it back (from the version rules), if any."""
        if self.kind not in (Kind.UPGRADE, Kind.REHEARSAL):
            return None
        return rule_for(self.target).rollback

    @property
    def upgrade_runbook(self) -> str:
        """For a rollback (or a rehearsal): the runbook whose run it undoes (rehearses) (from the version rules)."""
        name = rule_for(self.target).runbook
        assert name is not None
        return name

    def has(self, step: Step) -> bool:
        return any(s.step is step for s in self.steps)

    def superseding(self, step: Step) -> list[Step]:
        """The later steps of this runbook that supersede ``step``."""
        return [s.step for s in self.steps if step in s.step.supersedes]

    # -- declaring steps -----------------------------------------------------------------------
    def step(self, number: int, step: Step, doc: str) -> Callable[[StepRunner], None]:
        """Declare step ``number``; returns the test function that performs it."""
        expected = len(self.steps)
        if number != expected:
            raise RuntimeError(
                f"runbook {self.name}: step {getattr(step, 'title', step)!r} is numbered {number}, "
                f"expected {expected} (steps are numbered 0, 1, 2, ... in order)"
            )
        if not isinstance(step, Step):
            raise RuntimeError(f"runbook {self.name}: step {number} is not a known step: {step!r}")
        if self.has(step) or any(s.step.key == step.key for s in self.steps):
            raise RuntimeError(f"runbook {self.name}: step {step.key!r} appears twice")
        for s in self.steps:
            if step in s.step.supersedes:
                raise RuntimeError(
                    f"runbook {self.name}: step {s.step.key!r} supersedes {step.key!r}, which comes "
                    "after it; a step can only supersede earlier steps"
                )
        rs = RunbookStep(number, step, doc, self)
        self.steps.append(rs)

        def test(omsup_run: StepRunner) -> None:
            omsup_run.run_step(rs)

        test.__name__ = f"test_{number:02d}_{step.key}"
        test.__qualname__ = test.__name__
        test.__doc__ = f"{step.title} ({doc})"
        test.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
        test.runbook_step = rs  # type: ignore[attr-defined]  # how the plugin recognizes a step
        return test


def command(name: str, env_file: str) -> str:
    """How an operator runs runbook ``name`` on the environment of ``env_file`` (quoted for a shell)."""
    return shlex.join(["pytest", f"runbooks/{name}", "--env", env_file])


def omsup_command(*args: str) -> str:
    """An ``omsup`` command line for advice, every argument quoted for a shell (a name or a path from a
    ledger or a file never becomes shell syntax)."""
    return shlex.join(["omsup", *args])


def _target(name: str, target: str) -> Version:
    try:
        return Version.parse(target)
    except VersionError as e:
        raise RuntimeError(f"runbook {name}: target {target!r}: {e}") from None


def _rule(name: str, target: Version) -> UpgradeRule:
    try:
        return rule_for(target)
    except VersionError as e:
        raise RuntimeError(f"runbook {name}: {e}") from None


def step_of(obj: object) -> RunbookStep | None:
    """The runbook step a collected test function performs, or None."""
    rs = getattr(obj, "runbook_step", None)
    return rs if isinstance(rs, RunbookStep) else None
