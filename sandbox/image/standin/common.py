"""What the stand-in's processes share: config.yaml, the MetaDB, faults, logging, supervisor state.

Runs inside the stand-in image (Debian's python3, PyMySQL, PyYAML); facts.py is the sandbox's
copy of the documented facts, put beside this file when the image is built.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pymysql
import yaml

import facts


def _version() -> str:
    """The release whose files these are: /opt/standin/VERSION (a hot upgrade replaces the files in place, not the
    container's environment), else the image's OMS_VERSION."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")) as f:
            found = f.read().strip()
        if found:
            return found
    except OSError:
        pass
    return os.environ["OMS_VERSION"]


VERSION = _version()
HOST_IP = os.environ.get("OMS_HOST_IP", "")
IS_UPGRADE = os.environ.get("IS_UPGRADE", "") == "true"  # doc 004: "IS_UPGRADE must be in uppercase"
STATE_DIR = "/var/run/standin"
SUPERVISOR_STATE = os.path.join(STATE_DIR, "supervisor.json")
CTL_DIR = os.path.join(STATE_DIR, "ctl")
# Sandbox-only hook, not part of OMS: faults injected by `python -m sandbox fault`, read from the
# node's logs mount (the one place both the old and the new container of a node see).
FAULTS_PATH = os.path.join(facts.LOGS, ".sandbox-faults.json")


def log(msg: str, to_stdout: bool = True) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{VERSION}] {msg}"
    if to_stdout:
        print(line, flush=True)
    try:
        with open(os.path.join(facts.LOGS, "oms_standin.log"), "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def load_config() -> dict:
    with open(facts.CONFIG_PATH) as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict):
        raise SystemExit(f"{facts.CONFIG_PATH}: expected a mapping")
    return cfg


def variants() -> set[str]:
    """The behaviours of this deployment where the public sources are silent (facts.VARIANTS), as `sandbox up
    --variant` chose them: read from the node's logs mount, so the old and the new container agree, and from the
    container's environment, which a copy of the deployment (a rehearsal's replica) carries with it."""
    chosen = {v for v in os.environ.get(facts.VARIANT_ENV, "").split(",") if v in facts.VARIANTS}
    try:
        with open(os.path.join(facts.LOGS, facts.VARIANT_FILE)) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return chosen
    return chosen | ({v for v in found if v in facts.VARIANTS} if isinstance(found, list) else set())


def variant(name: str) -> bool:
    assert name in facts.VARIANTS, name
    return name in variants()


def ha_config(meta: Meta, rm: str) -> dict:
    """ha.config as the MetaDB holds it ({} when unreadable)."""
    try:
        rows = meta.query("SELECT cfg_value FROM oms_normal_config WHERE cfg_name='ha.config'", (), rm)
        value = json.loads(rows[0][0]) if rows else {}
        return value if isinstance(value, dict) else {}
    except Exception:
        return {}


def faults() -> dict:
    try:
        with open(FAULTS_PATH) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def connect(cfg: dict, db: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=str(cfg["oms_meta_host"]),
        port=int(cfg["oms_meta_port"]),
        user=str(cfg["oms_meta_user"]),
        password=str(cfg["oms_meta_password"]).encode(),  # UTF-8 as OMS's JDBC driver sends it (not PyMySQL's latin-1)
        database=db,
        autocommit=True,
        connect_timeout=5,
        charset="utf8mb4",
    )


class Meta:
    """One MetaDB connection per process, reconnected once on a dropped connection."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.conn: pymysql.connections.Connection | None = None

    def query(self, sql: str, args: tuple = (), db: str | None = None) -> list[tuple]:
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = connect(self.cfg)
                cur = self.conn.cursor()
                if db:
                    cur.execute(f"USE `{db}`")
                cur.execute(sql, args)
                return list(cur.fetchall())
            except pymysql.err.OperationalError:
                if self.conn is not None:
                    try:
                        self.conn.close()
                    except Exception:
                        pass
                    self.conn = None
                if attempt == 2:
                    raise
        return []


def cm_nodes_key(cfg: dict) -> str:
    """Key under which docker_init.sh records that it ran for this set of cm_nodes.

    doc 004: docker_init.sh runs once per region when the nodes' cm_nodes are identical, on
    every node otherwise; nodes sharing a cm_nodes list therefore share one initialization.
    """
    nodes = ",".join(sorted(str(n) for n in (cfg.get("cm_nodes") or [])))
    return f"standin.init.{cfg.get('drc_cm_heartbeat_db')}.{nodes}"


def supervisor_state() -> dict:
    try:
        with open(SUPERVISOR_STATE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def program_state(name: str) -> str | None:
    """A supervisor program's state (RUNNING, STARTING, BACKOFF, FATAL, ...), None when unknown."""
    return supervisor_state().get(name, {}).get("state")


def program_running(name: str) -> bool:
    return program_state(name) == "RUNNING"


def fail(msg: str, code: int = 1) -> None:
    log(msg)
    sys.exit(code)
