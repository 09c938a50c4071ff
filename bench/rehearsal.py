"""The dress rehearsal (rehearse_429) against the production upgrade it rehearses, on the same data.

Each repetition starts from a fresh 2-node 4.2.8-CE sandbox ("production"), runs rehearse_429 (its wall time, and
the time of its steps: what it took, the replica, the rehearsed upgrade and rollback), then upgrade_429 --rehearsal
on production (its wall time). Compares the outage the rehearsal predicted (the replica's T1 to serving again)
with the outage the production run measured (its own T1 to serving again).

Prints a table and writes bench/results/rehearsal.json.

    python bench/rehearsal.py --repeat 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=check)


def newest(reports: Path, name: str) -> Path:
    return sorted(reports.glob(f"{name}-sandbox-*"), key=lambda p: p.stat().st_mtime)[-1]


def once(reports: Path) -> dict:
    sh(sys.executable, "-m", "sandbox", "down")
    env = sh(sys.executable, "-m", "sandbox", "up", "--version", "4.2.8-CE", "--nodes", "2").stdout.split()[-1]
    common = ["--env", env, "--report-root", str(reports), "-p", "no:cacheprovider", "-q"]
    t0 = time.monotonic()
    r = sh(sys.executable, "-m", "pytest", "runbooks/rehearse_429", *common, check=False)
    rehearse_s = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"rehearse_429 exited {r.returncode}:\n{r.stdout[-3000:]}")
    folder = newest(reports, "rehearse_429")
    rehearsal = json.loads((folder / "rehearsal.json").read_text())
    steps = {s["title"]: s["seconds"] for s in json.loads((folder / "summary.json").read_text())["steps"]}
    t0 = time.monotonic()
    u = sh(
        sys.executable, "-m", "pytest", "runbooks/upgrade_429", *common, "--rehearsal", str(folder / "rehearsal.json"),
        check=False,
    )  # fmt: skip
    upgrade_s = time.monotonic() - t0
    if u.returncode != 0:
        raise SystemExit(f"upgrade_429 --rehearsal exited {u.returncode}:\n{u.stdout[-3000:]}")
    measured = json.loads((newest(reports, "upgrade_429") / "summary.json").read_text())["times"]["downtime_seconds"]
    return {
        "rehearse_s": round(rehearse_s, 1),
        "rehearsal_steps_s": steps,
        "production_upgrade_s": round(upgrade_s, 1),
        "outage_predicted_s": rehearsal["outage_seconds"],
        "outage_measured_s": measured,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="omsup-bench-rehearsal-") as tmp:  # the run folders: not kept
        runs = [once(Path(tmp)) for _ in range(a.repeat)]
    sh(sys.executable, "-m", "sandbox", "down")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "rehearsal_steps_s"}
    print(f"| measure | median of {len(runs)} | runs |")
    print("| --- | ---: | --- |")
    for k, v in med.items():
        print(f"| {k} | {v} | {', '.join(str(r[k]) for r in runs)} |")
    out = ROOT / "bench" / "results" / "rehearsal.json"
    out.write_text(json.dumps({"runs": runs, "median": med}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
