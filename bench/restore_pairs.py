"""The rollback's restore step against plain mysql, in pairs on one sandbox, for a median.

The MetaDB's own spread (seekdb: plain `mysql < cm.sql` of the same 400 MB dump took 10.0 to 14.5 s
in three runs in a row) is ten times what the restore step adds, so one pair (big_metadb.py) does not
settle the ratio. Here one sandbox with --bulk-mb of configuration history goes through --pairs
rounds of: upgrade_429, rollback_429 (its restore step's seconds from its ledger), then the same
backups restored by hand with the containers stopped as the runbook has them (`docker stop`, DROP,
CREATE and `mysql < file` per database as the doc would, `docker start`, until every console serves).
With --alternate every second pair restores by hand first (the new containers stopped), then runs
the rollback: whether the order of the two restores matters.
Ratio = plain seconds / restore step seconds (1.0: as fast as plain mysql; goal >= 0.9).
Writes bench/results/restore_pairs-<metadb>-mb<bulk MiB>[-alternate].json.

    python bench/restore_pairs.py --metadb oceanbase --bulk-mb 400 --pairs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from big_metadb import ledger, plain_restore, runbook  # noqa: E402
from node_contention import docker  # noqa: E402
from upgrade_vs_script import ROOT, STATE, sh  # noqa: E402

sys.path.insert(0, str(ROOT))
from sandbox.deploy import wait_healthy  # noqa: E402  (the wait `sandbox up` itself uses)


def plain_with_oms_stopped(backups: list[dict], start_after: bool) -> dict:
    st = json.loads(sh(sys.executable, "-m", "sandbox", "status", "--json").stdout)
    for n in st["nodes"]:  # OMS stopped, as during the runbook's restore
        docker(n["name"], "stop", n["container"])
    with tempfile.TemporaryDirectory(dir=str(STATE)) as folder:
        plain = plain_restore(backups, Path(folder))
    if start_after:
        for n in st["nodes"]:
            docker(n["name"], "start", n["container"])
        for n in st["nodes"]:
            wait_healthy(n, st["console"]["scheme"] == "https", timeout=300)
    return plain


def pair(env: str, plain_first: bool) -> dict:
    """upgrade_429, then both restores of its backups: the rollback's then plain mysql, or (plain_first)
    plain mysql with the new containers stopped, then the rollback (its stop step finds them stopped)."""
    with tempfile.TemporaryDirectory() as reports:
        up = runbook("upgrade_429", env, reports)
        backups = ledger("upgrade_429")["facts"]["backups"]
        if plain_first:
            plain = plain_with_oms_stopped(backups, start_after=False)
        rb = runbook("rollback_429", env, reports)
    restore_s = ledger("rollback_429")["steps"]["restore"]["seconds"]
    if not plain_first:
        plain = plain_with_oms_stopped(backups, start_after=True)
    return {
        "plain_first": plain_first,
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
    ap.add_argument(
        "--alternate", action="store_true", help="every second pair restores by hand first (does the order matter?)"
    )
    a = ap.parse_args()
    sh(sys.executable, "-m", "sandbox", "down")
    env = (
        sh(sys.executable, "-m", "sandbox", "up", "--metadb", a.metadb, "--bulk-mb", a.bulk_mb, timeout=7200)
        .stdout.strip()
        .splitlines()[-1]
    )
    rows = []
    for i in range(a.pairs):
        rows.append(pair(env, plain_first=a.alternate and i % 2 == 1))
        r = rows[-1]
        print(
            f"pair {i + 1}{' (plain first)' if r['plain_first'] else ''}: restore step {r['restore_step_s']:.2f} s, "
            f"plain mysql {r['plain_restore_s']:.2f} s, ratio {r['ratio']:.2f}",
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
    name = f"restore_pairs-{a.metadb}-mb{int(a.bulk_mb)}{'-alternate' if a.alternate else ''}.json"
    (out / name).write_text(json.dumps(result, indent=2))
    print(
        f"ratio (plain mysql / restore step, {a.metadb}, {a.pairs} pairs): median {result['median_ratio']:.2f}, "
        f"of the medians {result['ratio_of_medians']:.2f} ({plain:.2f} / {step:.2f} s)"
    )


if __name__ == "__main__":
    main()
