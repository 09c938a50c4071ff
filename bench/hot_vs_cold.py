"""The hot upgrade (hot_upgrade_4213) against the cold upgrade (upgrade_429) on the same sandbox shape.

Each repetition starts from a fresh 2-node 4.2.8-CE sandbox. While the runbook runs, a sampler reads every
node's console health and its Store and Incr-Sync checkpoints (the stand-in's sync components advance them
every second, in the store mount) every 0.2 s, from outside:

- console unavailable per node: the longest stretch during which /oms/health did not answer healthy;
- sync downtime per node: the longest stretch during which a component's checkpoint did not move, less the
  1 s it moves by (0 when it never stalled), and whether its PID changed (a restarted component).

Prints a table and writes bench/results/hot_vs_cold.json.

    python bench/hot_vs_cold.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("OMSUP_SANDBOX_DIR", "/tmp/omsup-sandbox"))
NODES = {"n1": "127.0.0.11", "n2": "127.0.0.12"}
COMPONENTS = ("store", "incr_sync")
PERIOD = 0.2


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)


def fresh() -> str:
    sh(sys.executable, "-m", "sandbox", "down")
    return sh(sys.executable, "-m", "sandbox", "up", "--version", "4.2.8-CE", "--nodes", "2").stdout.split()[-1]


def healthy(ip: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{ip}:8089/oms/health", timeout=1) as r:
            return json.load(r)["data"]["healthy"] is True
    except Exception:  # noqa: BLE001 - anything but healthy is unavailable
        return False


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.down: dict[str, float] = dict.fromkeys(NODES, 0.0)  # longest console gap
        self.stall: dict[str, float] = {f"{n}/{c}": 0.0 for n in NODES for c in COMPONENTS}
        self.pids: dict[str, set[str]] = {f"{n}/{c}": set() for n in NODES for c in COMPONENTS}

    def run(self) -> None:
        since: dict[str, float | None] = dict.fromkeys(NODES)
        last: dict[str, tuple[str | None, float]] = {}
        while not self.stop.is_set():
            now = time.monotonic()
            for n, ip in NODES.items():
                if healthy(ip):
                    if since[n] is not None:
                        self.down[n] = max(self.down[n], now - since[n])
                    since[n] = None
                elif since[n] is None:
                    since[n] = now
                data = STATE / "nodes" / n / "data" / "oms"
                for c in COMPONENTS:
                    key = f"{n}/{c}"
                    value = read(data / "oms_store" / f"{c}.checkpoint")
                    pid = read(data / "oms_run" / f"{c}.pid")
                    if pid:
                        self.pids[key].add(pid)
                    seen, at = last.get(key, (None, now))
                    if value != seen:
                        if seen is not None:
                            self.stall[key] = max(self.stall[key], now - at - 1.0)
                        last[key] = (value, now)
            time.sleep(PERIOD)
        now = time.monotonic()
        for n in NODES:
            if since[n] is not None:
                self.down[n] = max(self.down[n], now - since[n])
        for key, (_, at) in last.items():
            self.stall[key] = max(self.stall[key], now - at - 1.0)


def one(runbook: str, env_file: str) -> dict:
    s = Sampler()
    s.start()
    time.sleep(1.5)
    with tempfile.TemporaryDirectory() as reports:
        t0 = time.monotonic()
        sh(sys.executable, "-m", "pytest", f"runbooks/{runbook}", "--env", env_file, "--report-root", reports, "-q",
           "-p", "no:cacheprovider")  # fmt: skip
        total = time.monotonic() - t0
    time.sleep(3)  # the components' checkpoints move again (cold: after the new container started them)
    s.stop.set()
    s.join()
    led = json.loads(sorted((STATE / "ledgers" / runbook).glob("*/ledger.json"))[-1].read_text())
    hot = {k: v.get("unavailable_s") for k, v in (led["facts"].get("hot") or {}).items()}
    return {
        "total_s": round(total, 1),
        "console_unavailable_s": {k: round(v, 1) for k, v in s.down.items()},
        "sync_stall_s": {k: round(max(v, 0.0), 1) for k, v in s.stall.items()},
        "sync_restarted": {k: len(v) > 1 for k, v in s.pids.items()},
        "ledger_unavailable_s": hot,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    runs: dict[str, list[dict]] = {"hot_upgrade_4213": [], "upgrade_429": []}
    try:
        for _ in range(a.repeat):
            for name in runs:
                runs[name].append(one(name, fresh()))
                print(name, json.dumps(runs[name][-1]), flush=True)
    finally:
        sh(sys.executable, "-m", "sandbox", "down")

    def med(name: str, field: str) -> float:
        return statistics.median(max(r[field].values()) for r in runs[name])

    print("\n| runbook | runs | total s | console unavailable s (worst node) | sync downtime s (worst component) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in runs:
        print(f"| {name} | {len(runs[name])} | {statistics.median(r['total_s'] for r in runs[name]):.1f} | "
              f"{med(name, 'console_unavailable_s'):.1f} | {med(name, 'sync_stall_s'):.1f} |")  # fmt: skip
    out = ROOT / "bench" / "results" / "hot_vs_cold.json"
    out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
