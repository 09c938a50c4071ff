"""The OMS console over HTTP: health and the /api/v2 actions, with HTTP Basic auth.

One choke point (``_request``): each request is recorded once with its status and the
envelope's ``success``/``code``; failures become ``NotReady``.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from ..audit import AUDIT
from ..envfile import Console as ConsoleConfig
from ..errors import NotReady
from ..redact import redact


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """The documented envelope {"success", "code", "message", "data", ...} from an answer body."""
    try:
        env = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise NotReady(f"an answer that is not JSON: {raw[:200]!r}") from e
    if not isinstance(env, dict) or "success" not in env:
        raise NotReady(f"an answer without the documented envelope: {raw[:200]!r}")
    return env


class Console:
    def __init__(self, cfg: ConsoleConfig, ip: str, label: str) -> None:
        self.cfg = cfg
        self.base = f"{cfg.scheme}://{ip}:{cfg.port}"
        self.label = label
        self.node = label

    def _context(self) -> ssl.SSLContext | None:
        if self.cfg.scheme != "https":
            return None
        # HTTPS is verified: against the given CA file (a private CA), else the system's.
        return ssl.create_default_context(cafile=self.cfg.ca_file)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, auth: bool = True, timeout: float = 10
    ) -> dict[str, Any]:
        url = self.base + path
        data = json.dumps(body or {}).encode() if method == "POST" else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            token = base64.b64encode(f"{self.cfg.user}:{self.cfg.password.value}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        t0 = time.monotonic()
        shown = f"{method} {url}" + (f" {json.dumps(body)}" if body else "")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._context()) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (OSError, ValueError) as e:
            AUDIT.record("console", self.label, shown, f"no answer: {e}", time.monotonic() - t0, node=self.node)
            raise NotReady(f"console of {self.label} ({self.base}) does not answer: {redact(e)}") from e
        try:
            env = parse_envelope(raw)
        except NotReady as e:
            AUDIT.record(
                "console", self.label, shown, f"HTTP {status}, {e.message}", time.monotonic() - t0, node=self.node
            )
            raise NotReady(f"console of {self.label}: {path} answered HTTP {status}: {e.message}") from e
        AUDIT.record(
            "console",
            self.label,
            shown,
            f"HTTP {status} success={env.get('success')} code={env.get('code')}",
            time.monotonic() - t0,
            node=self.node,
        )
        if not isinstance(env, dict) or env.get("success") is not True:
            raise NotReady(
                f"console of {self.label}: {method} {path} answered HTTP {status}, success={env.get('success')}, "
                f"code={env.get('code')}, message={redact(env.get('message'))}",
                "check the console credentials in the environment file" if status == 401 else None,
            )
        return env

    def health(self) -> dict[str, Any]:
        """obd: GET /oms/health answers data.healthy."""
        return dict(self._request("GET", "/oms/health", auth=False, timeout=3).get("data") or {})

    def action(self, name: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", f"/api/v2?Action={name}", body).get("data")

    def list_projects(self) -> list[dict[str, Any]]:
        """ListProjects (doc, from V4.1.1-CE), every page of 150."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            env = self._request("POST", "/api/v2?Action=ListProjects", {"pageNumber": page, "pageSize": 150})
            items = env.get("data") or []
            out.extend(items)
            if len(items) < 150 or len(out) >= int(env.get("totalCount") or 0):
                return out
            page += 1

    def project_steps(self, project_id: str) -> list[dict[str, Any]]:
        return list(self.action("DescribeProjectSteps", {"id": project_id}) or [])

    # Not public: the server list (Online/Offline) has no documented API. The stand-in answers
    # ListServers; this is the one place to change when a real OMS shows its own.
    def servers(self) -> list[dict[str, Any]]:
        return list(self.action("ListServers") or [])

    # Not public either: the Connector configurations (the console's Component > Connector page).
    def connectors(self) -> list[dict[str, Any]]:
        return list(self.action("ListConnectors") or [])

    def update_connector(self, connector_id: str, config: dict[str, Any]) -> None:
        self.action("UpdateConnectorConfig", {"id": connector_id, "config": config})

    def batch_update_connectors(self, host_ip: str, source: dict[str, Any]) -> int:
        """The console's Batch O&M: add ``source`` parameters to every Connector of one host IP."""
        return int(self.action("BatchUpdateConnectorConfig", {"hostIp": host_ip, "source": source}) or 0)

    def project(self, project_id: str) -> dict[str, Any]:
        return dict(self.action("DescribeProject", {"id": project_id}) or {})
