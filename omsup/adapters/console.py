"""The OMS console over HTTP: /oms/health and the published /api/v2 actions, with HTTP Basic auth.

One choke point (``_request``): each request is recorded once with its status and the envelope's
``success``/``code``; failures become ``NotReady``. Only actions of the published API are used
(doc, odc): ListProjects, DescribeProject, DescribeProjectSteps, DescribeProjectComponents,
ResumeProject. Every parser of what the console answers returns the project's error for any
input; an answer is read up to a size limit, and listings up to a page cap. Authentication is
never retried in a loop: five wrong passwords lock the account (field notes).
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from collections.abc import Callable
from typing import Any

from .. import audit
from ..envfile import Console as ConsoleConfig
from ..errors import NotReady
from ..redact import excerpt, mask_config, printable, redact
from . import http
from .lazy import cached

MAX_ANSWER = 32 * 1024 * 1024
DEFAULT_PORT = 8089  # obd; config.yaml's nginx_server_port when it sets one
PAGE_SIZE = 150  # doc: the maximum
MAX_PAGES = 1000  # 150 000 projects; a console that keeps answering full pages is not believed further


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """The documented envelope {"success", "code", "message", "data", ...} from an answer body."""
    try:
        env = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise NotReady(f"an answer that is not JSON: {excerpt(raw)!r} ({type(e).__name__})") from None
    if not isinstance(env, dict) or "success" not in env:
        raise NotReady(f"an answer without the documented envelope: {excerpt(raw)!r}")
    return env


def _records(data: Any, what: str) -> list[dict[str, Any]]:
    """A list of JSON objects, or the project's error naming ``what``."""
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise NotReady(f"{what}: the console answered {excerpt(data)!r}, not a list of objects")
    return list(data)


def parse_health(data: Any) -> dict[str, Any]:
    """obd: GET /oms/health answers data.healthy (a boolean)."""
    if not isinstance(data, dict) or not isinstance(data.get("healthy"), bool):
        raise NotReady(f"/oms/health answered {excerpt(data)!r}, without data.healthy true or false")
    return dict(data)


def parse_projects(data: Any) -> list[dict[str, Any]]:
    items = _records(data, "ListProjects")
    for p in items:
        if not isinstance(p.get("id"), str | int) or not isinstance(p.get("status"), str | None):
            raise NotReady(f"ListProjects answered a project without an id or a status: {excerpt(p)!r}")
    return items


def parse_steps(data: Any) -> list[dict[str, Any]]:
    steps = _records(data, "DescribeProjectSteps")
    for s in steps:
        if not isinstance(s.get("name"), str):
            raise NotReady(f"DescribeProjectSteps answered a step without a name: {excerpt(s)!r}")
    return steps


def parse_components(data: Any) -> list[dict[str, Any]]:
    """The Incr-Sync components (the Connectors) of DescribeProjectComponents (doc, from 4.1.1)."""
    if not isinstance(data, dict):
        raise NotReady(f"DescribeProjectComponents answered {excerpt(data)!r}, not an object")
    out = []
    for c in _records(data.get("incrSyncComponents"), "DescribeProjectComponents incrSyncComponents"):
        config = c.get("config")
        source = config.get("source") if isinstance(config, dict) else None
        if not isinstance(c.get("name"), str) or not isinstance(source, dict):
            raise NotReady(
                f"DescribeProjectComponents: a component without a name or config.source: {excerpt(mask_config(c))!r}"
            )
        out.append({"name": c["name"], "host": c.get("ip"), "status": c.get("status"), "source": source})
    return out


class Console:
    def __init__(self, cfg: ConsoleConfig, ip: str, label: str, port: Callable[[], int] | None = None) -> None:
        self.cfg = cfg
        self.ip = ip
        self.label = label
        self.node = label
        # the port: the environment file's, else the node's config.yaml (nginx_server_port; 8089 by default),
        # asked for at the first request (a read on the node)
        self._port = port or (lambda: cfg.port or DEFAULT_PORT)

    @cached
    def base(self) -> str:
        return f"{self.cfg.scheme}://{self.ip}:{self._port()}"

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
        shown = f"{method} {url}" + (f" {json.dumps(mask_config(body))}" if body else "")
        with audit.call("console", self.label, shown, self.node) as rec:
            try:
                status, raw = http.send(req, timeout, MAX_ANSWER, self._context())
            except http.NoAnswer as e:
                raise NotReady(f"console of {self.label} ({self.base}) does not answer: {redact(e)}") from None
            except http.CrossOrigin as e:
                raise NotReady(
                    f"console of {self.label}: {method} {url} answered HTTP {e.code}, a redirect to "
                    f"{printable(e.location)}: refused (the console's credentials are never sent to another scheme, "
                    "host or port, and a request is never sent again without its body)",
                    "set console.scheme and console.port to where the console really answers, or fix the proxy in "
                    "front of it",
                ) from None
            try:
                env = parse_envelope(raw)
            except NotReady as e:
                raise NotReady(f"console of {self.label}: {path} answered HTTP {status}: {e.message}") from None
            rec.outcome = f"HTTP {status} success={env.get('success')} code={env.get('code')}"
        if env.get("success") is not True:
            raise NotReady(
                f"console of {self.label}: {method} {path} answered HTTP {status}, success={env.get('success')}, "
                f"code={env.get('code')}, message={redact(env.get('message'))}",
                "check the console credentials in the environment file (do not retry: five wrong passwords lock "
                "the account)"
                if status == 401
                else None,
            )
        return env

    def health(self) -> dict[str, Any]:
        """obd: GET /oms/health answers data.healthy."""
        return parse_health(self._request("GET", "/oms/health", auth=False, timeout=3).get("data"))

    def action(self, name: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", f"/api/v2?Action={name}", body).get("data")

    def list_projects(self) -> list[dict[str, Any]]:
        """ListProjects (doc, from V4.1.1-CE): every page, until a short one (totalCount may be null). A page
        without its list (data null or absent) is an empty list only where totalCount says 0."""
        out: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            env = self._request("POST", "/api/v2?Action=ListProjects", {"pageNumber": page, "pageSize": PAGE_SIZE})
            if env.get("data") is None and env.get("totalCount") != 0:
                raise NotReady(
                    f"console of {self.label}: ListProjects (page {page}) answered {excerpt(env)!r}: no list of "
                    "projects and no totalCount of 0, so not the documented answer",
                    "check that console.port points at the OMS console; nothing was changed",
                )
            items = parse_projects(env.get("data"))
            out.extend(items)
            if len(items) < PAGE_SIZE:
                return out
        raise NotReady(
            f"console of {self.label}: ListProjects still answers full pages after {MAX_PAGES} pages "
            f"({len(out)} projects)",
            "check the console's project list; nothing was changed",
        )

    def project_steps(self, project_id: str) -> list[dict[str, Any]]:
        return parse_steps(self.action("DescribeProjectSteps", {"id": project_id}))

    def project(self, project_id: str) -> dict[str, Any]:
        data = self.action("DescribeProject", {"id": project_id})
        if not isinstance(data, dict):
            raise NotReady(f"DescribeProject {project_id} answered {excerpt(data)!r}, not an object")
        return data

    def components(self, project_id: str) -> list[dict[str, Any]]:
        return parse_components(self.action("DescribeProjectComponents", {"id": project_id}))

    def resume_project(self, project_id: str) -> None:
        """ResumeProject (doc)."""
        self.action("ResumeProject", {"id": project_id})
