"""How long `omsup status` takes as the ledgers of an environment pile up (no sandbox needed).

Each round writes N finished upgrade runs and N finished rollback runs (ledgers of the size a real
2-node run leaves: every step, three backups, two nodes) into a fresh state folder, plus one
unfinished upgrade stopped at its init step, then times the command as an operator runs it (a new
process: interpreter start, imports, every ledger read and validated; the lock read on a local
backup host). Median of 3 per size.

    python bench/status_ledgers.py                 # writes bench/results/status_ledgers.json
    python bench/status_ledgers.py --sizes 10 100 1000
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from omsup.record import BackupFile, Facts, NodeFacts, Record, RunStatus  # noqa: E402

UPGRADE = ("preflight", "disable_ha", "stop_old", "prune_heartbeats", "backup", "load_image", "start_new")
DONE = (*UPGRADE, "init_metadata", "verify", "enable_ha", "after_upgrade")
ROLLBACK = ("rollback_preflight", "disable_ha", "stop_new", "restore", "verify_restore", "restart_old")


def env_file(folder: Path) -> Path:
    doc = {
        "name": "bench",
        "container": "oms_ce",
        "version": "4.2.8-CE",
        "packages": {"4.2.9-CE": "/tmp/oms.tar.gz"},
        "metadb": {"host": "127.0.0.1", "port": 2881, "user": "root", "password": {"env": "BENCH_PW"},
                   "rm": "rm_428", "cm": "cm_428"},
        "regions": [{"name": "r1", "cm_hb": "cm_hb_428", "nodes": [
            {"name": f"n{i}", "ip": f"127.0.0.{10 + i}", "host": "local://", "docker": "unix:///var/run/docker.sock"}
            for i in (1, 2)]}],
        "backup": {"host": "local://", "dir": str(folder / "backups")},
        "console": {"port": 8089, "user": "admin", "password": {"env": "BENCH_PW"}},
        "state_dir": str(folder / "state"),
    }  # fmt: skip
    (folder / "backups").mkdir()
    p = folder / "env.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def facts(env: Path, folder: Path) -> Facts:
    f = Facts(target="4.2.9-CE", environment_file=str(env), t1="2026-12-06T01:00:00.000Z")
    f.backups = [
        BackupFile(role=r, db=db, host="local://", path=str(folder / f"{db}.sql"), size=10**6, sha256="ab" * 32,
                   tables={}, charset="utf8mb4", collation="utf8mb4_general_ci", taken="2026-12-06T01:00:01.000Z")
        for r, db in (("rm", "rm_428"), ("cm", "cm_428"), ("cm_hb", "cm_hb_428"))
    ]  # fmt: skip
    f.nodes = {
        f"n{i}": NodeFacts(container_id=f"c{i}" * 32, name="oms_ce", image="oceanbase/oms:feature_4.2.8_ce",
                           image_id="sha256:" + "0" * 64, binds=["/data/a:/home/admin/logs"], env=["OMS_HOST_IP=x"],
                           user_env={}, version="4.2.8-CE", cm_nodes=["127.0.0.11", "127.0.0.12"])
        for i in (1, 2)
    }  # fmt: skip
    return f


def fill(folder: Path, env: Path, n: int) -> None:
    state = folder / "state"
    for _ in range(n):
        for name, steps in (("upgrade_429", DONE), ("rollback_429", ROLLBACK)):
            rec, _ = Record.open(state, name, "bench", facts(env, folder))
            for key in steps:
                rec.mark(key, "done", seconds=1.0)
            rec.finish(RunStatus.COMPLETE)
    rec, _ = Record.open(state, "upgrade_429", "bench", facts(env, folder))
    for key in UPGRADE:
        rec.mark(key, "done", seconds=1.0)
    rec.mark("init_metadata", "failed", error="node n1: /root/docker_init.sh exited 1", category="Container problem")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    a = ap.parse_args()
    omsup = [sys.executable, "-m", "omsup", "status", "--env"]
    out = {}
    for n in a.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            env = env_file(folder)
            fill(folder, env, n)
            ledgers = len(list((folder / "state").glob("*/*/ledger.json")))
            times = []
            for _ in range(3):
                t0 = time.monotonic()
                p = subprocess.run([*omsup, str(env)], cwd=ROOT, capture_output=True, text=True,
                                   env={**os.environ, "BENCH_PW": "bench-secret-1"})  # fmt: skip
                times.append(time.monotonic() - t0)
                assert p.returncode == 0 and "is unfinished (stopped at init_metadata" in p.stdout, p.stdout + p.stderr
            out[str(n)] = {
                "ledgers": ledgers,
                "runs_s": [round(t, 3) for t in times],
                "median_s": round(statistics.median(times), 3),
            }
            print(f"{ledgers} ledgers: omsup status {out[str(n)]['median_s']} s (median of 3)", flush=True)
    dest = ROOT / "bench" / "results" / "status_ledgers.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {dest}")


if __name__ == "__main__":
    main()
