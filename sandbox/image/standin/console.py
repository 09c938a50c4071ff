"""nginx of the stand-in: the console on OMS_HOST_IP, port config.yaml's nginx_server_port (8089 by default), in front of oms_console.

doc/obd/odc: HTTPS only when the certificate and key are mounted; GET /oms/health answers
data.healthy; POST /api/v2?Action=<Name> with HTTP Basic auth answers the documented envelope.
While oms_console is not RUNNING nginx answers 502, as nginx does for a backend that is down.
ListProjects and DescribeProjectComponents exist from 4.1.1 (doc); ListProjects pages of at most
150 with totalCount null (the doc's sample envelope). Five wrong passwords lock the account
(field notes: rm.oms_user.login_failure_times, is_locked). There is no server list and no
Connector action in the published API: the stand-in has none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import common
import facts
from common import HOST_IP, VERSION

signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
CFG = common.load_config()
META = common.Meta(CFG)
LOCK = threading.Lock()
RM, CM = CFG["drc_rm_db"], CFG["drc_cm_db"]
NEWER_API = facts.vkey(VERSION) >= facts.vkey(facts.LIST_PROJECTS_FROM)


def query(sql: str, args: tuple = (), db: str | None = None) -> list[tuple]:
    with LOCK:
        return META.query(sql, args, db)


def envelope(data=None, success: bool = True, code: str | None = None, message: str | None = None, **extra) -> dict:
    out = dict.fromkeys(facts.ENVELOPE_KEYS)  # doc: the envelope, verbatim keys
    out.update(
        {
            "success": success,
            "code": code,
            "message": message,
            "requestId": uuid.uuid4().hex[:12],
            "cost": "1 ms",
            "data": data,
        }
    )
    out.update(extra)
    return out


def check_auth(header: str | None) -> tuple[bool, str]:
    if not header or not header.startswith("Basic "):
        return False, "authentication required"
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False, "bad credentials"
    rows = query(
        "SELECT salt, password_sha256, login_failure_times, is_locked FROM oms_user WHERE name=%s", (user,), RM
    )
    if not rows:
        return False, "bad credentials"
    salt, digest, failures, locked = rows[0]
    if locked:
        return False, f"the account {user} is locked after {facts.LOCK_AFTER_FAILED_LOGINS} wrong passwords"
    if hmac.compare_digest(hashlib.sha256((salt + password).encode()).hexdigest(), digest):
        if failures:
            query("UPDATE oms_user SET login_failure_times=0 WHERE name=%s", (user,), RM)
        return True, ""
    failures += 1
    query(
        "UPDATE oms_user SET login_failure_times=%s, is_locked=%s WHERE name=%s",
        (failures, 1 if failures >= facts.LOCK_AFTER_FAILED_LOGINS else 0, user),
        RM,
    )
    return False, "bad credentials"


def project_row(r: tuple) -> dict:
    return {"id": r[0], "name": r[1], "type": r[2], "status": r[3], "createdVersion": r[4], "sourceEndpointType": r[5]}


PROJECT_COLUMNS = "id, name, type, status, created_version, source_type"


def components(pid: str) -> dict:
    """DescribeProjectComponents (doc, 4.1.1 on): the Incr-Sync components with their configuration."""
    rows = query(
        "SELECT name, host_ip, status, source_config FROM connector_task WHERE project_id=%s ORDER BY name", (pid,), CM
    )
    incr = [
        {
            "region": CFG.get("cm_region") or "",
            "name": n,
            "ip": ip,
            "identity": pid,
            "status": st,
            "config": {"source": json.loads(cfg)},
        }
        for n, ip, st, cfg in rows
    ]
    return {
        "storeList": None,
        "reverseStoreList": None,
        "fullVerifyComponents": None,
        "fullImportComponents": None,
        "incrSyncComponents": incr,
        "reverseIncrSyncComponents": None,
    }


def action(name: str, body: dict) -> tuple[int, dict]:
    if name == "ListProjects" and NEWER_API:
        size, page = body.get("pageSize") or 10, body.get("pageNumber") or 1
        if not isinstance(size, int) or not isinstance(page, int) or not 1 <= size <= facts.LIST_PAGE_MAX or page < 1:
            return 200, envelope(success=False, code="PARAM_ERROR", message="pageSize must be 1..150, pageNumber >= 1")
        rows = query(
            f"SELECT {PROJECT_COLUMNS} FROM oms_project ORDER BY id LIMIT %s OFFSET %s", (size, (page - 1) * size), RM
        )
        # the doc's sample envelope carries totalCount null: a client pages until a short page
        return 200, envelope([project_row(r) for r in rows], pageNumber=page, pageSize=size, totalCount=None)
    if name in ("DescribeProject", "DescribeProjectSteps", "ResumeProject", "StopProject") or (
        name == "DescribeProjectComponents" and NEWER_API
    ):
        pid = body.get("id")
        rows = query(f"SELECT {PROJECT_COLUMNS} FROM oms_project WHERE id=%s", (pid,), RM)
        if not rows:
            return 200, envelope(success=False, code="GHANA-OPERAT000404", message=f"project {pid} not found")
        if name == "DescribeProject":
            return 200, envelope(project_row(rows[0]))
        if name == "DescribeProjectComponents":
            return 200, envelope(components(str(pid)))
        if name in ("ResumeProject", "StopProject"):
            status = "RUNNING" if name == "ResumeProject" else "SUSPEND"
            query("UPDATE oms_project SET status=%s WHERE id=%s", (status, pid), RM)
            return 200, envelope(True)
        steps = query(
            "SELECT step_name, status, step_order FROM oms_project_step WHERE project_id=%s ORDER BY step_order",
            (pid,),
            RM,
        )
        return 200, envelope([{"name": s[0], "status": s[1], "order": s[2]} for s in steps])
    # facts.CHOICES unknown_action
    return 200, envelope(success=False, code="PARAM_ERROR", message=f"Action {name!r} is not supported")


class Handler(BaseHTTPRequestHandler):
    server_version = "nginx"

    def log_message(self, fmt: str, *args) -> None:  # keep docker logs' last lines meaningful
        pass

    def _send(self, status: int, payload: dict | None, text: str | None = None) -> None:
        data = json.dumps(payload).encode() if payload is not None else (text or "").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if payload is not None else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _backend_down(self) -> bool:
        if common.program_running("oms_console"):
            return False
        self._send(
            502,
            None,
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
            "</h1></center><hr><center>nginx</center></body></html>",
        )
        return True

    def do_GET(self) -> None:
        if self._backend_down():
            return
        if urlparse(self.path).path == "/oms/health":
            try:
                query("SELECT 1")
                healthy = True
            except Exception:
                healthy = False
            self._send(200, envelope({"healthy": healthy, "version": facts.ce(VERSION), "ip": HOST_IP}))
        else:
            self._send(404, envelope(success=False, code="NOT_FOUND", message=self.path))

    def do_POST(self) -> None:
        if self._backend_down():
            return
        url = urlparse(self.path)
        if url.path != "/api/v2":
            self._send(404, envelope(success=False, code="NOT_FOUND", message=url.path))
            return
        name = (parse_qs(url.query).get("Action") or [""])[0]
        try:
            ok, why = check_auth(self.headers.get("Authorization"))
            if not ok:
                self._send(401, envelope(success=False, code="UNAUTHORIZED", message=why))
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._send(200, envelope(success=False, code="PARAM_ERROR", message="the body is not a JSON object"))
                return
            self._send(*action(name, body))
        except Exception as e:
            self._send(500, envelope(success=False, code="GHANA-OPERAT000500", message=f"MetaDB error: {e}"))


def main() -> None:
    server = ThreadingHTTPServer((HOST_IP, facts.console_port(CFG)), Handler)
    if os.path.exists(facts.CERT) and os.path.exists(facts.KEY):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(facts.CERT, facts.KEY)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        common.log("certificate mounted: the console serves HTTPS only")
    server.serve_forever()


if __name__ == "__main__":
    main()
