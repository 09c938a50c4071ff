"""The stand-in's /root/docker_init.sh: apply this version's schema changes to rm, cm and cm_hb.

doc 003/004: "the script automatically applies the schema changes to the three databases"; once
per region when the nodes' cm_nodes are identical, on every node otherwise. doc 004: for 4.2.x
targets it stops with "Version before 4.1.1 is not allowed to upgrade" when the version before
the upgrade cannot be read from rm's oms_version; the recovery is to create the table, REPLACE the
version into it and run the script again. obdiag: its output also goes to
/home/admin/logs/docker_init.log.<date>.<time>.

The vendor runs it again (doc 004 after the recovery, the hot-upgrade rollback, obd's reload and
online upgrade: field notes): run again for cm_nodes whose metadata it already migrated, it changes
nothing and succeeds (facts.CHOICES init_rerun). By default it REPLACEs the target into oms_version
(facts.CHOICES init_writes_oms_version; variant oms-version-not-written) and writes no init flag
(variant init-flag). Run on metadata newer than its release (the hot upgrade's rollback), it applies nothing
and succeeds (facts.CHOICES init_newer_metadata). At its end it starts the management programs that do not
run (oms_console after a start with IS_UPGRADE=true; facts.CHOICES init_starts_programs) and prints the start line
(facts.CHOICES start_line_after_upgrade; variant start-line-in-docker-logs); when that console does
not start, it says so instead and exits 1 (facts.CHOICES init_console_failure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import common
import facts
import schema
from common import VERSION

LOG_PATH = f"{facts.INIT_LOG_PREFIX}.{time.strftime('%Y%m%d')}.{time.strftime('%H%M%S')}"


def say(msg: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(LOG_PATH, "a") as f:
        f.write(line + "\n")


def stop(msg: str) -> None:
    say(msg)
    if common.faults().get("init_exit_zero"):  # sandbox fault: the exit status is not passed on (obd's concern)
        sys.exit(0)
    sys.exit(1)


def main() -> None:
    cfg = common.load_config()
    say(f"docker_init.sh of OMS {VERSION}: initializing the metadata (log {LOG_PATH})")
    if common.faults().get("init_fail") or common.faults().get("init_exit_zero"):
        stop("ERROR sandbox fault: schema change failed (docker_init.sh)")
    conn = common.connect(cfg)
    cur = conn.cursor()
    rm, cm, hb = cfg["drc_rm_db"], cfg["drc_cm_db"], cfg["drc_cm_heartbeat_db"]
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s AND table_name='oms_version'", (rm,)
    )
    recorded: list[str] = []
    if cur.fetchone()[0] == 1:
        cur.execute(f"SELECT version FROM `{rm}`.oms_version")
        recorded = sorted((r[0].removesuffix("-CE") for r in cur.fetchall()), key=facts.vkey)
    four_x = facts.vkey(VERSION) >= facts.vkey(facts.CHOICES["init_reads_oms_version_from"][0])
    if four_x and not recorded:
        stop(facts.INIT_TOO_OLD)
    if recorded:
        source = recorded[-1]
    else:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name='oms_project'",
            (rm,),
        )
        source = schema.schema_version_of({r[0] for r in cur.fetchall()})
    if four_x and facts.vkey(source) < facts.vkey(facts.INIT_MIN_SOURCE_4X):
        stop(facts.INIT_TOO_OLD)
    key = common.cm_nodes_key(cfg)
    cur.execute(f"SELECT value FROM `{cm}`.config_job WHERE `key`=%s", (key,))
    done = cur.fetchone()
    if done and done[0] == VERSION:  # facts.CHOICES init_rerun: run again, it changes nothing
        say(f"the metadata of these cm_nodes is already at {VERSION}: no schema change to apply")
    else:
        if facts.vkey(source) > facts.vkey(VERSION):  # facts.CHOICES init_newer_metadata (the hot rollback)
            say(f"the metadata is at {source}, newer than this release ({VERSION}): no schema change to apply")
        elif facts.vkey(source) < facts.vkey(VERSION) and source not in facts.UPGRADES.get(VERSION, ()):
            stop(f"ERROR upgrade from {source} to {VERSION} is not supported")
        else:
            say(f"applying schema changes {source} -> {VERSION}")
            for role, db in (("rm", rm), ("cm", cm), ("cm_hb", hb)):
                for col in schema.migrate(cur, role, db, source, VERSION):
                    say(f"  {db}: added column {col}")
        if schema.has_oms_version_table(VERSION):
            cur.execute(f"USE `{rm}`")
            cur.execute(facts.OMS_VERSION_DDL)
            if not common.variant("oms-version-not-written"):  # facts.CHOICES init_writes_oms_version
                cur.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (facts.ce(VERSION),))
        cur.execute(f"REPLACE INTO `{cm}`.config_job (`key`, `value`) VALUES (%s, %s)", (key, VERSION))
    if common.variant("init-flag"):
        with open(facts.INIT_FLAG, "w") as f:
            f.write(f"success {VERSION} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    say(f"metadata initialized to {VERSION}")
    # facts.CHOICES init_starts_programs: the management programs that do not run (oms_console after a start with
    # IS_UPGRADE=true; all of them after the hot upgrade's rollback), or oms_console only (a variant)
    idle = [p for p in facts.programs(VERSION) if common.program_state(p) in ("STOPPED", "EXITED", "FATAL", None)]
    if common.variant("init-starts-console-only"):
        idle = [p for p in idle if p == "oms_console"]
    if idle:
        out = subprocess.run(
            ["python3", os.path.join(os.path.dirname(__file__), "supervisorctl.py"), "start", *idle],
            capture_output=True,
            text=True,
        )
        answer = out.stdout.strip() or out.stderr.strip()
        say(answer)
        # not settled yet: one started meanwhile (STARTING) answered "already started"; one that died at its
        # first try answered "abnormal termination" and supervisor tries it again by itself (BACKOFF)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(common.program_state(p) in ("STARTING", "BACKOFF") for p in idle):
            time.sleep(0.1)
        down = [p for p in idle if common.program_state(p) != "RUNNING"]
        if down:  # facts.CHOICES init_console_failure
            stop(f"ERROR {', '.join(down)} did not start: {answer}")
    if not common.variant("start-line-in-docker-logs"):  # facts.CHOICES start_line_after_upgrade
        say(facts.START_LINE)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # what a failed script prints: its error, last
        stop(f"ERROR {type(e).__name__}: {e}")
