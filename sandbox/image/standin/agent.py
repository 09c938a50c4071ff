"""oms_drc_supervisor of the stand-in: heartbeats, and the Store and Incr-Sync components (sync.py) kept running.

Every second (facts.CHOICES heartbeat_period_seconds; 20 with the variant slow-heartbeat): a row in the
region's heatbeat_sequence (the table doc 003/004 prune), and this host's row in heart_beat with
task_name='supervisor' kept current (the host-down guide: its gmt_modified "is the current time"), in
the MetaDB's clock, or 8 hours behind it with the variant heartbeat-local-time (the FAQ's offsets from a
container's time zone). The sandbox's no-heartbeat fault stops both.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import common
import facts
import sync
from common import HOST_IP, log

signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))


def main() -> None:
    cfg = common.load_config()
    meta = common.Meta(cfg)
    hb = cfg["drc_cm_heartbeat_db"]
    os.makedirs(facts.RUN, exist_ok=True)
    with open(os.path.join(facts.RUN, f"oms_drc_supervisor.{HOST_IP}.pid"), "w") as f:
        f.write(str(os.getpid()))
    while True:
        sync.ensure_running()  # the components it manages; they outlive it (sync.py)
        if not common.faults().get("no_heartbeat"):
            try:
                meta.query("INSERT INTO heatbeat_sequence (gmt_created, gmt_modified) VALUES (NOW(), NOW())", (), hb)
                now = (
                    f"NOW() - INTERVAL {facts.HEARTBEAT_OFFSET_HOURS} HOUR"
                    if common.variant("heartbeat-local-time")
                    else "NOW()"
                )
                meta.query(
                    "INSERT INTO heart_beat (task_type, task_name, host_ip, gmt_created, gmt_modified) "
                    f"VALUES ('supervisor', 'supervisor', %s, {now}, {now}) ON DUPLICATE KEY UPDATE gmt_modified={now}",
                    (HOST_IP,),
                    hb,
                )
            except Exception as e:  # MetaDB down: keep trying, as a real supervisor would
                log(f"WARN heartbeat failed: {e}", to_stdout=False)
        time.sleep(
            facts.SLOW_HEARTBEAT_SECONDS
            if common.variant("slow-heartbeat")
            else facts.CHOICES["heartbeat_period_seconds"][0]
        )


if __name__ == "__main__":
    main()
