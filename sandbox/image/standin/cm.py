"""oms_drc_cm of the stand-in: the Cluster Manager's HTTP API on port 8088 and the server list.

API (doc, "O&M operations for the Connector component"; field notes): POST
/connector/task/stopByName?taskName=, /connector/task/startByName?taskName=[&resume=false], and
/connector/task/updateByName with the form fields taskName and source.<key>=<value>, accepted only
for a stopped or abnormal Connector ("Before you update Light-Connector, you must stop the
connector"). Answers carry {errCode, errMsg, errorDetail, isSuccess, result, retryable}.

Server list (the host-down guide): cm.host.host_status is ONLINE for a host whose supervisor
heartbeat (heart_beat, task_name='supervisor') is current; OFFLINE once it is older than ha.config's
checkHostDownIntervalSec (540 s by default: the HA introduction; `sandbox up --host-down-seconds`
shortens it in the MetaDB, as an operator would). The CM compares the heartbeat with its own clock
(8 hours behind the MetaDB's with the variant heartbeat-local-time, as the agent writes it then).

Port: config.yaml's cm_server_port (8088 by default). Before 4.0.0 the *ByName endpoints are not
documented: the variant cm-no-byname answers them 404 there.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import common
import facts
from common import HOST_IP, log

signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
CFG = common.load_config()
META = common.Meta(CFG)
LOCK = threading.Lock()
REGION = str(CFG.get("cm_region") or "")


def answer(result=None, ok: bool = True, code: str | None = None, msg: str | None = None) -> dict:
    return {"errCode": code, "errMsg": msg, "errorDetail": None, "isSuccess": ok, "result": result, "retryable": False}


def query(sql: str, args: tuple = (), db: str | None = None) -> list[tuple]:
    with LOCK:
        return META.query(sql, args, db)


def connector(name: str) -> tuple | None:
    rows = query("SELECT name, status, source_config FROM connector_task WHERE name=%s", (name,), CFG["drc_cm_db"])
    return rows[0] if rows else None


def value_of(text: str):
    """A form value: a JSON object or array as such (source.checkpoint={...}), anything else as text."""
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def task(path: str, params: dict[str, list[str]]) -> dict:
    name = (params.get("taskName") or [""])[0]
    found = connector(name) if name else None
    if found is None:
        return answer(ok=False, code="CM-TASK-NOT-EXIST", msg=f"task {name!r} does not exist")
    _, status, raw = found
    cm = CFG["drc_cm_db"]
    if path.endswith("/stopByName"):
        query("UPDATE connector_task SET status='STOPPED' WHERE name=%s", (name,), cm)
        return answer(True)
    if path.endswith("/startByName"):
        query("UPDATE connector_task SET status='RUNNING' WHERE name=%s", (name,), cm)
        return answer(True)
    if path.endswith("/updateByName"):
        if common.faults().get("cm_update_fails"):  # sandbox fault
            return answer(ok=False, code="CM-INTERNAL", msg="sandbox fault: the update failed")
        if status not in ("STOPPED", "FAILED"):  # doc: stop the connector before you update it
            return answer(ok=False, code="CM-TASK-RUNNING", msg=f"task {name} is {status}; stop it before updating")
        config = json.loads(raw)
        for key, values in params.items():
            if key.startswith("source."):
                config[key[len("source.") :]] = value_of(values[-1])
            elif key != "taskName":
                return answer(ok=False, code="CM-PARAM-INVALID", msg=f"unsupported parameter {key}")
        query("UPDATE connector_task SET source_config=%s WHERE name=%s", (json.dumps(config), name), cm)
        return answer(True)
    return answer(ok=False, code="CM-NOT-FOUND", msg=f"no such operation {path}")


class Handler(BaseHTTPRequestHandler):
    server_version = "oms-standin-cm"

    def log_message(self, fmt: str, *args) -> None:
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        url = urlparse(self.path)
        params = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qs(self.rfile.read(length).decode("utf-8", "replace")))
        by_name = url.path.endswith("ByName")
        if not url.path.startswith("/connector/task/") or (
            by_name and facts.vkey(common.VERSION) < (4, 0, 0) and common.variant("cm-no-byname")
        ):
            self._send(404, answer(ok=False, code="CM-NOT-FOUND", msg=url.path))
            return
        try:
            self._send(200, task(url.path, params))
        except Exception as e:
            self._send(500, answer(ok=False, code="CM-INTERNAL", msg=f"MetaDB error: {e}"))

    do_POST = _handle
    do_GET = _handle


def host_loop() -> None:
    cm, hb = CFG["drc_cm_db"], CFG["drc_cm_heartbeat_db"]
    group = int(CFG.get("cm_location") or 0) + 1
    while True:
        try:
            query(
                "INSERT INTO host (resource_group_id, ip, region, host_status, gmt_modified) VALUES "
                "(%s, %s, %s, 'OFFLINE', NOW(3)) ON DUPLICATE KEY UPDATE gmt_modified=gmt_modified",
                (group, HOST_IP, REGION),
                cm,
            )
            down_after = common.ha_config(META, CFG["drc_rm_db"]).get(facts.HOST_DOWN_KEY, facts.HOST_DOWN_DEFAULT)
            now = (
                f"NOW() - INTERVAL {facts.HEARTBEAT_OFFSET_HOURS} HOUR"
                if common.variant("heartbeat-local-time")
                else "NOW()"
            )
            fresh = {
                r[0]
                for r in query(
                    "SELECT host_ip FROM heart_beat WHERE task_name='supervisor' AND "
                    f"TIMESTAMPDIFF(SECOND, gmt_modified, {now}) <= %s",
                    (int(down_after),),
                    hb,
                )
            }
            for (ip,) in query("SELECT ip FROM host WHERE region=%s", (REGION,), cm):
                status = facts.HOST_ONLINE if ip in fresh else facts.CHOICES["host_offline_value"][0]
                query(
                    "UPDATE host SET host_status=%s, gmt_modified=NOW(3) WHERE ip=%s AND host_status<>%s",
                    (status, ip, status),
                    cm,
                )
        except Exception as e:  # MetaDB down: keep trying
            log(f"WARN cm: {e}", to_stdout=False)
        time.sleep(1)


def main() -> None:
    threading.Thread(target=host_loop, daemon=True).start()
    ThreadingHTTPServer((HOST_IP, facts.cm_port(CFG)), Handler).serve_forever()


if __name__ == "__main__":
    main()
