"""The rollback's restore step against plain mysql, in pairs on one sandbox, for a median.

The MetaDB's own spread (seekdb: plain `mysql < cm.sql` of the same 400 MB dump took 10.0 to 14.5 s
in three runs in a row) is ten times what the restore step adds, so one pair (big_metadb.py) does not
settle the ratio. Here one sandbox with --bulk-mb of configuration history goes through --pairs
rounds of: upgrade_429, rollback_429 (its restore step's seconds from its ledger), then the same
backups restored by hand with the containers stopped as the runbook has them (`docker stop`, DROP,
CREATE and `mysql < file` per database as the doc would, `docker start`, until every console serves).
Ratio = plain seconds / restore step seconds (1.0: as fast as plain mysql; goal >= 0.9).
Writes bench/results/restore_pairs-<metadb>-mb<bulk MiB>.json.

    python bench/restore_pairs.py --metadb oceanbase --bulk-mb 400 --pairs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from big_metadb import ledger, plain_restore, runbook  # noqa: E402
from node_contention import docker  # noqa: E402
from upgrade_vs_script import ROOT, STATE, sh  # noqa: E402


def nodes() -> list[dict]:
    return json.loads(sh(sys.executable, "-m", "sandbox", "status", "--json").stdout)["nodes"]


def wait_serving(ips: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for ip in ips:
        while True:
            try:
                with urllib.request.urlopen(f"http://{ip}:8089/oms/health", timeout=2) as r:
                    if json.loads(r.read()).get("data", {}).get("healthy") is True:
                        break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the console on {ip} does not serve after the plain restore")
            time.sleep(0.2)


def pair(env: str) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        up = runbook("upgrade_429", env, reports)
        backups = ledger("upgrade_429")["facts"]["backups"]
        rb = runbook("rollback_429", env, reports)
    restore_s = ledger("rollback_429")["steps"]["restore"]["seconds"]
    ns = nodes()
    for n in ns:  # OMS stopped, as during the runbook's restore
        docker(n["name"], "stop", n["container"])
    with tempfile.TemporaryDirectory(dir=str(STATE)) as folder:
        plain = plain_restore(backups, Path(folder))
    for n in ns:
        docker(n["name"], "start", n["container"])
    wait_serving([n["ip"] for n in ns])
    return {
        "upgrade_s": up["seconds"],
        "rollback_s": rb["seconds"],
        "restore_step_s": restore_s,
        "plain_restore_s": plain["seconds"],
        "bytes": plain["bytes"],
        "ratio": plain["seconds"] / restore_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metadb", default="oceanbase", choices=["oceanbase", "mariadb"])
    ap.add_argument("--bulk-mb", default="400", help="MiB of configuration history in cm (what the restore loads)")
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args()
    sh(sys.executable, "-m", "sandbox", "down")
    env = (
        sh(sys.executable, "-m", "sandbox", "up", "--metadb", a.metadb, "--bulk-mb", a.bulk_mb, timeout=7200)
        .stdout.strip()
        .splitlines()[-1]
    )
    rows = []
    for i in range(a.pairs):
        rows.append(pair(env))
        r = rows[-1]
        print(
            f"pair {i + 1}: restore step {r['restore_step_s']:.2f} s, plain mysql {r['plain_restore_s']:.2f} s, "
            f"ratio {r['ratio']:.2f}",
            flush=True,
        )
    sh(sys.executable, "-m", "sandbox", "down")
    step = statistics.median(r["restore_step_s"] for r in rows)
    plain = statistics.median(r["plain_restore_s"] for r in rows)
    result = {
        "metadb": a.metadb,
        "bulk_mb": int(a.bulk_mb),
        "pairs": rows,
        "median_restore_step_s": step,
        "median_plain_restore_s": plain,
        "ratio_of_medians": plain / step,
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"restore_pairs-{a.metadb}-mb{int(a.bulk_mb)}.json").write_text(json.dumps(result, indent=2))
    print(
        f"ratio (plain mysql / restore step, {a.metadb}, {a.pairs} pairs): median {result['median_ratio']:.2f}, "
        f"of the medians {result['ratio_of_medians']:.2f} ({plain:.2f} / {step:.2f} s)"
    )


if __name__ == "__main__":
    main()
