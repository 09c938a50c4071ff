"""The run folder: one self-contained record of what a run did, saw and decided.

``reports/<runbook>-<env>-<UTC start>/`` holds the allure-results, environment.properties,
categories, junit.xml, events.jsonl (every command, statement and request), a copy of the
ledger, summary.json and summary.md, and report.html: a single-file Allure Report 3 page
that opens from disk. Everything written here has passed ``redact``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from . import __version__
from .ledger import parse_utc, write_json_atomic
from .redact import redact, redact_obj

ROOT = Path(__file__).resolve().parent.parent
ALLURE_BIN = ROOT / "node_modules" / ".bin" / "allure"

# Failure categories (Allure categories.json; the same names as the errors' ``category``).
CATEGORIES = [
    {"name": "Precondition refused", "messageRegex": r".*(PreconditionRefused|ConfigError|LedgerError|Precondition refused).*"},
    {"name": "Backup problem", "messageRegex": r".*(BackupProblem|Backup problem).*"},
    {"name": "Container problem", "messageRegex": r".*(ContainerProblem|Container problem).*"},
    {"name": "MetaDB problem", "messageRegex": r".*(MetaDBProblem|MetaDB problem).*"},
    {"name": "OMS not ready", "messageRegex": r".*(NotReady|OMS not ready).*"},
    {"name": "Host problem", "messageRegex": r".*(HostProblem|Host problem).*"},
    {"name": "Check failed", "matchedStatuses": ["failed"]},
]


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def summary(run: Any, state: Any, operator: str) -> dict[str, Any]:
    f = run.ledger.facts
    up = f.get("upgrade") or {}
    nodes = f.get("nodes") or up.get("nodes") or {}
    versions = f.get("versions") or up.get("versions") or {}
    t1, t2, t3 = f.get("t1") or up.get("t1"), f.get("t2"), f.get("t3")
    downtime = None
    end = f.get("serving_again") or (f.get("t3") and None)
    if t1 and end:
        downtime = round((parse_utc(end) - parse_utc(t1)).total_seconds(), 1)
    steps = []
    for rs in run.runbook.steps:
        o = run.outcomes.get(rs.number, {})
        status = o.get("status") or state.results.get(rs.number) or "not run"
        if state.first_failure and rs.number > state.first_failure[0].number:
            status = "skipped"
        steps.append({"number": rs.number, "title": rs.step.title, "doc": rs.doc, "status": status,
                      "seconds": o.get("seconds"), "error": o.get("error"), "category": o.get("category")})
    failed = state.first_failure
    outcome = ("planned" if run.plan else "failed" if failed else
               "complete" if run.ledger.data.get("status") == "complete" else "partial")
    verified = f.get("verified") or {}
    return redact_obj({
        "outcome": outcome,
        "runbook": run.runbook.name,
        "title": run.runbook.title,
        "document": run.runbook.doc,
        "environment": run.env.name,
        "environment_file": run.env.source,
        "operator": operator,
        "project_version": __version__,
        "project_commit": _commit(),
        "run_id": run.ledger.run_id,
        "resumed": run.resumed,
        "ledger": str(run.ledger.path),
        "failed_step": None if not failed else {"step": failed[0].label, "reason": failed[1]},
        "versions": {"before": versions.get("source"), "target": versions.get("target")},
        "times": {"T1": t1, "T2": t2, "T3": t3, "serving_again": f.get("serving_again"), "downtime_seconds": downtime},
        "steps": steps,
        "backups": [{k: b.get(k) for k in ("db", "host", "path", "size", "sha256")}
                    for b in (f.get("backups") or up.get("backups") or [])],
        "binds": {n: {"before": v.get("binds"), "after_checked_equal": bool(v.get("new_container_id"))}
                  for n, v in nodes.items()},
        "oms_version": {"before": versions.get("oms_version_before"), "after": verified.get("oms_version")},
        "servers": verified.get("servers"),
        "oms_version_recovery": f.get("oms_version_recovery"),
        "operator_actions": list(run.runbook.notes),
        "plans": run.plans,
    })


def markdown(s: dict[str, Any]) -> str:
    lines = [f"# {s['runbook']} on {s['environment']}: {s['outcome'].upper()}", "",
             f"{s['title']} (doc {s['document']}). Run `{s['run_id']}` by {s['operator']}; "
             f"project {s['project_version']} ({s['project_commit']}).", ""]
    if s["failed_step"]:
        lines += [f"**Stopped at step {s['failed_step']['step']}**: {s['failed_step']['reason']}", ""]
    t = s["times"]
    lines += ["| T1 | T2 | T3 | downtime |", "|---|---|---|---|",
              f"| {t['T1'] or '-'} | {t['T2'] or '-'} | {t['T3'] or '-'} | "
              f"{'-' if t['downtime_seconds'] is None else str(t['downtime_seconds']) + ' s'} |", "",
              f"Versions: {s['versions']['before'] or '?'} -> {s['versions']['target'] or '?'}; "
              f"oms_version before {s['oms_version']['before']}, after {s['oms_version']['after']}", ""]
    if s.get("oms_version_recovery"):
        lines += ["docker_init.sh answered 'Version before 4.1.1 is not allowed to upgrade': the doc 004 recovery "
                  f"created oms_version with {s['oms_version_recovery']['version']} and ran it again.", ""]
    lines += ["## Steps", "", "| # | step | document | status | seconds |", "|---|---|---|---|---|"]
    for st in s["steps"]:
        lines.append(f"| {st['number']} | {st['title']} | {st['doc']} | {st['status']}"
                     f"{' (' + st['category'] + ')' if st.get('category') else ''} | {st['seconds'] or ''} |")
    lines += ["", "## Backups", "", "| database | host | file | bytes | SHA-256 |", "|---|---|---|---|---|"]
    for b in s["backups"]:
        lines.append(f"| {b['db']} | {b['host']} | {b['path']} | {b['size']} | `{b['sha256']}` |")
    lines += ["", "## Binds (identical before and after)", ""]
    for n, b in s["binds"].items():
        lines.append(f"- {n}: " + ", ".join(f"`{x}`" for x in (b["before"] or [])))
    if s.get("servers"):
        lines += ["", "## Servers", ""] + [f"- {x.get('ip')}: {x.get('status')}" for x in s["servers"]]
    if s["operator_actions"]:
        lines += ["", "## Operator actions the document asks for", ""] + [f"- {a}" for a in s["operator_actions"]]
    return "\n".join(lines) + "\n"


def environment_properties(run: Any, s: dict[str, Any]) -> str:
    props = {
        "environment": run.env.name, "runbook": run.runbook.name, "document": run.runbook.doc,
        "version.before": s["versions"]["before"], "version.target": s["versions"]["target"],
        "nodes": ",".join(f"{n.name}({n.ip})" for n in run.env.nodes),
        "regions": ",".join(r.name for r in run.env.regions), "operator": s["operator"],
        "project.version": s["project_version"], "project.commit": s["project_commit"], "outcome": s["outcome"],
    }
    return "".join(f"{k}={redact(v)}\n" for k, v in props.items())


def _summary_result(results: Path, s: dict[str, Any], md: str) -> None:
    """A 'Run summary' entry in the Allure results, so the HTML report shows the summary."""
    att = f"{uuid.uuid4()}-attachment.json"
    (results / att).write_text(json.dumps(s, indent=2))
    now = int(time.time() * 1000)
    status = {"failed": "failed", "complete": "passed", "planned": "passed"}.get(s["outcome"], "skipped")
    result = {
        "uuid": str(uuid.uuid4()), "historyId": f"{s['runbook']}-summary", "name": "Run summary",
        "fullName": f"{s['runbook']}.summary", "status": status, "stage": "finished", "start": now, "stop": now,
        "description": md, "labels": [{"name": "feature", "value": s["runbook"]}, {"name": "story", "value": "Run summary"},
                                      {"name": "runbook", "value": s["runbook"]}],
        "attachments": [{"name": "summary.json", "source": att, "type": "application/json"}],
        "statusDetails": {"message": (s["failed_step"] or {}).get("reason") or s["outcome"]},
    }
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result))


def write_run_folder(run: Any, state: Any, config: Any) -> None:
    from .plugin import operator

    folder: Path | None = state.report_dir
    if folder is None:
        return
    s = summary(run, state, operator(config))
    md = markdown(s)
    write_json_atomic(folder / "summary.json", s)
    (folder / "summary.md").write_text(md)
    write_json_atomic(folder / "ledger.json", redact_obj(run.ledger.data))
    results = folder / "allure-results"
    results.mkdir(exist_ok=True)
    (results / "environment.properties").write_text(environment_properties(run, s))
    (results / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    _summary_result(results, s, md)
    render_html(folder)
    for p in folder.rglob("*"):
        os.chmod(p, 0o700 if p.is_dir() else 0o600)


def render_html(folder: Path) -> Path | None:
    """Render ``folder/allure-results`` into the single file ``folder/report.html`` (Allure Report 3)."""
    results = folder / "allure-results"
    if not ALLURE_BIN.exists() or shutil.which("node") is None:
        (folder / "RENDER.txt").write_text(
            "The HTML report was not rendered: Node.js or the pinned Allure Report 3 is missing on this machine.\n"
            "Everything else of the run is in this folder. To render it later (on any machine with Node.js):\n"
            f"  npm ci   # in the project folder, installs allure@3.18.0\n  python -m omsup report {folder}\n")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        name = f"OMS CE runbook: {folder.name}"
        # grouped by step ("story"), so every step shows at the top level, passed or not
        p = subprocess.run([str(ALLURE_BIN), "awesome", str(results), "-o", tmp, "--single-file",
                            "--report-name", name, "--group-by", "story"], capture_output=True, text=True, timeout=300)
        index = Path(tmp) / "index.html"
        if p.returncode != 0 or not index.exists():
            (folder / "RENDER.txt").write_text(f"allure awesome failed (exit {p.returncode}):\n{redact(p.stderr[-3000:])}\n")
            return None
        out = folder / "report.html"
        shutil.copyfile(index, out)
    (folder / "RENDER.txt").unlink(missing_ok=True)
    return out
