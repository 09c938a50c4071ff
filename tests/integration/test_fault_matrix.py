"""Faults in combination: every sandbox fault injected at every step of upgrade_429 and rollback_429
where it can happen, as a generated matrix (issue 7, point 5).

A cell is (runbook, step, fault). The run is held at the start of the step (the runbooks' test
hook), the fault is injected, the run goes on with ``--until`` that step. Each cell asserts:
- a clear message: the run either stops at exactly that step, naming the fault's system, saying
  what to do, without a traceback; or, where the step does not use what the fault broke, it
  completes the step (which of the two is part of the matrix below, not guessed by the test);
- nothing lost: every old container still exists, and once taken the backups keep their SHA-256;
- later recovery: with the faults cleared, the same command goes on through that step (run once
  after the last cell at a step: every cell but the last at a step stops the run there).
Each pass is one upgrade and one rollback on a fresh sandbox, so every cell runs its step for real
(a step that completed is only verified by later runs); after the rollback the tables equal those
at backup time, which is the last word on "nothing lost".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest

from .conftest import assert_restored
from .test_faults import old_containers_kept
from .test_interrupt import steps_of
from .test_upgrade_429 import assert_passed, backups_intact

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPGRADE = steps_of("upgrade_429")
ROLLBACK = steps_of("rollback_429")

# What each fault breaks, how the sandbox injects it, and what a clear message about it must say.
FAULTS = {
    "metadb-down": (("metadb-down",), r"MetaDB"),
    # the sandbox's engine takes its containers down with it: a step that first asks n2's console
    # says the console does not answer
    "engine-down": (("engine-down", "--node", "n2"), r"(engine|console) of n2"),
    "disk-full": (("disk-full",), r"[Bb]ackup"),
    "start-fail": (("start-fail", "--node", "n2"), r"node n2: container oms_ce is not running"),
    "start-fail-old": (
        ("start-fail", "--node", "n2", "--version", "4.2.8-CE"),
        r"node n2: container oms_ce is not running",
    ),
    "init-fail": (("init-fail",), r"docker_init\.sh exited 1"),
    "node-offline": (("no-heartbeat", "--node", "n2"), r"not every server is Online"),
}

# Where each fault can happen, and where it stops the run (every other cell completes its step).
# The MetaDB, the engines and the backup folder can fail at any step; a container can fail to
# start only where one starts; docker_init.sh only where it runs; a node turns Offline only
# while its container runs and the server list is read (the steps after the start).
ALL = {"upgrade_429": UPGRADE, "rollback_429": ROLLBACK}
WHERE = {
    "metadb-down": ALL,
    "engine-down": ALL,
    "disk-full": ALL,
    "start-fail": {"upgrade_429": ["start_new"]},
    "start-fail-old": {"rollback_429": ["restart_old"]},
    "init-fail": {"upgrade_429": ["init_metadata"]},
    "node-offline": {
        "upgrade_429": ["verify", "enable_ha", "after_upgrade"],
        "rollback_429": ["restart_old", "rollback_enable_ha"],
    },
}
STOPS = {
    # every step that reads or writes the MetaDB (the new containers of step 6 wait for it)
    "metadb-down": {
        "upgrade_429": {
            "preflight",
            "disable_ha",
            "stop_old",  # the heartbeats below max(id) are deleted before T1, while the old containers run
            "prune_heartbeats",
            "backup",
            "init_metadata",
            "verify",
            "enable_ha",
            "after_upgrade",
        },
        "rollback_429": {
            "rollback_preflight",
            "disable_ha",
            "restore",
            "verify_restore",
            "restart_old",
            "rollback_enable_ha",
            "projects_running_again",  # the console lists the projects from the MetaDB
        },
    },
    # every step that talks to the nodes' engines
    # (and the upgrade's last step, which checks every node still serves)
    "engine-down": {
        "upgrade_429": {"preflight", "stop_old", "load_image", "start_new", "init_metadata", "verify", "after_upgrade"},
        "rollback_429": {"rollback_preflight", "stop_new", "restart_old"},
    },
    # a full backup folder: the preflight sees no room for the dumps, the dumps fail; a rollback
    # only reads the backups
    "disk-full": {"upgrade_429": {"preflight", "backup"}},
    "start-fail": {"upgrade_429": {"start_new"}},
    "start-fail-old": {"rollback_429": {"restart_old"}},
    "init-fail": {"upgrade_429": {"init_metadata"}},
    "node-offline": {"upgrade_429": {"verify"}, "rollback_429": {"restart_old"}},
}

PASSES = {
    "metadb": ["metadb-down"],
    "engine": ["engine-down"],
    "disk": ["disk-full"],
    "containers": ["start-fail", "start-fail-old", "init-fail", "node-offline"],
}


@dataclass(frozen=True)
class Cell:
    runbook: str
    index: int
    step: str
    fault: str

    @property
    def stops(self) -> bool:
        return self.step in STOPS[self.fault].get(self.runbook, set())

    def __str__(self) -> str:
        return f"{self.runbook} step {self.index} ({self.step}) x {self.fault}"


def cells(faults: list[str]) -> list[Cell]:
    for table in (WHERE, STOPS):  # every step named above is one of the runbooks'
        for f in faults:
            for runbook, steps in table[f].items():
                assert set(steps) <= set(ALL[runbook]), (f, runbook, set(steps) - set(ALL[runbook]))
    out = []
    for runbook in ("upgrade_429", "rollback_429"):
        for i, step in enumerate(ALL[runbook]):
            # at one step, the faults that stop the run come first: the step is still to do after them
            here = sorted(
                (Cell(runbook, i, step, f) for f in faults if step in WHERE[f].get(runbook, [])),
                key=lambda c: not c.stops,
            )
            # a cell that completes the step must be the last at it: later ones would find it done
            assert sum(not c.stops for c in here) <= 1, here
            out.extend(here)
    return out


def inject(sandbox, cell: Cell) -> None:
    args = FAULTS[cell.fault][0]
    sandbox.cli("fault", *args)
    if cell.fault == "node-offline":
        sandbox.wait_offline("n2")


def run_cell(sandbox, cell: Cell, old: dict, backed_up: bool) -> str:
    proc = sandbox.start_paused(cell.runbook, cell.step, "--until", str(cell.index))
    inject(sandbox, cell)
    sandbox.release(proc)
    out = proc.communicate(timeout=600)[0]
    tail = f"{cell}:\n{out[-3000:]}"
    # no traceback through the project's code (docker_init.sh's own output may hold one: evidence)
    assert not re.search(r'File "[^"]*/(omsup|runbooks|fixtures)/', out), tail
    if cell.stops:
        assert proc.returncode == (10 if cell.index == 0 else 1), tail  # at step 0 nothing had changed
        assert f"STOPPED at step {cell.index}." in out, tail
        assert re.search(FAULTS[cell.fault][1], out), (
            f"the message does not name the fault ({FAULTS[cell.fault][1]}): {tail}"
        )
        assert "run the same command again to resume" in out, tail
    else:
        assert proc.returncode == 0 and f"{cell.index + 1} passed" in out, tail
    # nothing lost
    sandbox.fault("clear")
    old_containers_kept(sandbox, old)
    if backed_up:
        backups_intact(sandbox)
    # later recovery: the caller runs the same command again once every cell at this step ran
    return "stopped" if cell.stops else "completed"


def selected_passes() -> list[str]:
    """The passes to run: CI's default is the MetaDB pass (every step of both runbooks with the MetaDB
    stopped, about 3 minutes); the others are an opt-in profile (README), about 10 minutes more:
    OMSUP_FAULT_MATRIX=all, or a comma-separated list of pass names."""
    want = os.environ.get("OMSUP_FAULT_MATRIX", "metadb").strip()
    names = list(PASSES) if want == "all" else [w.strip() for w in want.split(",") if w.strip()]
    unknown = sorted(set(names) - set(PASSES))
    if unknown or not names:
        raise ValueError(
            f"OMSUP_FAULT_MATRIX={want!r}: unknown pass(es) {unknown}; expected 'all' or some of {', '.join(PASSES)}"
        )
    return names


def test_every_pass_names_only_steps_of_the_runbooks_and_orders_its_cells():
    """The whole matrix's tables are checked in every run, the passes CI does not run too."""
    for name, faults in PASSES.items():
        assert cells(faults), name


@pytest.mark.parametrize("name", selected_passes())
def test_faults_at_every_step(sandbox, name):
    todo = cells(PASSES[name])
    assert todo, name
    sandbox.fresh()
    old = sandbox.containers()
    at_backup = None
    done: list[tuple[str, str]] = []
    for runbook, steps in ALL.items():
        for i, step in enumerate(steps):
            backed_up = runbook == "rollback_429" or i > UPGRADE.index("backup")
            for cell in (c for c in todo if c.runbook == runbook and c.step == step):
                done.append((str(cell), run_cell(sandbox, cell, old, backed_up)))
            # later recovery: with every fault cleared, the same command goes on through this step
            # (and does the step itself where no cell did)
            assert_passed(sandbox.runbook(runbook, "--until", str(i)), i + 1)
            if runbook == "upgrade_429" and step == "backup":
                at_backup = sandbox.snapshot()
    assert len(done) == len(todo)
    for node, ctrs in sandbox.containers().items():
        assert ctrs["oms_ce"]["id"] == old[node]["oms_ce"]["id"] and ctrs["oms_ce"]["running"], node
    assert at_backup is not None
    assert_restored(at_backup, sandbox.snapshot())
    print(f"{name}: {len(done)} cells: " + "; ".join(f"{c} {r}" for c, r in done))
