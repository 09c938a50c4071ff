"""Rollback time and restore throughput: rollback_429 against doc 004's rollback commands as a script.

Each repetition: a fresh sandbox (2 nodes, --bulk-mb of extra cm rows so the dumps have weight),
upgrade_429, then either the runbook or the script. Restore throughput is the dumps' bytes over
the time from the first DROP to the last restored database (the runbook's restore step; the
script's RESTORE_START..RESTORE_END). Writes bench/results/rollback_429.json.

    python bench/rollback_vs_script.py --repeat 3 --bulk-mb 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upgrade_vs_script import ROOT, STATE, fresh, pytest_runbook, sh  # noqa: E402


def upgrade(env: str) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        sh(*pytest_runbook("upgrade_429", env, reports))
    ledger = json.loads(sorted((STATE / "ledgers" / "upgrade_429").glob("*/ledger.json"))[-1].read_text())
    return ledger["facts"]


def dump_bytes(facts: dict) -> int:
    return sum(b["size"] for b in facts["backups"])


def script_run(facts: dict) -> dict:
    t0 = time.monotonic()
    out = sh("bash", "bench/doc_rollback_429.sh").stdout
    total = time.monotonic() - t0
    m = {k: float(v) for k, v in (line.split() for line in out.splitlines())}
    secs = m["RESTORE_END"] - m["RESTORE_START"]
    return {"total": total, "restore_s": secs, "mb_per_s": dump_bytes(facts) / 1e6 / secs}


def runbook_run(env: str, facts: dict) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        t0 = time.monotonic()
        sh(*pytest_runbook("rollback_429", env, reports))
        total = time.monotonic() - t0
    ledger = json.loads(sorted((STATE / "ledgers" / "rollback_429").glob("*/ledger.json"))[-1].read_text())
    secs = ledger["steps"]["restore"]["seconds"]
    return {"total": total, "restore_s": secs, "mb_per_s": dump_bytes(facts) / 1e6 / secs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bulk-mb", default="200")
    ap.add_argument("--metadb", default="oceanbase", choices=["oceanbase", "mariadb"])
    a = ap.parse_args()
    up = ["--bulk-mb", a.bulk_mb, "--metadb", a.metadb]
    rows: dict[str, list[dict]] = {"script": [], "runbook": []}
    size = 0
    for _ in range(a.repeat):
        facts = upgrade(fresh(up))
        size = dump_bytes(facts)
        rows["script"].append(script_run(facts))
        env = fresh(up)
        facts = upgrade(env)
        rows["runbook"].append(runbook_run(env, facts))
    sh(sys.executable, "-m", "sandbox", "down")
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in ("total", "restore_s", "mb_per_s")} for k, v in rows.items()
    }
    print(f"dumps: {size / 1e6:.1f} MB; {a.metadb}; median of {a.repeat}")
    print(f"{'':10}{'total s':>10}{'restore s':>11}{'MB/s':>8}")
    for k in ("script", "runbook"):
        print(f"{k:10}{med[k]['total']:10.2f}{med[k]['restore_s']:11.2f}{med[k]['mb_per_s']:8.1f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"rollback_429-{a.metadb}.json").write_text(
        json.dumps({"runs": rows, "median": med, "dump_bytes": size, "metadb": a.metadb}, indent=2)
    )


if __name__ == "__main__":
    main()
