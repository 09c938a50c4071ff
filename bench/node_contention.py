"""What one node's commands cost when 1 node and when 4 nodes do them at once, on this machine.

The runbook does every node's work side by side. On real deployments each node is its own host; in
the sandbox the 4 nodes' engines, stand-in containers and the runbook share this machine's cores.
This times the per-node commands that grow from 1 to 4 nodes in upgrade_vs_script.py --nodes 4, on
a fresh 4-node sandbox: alone on n1, then on all 4 nodes at once (the wall time until the last one
ends). Three rounds each; medians.

    python bench/node_contention.py            # writes bench/results/node_contention.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upgrade_vs_script import ROOT, STATE, sh  # noqa: E402

PACKAGE = STATE / "packages" / "oms_4.2.9-ce.tar.gz"
ROUNDS = 3


def docker(node: str, *args: str, check: bool = True) -> str:
    """The docker CLI against ``node``'s engine (as the runbook runs it there); its output."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{STATE}/nodes/{node}/docker.sock"}
    return subprocess.run(["docker", *args], cwd=ROOT, capture_output=True, text=True, check=check, env=env).stdout


def loaded_image(out: str) -> str:
    return next(line.split(": ", 1)[1].strip() for line in out.splitlines() if line.startswith("Loaded image"))


def timed(nodes: list[str], fn) -> float:
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(fn, nodes))
    return time.monotonic() - t0


def main() -> None:
    sh(sys.executable, "-m", "sandbox", "down")
    sh(sys.executable, "-m", "sandbox", "up", "--nodes", "4")
    nodes = sorted(p.name for p in (STATE / "nodes").iterdir())
    image = loaded_image(docker("n1", "load", "-i", str(PACKAGE)))
    commands = {
        "tar -xzOf <package> manifest.json (preflight)": (
            lambda n: sh("tar", "-xzOf", str(PACKAGE), "manifest.json"),
            None,
        ),
        "docker load -i <package> (before T1)": (
            lambda n: docker(n, "load", "-i", str(PACKAGE)),
            lambda n: docker(n, "rmi", image, check=False),  # loaded again each round (absent: fine)
        ),
        "docker exec oms_ce supervisorctl status (every poll)": (
            # supervisor 4 exits 3 while a program is not RUNNING: the time is what counts
            lambda n: docker(n, "exec", "oms_ce", "supervisorctl", "status", check=False),
            None,
        ),
    }
    rows = {}
    for name, (fn, reset) in commands.items():
        one, four = [], []
        for _ in range(ROUNDS):
            for chosen, out in (([nodes[0]], one), (nodes, four)):
                if reset:
                    for n in nodes:
                        reset(n)
                out.append(timed(chosen, fn))
        rows[name] = {"1 node": statistics.median(one), "4 at once": statistics.median(four), "runs": [one, four]}
        print(f"{name:55} 1 node {rows[name]['1 node']:5.2f} s   4 at once {rows[name]['4 at once']:5.2f} s")
    sh(sys.executable, "-m", "sandbox", "down")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "node_contention.json").write_text(json.dumps({"cpus": os.cpu_count(), "commands": rows}, indent=2))


if __name__ == "__main__":
    main()
