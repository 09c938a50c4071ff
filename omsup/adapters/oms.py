"""The OMS container's own files and programs, read through the node's host and engine adapters.

What the container holds that the runbooks read: config.yaml (mounted from the host at
/home/admin/conf/config.yaml, doc), and the ports it sets. Knowledge of the file's keys lives here,
next to the command that reads it (as testinfra's modules keep a command and its parsing together).

Ports (field notes: configurable in config.yaml, OD deploy template): the console behind nginx on
``nginx_server_port`` and the CM on ``cm_server_port``; 8089 and 8088 (obd) when it sets none.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..container_spec import CONFIG_TARGET, bind_target
from ..errors import PreconditionRefused
from ..redact import excerpt
from ..yamltext import flow_depth
from .engine import Engine
from .hosts import Host

MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 32  # a config.yaml is a flat mapping; deeper text is refused before PyYAML recurses through it
CONSOLE_PORT_KEY, CONSOLE_PORT_DEFAULT = "nginx_server_port", 8089
CM_PORT_KEY, CM_PORT_DEFAULT = "cm_server_port", 8088


def read_config(host: Host, engine: Engine, container: str, binds: list[str], label: str) -> dict[str, Any]:
    """A node's config.yaml: from the host path of its bind, else through `docker exec ... cat`."""
    src = next((b.split(":")[0] for b in binds if bind_target(b) == CONFIG_TARGET), None)
    if src is None:
        raise PreconditionRefused(
            f"node {label}: the container has no bind for {CONFIG_TARGET}",
            "the deployment does not look like the documented one; check `docker inspect`",
        )
    if host.readable(src):
        text = host.read_text(src)
    else:  # the host path may be root's only: read it in the container
        rc, text = engine.exec(container, "cat", CONFIG_TARGET)
        if rc != 0:
            raise PreconditionRefused(
                f"node {label}: {src} is not readable by the SSH user, and `docker exec {container} cat "
                f"{CONFIG_TARGET}` exited {rc}"
            )
    return parse_config_yaml(text, f"node {label}: {src}")


def parse_config_yaml(text: str, what: str) -> dict[str, Any]:
    """An OMS config.yaml (a flat mapping of a few dozen keys); anything else is the project's error."""
    if len(text) > MAX_CONFIG_BYTES:
        raise PreconditionRefused(f"{what} is {len(text)} bytes, not an OMS config.yaml")
    if flow_depth(text) > MAX_CONFIG_DEPTH:
        raise PreconditionRefused(f"{what} nests values more than {MAX_CONFIG_DEPTH} deep, not an OMS config.yaml")
    try:
        cfg = yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001 - PyYAML's constructors raise anything on odd tags (!!timestamp x)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise PreconditionRefused(f"{what} is not valid YAML: {excerpt(first)}") from None
    if not isinstance(cfg, dict):
        raise PreconditionRefused(f"{what} is not a mapping")
    return cfg


def ports_of(cfg: dict[str, Any], what: str) -> tuple[int, int]:
    """(console, CM) ports a config.yaml sets, with the documented defaults."""
    out = []
    for key, default in ((CONSOLE_PORT_KEY, CONSOLE_PORT_DEFAULT), (CM_PORT_KEY, CM_PORT_DEFAULT)):
        value = cfg.get(key, default)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise PreconditionRefused(
                f"{what}: {key} is {excerpt(value, 40)!r}, not a port from 1 to 65535",
                "correct config.yaml on the node (OMS does not start on it as it is)",
            )
        out.append(value)
    return out[0], out[1]


# -- the container's programs and scripts (supervisorctl, docker_init.sh), through `docker exec` ---------------
STATUS_LINE = re.compile(r"^(\S+)\s+(STOPPED|STARTING|RUNNING|BACKOFF|STOPPING|EXITED|FATAL|UNKNOWN)\b")
ALREADY_STARTED = "ERROR (already started)"  # supervisorctl's answer to a start of a program that runs
CONFIG_IN_CONTAINER = CONFIG_TARGET
INIT_FLAG = "/root/init_flag.txt"  # evidence only: no public source says docker_init.sh writes it


def parse_supervisor_status(text: str) -> dict[str, str]:
    """`supervisorctl status` as program -> state (lines it does not recognize are left out)."""
    out = {}
    for line in text.splitlines():
        m = STATUS_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


class Oms:
    """One node's OMS container: its supervisor programs, docker_init.sh and its logs, its config.yaml."""

    def __init__(self, engine: Engine, container: str) -> None:
        self.engine = engine
        self.container = container

    def programs(self) -> tuple[dict[str, str], str, int]:
        """`supervisorctl status`: the programs' states, what it printed, its exit code (3.x: always 0; 4.x: 3
        while a program is not RUNNING: never a condition)."""
        rc, out = self.engine.exec(self.container, "supervisorctl", "status")
        return parse_supervisor_status(out), out, rc

    def supervisor_version(self) -> tuple[int, str]:
        return self.engine.exec(self.container, "supervisorctl", "version")

    def start_program(self, name: str) -> tuple[int, str, bool]:
        """`supervisorctl start NAME`: exit code, answer, and whether it was running already (then unchanged)."""
        rc, out = self.engine.exec(self.container, "supervisorctl", "start", name)
        return rc, out, ALREADY_STARTED in out

    def run_init(self, script: str) -> tuple[int, str]:
        """`bash <script>` (doc 003/004: bash /root/docker_init.sh)."""
        return self.engine.exec(self.container, "bash", script)

    def init_flag(self) -> str | None:
        """/root/init_flag.txt (evidence), or None where there is none."""
        rc, out = self.engine.exec(self.container, "cat", INIT_FLAG)
        return (out.strip()[:200] or None) if rc == 0 else None

    def init_log_tails(self, logs: str, lines: int = 2) -> list[str]:
        """The last lines of every docker_init.sh log (obdiag: docker_init.log.<date>.<time>), oldest first."""
        _, out = self.engine.exec(
            self.container,
            "sh",
            "-c",
            f'for f in {logs}; do [ -e "$f" ] && echo "== $f" && tail -n {int(lines)} "$f"; done',
        )
        return [block for block in out.split("== ") if block.strip()]

    def config_text(self) -> tuple[int, str]:
        """config.yaml as the container sees it."""
        return self.engine.exec(self.container, "cat", CONFIG_IN_CONTAINER)
