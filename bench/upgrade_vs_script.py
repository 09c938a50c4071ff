"""Downtime and total time: upgrade_429 (the runbook) against doc 004's commands as a shell script.

Each repetition starts from a fresh sandbox (2 nodes at 4.2.8-CE unless --nodes/--regions say
otherwise). Downtime is T1 (the old containers stop) until every node serves again; total is the
wall time of the whole procedure. Prints a table and writes bench/results/upgrade_429.json.

    python bench/upgrade_vs_script.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("OMSUP_SANDBOX_DIR", "/tmp/omsup-sandbox"))
os.environ.setdefault("OMSUP_PYTHON", sys.executable)  # for the shell scripts (bench/sandbox_client.sh)


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True, **kw)


def fresh(up_args: list[str]) -> str:
    sh(sys.executable, "-m", "sandbox", "down")
    return sh(sys.executable, "-m", "sandbox", "up", *up_args).stdout.strip().splitlines()[-1]


def pytest_runbook(name: str, env_file: str, reports: str) -> list[str]:
    """The command line that runs runbook ``name`` on ``env_file``, its run folder under ``reports``."""
    return [
        sys.executable,
        "-m",
        "pytest",
        f"runbooks/{name}",
        "--env",
        env_file,
        "--report-root",
        reports,
        "-q",
        "-p",
        "no:cacheprovider",
    ]


def script_run() -> dict:
    t0 = time.monotonic()
    out = sh("bash", "bench/doc_upgrade_429.sh").stdout
    total = time.monotonic() - t0
    marks = dict(line.split() for line in out.splitlines() if line.split()[0] in ("T1", "SERVING", "T2"))
    return {"total": total, "downtime": float(marks["SERVING"]) - float(marks["T1"])}


def runbook_run(env_file: str) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        t0 = time.monotonic()
        sh(*pytest_runbook("upgrade_429", env_file, reports))
        total = time.monotonic() - t0
    led = json.loads(sorted((STATE / "ledgers" / "upgrade_429").glob("*/ledger.json"))[-1].read_text())

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    t1, back = at(led["facts"]["t1"]), at(led["facts"]["serving_again"])
    # the procedure alone: from the ledger's creation to the last step's end (no interpreter start-up,
    # no report rendering)
    procedure = (at(led["finished"]) - at(led["created"])).total_seconds()
    steps = {k: v.get("seconds") for k, v in led["steps"].items()}  # where the time went, step by step
    before_t1 = {  # the online prune and the wait until the MetaDB removed those rows (not downtime)
        "prune_online": led["facts"].get("prune_online"),
        "purge_wait": led["facts"].get("prune_purge"),
    }
    return {
        "total": total,
        "downtime": (back - t1).total_seconds(),
        "procedure": procedure,
        "steps": steps,
        "before_t1": before_t1,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", default="2")
    ap.add_argument("--heartbeat-rows", default="100000", help="heartbeat rows in cm_hb (doc 004 prunes them)")
    ap.add_argument("--bulk-mb", default="0", help="MiB of configuration history in cm")
    ap.add_argument("--metadb", default="oceanbase", choices=["oceanbase", "mariadb"])
    ap.add_argument("--runbook-only", action="store_true", help="time the runbook alone (no script runs)")
    a = ap.parse_args()
    up = ["--nodes", a.nodes, "--heartbeat-rows", a.heartbeat_rows, "--bulk-mb", a.bulk_mb, "--metadb", a.metadb]
    rows = {"script": [], "runbook": []}
    for _ in range(a.repeat):
        if not a.runbook_only:
            fresh(up)
            rows["script"].append(script_run())
        env = fresh(up)
        rows["runbook"].append(runbook_run(env))
    sh(sys.executable, "-m", "sandbox", "down")
    label = f"{a.metadb}, {a.nodes} node(s), {a.heartbeat_rows} heartbeat rows, {a.bulk_mb} MiB history"
    name = f"upgrade_429-{a.metadb}-n{a.nodes}-hb{a.heartbeat_rows}-mb{a.bulk_mb}.json"
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    if a.runbook_only:
        med = {m: statistics.median(r[m] for r in rows["runbook"]) for m in ("downtime", "total", "procedure")}
        print(
            f"runbook alone ({label}, median of {a.repeat}): downtime {med['downtime']:.2f} s, "
            f"total {med['total']:.2f} s, procedure {med['procedure']:.2f} s"
        )
        (out / name).write_text(json.dumps({"runs": rows, "median": {"runbook": med}, "setup": label}, indent=2))
        return
    for r in rows["script"]:
        r["procedure"] = r["total"]
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in ("downtime", "total", "procedure")} for k, v in rows.items()
    }
    ratio = {m: med["runbook"][m] / med["script"][m] for m in ("downtime", "total", "procedure")}
    print(f"{'':10}{'downtime s':>12}{'total s':>10}{'procedure s':>13}   (median of {a.repeat}; {label})")
    for k in ("script", "runbook"):
        print(f"{k:10}{med[k]['downtime']:12.2f}{med[k]['total']:10.2f}{med[k]['procedure']:13.2f}")
    print(
        f"{'ratio':10}{ratio['downtime']:12.2f}{ratio['total']:10.2f}{ratio['procedure']:13.2f}"
        "   (goal: downtime <= 0.5, <= 0.4 on a big MetaDB)"
    )
    (out / name).write_text(json.dumps({"runs": rows, "median": med, "ratio": ratio, "setup": label}, indent=2))


if __name__ == "__main__":
    main()
