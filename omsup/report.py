"""The run folder: one self-contained record of what a run did, saw and decided.

``reports/<runbook>-<env>-<UTC start>/`` holds the allure-results, environment.properties,
categories, junit.xml, events.jsonl (every command, statement and request), a copy of the
ledger, summary.json and summary.md, and report.html: a single-file Allure Report 3 page
that opens from disk. Everything written here has passed ``redact``. The step outcomes come
from the executor's ``Outcomes``, the same the terminal shows.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import shutil
import socket
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .adapters import allure
from .audit import AUDIT
from .ci_identity import ci_job
from .context import Run
from .envfile import Environment
from .errors import OmsupError
from .executor import ExitCode, Outcomes
from .record import Facts, parse_utc, replace_file, utc_now, write_json_atomic
from .redact import redact, redact_obj, sweep
from .runbook import Runbook

ROOT = Path(__file__).resolve().parent.parent
ALLURE_BIN = ROOT / "node_modules" / ".bin" / "allure"


def categories() -> list[dict[str, Any]]:
    """Allure's categories.json (the first that matches names a failure): an interruption, then the error classes
    themselves (each class's ``category``, matched by its name or its category in the message), then every other
    failed check."""
    by_name: dict[str, list[str]] = {}
    todo: list[type[OmsupError]] = [OmsupError]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls is not OmsupError:
            assert re.fullmatch(r"[A-Za-z][A-Za-z ]*", cls.category), cls  # a Java regex's literal, unescaped
            by_name.setdefault(cls.category, [cls.category]).insert(0, cls.__name__)
    out: list[dict[str, Any]] = [
        {"name": "Interrupted", "messageRegex": r".*(KeyboardInterrupt|Interrupted|interrupted by SIG).*"}
    ]
    out += [
        {"name": name, "messageRegex": ".*(" + "|".join(sorted(set(words))) + ").*"}
        for name, words in sorted(by_name.items())
    ]
    out.append({"name": "Check failed", "matchedStatuses": ["failed"]})
    return out


@dataclass(frozen=True)
class Ended:
    """What the report is made from, plain data: the runbook, the environment, the executor's outcomes, the run (its
    record and facts; None when it never started), and what the session knew at its end."""

    runbook: Runbook
    env: Environment
    outcomes: Outcomes
    run: Run | None
    plan: bool
    exit_code: ExitCode | None
    started: str | None
    operator: str
    lock_left: str | None = None
    report_dir: Path | None = None


def control_machine() -> dict[str, str]:
    """Where the run was driven from: this machine, its user, its Python."""
    return {"host": socket.gethostname(), "user": getpass.getuser(), "python": platform.python_version()}


def summary(session: Ended) -> dict[str, Any]:
    run, book, env, outcomes = session.run, session.runbook, session.env, session.outcomes
    f = run.facts if run is not None else None
    up = f.upgrade if f is not None else None
    nodes = (f.nodes or (up.nodes if up else {})) if f is not None else {}
    versions = (f.versions or (up.versions if up else None)) if f is not None else None
    t1 = (f.t1 or (up.t1 if up else None)) if f is not None else None
    end = f.serving_again if f is not None else None
    downtime = round((parse_utc(end) - parse_utc(t1)).total_seconds(), 1) if t1 and end else None
    steps = [
        {
            "number": o.rs.number,
            "title": o.rs.step.title,
            "doc": o.rs.doc,
            "status": o.status.value,
            "seconds": o.seconds,
            "error": o.error,
            "category": o.category,
        }
        for o in outcomes
    ]
    failed = outcomes.first_failure
    complete = run is not None and run.record.data.status == "complete"
    code = session.exit_code
    interrupted = code is not None and code.name == "INTERRUPTED"
    outcome = (
        ("refused" if failed else "planned")
        if session.plan
        else "interrupted"
        if interrupted
        else "failed"
        if failed
        else "complete"
        if complete
        else "partial"
    )
    backups = (f.backups or (up.backups if up else [])) if f is not None else []
    verified = f.verified if f is not None else None
    return dict(
        redact_obj(
            {
                "outcome": outcome,
                "exit_code": int(code) if code is not None else None,
                "runbook": book.name,
                "kind": book.kind.value,
                "title": book.title,
                "document": book.doc,
                "environment": env.name,
                "environment_file": env.source,
                "operator": session.operator,
                "ci_job": ci_job(os.environ),  # the CI job that ran it (system, user, job URL), or None
                "project_version": __version__,  # of the installed package (its metadata), not of a checkout
                "environment_sha256": env.sha256,
                "control_machine": control_machine(),
                "warnings": env.transport_warnings()
                + (list(f.warnings) if f is not None else [])
                + ([session.lock_left] if session.lock_left else []),
                "run_id": run.record.run_id if run is not None else None,
                "resumed": run.resumed if run is not None else False,
                "ledger": str(run.record.path) if run is not None else None,
                "failed_step": None
                if not failed
                else {
                    "step": failed.rs.label,
                    "reason": f"{failed.category}: {failed.error}",
                    "next": failed.hint,
                    "resumable": failed.resumable,
                    "nothing_to_do": failed.nothing_to_do,
                },
                "versions": {
                    "before": versions.source if versions else None,
                    "target": versions.target if versions else None,
                },
                "times": {
                    "run_started": session.started,
                    "run_ended": utc_now(),
                    "T1": t1,
                    "T2": f.t2 if f else None,
                    "T3": f.t3 if f else None,
                    "serving_again": end,
                    "downtime_seconds": downtime,
                },
                "steps": steps,
                "backups": [
                    {"db": b.db, "host": b.host, "path": b.path, "size": b.size, "sha256": b.sha256} for b in backups
                ],
                "binds": {
                    n: {"before": v.binds, "after_checked_equal": bool(v.new_container_id)} for n, v in nodes.items()
                },
                "oms_version": {
                    "before": versions.oms_version_before if versions else None,
                    "after": verified.oms_version if verified else None,
                },
                "servers": verified.servers if verified else None,
                "oms_version_recovery": f.oms_version_recovery.model_dump() if f and f.oms_version_recovery else None,
                "metadb": f.metadb_engine if f else None,
                "heartbeats": {
                    "before_t1": {db: r.model_dump() for db, r in (f.prune_online or {}).items()} if f else {},
                    "at_the_document_step": {db: r.model_dump() for db, r in (f.prune or {}).items()} if f else {},
                    "purge_before_t1": f.prune_purge.model_dump() if f and f.prune_purge else None,
                },
                "hot": _hot_summary(f) if f is not None and (f.hot or f.hot_back) else None,
                "rehearsal": _rehearsal_summary(book.kind.value, f),
                "assumptions": f.assumptions if f else None,
                "operator_actions": list(book.notes),
                "plan": [
                    {
                        "step": o.rs.label,
                        "number": o.rs.number,
                        "doc": o.rs.doc,
                        "lines": run.plans[o.rs.label],
                        "actions": plan_actions(run.plans[o.rs.label], [n.name for n in env.nodes]),
                    }
                    for o in outcomes
                    if run is not None and o.rs.label in run.plans
                ],
            }
        )
    )


def plan_actions(lines: list[str], nodes: list[str]) -> list[dict[str, str | None]]:
    """A step's plan lines as actions: the node a line begins with ("n1: ..."), or None for the whole run."""
    out: list[dict[str, str | None]] = []
    for line in lines:
        node = next((n for n in nodes if line.startswith(f"{n}: ")), None)
        out.append({"node": node, "action": line[len(node) + 2 :] if node else line})
    return out


def _hot_summary(f: Facts) -> dict[str, Any]:
    """The hot upgrade (or its rollback) per node: no T1/T2; how long the console and the CM were unavailable, the
    container's backup folder, and the processes that outlived the management programs' stop."""
    up = f.upgrade.hot if f.upgrade else {}
    return {
        "nodes": {
            n: {
                "unavailable_seconds": h.unavailable_s,
                "backup_folder": h.backup_folder,
                "hot_update_exit": h.init_rc,
                "kept_running": [f"{p.pid} {p.args}" for p in h.survivors if p not in (h.survivors_ended or [])],
                "ended": [f"{p.pid} {p.args}" for p in h.survivors_ended or []],
            }
            for n, h in f.hot.items()
        },
        "rolled_back": {
            n: {
                "unavailable_seconds": b.unavailable_s,
                "backup_folder": up[n].backup_folder if n in up else None,
                "docker_init_exit": b.init_rc,
                "started_after_docker_init": b.started,
            }
            for n, b in f.hot_back.items()
        },
        "oms_version_set_back": f.oms_version_set_back,
    }


def _rehearsal_summary(kind: str, f: Facts | None) -> dict[str, Any] | None:
    """A rehearsal's: what it rehearsed, with what, and what it observed. An upgrade's or a rollback's: the
    rehearsal it followed, or ``{"rehearsed": False}``."""
    if kind == "rehearsal":
        rf = (f.rehearsal if f is not None else None) or {}
        return {
            "rehearsed": rf.get("upgrade_runbook"),
            "and": rf.get("rollback_runbook"),
            "identities": {k: v for k, v in (rf.get("identities") or {}).items() if k != "dumps"},
            "dumps": {db: d.get("size") for db, d in ((rf.get("identities") or {}).get("dumps") or {}).items()},
            "nodes": sorted(rf.get("nodes") or {}),
            "replica": rf.get("replica"),
            "host_short_of": rf.get("host_short_of"),
            "scratch_metadb": rf.get("scratch_metadb"),
            "upgrade_seconds": (rf.get("upgrade") or {}).get("seconds"),
            "rollback_seconds": (rf.get("rollback") or {}).get("seconds"),
            "upgrade": (rf.get("upgrade") or {}).get("outcome"),
            "rollback": (rf.get("rollback") or {}).get("outcome"),
            "outage_seconds": rf.get("outage_seconds"),
            "observed": rf.get("observed"),
            "replica_removed": rf.get("replica_removed"),
            "dir": rf.get("dir"),
        }
    if kind in ("upgrade", "rollback"):
        return (f.rehearsed_with if f is not None else None) or {"rehearsed": False}
    return None


def rehearsal_ticket(s: dict[str, Any]) -> list[str]:
    """A rehearsal's summary as its own change ticket: what was cloned, what ran, what the product did, and what
    production will do differently."""
    r = s.get("rehearsal") or {}
    if s.get("kind") != "rehearsal" or not r:
        return []
    ident = r.get("identities") or {}
    obs = r.get("observed") or {}
    replica = r.get("replica") or {}
    init = obs.get("init") or {}
    lines = [
        "## What was cloned",
        "",
        f"- the MetaDB ({(ident.get('metadb') or {}).get('version')}, time zone {ident.get('metadb_time_zone')}), "
        f"dumped at {ident.get('dumped_at')}: "
        + ", ".join(f"{db} {size} bytes" for db, size in (r.get("dumps") or {}).items()),
        f"- the old image {ident.get('old_image_id')} ({ident.get('old_image_size')} bytes), the package "
        f"{ident.get('package')} (SHA-256 {ident.get('package_sha256')})",
        f"- into the scratch MetaDB: {r.get('scratch_metadb')}",
        f"- config.yaml and the container of node(s) {', '.join(r.get('nodes') or [])}, mapped to the replica's "
        f"addresses {((replica.get('address_mapping') or {}).get('ips'))}",
        "",
        "## What ran",
        "",
        f"- {r.get('rehearsed')}: {r.get('upgrade')} in {r.get('upgrade_seconds')} s, outage {r.get('outage_seconds')} s",
        f"- {r.get('and')}: {r.get('rollback')} in {r.get('rollback_seconds')} s",
        f"- the replica was {'removed' if r.get('replica_removed') else 'not removed (see the warnings)'}",
        "",
        "## What the product did where the documents are silent",
        "",
        *[
            f"- {node}: docker_init.sh ran {len(tries)} time(s), exit {', '.join(str(t.get('rc')) for t in tries)}, "
            f"flag file {'written' if any(t.get('flag') for t in tries) else 'none'}"
            for node, tries in init.items()
        ],
        f"- oms_version after the init: {(obs.get('oms_version') or {}).get('after')} (names the target: "
        f"{(obs.get('oms_version') or {}).get('names_the_target')})",
        f"- consoles started by hand after the init: {', '.join(obs.get('consoles_started_by_hand') or []) or 'none'}",
        f"- the old release served on the clone without its init: {replica.get('old_release_served_without_init')}",
        *_probed_lines(obs),
        "",
        "## What production will do differently",
        "",
        "- its own addresses, MetaDB and mounts (logs, store, run were not copied: the replica started them empty)",
        "- its tasks reach their sources and destinations (the replica reached nothing outside itself), so their",
        "  components do work the replica's did not",
        "- its machine's speed: the outage above was measured on the rehearsal host"
        + (f", which lacks {'; '.join(r['host_short_of'])}" if r.get("host_short_of") else ""),
        "",
    ]
    return lines


def _probed_lines(obs: dict[str, Any]) -> list[str]:
    """What the probe of the replica read after the rehearsed upgrade and after its rollback (steps/rehearsal.py)."""
    lines = []
    for which in ("upgrade", "rollback"):
        p = obs.get(f"after_{which}") or {}
        if not p.get("assumptions"):
            continue
        held = p["assumptions"]
        broken = sorted(k for k, v in held.items() if v == "BROKEN")
        programs = {
            n: (v or {}).get("programs") if isinstance(v, dict) else v for n, v in (p.get("programs") or {}).items()
        }
        lines += [
            f"- after the {which}, the probe: {sum(v in ('holds', 'observed') for v in held.values())} of "
            f"{len(held)} assumptions held or observed" + (f", BROKEN: {', '.join(broken)}" if broken else ""),
            f"  - the start line: {p.get('start_line')}",
            f"  - about the heartbeat period: {p.get('heartbeat_period_s')} s until every heartbeat moved; "
            f"heartbeat age by the MetaDB's clock {p.get('heartbeat_age_s')}",
            f"  - ha.config read again: {p.get('ha_config')}",
            f"  - programs: {programs}",
            f"  - Connectors: {p.get('connectors')}; projects: {p.get('projects')}",
        ]
    ha = obs.get("ha_as_written")
    if ha:
        lines.append(
            "- ha.config after the upgrade, as written: "
            + ("kept" if ha.get("kept") else f"NOT kept: {ha.get('differ')}")
        )
    return lines


def rehearsal_line(s: dict[str, Any]) -> str | None:
    """The summary's one line on rehearsal: "rehearsed on DATE: outage N s predicted", or "not rehearsed"."""
    r = s.get("rehearsal")
    if not r or s.get("kind") not in ("upgrade", "rollback"):
        return None
    if not r.get("rehearsed"):
        return "Not rehearsed (runbooks/rehearse_*, then --rehearsal FILE)."
    return (
        f"Rehearsed on {r.get('at')} (rehearsal {r.get('rehearsal')}, {r.get('file')}): outage "
        f"{r.get('outage_seconds')} s predicted."
    )


def markdown(s: dict[str, Any]) -> str:
    lines = [
        f"# {s['runbook']} on {s['environment']}: {s['outcome'].upper()}",
        "",
        f"{s['title']} (doc {s['document']}). Run `{s['run_id']}` by {s['operator']} from "
        f"{s['control_machine']['user']}@{s['control_machine']['host']}, omsup {s['project_version']}.",
        "",
        *(
            [f"CI job: {s['ci_job']['system']}, {s['ci_job']['job_url'] or '(no job URL)'}.", ""]
            if s.get("ci_job")
            else []
        ),
        f"Environment file `{s['environment_file']}` (SHA-256 `{s['environment_sha256']}`). "
        f"Started {s['times']['run_started']}, ended {s['times']['run_ended']} (UTC).",
        "",
    ]
    lines += [f"> **Warning**: {w}" for w in s["warnings"]] + ([""] if s["warnings"] else [])
    rehearsed = rehearsal_line(s)
    if rehearsed:
        lines += [rehearsed, ""]
    lines += rehearsal_ticket(s)
    if s["failed_step"]:
        lines += [f"**Stopped at step {s['failed_step']['step']}**: {s['failed_step']['reason']}", ""]
        if s["failed_step"].get("next"):
            lines += [f"**Next**: {s['failed_step']['next']}", ""]
        if s["failed_step"].get("nothing_to_do"):
            lines += ["Nothing to do: this run changed nothing and is closed.", ""]
        elif s["failed_step"].get("resumable") is False:
            lines += ["This run is not to be resumed.", ""]
    t = s["times"]
    lines += [
        "| T1 | T2 | T3 | downtime |",
        "|---|---|---|---|",
        f"| {t['T1'] or '-'} | {t['T2'] or '-'} | {t['T3'] or '-'} | "
        f"{'-' if t['downtime_seconds'] is None else str(t['downtime_seconds']) + ' s'} |",
        "",
        f"Versions: {s['versions']['before'] or '?'} -> {s['versions']['target'] or '?'}; "
        f"oms_version before {s['oms_version']['before']}, after {s['oms_version']['after']}",
        "",
    ]
    m = s.get("metadb")
    if m:
        lines += [
            f"MetaDB: {m.get('engine')} ({m.get('version')}); "
            + (
                f"**not a documented engine for OMS {m.get('oms')}**, run deliberately: {m['override']}"
                if m.get("override")
                else f"documented: {m.get('supported_by')}"
            ),
            "",
        ]
    hb = s.get("heartbeats") or {}
    for db, r in (hb.get("before_t1") or {}).items():
        at_step = (hb.get("at_the_document_step") or {}).get(db)
        lines += [
            f"Heartbeats of {db}: {r['deleted']} old rows (ids below {r['below_id']}) deleted before T1 while OMS ran, "
            f"in {r['statements']} statements from {r['started']} to {r['ended']}; the document's DELETE then "
            + (f"deleted {at_step['deleted']} at its step." if at_step else "had not run yet."),
            "",
        ]
    purge = hb.get("purge_before_t1")
    if purge:
        lines += [
            (
                f"The MetaDB had removed those rows before T1 ({purge['seconds']} s of waiting; {purge['method']}): "
                "the document's DELETE did not step over them."
                if purge["settled"]
                else f"The MetaDB had not removed those rows after {purge['seconds']} s of waiting ({purge['method']}: "
                f"{purge['seen']}); the run went on."
            ),
            "",
        ]
    hot = s.get("hot")
    if hot:
        lines += ["## Hot upgrade, per node (no T1/T2: the containers kept running)", ""]
        for n, h in hot["nodes"].items():
            lines.append(
                f"- {n}: console and CM unavailable {h['unavailable_seconds']} s; the container's files before in "
                f"`{h['backup_folder']}`; of the processes that outlived the stop, {len(h['kept_running'])} kept running"
                + (f", {len(h['ended'])} ended: {h['ended']}" if h["ended"] else "")
            )
        for n, b in hot["rolled_back"].items():
            lines.append(
                f"- {n} rolled back from `{b['backup_folder']}`: unavailable {b['unavailable_seconds']} s; docker_init.sh "
                f"exit {b['docker_init_exit']}"
                + (
                    f"; started after it: {', '.join(b['started_after_docker_init'])}"
                    if b["started_after_docker_init"]
                    else ""
                )
            )
        if hot["oms_version_set_back"] is not None:
            lines.append(f"- rm.oms_version set back to {hot['oms_version_set_back']}")
        lines.append("")
    if s.get("oms_version_recovery"):
        lines += [
            "docker_init.sh answered 'Version before 4.1.1 is not allowed to upgrade': the doc 004 recovery "
            f"created oms_version with {s['oms_version_recovery']['version']} and ran it again.",
            "",
        ]
    if s["plan"]:
        lines += [
            "## Plan (change ticket)",
            "",
            "What each step will do, in this order, on which node; the document step it implements. "
            "Nothing was changed to make this plan."
            if s["outcome"] == "planned"
            else "What each step planned to do before it ran.",
            "",
        ]
        for p in s["plan"]:
            lines += [f"### {p['step']} (doc {p['doc']})", ""] + [f"- {x}" for x in p["lines"]] + [""]
    lines += ["## Steps", "", "| # | step | document | status | seconds |", "|---|---|---|---|---|"]
    for st in s["steps"]:
        lines.append(
            f"| {st['number']} | {st['title']} | {st['doc']} | {st['status']}"
            f"{' (' + st['category'] + ')' if st.get('category') else ''} | {st['seconds'] or ''} |"
        )
    lines += ["", "## Backups", "", "| database | host | file | bytes | SHA-256 |", "|---|---|---|---|---|"]
    for b in s["backups"]:
        lines.append(f"| {b['db']} | {b['host']} | {b['path']} | {b['size']} | `{b['sha256']}` |")
    lines += ["", "## Binds (identical before and after)", ""]
    for n, b in s["binds"].items():
        lines.append(f"- {n}: " + ", ".join(f"`{x}`" for x in (b["before"] or [])))
    if s.get("servers"):
        lines += ["", "## Servers", ""] + [
            f"- {x.get('node')} ({x.get('ip')}): {x.get('host_status')}, supervisor heartbeat {x.get('heartbeat_age_s')} s old"
            for x in s["servers"]
        ]
    if s["operator_actions"]:
        lines += ["", "## Operator actions the document asks for", ""] + [f"- {a}" for a in s["operator_actions"]]
    return "\n".join(lines) + "\n"


def environment_properties(session: Ended, s: dict[str, Any]) -> str:
    env = session.env
    t = s["times"]
    # Allure's landing page shows the first eight without a click: what happened and when come first
    props = {
        "outcome": s["outcome"],
        "downtime": f"{t['downtime_seconds']} s (T1 to serving again)"
        if t.get("downtime_seconds") is not None
        else "-",
        "T1.utc": t.get("T1") or "-",
        "T2.utc": t.get("T2") or "-",
        "environment": env.name,
        "runbook": session.runbook.name,
        "kind": s["kind"],
        "document": session.runbook.doc,
        "version.before": s["versions"]["before"],
        "version.target": s["versions"]["target"],
        "nodes": ",".join(f"{n.name}({n.ip})" for n in env.nodes),
        "regions": ",".join(r.name for r in env.regions),
        "operator": s["operator"],
        "ci.job": (s["ci_job"] or {}).get("job_url") or "",
        "project.version": s["project_version"],
        "environment.sha256": s["environment_sha256"],
        "control.machine": f"{s['control_machine']['user']}@{s['control_machine']['host']}",
        "run.started": s["times"]["run_started"],
        "run.ended": s["times"]["run_ended"],
    }
    return "".join(f"{k}={redact(v)}\n" for k, v in props.items())


def junit_xml(s: dict[str, Any]) -> str:
    """junit.xml from the summary: one testcase per step (its number, title and time), a failure with the reason and
    what to do next, a step after a failure or past --until as skipped, and the run's exit code and outcome as the
    suite's properties (``omsup.exit_code``, ``omsup.outcome``), which a CI job reads without the terminal."""
    code = s["exit_code"]
    steps = s["steps"]
    suite = ET.Element(
        "testsuite",
        name=f"{s['runbook']} on {s['environment']}",
        tests=str(len(steps)),
        failures=str(sum(st["status"] == "failed" for st in steps)),
        errors="0",
        skipped=str(sum(st["status"] in ("skipped", "not run") for st in steps)),
        time=f"{sum(st['seconds'] or 0 for st in steps):.3f}",
        timestamp=s["times"]["run_started"] or "",
        hostname=s["control_machine"]["host"],
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("omsup.exit_code", "" if code is None else str(code)),
        ("omsup.outcome", "" if code is None else ExitCode(code).name.lower()),
        ("omsup.run_id", s["run_id"] or ""),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for st in steps:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{s['runbook']}",
            name=f"{st['number']}. {st['title']}",
            time=f"{st['seconds'] or 0:.3f}",
        )
        if st["status"] == "failed":
            failure = ET.SubElement(case, "failure", message=f"{st['category']}: {st['error']}"[:2000])
            f = s["failed_step"] or {}
            failure.text = f"{st['error']}\nnext: {f.get('next')}" if f.get("next") else st["error"]
        elif st["status"] in ("skipped", "not run"):
            ET.SubElement(case, "skipped", message=st["status"])
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _summary_result(results: Path, s: dict[str, Any], md: str) -> None:
    """The summary as the report's global attachments (summary.md, summary.json: Allure 3 reads
    ``<uuid>-globals.json``), not as a test: the report lists the runbook's steps and nothing else."""
    now = int(time.time() * 1000)
    attachments = []
    for name, body, kind, ext in (
        ("summary.md", md, "text/markdown", "md"),
        ("summary.json", json.dumps(s, indent=2), "application/json", "json"),
    ):
        source = f"{uuid.uuid4()}-attachment.{ext}"
        replace_file(results / source, body)
        attachments.append({"name": name, "source": source, "type": kind, "timestamp": now})
    replace_file(results / f"{uuid.uuid4()}-globals.json", json.dumps({"attachments": attachments, "errors": []}))


def write_run_folder(session: Ended) -> None:
    folder = session.report_dir
    if folder is None:
        return
    s = summary(session)
    AUDIT.milestone(
        "run_end",
        session.env.name,
        f"{'plan' if session.plan else 'run'} of {s['runbook']}: exit {s['exit_code']}",
        s["outcome"],
        round((parse_utc(s["times"]["run_ended"]) - parse_utc(s["times"]["run_started"])).total_seconds(), 2)
        if s["times"].get("run_started") and s["times"].get("run_ended")
        else 0.0,
    )
    md = markdown(s)
    write_json_atomic(folder / "summary.json", s)
    replace_file(folder / "summary.md", md)
    replace_file(folder / "junit.xml", junit_xml(s))
    rehearsed_in = (s.get("rehearsal") or {}).get("dir") if s.get("kind") == "rehearsal" else None
    observed = Path(rehearsed_in) / "rehearsal.json" if rehearsed_in else None  # none in a plan
    if observed is not None and observed.is_file():
        replace_file(folder / "rehearsal.json", observed.read_text())
    if session.run is not None:
        write_json_atomic(
            folder / "ledger.json", redact_obj(session.run.record.data.model_dump(mode="json", by_alias=True))
        )
    results = folder / "allure-results"
    results.mkdir(exist_ok=True)
    replace_file(results / "environment.properties", environment_properties(session, s))
    replace_file(results / "categories.json", json.dumps(categories(), indent=2))
    _summary_result(results, s, md)
    sweep(folder)  # everything in the folder redacted before the HTML embeds it
    render_html(folder)
    for p in folder.rglob("*"):
        os.chmod(p, 0o700 if p.is_dir() else 0o600)


OUTSIDE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.I)
INLINE_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.I | re.S)
# the page may load only what it holds itself: an auditor's browser makes no request because of it
CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "script-src 'unsafe-inline' 'unsafe-eval' data: blob:; style-src 'unsafe-inline' data: blob:; "
    'img-src data: blob:; font-src data: blob:; connect-src data: blob:; worker-src data: blob:">'
)


def offline(html: str) -> str:
    """Allure's single file without what reaches outside hosts (the analytics script Allure 3 embeds and its
    inline setup), and with a Content-Security-Policy that forbids any other request."""
    html = OUTSIDE_SCRIPT.sub("", html)
    html = INLINE_SCRIPT.sub(lambda m: "" if "gtag(" in m.group(1) or "dataLayer" in m.group(1) else m.group(0), html)
    return re.sub(r"<head\b[^>]*>", lambda m: m.group(0) + CSP, html, count=1, flags=re.I)


def find_allure() -> Path | None:
    """Allure Report 3: $OMSUP_ALLURE, else the checkout's node_modules (npm ci), else `allure` on PATH."""
    named = os.environ.get("OMSUP_ALLURE")
    if named:
        return Path(named) if Path(named).is_file() else None
    if ALLURE_BIN.exists():
        return ALLURE_BIN
    found = shutil.which("allure")
    return Path(found) if found else None


def render_html(folder: Path) -> Path | None:
    """Render ``folder/allure-results`` into the single file ``folder/report.html`` (Allure Report 3)."""
    results = folder / "allure-results"
    binary = find_allure()
    if binary is None or shutil.which("node") is None:
        replace_file(
            folder / "RENDER.txt",
            "The HTML report was not rendered: "
            + ("Node.js" if shutil.which("node") is None else "Allure Report 3")
            + " was not found on this machine (OMSUP_ALLURE, the checkout's node_modules, `allure` on PATH).\n"
            "Everything else of the run is in this folder. To render it later, on any machine with Node.js:\n"
            "  npm install -g allure@3.18.0     # or: npm ci in an omsup checkout; or set OMSUP_ALLURE=<its path>\n"
            f"  omsup report {folder}\n",
        )
        return None
    with tempfile.TemporaryDirectory() as tmp:
        name = f"OMS CE runbook: {folder.name}"
        # grouped by step ("story"), so every step shows at the top level, passed or not
        p = allure.render_single_file(binary, results, Path(tmp), name, group_by="story")
        index = Path(tmp) / "index.html"
        if p.returncode != 0 or not index.exists():
            replace_file(
                folder / "RENDER.txt", f"allure awesome failed (exit {p.returncode}):\n{redact(p.stderr)[-3000:]}\n"
            )
            return None
        out = folder / "report.html"
        replace_file(out, offline(index.read_text(encoding="utf-8")))
    (folder / "RENDER.txt").unlink(missing_ok=True)
    return out
