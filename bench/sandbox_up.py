"""`python -m sandbox up` cold (no image cache) and warm, 2 nodes. Writes bench/results/sandbox_up.json.

Cold moves the image cache aside (debootstrap, the stand-in images and their installation
packages are rebuilt), then puts it back; warm is `down` then `up` with the cache in place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("OMSUP_SANDBOX_CACHE", "/var/cache/omsup-sandbox"))


def timed_up() -> float:
    subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=ROOT, check=True, capture_output=True)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "sandbox", "up"], cwd=ROOT, check=True, capture_output=True)
    return time.monotonic() - t0


def main() -> None:
    aside = CACHE.with_name(CACHE.name + ".bench-aside")
    if CACHE.exists():
        shutil.move(str(CACHE), str(aside))
    try:
        cold = timed_up()
    finally:
        if aside.exists():
            shutil.rmtree(CACHE, ignore_errors=True)
            shutil.move(str(aside), str(CACHE))
    warm = [timed_up() for _ in range(3)]
    subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=ROOT, check=True, capture_output=True)
    print(f"cold up: {cold:.1f} s; warm up: {', '.join(f'{w:.1f}' for w in warm)} s (2 nodes)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "sandbox_up.json").write_text(json.dumps({"cold_s": cold, "warm_s": warm}, indent=2))


if __name__ == "__main__":
    main()
