"""`python -m sandbox up` cold (no image cache) and warm, 2 nodes. Writes bench/results/sandbox_up.json.

Cold moves the image cache aside (debootstrap, the stand-in images and their installation
packages are rebuilt), then puts it back; warm is `down` then `up` with the cache in place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("OMSUP_SANDBOX_CACHE", "/var/cache/omsup-sandbox"))


def timed_up(metadb: str) -> float:
    subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=ROOT, check=True, capture_output=True)
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--metadb", metadb], cwd=ROOT, check=True, capture_output=True
    )
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metadb", choices=("oceanbase", "mariadb"), default="oceanbase")
    ap.add_argument("--warm-only", action="store_true", help="keep the image cache (no cold run)")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs")
    args = ap.parse_args()
    cold = None
    if not args.warm_only:
        aside = CACHE.with_name(CACHE.name + ".bench-aside")
        if CACHE.exists():
            shutil.move(str(CACHE), str(aside))
        try:
            cold = timed_up(args.metadb)
        finally:
            if aside.exists():
                shutil.rmtree(CACHE, ignore_errors=True)
                shutil.move(str(aside), str(CACHE))
    warm = [timed_up(args.metadb) for _ in range(args.repeat)]
    subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=ROOT, check=True, capture_output=True)
    shown = f"{cold:.1f} s" if cold is not None else "not measured"
    print(f"{args.metadb}: cold up: {shown}; warm up: {', '.join(f'{w:.1f}' for w in warm)} s (2 nodes)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    data = {"metadb": args.metadb, "cold_s": cold, "warm_s": warm}
    (out / f"sandbox_up-{args.metadb}.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
