"""HA, through the system parameter ha.config (doc: System Management > System Parameters).

doc 003/004: disable HA (enable=false) before anything else; after the upgrade enable it and
record T2, with perceiveStoreClientCheckpoint=true or refetchStoreIntervalMin greater than
T2 - T1; after a rollback enable it again with refetchStoreIntervalMin set likewise.
"""

from __future__ import annotations

import math

from ..context import Run
from ..errors import PreconditionRefused
from ..record import Refetch, parse_utc, utc_now
from ..runbook import Step, Touches


# == Disable HA ==================================================================================
def disable_ha(run: Run) -> None:
    rm = run.env.metadb.rm
    ha = run.metadb.ha_config(rm)
    run.evidence("ha.config before", ha)
    if run.facts.ha_before is None:
        with run.record.change() as f:
            f.ha_before = ha
    if ha.get("enable") is not False:
        run.metadb.write_ha_config(rm, {**ha, "enable": False})
    verify_ha_disabled(run)


def verify_ha_disabled(run: Run) -> None:
    ha = run.metadb.ha_config(run.env.metadb.rm)
    run.evidence("ha.config read back", ha)
    assert ha.get("enable") is False, f"ha.config read back has enable={ha.get('enable')!r}, expected false"


def plan_disable_ha(run: Run) -> list[str]:
    return [
        f"[{run.env.metadb.rm}] UPDATE oms_normal_config SET cfg_value=<ha.config with enable=false> "
        "WHERE cfg_name='ha.config'; then read it back"
    ]


DISABLE_HA = Step(
    "disable_ha", "Disable HA", disable_ha, frozenset({Touches.METADB}), True, plan_disable_ha, verify_ha_disabled
)


# == Enable HA ===================================================================================
def refetch_minutes(start: str, end: str, margin: int) -> int:
    """Whole minutes strictly greater than end - start, plus the configured margin."""
    seconds = (parse_utc(end) - parse_utc(start)).total_seconds()
    return max(1, math.floor(seconds / 60) + 1) + margin


def enable_ha(run: Run, start: str | None, end: str, since: str, until: str) -> None:
    """doc 003/004: enable HA; perceiveStoreClientCheckpoint, or refetchStoreIntervalMin > ``until`` - ``since``."""
    rm = run.env.metadb.rm
    ha = run.metadb.ha_config(rm)
    new = {**ha, "enable": True}
    if run.env.ha.perceive_store_client_checkpoint:
        new["perceiveStoreClientCheckpoint"] = True
    else:
        if not start:
            raise PreconditionRefused(
                f"the run ledger has no {since}; refetchStoreIntervalMin cannot be computed",
                "set ha.perceive_store_client_checkpoint: true, or resume the run that recorded it",
            )
        needed = refetch_minutes(start, end, run.env.ha.refetch_margin_min)
        new["refetchStoreIntervalMin"] = max(int(ha.get("refetchStoreIntervalMin") or 0), needed)
        with run.record.change() as f:
            f.refetch = Refetch(
                since=since,
                until=until,
                start=start,
                end=end,
                minutes_needed=needed,
                set=new["refetchStoreIntervalMin"],
            )
    run.metadb.write_ha_config(rm, new)
    verify_ha_enabled(run, start, end, since, until)


def verify_ha_enabled(run: Run, start: str | None, end: str | None, since: str, until: str) -> None:
    ha = run.metadb.ha_config(run.env.metadb.rm)
    run.evidence("ha.config read back", ha)
    run.evidence(f"{since} and {until}", {since: start, until: end})
    assert ha.get("enable") is True, f"ha.config read back has enable={ha.get('enable')!r}, expected true"
    if run.env.ha.perceive_store_client_checkpoint:
        assert ha.get("perceiveStoreClientCheckpoint") is True, "perceiveStoreClientCheckpoint is not true"
        return
    assert start and end, f"the run ledger lacks {since} or {until}"
    gap_min = (parse_utc(end) - parse_utc(start)).total_seconds() / 60
    value = ha.get("refetchStoreIntervalMin")
    assert isinstance(value, int) and value > gap_min, (
        f"refetchStoreIntervalMin is {value!r}, must be greater than {until} - {since} = {gap_min:.2f} min"
    )


def _plan_enable(run: Run, interval: str) -> list[str]:
    if run.env.ha.perceive_store_client_checkpoint:
        return ["set ha.config enable=true, perceiveStoreClientCheckpoint=true; read back"]
    return [
        f"set ha.config enable=true, refetchStoreIntervalMin = max(current, whole minutes of {interval} "
        f"+ 1 + {run.env.ha.refetch_margin_min}); read back"
    ]


def enable_ha_after_upgrade(run: Run) -> None:
    if run.facts.t2 is None:
        with run.record.change() as f:
            f.t2 = utc_now()
    assert run.facts.t2 is not None
    enable_ha(run, run.facts.t1, run.facts.t2, "T1", "T2")


ENABLE_HA = Step(
    "enable_ha",
    "Enable HA, record T2",
    enable_ha_after_upgrade,
    frozenset({Touches.METADB}),
    True,
    lambda run: ["record T2"] + _plan_enable(run, "T2 - T1"),
    lambda run: verify_ha_enabled(run, run.facts.t1, run.facts.t2, "T1", "T2"),
    supersedes=(DISABLE_HA,),
)


def _upgrade_t1(run: Run) -> str | None:
    return run.facts.upgrade.t1 if run.facts.upgrade else None


def enable_ha_after_rollback(run: Run) -> None:
    """doc 003 step 6.6 / 004 step 9: enable HA and set refetchStoreIntervalMin. The Store must refetch
    from T1 (when the old OMS stopped) until HA runs again, so the interval ends when HA is enabled,
    not at T3: the restore and the restart lie between."""
    if run.facts.t1 is None and _upgrade_t1(run):
        with run.record.change() as f:
            f.t1 = _upgrade_t1(run)
    if run.facts.ha_enabled is None:
        with run.record.change() as f:
            f.ha_enabled = utc_now()
    assert run.facts.ha_enabled is not None
    enable_ha(run, run.facts.t1, run.facts.ha_enabled, "T1", "HA enabled again")


ROLLBACK_ENABLE_HA = Step(
    "rollback_enable_ha",
    "Enable HA with refetchStoreIntervalMin > (HA enabled again) - T1",
    enable_ha_after_rollback,
    frozenset({Touches.METADB}),
    True,
    lambda run: ["record the time; " + _plan_enable(run, "(HA enabled again) - T1")[0]],
    lambda run: verify_ha_enabled(run, run.facts.t1, run.facts.ha_enabled, "T1", "HA enabled again"),
    supersedes=(DISABLE_HA,),
)
