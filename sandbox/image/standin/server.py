"""The OMS CE stand-in: the container's main process (started by /root/docker_cmd.sh).

Follows shared/oms-interfaces.md:
- reads /home/admin/conf/config.yaml and connects to the MetaDB named there (doc, obd);
- serves the console on OMS_HOST_IP:8089, HTTPS only when the certificate and key are
  mounted at /etc/pki/nginx/oms_server.{crt,key} (doc 003/004);
- ``GET /oms/health`` answers ``data.healthy`` (obd); ``POST /api/v2?Action=...`` with HTTP
  Basic auth and the documented envelope (doc, odc);
- prints ``OMS service start successfully`` when ready (obd waits for that last log line);
- with ``IS_UPGRADE=true`` the console does not start until docker_init.sh has run (inference
  from the enterprise procedure, see oms-interfaces.md);
- writes heartbeats into its region's ``heatbeat_sequence``, keeps its ``host`` row current,
  and writes into the store and run mounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pymysql

import common
from common import RUN, STORE, VERSION, log
from versions import Version

BOOT_SECONDS = float(os.environ.get("STANDIN_BOOT_SECONDS", "2"))
OFFLINE_AFTER_SECONDS = 10  # not public: the stand-in shows a server Offline after 10 s without heartbeat
CONSOLE_PORT = 8089  # obd: console/nginx 8089
CERT, KEY = "/etc/pki/nginx/oms_server.crt", "/etc/pki/nginx/oms_server.key"
SUPERVISOR_STATE = "/tmp/standin-supervisor.json"  # read by the supervisorctl stub
LIST_PROJECTS_FROM = Version.parse("4.1.1")  # doc: ListProjects exists from V4.1.1-CE

CFG = common.load_config()
HOST_IP = os.environ.get("OMS_HOST_IP", "")
IS_UPGRADE = os.environ.get("IS_UPGRADE", "").lower() == "true"
STATE = {"console": "STOPPED", "cm": "STARTING", "checkpoint": None, "store_found": None}
_db_lock = threading.Lock()
_db: list = []


def set_supervisor(**kw: str) -> None:
    STATE.update(kw)
    tmp = SUPERVISOR_STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"oms_drc_cm": STATE["cm"], "oms_console": STATE["console"], "nginx": STATE["console"]}, f)
    os.replace(tmp, SUPERVISOR_STATE)


def query(sql: str, args: tuple = (), db: str | None = None) -> list[tuple]:
    """Run one statement on the shared MetaDB connection, reconnecting once."""
    with _db_lock:
        for attempt in (1, 2):
            try:
                if not _db:
                    _db.append(common.connect(CFG))
                cur = _db[0].cursor()
                if db:
                    cur.execute(f"USE `{db}`")
                cur.execute(sql, args)
                return list(cur.fetchall())
            except pymysql.err.OperationalError:
                if _db:
                    try:
                        _db[0].close()
                    except Exception:
                        pass
                    _db.clear()
                if attempt == 2:
                    raise
    return []


def envelope(data=None, success=True, code=None, message=None, **extra) -> dict:
    # Verbatim envelope from the doc (shared/oms-interfaces.md).
    out = {
        "success": success,
        "errorDetail": None,
        "code": code,
        "message": message,
        "advice": None,
        "requestId": uuid.uuid4().hex[:12],
        "pageNumber": None,
        "pageSize": None,
        "totalCount": None,
        "cost": "1 ms",
        "data": data,
    }
    out.update(extra)
    return out


def check_auth(header: str | None) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    rows = query("SELECT salt, password_sha256 FROM oms_user WHERE name=%s", (user,), CFG["drc_rm_db"])
    if not rows:
        return False
    salt, digest = rows[0]
    return hmac.compare_digest(hashlib.sha256((salt + password).encode()).hexdigest(), digest)


def servers() -> list[dict]:
    rows = query(
        "SELECT ip, region, gmt_heartbeat, TIMESTAMPDIFF(MICROSECOND, gmt_heartbeat, NOW(3)) FROM host ORDER BY ip",
        (),
        CFG["drc_cm_db"],
    )
    out = []
    for ip, region, hb, age_us in rows:
        online = hb is not None and age_us is not None and age_us / 1e6 <= OFFLINE_AFTER_SECONDS
        out.append(
            {
                "ip": ip,
                "region": region,
                "status": "Online" if online else "Offline",
                "lastHeartbeat": hb.isoformat() if hb else None,
            }
        )
    return out


def project_row(r) -> dict:
    return {"id": r[0], "name": r[1], "type": r[2], "status": r[3], "createdVersion": r[4], "sourceEndpointType": r[5]}


def action(name: str, body: dict) -> dict:
    rm = CFG["drc_rm_db"]
    if name == "ListProjects":
        if VERSION < LIST_PROJECTS_FROM:
            return envelope(success=False, code="GHANA-OPERAT0001", message=f"unknown action {name}")
        size = int(body.get("pageSize") or 10)
        page = int(body.get("pageNumber") or 1)
        if size > 150 or size < 1 or page < 1:
            return envelope(success=False, code="PARAM_ERROR", message="pageSize must be 1..150, pageNumber >= 1")
        where, args = [], []
        if body.get("type"):
            where.append("type=%s")
            args.append(body["type"])
        if body.get("status"):
            statuses = body["status"] if isinstance(body["status"], list) else [body["status"]]
            where.append("status IN (" + ",".join(["%s"] * len(statuses)) + ")")
            args.extend(statuses)
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        total = query(f"SELECT COUNT(*) FROM oms_project{cond}", tuple(args), rm)[0][0]
        rows = query(
            f"SELECT id, name, type, status, created_version, source_type FROM oms_project{cond} ORDER BY id LIMIT %s OFFSET %s",
            (*args, size, (page - 1) * size),
            rm,
        )
        return envelope([project_row(r) for r in rows], pageNumber=page, pageSize=size, totalCount=total)
    if name in ("DescribeProject", "DescribeProjectSteps"):
        pid = body.get("id")
        rows = query(
            "SELECT id, name, type, status, created_version, source_type FROM oms_project WHERE id=%s", (pid,), rm
        )
        if not rows:
            return envelope(success=False, code="GHANA-OPERAT0404", message=f"project {pid} not found")
        if name == "DescribeProject":
            return envelope(project_row(rows[0]))
        steps = query(
            "SELECT step_name, status, step_order FROM oms_project_step WHERE project_id=%s ORDER BY step_order",
            (pid,),
            rm,
        )
        return envelope([{"name": s[0], "status": s[1], "order": s[2]} for s in steps])
    # Not public: the server list and the Connector configurations have no documented API.
    # The stand-in offers these two actions; the runbooks' console adapter is the one place
    # that uses them.
    if name == "ListServers":
        return envelope(servers())
    if name == "ListConnectors":
        rows = query("SELECT id, project_id, host_ip, config FROM connector_config ORDER BY id", (), CFG["drc_cm_db"])
        return envelope([{"id": r[0], "projectId": r[1], "hostIp": r[2], "config": json.loads(r[3])} for r in rows])
    if name == "UpdateConnectorConfig":
        cid, config = body.get("id"), body.get("config")
        if not isinstance(config, dict):
            return envelope(success=False, code="PARAM_ERROR", message="config must be an object")
        query("UPDATE connector_config SET config=%s WHERE id=%s", (json.dumps(config), cid), CFG["drc_cm_db"])
        return envelope(True)
    if name == "BatchUpdateConnectorConfig":  # the console's Batch O&M: every Connector of one host IP
        ip, source = body.get("hostIp"), body.get("source")
        if not ip or not isinstance(source, dict):
            return envelope(success=False, code="PARAM_ERROR", message="hostIp and source are required")
        rows = query("SELECT id, config FROM connector_config WHERE host_ip=%s", (ip,), CFG["drc_cm_db"])
        for cid, raw in rows:
            config = json.loads(raw)
            config.setdefault("source", {}).update(source)
            query("UPDATE connector_config SET config=%s WHERE id=%s", (json.dumps(config), cid), CFG["drc_cm_db"])
        return envelope(len(rows))
    return envelope(success=False, code="PARAM_ERROR", message=f"unknown action {name}")


class Handler(BaseHTTPRequestHandler):
    server_version = "oms-standin"

    def log_message(self, fmt: str, *args) -> None:  # keep docker logs' last line meaningful
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if urlparse(self.path).path == "/oms/health":
            try:
                query("SELECT 1")
                healthy = True
            except Exception:
                healthy = False
            self._send(
                200,
                envelope(
                    {
                        "healthy": healthy,
                        "version": str(VERSION),
                        "ip": HOST_IP,
                        "storeCheckpointFound": STATE["store_found"],
                    }
                ),
            )
        else:
            self._send(404, envelope(success=False, code="NOT_FOUND", message=self.path))

    def do_POST(self) -> None:
        url = urlparse(self.path)
        if url.path != "/api/v2":
            self._send(404, envelope(success=False, code="NOT_FOUND", message=url.path))
            return
        name = (parse_qs(url.query).get("Action") or [""])[0]
        try:
            if not check_auth(self.headers.get("Authorization")):
                self._send(401, envelope(success=False, code="UNAUTHORIZED", message="authentication failed"))
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            self._send(200, action(name, body if isinstance(body, dict) else {}))
        except pymysql.err.MySQLError as e:
            self._send(500, envelope(success=False, code="GHANA-OPERAT0500", message=f"MetaDB error: {e}"))


def heartbeat_loop() -> None:
    """Heartbeat into the region's cm_hb, keep the host row current, advance the store checkpoint."""
    region = CFG.get("cm_region") or ""
    checkpoint_path = os.path.join(STORE, "store.checkpoint")
    while True:
        if not common.faults().get("no_heartbeat"):
            try:
                query(
                    "INSERT INTO heatbeat_sequence (gmt_created, gmt_modified) VALUES (NOW(), NOW())",
                    (),
                    CFG["drc_cm_heartbeat_db"],
                )
                query(
                    "INSERT INTO host (resource_group_id, ip, region, gmt_heartbeat) VALUES (1, %s, %s, NOW(3)) "
                    "ON DUPLICATE KEY UPDATE gmt_heartbeat=NOW(3)",
                    (HOST_IP, region),
                    CFG["drc_cm_db"],
                )
                STATE["checkpoint"] = (STATE["checkpoint"] or 0) + 1
                with open(checkpoint_path + ".tmp", "w") as f:
                    f.write(str(STATE["checkpoint"]))
                os.replace(checkpoint_path + ".tmp", checkpoint_path)
            except Exception as e:  # MetaDB down: keep trying, as a real CM would
                log(f"WARN heartbeat failed: {e}")
        time.sleep(1)


def _stop(signum: int, frame: object) -> None:
    # As PID 1 the process ignores SIGTERM unless it handles it; the real image's supervisord
    # stops its processes on `docker stop`, so the stand-in does too.
    log("received SIGTERM: stopping")
    os._exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    set_supervisor(console="STOPPED", cm="STARTING")
    log(f"starting OMS stand-in {VERSION} on {HOST_IP} (IS_UPGRADE={IS_UPGRADE})")
    if str(VERSION) in (common.faults().get("start_fail") or []):
        common.fail("FATAL sandbox fault: the container fails to start")
    for d in (STORE, RUN):
        os.makedirs(d, exist_ok=True)
    checkpoint_path = os.path.join(STORE, "store.checkpoint")
    try:
        with open(checkpoint_path) as f:
            STATE["checkpoint"] = int(f.read().strip() or 0)
        STATE["store_found"] = True
    except (OSError, ValueError):
        STATE["store_found"] = False
        if IS_UPGRADE:
            log("WARN store checkpoint missing: the store mount is not the one used before the upgrade")
    with open(os.path.join(RUN, f"oms_drc_supervisor.{HOST_IP}.pid"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(BOOT_SECONDS)  # supervisord and its processes come up
    set_supervisor(console="STOPPED", cm="RUNNING")
    while True:
        try:
            query("SELECT 1")
            break
        except Exception as e:
            log(f"WARN MetaDB not reachable yet: {e}")
            time.sleep(1)
    if IS_UPGRADE:
        log("upgrade mode: waiting for /root/docker_init.sh before starting the console")
        while True:
            try:
                rows = query(
                    "SELECT value FROM config_job WHERE `key`=%s", (common.cm_nodes_key(CFG),), CFG["drc_cm_db"]
                )
                if rows and rows[0][0] == str(VERSION):
                    break
            except Exception as e:
                log(f"WARN MetaDB: {e}")
            time.sleep(0.5)
    server = ThreadingHTTPServer((HOST_IP, CONSOLE_PORT), Handler)
    if os.path.exists(CERT) and os.path.exists(KEY):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERT, KEY)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        log("certificate mounted: the console serves HTTPS only")
    threading.Thread(target=heartbeat_loop, daemon=True).start()
    set_supervisor(console="RUNNING", cm="RUNNING")
    log("OMS service start successfully")
    server.serve_forever()


if __name__ == "__main__":
    main()
