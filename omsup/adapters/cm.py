"""The Cluster Manager's HTTP API on port 8088: the documented Connector operations.

doc (V4.0.0, "O&M operations for the Connector component"): POST
``/connector/task/stopByName?taskName=``, ``/connector/task/startByName?taskName=``, and
``/connector/task/updateByName`` with the form fields ``taskName`` and ``source.<key>=<value>``,
which the CM accepts only for a stopped or abnormal Connector. Answers carry
``{errCode, errMsg, errorDetail, isSuccess, result, retryable}`` (field notes). Every request
runs inside ``audit.call`` (recorded once); failures become ``NotReady``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from .. import audit
from ..errors import NotReady
from ..redact import excerpt, printable, redact
from . import http

CM_PORT = 8088  # obd; config.yaml's cm_server_port when it sets one (field notes: OD deploy template)
MAX_ANSWER = 4 * 1024 * 1024
PROBE_TASK = "omsup-probe-no-such-task"  # a task name no Connector has: asking to stop it changes nothing


def parse_cm_answer(raw: bytes) -> dict[str, Any]:
    """The CM's answer {isSuccess, errCode, errMsg, result, ...}; anything else is the project's error."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise NotReady(f"the CM answered something that is not JSON: {excerpt(raw)!r} ({type(e).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("isSuccess"), bool):
        raise NotReady(f"the CM answered without isSuccess: {excerpt(raw)!r}")
    return doc


class CM:
    def __init__(self, ip: str, label: str, port: int = CM_PORT) -> None:
        self.base = f"http://{ip}:{port}"
        self.label = label
        self.node = label

    def _send(self, req: urllib.request.Request) -> tuple[int, bytes]:
        """One request to this CM (inside the caller's record): its status and body, or NotReady."""
        try:
            return http.send(req, 30, MAX_ANSWER)
        except http.NoAnswer as e:
            raise NotReady(
                f"the CM of {self.label} ({self.base}) does not answer: {redact(e)}",
                "the Cluster Manager (oms_drc_cm) must run on the node",
            ) from None
        except http.CrossOrigin as e:
            raise NotReady(
                f"the CM of {self.label}: {req.full_url} answered HTTP {e.code}, a redirect to "
                f"{printable(e.location)}: refused"
            ) from None

    def _post(self, path: str, query: dict[str, str] | None = None, form: dict[str, str] | None = None) -> Any:
        url = self.base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = urllib.parse.urlencode(form).encode() if form else b""
        req = urllib.request.Request(url, data=data, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        shown = f"POST {url}" + (f" {urllib.parse.unquote_plus(data.decode())}" if data else "")
        with audit.call("cm", self.label, shown, self.node) as rec:
            status, raw = self._send(req)
            try:
                doc = parse_cm_answer(raw)
            except NotReady as e:
                raise NotReady(f"the CM of {self.label}: {url} answered HTTP {status}: {e.message}") from None
            rec.outcome = f"HTTP {status} isSuccess={doc['isSuccess']} errCode={doc.get('errCode')}"
        if not doc["isSuccess"]:
            raise NotReady(
                f"the CM of {self.label}: {path} for {query or form} answered errCode={doc.get('errCode')}: "
                f"{redact(doc.get('errMsg'))}"
            )
        return doc.get("result")

    def stop_connector(self, name: str) -> None:
        self._post("/connector/task/stopByName", {"taskName": name})

    def start_connector(self, name: str) -> None:
        """doc (V4.0.0, O&M of the Connector): after an update the Connector is started with resume=false."""
        self._post("/connector/task/startByName", {"taskName": name, "resume": "false"})

    def has_by_name_api(self) -> tuple[bool, str]:
        """Whether this CM answers the documented *ByName endpoints (documented from V4.0.0; no CM API page
        exists for 3.2.2 .. 3.3.1), and what it answered: a stop of a task that does not exist changes
        nothing, and is answered with the CM's envelope where the endpoint exists (an error naming the task),
        HTTP 404 where it does not."""
        url = self.base + "/connector/task/stopByName?" + urllib.parse.urlencode({"taskName": PROBE_TASK})
        req = urllib.request.Request(url, data=b"", method="POST")
        with audit.call("cm", self.label, f"POST {url}", self.node) as rec:
            status, raw = self._send(req)
            try:
                doc = parse_cm_answer(raw)
                seen = f"HTTP {status} isSuccess={doc['isSuccess']} errCode={doc.get('errCode')}"
                exists = status != 404
            except NotReady:
                seen, exists = f"HTTP {status}, not the CM's envelope: {excerpt(raw, 80)!r}", False
            rec.outcome = seen
        return exists, seen

    def update_connector(self, name: str, source: dict[str, str]) -> None:
        """``source.<key>=<value>`` for each entry; the Connector must be stopped (doc)."""
        self._post(
            "/connector/task/updateByName", form={"taskName": name, **{f"source.{k}": v for k, v in source.items()}}
        )
