"""oms_drc_supervisor of the stand-in: heartbeats, and the Store's checkpoint on the store mount.

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
from common import HOST_IP, log

signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))


def main() -> None:
    cfg = common.load_config()
    meta = common.Meta(cfg)
    hb = cfg["drc_cm_heartbeat_db"]
    checkpoint_path = os.path.join(facts.STORE, "store.checkpoint")
    os.makedirs(facts.STORE, exist_ok=True)
    os.makedirs(facts.RUN, exist_ok=True)
    with open(os.path.join(facts.RUN, f"oms_drc_supervisor.{HOST_IP}.pid"), "w") as f:
        f.write(str(os.getpid()))
    try:
        with open(checkpoint_path) as f:
            checkpoint = int(f.read().strip() or 0)
    except (OSError, ValueError):
        checkpoint = 0
        if common.IS_UPGRADE:
            log("WARN store checkpoint missing: the store mount is not the one used before the upgrade")
    while True:
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
                checkpoint += 1
                with open(checkpoint_path + ".tmp", "w") as f:
                    f.write(str(checkpoint))
                os.replace(checkpoint_path + ".tmp", checkpoint_path)
            except Exception as e:  # MetaDB down: keep trying, as a real supervisor would
                log(f"WARN heartbeat failed: {e}", to_stdout=False)
        time.sleep(
            facts.SLOW_HEARTBEAT_SECONDS
            if common.variant("slow-heartbeat")
            else facts.CHOICES["heartbeat_period_seconds"][0]
        )


if __name__ == "__main__":
    main()
