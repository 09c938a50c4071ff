"""Where the runs on an environment stand, and what to do next: ``omsup status --env FILE``.

The operator who takes over at 3 a.m. (or the auditor the morning after) needs, without reading
ledgers: whether a run is going on (the lock), which run is unfinished and where it stopped, what
it changed (T1, T3, the backups, the old containers it kept), and the commands that go on from
there: resume, roll back, or call it off. The advice is derived from the ledgers by the same
rules the runbooks apply (which run a resume picks, which upgrade a rollback undoes, when a run
can no longer be called off), so it never names a command the runbook would refuse for that
reason.

It reads the ledgers under the environment's state_dir and the lock on the backup host; it
changes nothing and talks to nothing else. What it prints is redacted like everything else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import history, lock
from .context import Deployment
from .envfile import Environment
from .errors import LedgerError, OmsupError, PreconditionRefused
from .record import Record, RunStatus, StepEntry, parse_utc
from .redact import printable_obj, redact, redact_obj
from .runbook import command, omsup_command
from .steps import RESTART_OLD, STEPS
from .steps.backup import OB_NOTE
from .versions import rule_of_runbook

FINISHED_SHOWN = 3  # finished runs listed per runbook, newest first (every unfinished run is listed)


def lock_state(env: Environment) -> dict[str, Any]:
    """Who holds the environment's lock, read on the backup host; an unreachable host is said, not raised."""
    try:
        host = Deployment(env).backup_host
        held = lock.holder(host, env)
    except OmsupError as e:
        return {"read": False, "error": e.message}
    if held is None:
        return {"read": True, "held": False, "path": f"{lock.lock_path(env)} on {host.label}"}
    alive, why = lock.may_live(held)
    return {"read": True, "held": True, "holder": lock.describe(held), "may_live": alive, "why": why}


def survey(env: Environment, lock: dict[str, Any]) -> dict[str, Any]:
    """Every runbook's runs on ``env`` (newest first) and what to do next, as JSON-ready data."""
    runbooks: dict[str, list[dict[str, Any]]] = {}
    unreadable: list[str] = []
    records: dict[str, list[Record]] = {}
    for name in Record.runbooks(env.state_dir):
        try:
            records[name] = Record.runs(env.state_dir, name, env.name)
        except LedgerError as e:
            unreadable.append(f"{name}: {e.message}")
            continue
        if not records[name]:
            del records[name]
            continue
        newest = list(reversed(records[name]))
        unfinished = [r for r in newest if r.is_unfinished]
        shown = unfinished + [r for r in newest if not r.is_unfinished][:FINISHED_SHOWN]
        runbooks[name] = [run_view(r) for r in sorted(shown, key=lambda r: r.run_id, reverse=True)]
    return dict(
        printable_obj(
            redact_obj(
                {
                    "environment": env.name,
                    "environment_file": env.source,
                    "state_dir": env.state_dir,
                    "lock": lock,
                    "runbooks": runbooks,
                    "rehearsals": rehearsals(env),
                    "unreadable": unreadable,
                    "next": advice(env, records, lock) if not unreadable else [_unreadable_advice(env)],
                }
            )
        )
    )


def rehearsals(env: Environment) -> list[dict[str, Any]]:
    """The rehearsals of ``env`` (runbooks/rehearse_*), newest first, from each one's rehearsal.json."""
    out = []
    for path in sorted(Path(env.rehearsal_dir).glob("*/rehearsal.json"), reverse=True):
        try:
            r = json.loads(path.read_text())
            out.append(
                {
                    "rehearsal": r["rehearsal"],
                    "at": r["at"],
                    "what": f"{r['upgrade_runbook']} and {r['rollback_runbook']} ({r['source']} -> {r['target']})",
                    "upgrade": (r.get("upgrade") or {}).get("outcome"),
                    "rollback": (r.get("rollback") or {}).get("outcome"),
                    "outage_seconds": r.get("outage_seconds"),
                    "file": str(path),
                }
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            out.append({"rehearsal": path.parent.name, "file": str(path), "unreadable": f"{type(e).__name__}: {e}"})
    return out


def _unreadable_advice(env: Environment) -> str:
    return (
        f"a ledger under {env.state_dir} is unreadable (above): no advice is given, since every runbook would "
        "refuse to run on it too; put back the ledger omsup wrote (from a backup of the state folder: the report "
        "folder's copy is redacted, not the original), or move it aside deliberately"
    )


def _step_title(key: str) -> str:
    step = STEPS.get(key)
    return step.title if step else key


def _stopped_at(rec: Record) -> dict[str, Any] | None:
    """The step an unfinished run stopped at: the newest that failed, or one that began and never ended."""
    lost = {
        k: e for k, e in rec.data.steps.items() if e.status == "done" and e.error
    }  # evidence that no longer verifies
    ended = lost or {k: e for k, e in rec.data.steps.items() if e.status in ("failed", "running")}
    if not ended:
        return None
    key, e = max(ended.items(), key=lambda kv: kv[1].at)
    return {"step": key, "title": _step_title(key), **_entry(e)}


def _entry(e: StepEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"status": e.status, "at": e.at}
    if e.error:
        out["error"] = f"{e.category}: {e.error}" if e.category else e.error
        out["next"], out["resumable"] = e.hint, e.resumable
    return out


def run_view(rec: Record) -> dict[str, Any]:
    """One run as the status shows it."""
    d, f = rec.data, rec.facts
    return {
        "run_id": d.run_id,
        "status": d.status.value,
        "created": d.created,
        "finished": d.finished,
        "attempts": d.attempts,
        "ledger": str(rec.path),
        "steps": {k: e.status for k, e in d.steps.items()},
        "stopped_at": _stopped_at(rec) if rec.is_unfinished else None,
        "versions": {"before": f.versions.source, "target": f.versions.target} if f.versions else None,
        "times": {k: v for k, v in (("T1", f.t1), ("T2", f.t2), ("T3", f.t3)) if v},
        "backups": [{"db": b.db, "path": b.path, "size": b.size, "sha256": b.sha256} for b in f.backups],
        "old_containers_kept": {n: nf.kept_as for n, nf in f.nodes.items() if nf.kept_as},
        "undoes": f.upgrade.run_id if f.upgrade else None,
        "rolled_back": d.rolled_back.model_dump() if d.rolled_back else None,
        "abandoned": d.abandoned.model_dump() if d.abandoned else None,
    }


def advice(env: Environment, records: dict[str, list[Record]], lock: dict[str, Any]) -> list[str]:
    """What to do next, most pressing first."""
    src = env.source
    out: list[str] = []
    if lock.get("held"):
        out.append(
            f"a run holds the lock: {lock['holder']} ({lock['why']}); wait for it, and read this again when it ended"
            if lock["may_live"]
            else f"the lock is left by a run that ended ({lock['holder']}: {lock['why']}): {omsup_command('unlock', '--env', src)}"
        )
    elif not lock.get("read", True):
        out.append(f"the lock could not be read ({lock['error']}): a run may be going on; check before starting one")
    for note in sorted(Path(env.rehearsal_dir).glob(f"*/{OB_NOTE}")):
        try:
            before = json.loads(note.read_text()).get("before") or {}
            values = ", ".join(f"{k} = {int(v)}" for k, v in before.items())
        except (OSError, ValueError, TypeError, AttributeError) as e:
            values = f"(the note is unreadable: {type(e).__name__})"
        out.append(
            f"a rehearsal ended between raising the MetaDB's timeouts for a dump and setting them back ({note}): the "
            f"next rehearsal sets them back first; or by hand, as a user who may: SET GLOBAL {values}; then remove "
            "the note"
        )
    half = history.half_done_rollback(r for recs in records.values() for r in recs)
    rb = half[0] if half is not None else None
    runs = [line for name, recs in records.items() for line in _unfinished_advice(env, name, recs, rb)]
    return out + (runs or _settled_advice(env, records))


def _unfinished_advice(env: Environment, name: str, runs: list[Record], rb: Record | None) -> list[str]:
    """For the run of ``name`` a new run would resume, if any: resume it, and the other ways on
    (``rb``: the rollback run that is half done, if any)."""
    rec = next((r for r in reversed(runs) if r.is_unfinished), None)
    if rec is None:
        return []
    src = env.source
    stop = _stopped_at(rec)
    where = f" (stopped at {stop['step']}: {stop.get('error', 'it began and did not end')})" if stop else ""
    if rb is not None:
        if rb.run_id == rec.run_id:
            return [
                f"rollback run {rec.run_id} ({name}) is half done{where}: finish it, it resumes: {command(name, src)}",
                *_outage(rec),
            ]
        if rb.facts.upgrade is not None and rb.facts.upgrade.run_id == rec.run_id:
            return []  # its rollback is half done: said for the rollback
    if stop is not None and stop.get("resumable") is False and stop.get("next"):
        return [
            f"run {rec.run_id} of {name} is not to be resumed{where}: {stop['next']}",
            *_outage(rec),
            *_raised_timeouts(rec),
        ]
    out = [f"run {rec.run_id} of {name} is unfinished{where}: fix the cause, then resume: {command(name, src)}"]
    out += _outage(rec) + _raised_timeouts(rec)
    began = history.no_way_back_begun(rec)
    rule = rule_of_runbook(name)
    if began and rule is not None and name == rule.runbook and rule.rollback:
        out.append(f"  or go back to the version before it, with its backups: {command(rule.rollback, src)}")
    if not began and history.changes_begun(rec):
        out.append(
            f"  or call it off (it says what to put back by hand): {omsup_command('abandon', name, '--env', src)} --reason ..."
        )
    return out


def _outage(rec: Record) -> list[str]:
    """OMS stopped by this run and not serving again as far as it recorded: the outage goes on."""
    f = rec.facts
    if f.t1 and not f.serving_again and f.upgrade is None:
        since, what = f.t1, "stopped the old containers at T1"
    elif f.t3 and not rec.step_done(RESTART_OLD.key):
        since, what = f.t3, "stopped the new containers at T3"
    else:
        return []
    minutes = (datetime.now(UTC) - parse_utc(since)).total_seconds() / 60
    return [
        f"  note: OMS is down since {since} ({minutes:.0f} min ago) as far as this run recorded: it {what} "
        "and has not seen the consoles serve again since"
    ]


def _raised_timeouts(rec: Record) -> list[str]:
    """A run stopped while its dumps ran leaves the OceanBase tenant's global timeouts raised (for
    every session of the tenant) until it is resumed or called off, which set them back."""
    before = rec.facts.ob_globals_before
    if not before or rec.facts.ob_globals_restored:
        return []
    values = ", ".join(f"{k}={v}" for k, v in before.items())
    return [
        f"  note: it raised the OceanBase tenant's global timeouts for its dumps and stopped before setting them "
        f"back: they stay raised until it is resumed or called off (omsup abandon), which set them back to {values}"
    ]


def _settled_advice(env: Environment, records: dict[str, list[Record]]) -> list[str]:
    """No run is unfinished: the upgrades a rollback would undo, if any."""
    out = []
    for name in records:
        rule = rule_of_runbook(name)
        if rule is None or name != rule.runbook or not rule.rollback:
            continue
        try:
            up = history.undoable_among(records[name], name, env.name, env.state_dir)
        except PreconditionRefused:
            continue
        if up.data.rolled_back is None and up.data.status == RunStatus.COMPLETE:
            when = f"at T1 {up.facts.t1}" if up.facts.t1 else "when its backups were taken"
            out.append(
                f"nothing is under way. Run {up.run_id} of {name} upgraded to {rule.target} (completed "
                f"{up.data.finished}); to go back, which restores the metadata as it was {when} and "
                f"loses what OMS wrote since: {command(rule.rollback, env.source)}"
            )
    if not out and not Path(env.state_dir).is_dir():
        out.append(
            f"no run is recorded: {env.state_dir} does not exist. If runs were made on this environment, the "
            "environment file's state_dir points elsewhere: the runbooks would not find their ledgers either"
        )
    return out or ["nothing is under way: no unfinished run, no upgrade to roll back"]


def render(s: dict[str, Any]) -> str:
    """The survey as the terminal shows it."""
    lock = s["lock"]
    lines = [f"environment {s['environment']} ({s['environment_file']}), ledgers in {s['state_dir']}"]
    if not lock.get("read", True):
        lines.append(f"lock: not read: {lock['error']}")
    elif lock.get("held"):
        lines.append(f"lock: held by {lock['holder']}: {lock['why']}")
    else:
        lines.append(f"lock: free ({lock['path']})")
    for name, runs in s["runbooks"].items():
        lines += ["", name]
        for r in runs:
            lines += [f"  {line}" for line in _run_lines(r)]
    if s.get("rehearsals"):
        lines += ["", "rehearsals"]
        for r in s["rehearsals"]:
            lines.append(
                f"  {r['rehearsal']}: unreadable ({r['unreadable']}): {r['file']}"
                if "unreadable" in r
                else f"  {r['rehearsal']} at {r['at']}: {r['what']}: upgrade {r['upgrade']}, rollback {r['rollback']}, "
                f"outage {r['outage_seconds']} s; --rehearsal {r['file']}"
            )
    lines += [f"unreadable: {u}" for u in s["unreadable"]]
    lines += ["", "next:"] + [f"  {a}" for a in s["next"]]
    return redact("\n".join(lines))


def _run_lines(r: dict[str, Any]) -> list[str]:
    status = r["status"]
    if r["rolled_back"]:
        status += f", rolled back by run {r['rolled_back']['by']} at {r['rolled_back']['at']}"
    if r["abandoned"]:
        a = r["abandoned"]
        status += f" by {a['by']} at {a['at']}: {a['reason']}"
    v = r["versions"]
    head = f"run {r['run_id']}: {status}" + (f" ({v['before']} -> {v['target']})" if v else "")
    ended = f", ended {r['finished']}" if r["finished"] else ""
    lines = [head, f"  started {r['created']}{ended}, {r['attempts']} attempt(s); ledger {r['ledger']}"]
    steps = r["steps"]
    done = sum(1 for st in steps.values() if st == "done")
    lines.append(f"  steps: {done} done of {len(steps)} begun: " + ", ".join(f"{k} {st}" for k, st in steps.items()))
    if r["stopped_at"]:
        st = r["stopped_at"]
        said = st.get("error", "it began and did not end: the run was interrupted, killed, or runs now")
        lines.append(f"  stopped at {st['step']} ({st['title']}) at {st['at']}: {said}")
        if st.get("next"):
            lines.append(f"  it said what to do: {st['next']}")
    if r["undoes"]:
        lines.append(f"  undoes upgrade run {r['undoes']}")
    if r["times"]:
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in r["times"].items()))
    for b in r["backups"]:
        lines.append(f"  backup {b['db']}: {b['path']}, {b['size']} bytes, SHA-256 {b['sha256']}")
    if r["old_containers_kept"]:
        kept = ", ".join(f"{n} as {k}" for n, k in r["old_containers_kept"].items())
        lines.append(f"  old containers kept: {kept}")
    return lines
