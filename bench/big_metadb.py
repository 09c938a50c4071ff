"""A big MetaDB: upgrade_429 then rollback_429 on a sandbox MetaDB of several GB, with the runbook's
peak memory and its dump and restore throughput against plain mysqldump / mysql on the same data.

The sandbox gets years of heartbeats in cm_hb (--heartbeat-rows; doc 004 prunes them before the
backup) and configuration history in cm (--bulk-mb of 1 KiB rows), on top of the realistic rm/cm
rows it always has. Memory is sampled every 50 ms from /proc: VmHWM (the high-water mark) of the
runbook's own process, and the largest resident size of any mysqldump/mysql it started. The same
run on the default (small) sandbox gives the baseline for "memory stays flat".
Writes bench/results/big_metadb-<metadb>-hb<heartbeat rows>-mb<bulk MiB>.json.

    python bench/big_metadb.py --metadb oceanbase --heartbeat-rows 20000000 --bulk-mb 1500
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upgrade_vs_script import ROOT, STATE, pytest_runbook, sh  # noqa: E402

CLIENTS = ("mysqldump", "mariadb-dump", "mysql", "mariadb")


def _status(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                out.extend(int(k) for k in kids)
                todo.extend(int(k) for k in kids)
        except OSError:
            pass
    return out


def measured(args: list[str]) -> dict:
    """Run ``args``; return wall time, the process's peak RSS and the biggest MySQL client's."""
    peak = {"self_kb": 0, "clients_kb": 0}
    t0 = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["self_kb"] = max(peak["self_kb"], _status(proc.pid, "VmHWM"))
            for kid in _descendants(proc.pid):
                try:
                    comm = Path(f"/proc/{kid}/comm").read_text().strip()
                except OSError:
                    continue
                if comm in CLIENTS:
                    peak["clients_kb"] = max(peak["clients_kb"], _status(kid, "VmHWM"))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out = proc.communicate()[0]
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}")
    return {
        "seconds": time.monotonic() - t0,
        "peak_rss_mb": peak["self_kb"] / 1024,
        "client_peak_rss_mb": peak["clients_kb"] / 1024,
    }


def root_sql() -> tuple[dict, object]:
    """The sandbox MetaDB's status and a connection to it as root."""
    import pymysql

    st = json.loads(sh(sys.executable, "-m", "sandbox", "status", "--json").stdout)["metadb"]
    return st, pymysql.connect(host=st["host"], port=int(st["port"]), user="root", password=st["root_password"])


@contextmanager
def ob_timeouts_raised() -> Iterator[None]:
    """On OceanBase the plain tools need what the runbook does: the tenant's statement and transaction
    timeouts (10 s / 100 s by default) raised for a big mysqldump, set back afterwards."""
    st, conn = root_sql()
    names = ("ob_query_timeout", "ob_trx_timeout", "ob_trx_idle_timeout")
    if st.get("engine") != "oceanbase":
        conn.close()
        yield
        return
    with conn.cursor() as cur:
        cur.execute("SELECT " + ", ".join(f"@@global.{n}" for n in names))
        before = cur.fetchone()
        for n in names:
            cur.execute(f"SET GLOBAL {n} = 86400000000")
    try:
        yield
    finally:
        with conn.cursor() as cur:
            for n, v in zip(names, before, strict=True):
                cur.execute(f"SET GLOBAL {n} = %s", (int(v),))
        conn.close()


def sizes() -> dict[str, int]:
    """Bytes of each database as the engine counts them (data and indexes), read as the MetaDB's root."""
    st, conn = root_sql()
    dbs = [st["rm"], st["cm"], *st["cm_hb"]]
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_schema, SUM(data_length + index_length) FROM information_schema.tables "
                f"WHERE table_schema IN ({','.join(['%s'] * len(dbs))}) GROUP BY table_schema",
                dbs,
            )
            return {str(db): int(n or 0) for db, n in cur.fetchall()}
    finally:
        conn.close()


def ledger(name: str) -> dict:
    return json.loads(sorted((STATE / "ledgers" / name).glob("*/ledger.json"))[-1].read_text())


def runbook(name: str, env: str, reports: str) -> dict:
    return measured(pytest_runbook(name, env, reports))


def step_number(name: str, key: str) -> int:
    """The number of step ``key`` in runbook ``name`` (as its test function is named)."""
    text = (ROOT / "runbooks" / name / f"test_{name}.py").read_text()
    m = re.search(rf"^test_(\d+)_{key} = ", text, re.M)
    if m is None:
        raise SystemExit(f"runbooks/{name}: no step {key}")
    return int(m.group(1))


def client_cnf(folder: Path) -> Path:
    """A 0600 MySQL option file for the sandbox MetaDB as OMS's user, in ``folder`` (bench/sandbox_client.sh's)."""
    cnf = folder / "client.cnf"
    sh("bash", "-c", f'. bench/sandbox_client.sh && cp "$CNF" {cnf}')
    return cnf


def plain_dump(dbs: list[str], folder: Path) -> dict:
    """mysqldump by hand, one database after the other, as the doc does (on the data the backup step
    dumped: OMS still stopped, right after the runbook's backup step)."""
    cnf = client_cnf(folder)
    dump = {"seconds": 0.0, "client_peak_rss_mb": 0.0, "bytes": 0}
    for db in dbs:
        f = folder / f"{db}.sql"
        m = measured(
            ["bash", "-c", f"mysqldump --defaults-extra-file={cnf} --single-transaction --triggers=false {db} > {f}"]
        )
        dump["seconds"] += m["seconds"]
        dump["bytes"] += f.stat().st_size
        dump["client_peak_rss_mb"] = max(dump["client_peak_rss_mb"], m["client_peak_rss_mb"])
        f.unlink()
    cnf.unlink()
    dump["mb_per_s"] = dump["bytes"] / 1e6 / dump["seconds"]
    return dump


def plain_restore(backups: list[dict], folder: Path) -> dict:
    """DROP, CREATE and mysql < file by hand, from the runbook's backups (after its rollback)."""
    cnf = client_cnf(folder)
    restore = {"seconds": 0.0, "client_peak_rss_mb": 0.0, "bytes": 0}
    for b in backups:
        m = measured(
            [
                "bash",
                "-c",
                f"mysql --defaults-extra-file={cnf} -e 'DROP DATABASE `{b['db']}`; CREATE DATABASE "
                f"`{b['db']}` DEFAULT CHARACTER SET utf8mb4' && mysql --defaults-extra-file={cnf} {b['db']} "
                f"< {b['path']}",
            ]
        )
        restore["seconds"] += m["seconds"]
        restore["bytes"] += b["size"]
        restore["client_peak_rss_mb"] = max(restore["client_peak_rss_mb"], m["client_peak_rss_mb"])
    cnf.unlink()
    restore["mb_per_s"] = restore["bytes"] / 1e6 / restore["seconds"]
    return restore


def one(up_args: list[str], with_plain: bool) -> dict:
    sh(sys.executable, "-m", "sandbox", "down")
    t0 = time.monotonic()
    env = sh(sys.executable, "-m", "sandbox", "up", *up_args, timeout=7200).stdout.strip().splitlines()[-1]
    row: dict = {"sandbox_up_s": time.monotonic() - t0, "metadb_bytes": sizes()}
    row["metadb_total_gb"] = sum(row["metadb_bytes"].values()) / 1e9
    with tempfile.TemporaryDirectory() as reports:
        if with_plain:  # the upgrade paused after its backup: plain mysqldump on the very same data
            first = measured(
                [*pytest_runbook("upgrade_429", env, reports), "--until", str(step_number("upgrade_429", "backup"))]
            )
            with tempfile.TemporaryDirectory(dir=str(STATE)) as folder, ob_timeouts_raised():
                row["plain"] = {
                    "dump": plain_dump([b["db"] for b in ledger("upgrade_429")["facts"]["backups"]], Path(folder))
                }
            rest = runbook("upgrade_429", env, reports)
            row["upgrade"] = {
                "seconds": first["seconds"] + rest["seconds"],
                "peak_rss_mb": max(first["peak_rss_mb"], rest["peak_rss_mb"]),
                "client_peak_rss_mb": max(first["client_peak_rss_mb"], rest["client_peak_rss_mb"]),
            }
        else:
            row["upgrade"] = runbook("upgrade_429", env, reports)
        up = ledger("upgrade_429")
        backups = up["facts"]["backups"]
        dumped = sum(b["size"] for b in backups)
        row["upgrade"].update(
            prune_s=up["steps"]["prune_heartbeats"]["seconds"],
            backup_s=up["steps"]["backup"]["seconds"],
            dump_bytes=dumped,
            dump_mb_per_s=dumped / 1e6 / up["steps"]["backup"]["seconds"],
        )
        row["rollback"] = runbook("rollback_429", env, reports)
        rb = ledger("rollback_429")
        row["rollback"].update(
            restore_s=rb["steps"]["restore"]["seconds"],
            restore_mb_per_s=dumped / 1e6 / rb["steps"]["restore"]["seconds"],
        )
    if with_plain:
        with tempfile.TemporaryDirectory(dir=str(STATE)) as folder:
            row["plain"]["restore"] = plain_restore(backups, Path(folder))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heartbeat-rows", default="30000000")
    ap.add_argument("--bulk-mb", default="1200")
    ap.add_argument("--metadb", default="oceanbase", choices=["oceanbase", "mariadb"])
    a = ap.parse_args()
    engine = ["--metadb", a.metadb]
    result = {
        "metadb": a.metadb,
        "heartbeat_rows": int(a.heartbeat_rows),
        "bulk_mb": int(a.bulk_mb),
        "small": one(engine, with_plain=False),
        "big": one([*engine, "--heartbeat-rows", a.heartbeat_rows, "--bulk-mb", a.bulk_mb], with_plain=True),
    }
    sh(sys.executable, "-m", "sandbox", "down")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = f"big_metadb-{a.metadb}-hb{int(a.heartbeat_rows)}-mb{int(a.bulk_mb)}.json"  # one file per size
    (out / name).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
