"""What the stand-in's server and its docker_init.sh share: config, MetaDB, faults, logging."""

from __future__ import annotations

import json
import os
import sys
import time

import pymysql
import yaml

from versions import Version

# doc 003/004: the config is mounted at /home/admin/conf/config.yaml; logs at /home/admin/logs,
# the Store's files at /home/ds/store, the synchronization components' files at /home/ds/run.
CONFIG_PATH = "/home/admin/conf/config.yaml"
LOGS = "/home/admin/logs"
STORE = "/home/ds/store"
RUN = "/home/ds/run"
# Sandbox-only hook, not part of OMS: faults injected by `python -m sandbox fault`, read from
# the node's logs mount (the one place both the old and the new container of a node see).
FAULTS_PATH = os.path.join(LOGS, ".sandbox-faults.json")

VERSION = Version.parse(os.environ["OMS_VERSION"])


def log(msg: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{VERSION}] {msg}"
    print(line, flush=True)
    try:
        with open(os.path.join(LOGS, "oms_standin.log"), "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def load_config() -> dict:
    with open(CONFIG_PATH) as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict):
        raise SystemExit(f"{CONFIG_PATH}: expected a mapping")
    return cfg


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


def cm_nodes_key(cfg: dict) -> str:
    """Key under which docker_init.sh records that it ran for this set of cm_nodes.

    doc 004: docker_init.sh runs once per region when the nodes' cm_nodes are identical, on
    every node otherwise; nodes sharing a cm_nodes list therefore share one initialization.
    """
    nodes = ",".join(sorted(str(n) for n in (cfg.get("cm_nodes") or [])))
    return f"standin.init.{cfg.get('drc_cm_heartbeat_db')}.{nodes}"


def init_done(cur, cfg: dict) -> bool:
    cur.execute(f"SELECT value FROM `{cfg['drc_cm_db']}`.config_job WHERE `key`=%s", (cm_nodes_key(cfg),))
    row = cur.fetchone()
    return bool(row) and row[0] == str(VERSION)


def fail(msg: str, code: int = 1) -> None:
    log(msg)
    sys.exit(code)
