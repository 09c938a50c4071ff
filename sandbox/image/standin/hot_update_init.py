"""The stand-in's /root/docker_hot_update_init.sh (OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md step 7).

Run in the running container after docker_copy_dumpfile_to_container.sh copied the new release's files
in (so this file, and VERSION beside it, are the new release's): applies the schema changes from the
version the metadata is at to this one (as docker_init.sh does), and starts the management programs the
page's step 5 stopped (the page has no step that starts them: the script must). The Store and Incr-Sync
components (sync.py) are not touched. The page says nothing of oms_version or of an init flag: by default
it REPLACEs this version into oms_version as docker_init.sh does (variant oms-version-not-written: not),
and it writes /root/init_flag.txt only with the variant init-flag (the field notes place that flag with
this script, from a source of unknown origin). Run again, it changes nothing and succeeds. The sandbox
fault hot-init-fail makes it fail half way: rm migrated, cm and cm_hb not, no program started.
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

LOG_PATH = f"{facts.LOGS}/docker_hot_update_init.log.{time.strftime('%Y%m%d')}.{time.strftime('%H%M%S')}"


def say(msg: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(LOG_PATH, "a") as f:
        f.write(line + "\n")


def stop(msg: str) -> None:
    say(msg)
    sys.exit(1)


def start_programs() -> None:
    wanted = [p for p in facts.HOT_STOPPED_PROGRAMS if p in facts.programs(VERSION)]
    idle = [p for p in wanted if common.program_state(p) not in ("RUNNING", "STARTING")]
    if idle:
        out = subprocess.run(
            ["python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisorctl.py"), "start", *idle],
            capture_output=True,
            text=True,
        )
        say((out.stdout + out.stderr).strip())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(common.program_state(p) != "RUNNING" for p in wanted):
        time.sleep(0.2)
    down = {p: common.program_state(p) for p in wanted if common.program_state(p) != "RUNNING"}
    if down:
        stop(f"ERROR the management programs did not start: {down}")


def main() -> None:
    cfg = common.load_config()
    say(f"docker_hot_update_init.sh of OMS {VERSION}: hot update (log {LOG_PATH})")
    if not facts.has_hot_scripts(VERSION):
        stop(f"ERROR OMS {VERSION} has no hot update")
    conn = common.connect(cfg)
    cur = conn.cursor()
    rm, cm, hb = cfg["drc_rm_db"], cfg["drc_cm_db"], cfg["drc_cm_heartbeat_db"]
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name='oms_project'", (rm,)
    )
    source = schema.schema_version_of({r[0] for r in cur.fetchall()})
    if facts.vkey(source) < facts.vkey(facts.HOT_FROM):
        stop(f"ERROR hot update needs OMS {facts.HOT_FROM} or later; the metadata is at {source}")
    if facts.vkey(source) > facts.vkey(VERSION):
        stop(f"ERROR the metadata is at {source}, newer than this release ({VERSION})")
    say(f"applying schema changes {source} -> {VERSION}")
    for role, db in (("rm", rm), ("cm", cm), ("cm_hb", hb)):
        for col in schema.migrate(cur, role, db, facts.HOT_FROM, VERSION):
            say(f"  {db}: added column {col}")
        if role == "rm" and common.faults().get("hot_init_fail"):  # sandbox fault: half way
            stop("ERROR sandbox fault: the hot update failed after migrating rm")
    cur.execute(f"USE `{rm}`")
    cur.execute(facts.OMS_VERSION_DDL)
    if not common.variant("oms-version-not-written"):
        cur.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (facts.ce(VERSION),))
    cur.execute(f"REPLACE INTO `{cm}`.config_job (`key`, `value`) VALUES (%s, %s)", (common.cm_nodes_key(cfg), VERSION))
    say(f"metadata at {VERSION}; starting the management programs")
    start_programs()
    if common.variant("init-flag"):
        with open(facts.INIT_FLAG, "w") as f:
            f.write(f"success {VERSION} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    say(f"hot update to {VERSION} done")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # what a failed script prints: its error, last
        stop(f"ERROR {type(e).__name__}: {e}")
