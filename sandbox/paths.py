"""Where the sandbox keeps its state (removed by `down`) and its cache (kept for a warm `up`)."""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = Path(os.environ.get("OMSUP_SANDBOX_DIR", "/tmp/omsup-sandbox"))
CACHE_DIR = Path(os.environ.get("OMSUP_SANDBOX_CACHE", "/var/cache/omsup-sandbox"))
IMAGE_SRC = Path(__file__).resolve().parent / "image"
FACTS_PY = Path(__file__).resolve().parent / "facts.py"  # copied into the stand-in image

METADB_HOST = "127.0.0.1"
OCEANBASE_PORT = int(os.environ.get("OMSUP_SANDBOX_OCEANBASE_PORT", "2881"))  # OceanBase's usual SQL port
MARIADB_PORT = int(os.environ.get("OMSUP_SANDBOX_METADB_PORT", "3310"))
METADB_USER = "oms_meta"
CONSOLE_USER = "admin"
CONTAINER_NAME = "oms_ce"
NODE_IP_BASE = 10  # node i (1-based) gets 127.0.0.(10 + i)


@dataclass(frozen=True)
class NodePaths:
    name: str
    root: Path

    @property
    def sock(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def data(self) -> Path:  # doc: /data/config.yaml and /data/oms/oms_{logs,store,run}
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.data / "config.yaml"

    @property
    def mounts(self) -> dict[str, Path]:
        return {
            "/home/admin/logs": self.data / "oms" / "oms_logs",
            "/home/ds/store": self.data / "oms" / "oms_store",
            "/home/ds/run": self.data / "oms" / "oms_run",
        }

    @property
    def packages(self) -> Path:
        return self.root / "packages"


def node_paths(name: str) -> NodePaths:
    return NodePaths(name, STATE_DIR / "nodes" / name)


def state_file() -> Path:
    return STATE_DIR / "state.json"


def load_state() -> dict | None:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None


def save_state(state: dict) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, state_file())


def secret(name: str) -> Path:
    """A generated secret in the state folder (0600), created once.

    The MetaDB password is deliberately hostile (quotes, space, $, #, ;, backslash and
    non-ASCII letters) and the console password non-ASCII, so that every run against the
    sandbox proves the quoting and the encoding of the whole chain.
    """
    path = STATE_DIR / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
        value = {"metadb_password": f"Sx{body}'q\"d $h#s;b\\k-äß€密", "console_password": f"Cs{body}-ñé€"}.get(
            name, f"Rt{body}-{secrets.token_hex(8)}"
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value)
    return path
