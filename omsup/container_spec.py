"""The documented `docker run` of an OMS CE container, as one value.

doc 003/004:
    docker run -dit --net host -v <config.yaml>:/home/admin/conf/config.yaml
      -v <logs>:/home/admin/logs -v <store>:/home/ds/store -v <run>:/home/ds/run
      [-v <crt>:/etc/pki/nginx/oms_server.crt -v <key>:/etc/pki/nginx/oms_server.key]
      -e OMS_HOST_IP=<ip> [-e IS_UPGRADE=true] --privileged=true --pids-limit -1
      --ulimit nproc=65535:65535 --name <container> <image>

Used by the runbooks' engine adapter and by the sandbox, so both start containers alike.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

CONFIG_TARGET = "/home/admin/conf/config.yaml"
DATA_TARGETS = ("/home/admin/logs", "/home/ds/store", "/home/ds/run")
CERT_TARGETS = ("/etc/pki/nginx/oms_server.crt", "/etc/pki/nginx/oms_server.key")
REQUIRED_TARGETS = (CONFIG_TARGET, *DATA_TARGETS)


def bind_target(bind: str) -> str:
    """The container side of a ``src:dst[:mode]`` bind."""
    parts = bind.split(":")
    return parts[1] if len(parts) >= 2 else ""


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    binds: tuple[str, ...]
    host_ip: str
    upgrade: bool = False
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # Not a documented flag: a label naming the run that created the container, so that a run
    # interrupted between `docker run` and writing its ledger recognizes its own container.
    labels: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def environment(self) -> dict[str, str]:
        env = dict(self.extra_env)
        env["OMS_HOST_IP"] = self.host_ip
        if self.upgrade:
            env["IS_UPGRADE"] = "true"  # doc 004: "IS_UPGRADE must be in uppercase"
        else:
            env.pop("IS_UPGRADE", None)
        return env

    def command_line(self) -> str:
        """The equivalent shell command, for plans and the report."""
        return shlex.join(self.argv())

    def argv(self) -> list[str]:
        """The documented `docker run` command as arguments (what the CLI path of the engine runs)."""
        parts = ["docker", "run", "-dit", "--net", "host"]
        for b in self.binds:
            parts += ["-v", b]
        for k, v in self.environment().items():
            parts += ["-e", f"{k}={v}"]
        for k, v in self.labels:
            parts += ["--label", f"{k}={v}"]
        parts += [
            "--privileged=true",
            "--pids-limit",
            "-1",
            "--ulimit",
            "nproc=65535:65535",
            "--name",
            self.name,
            self.image,
        ]
        return parts


def standard_binds(
    config: str, logs: str, store: str, run: str, cert: str | None = None, key: str | None = None
) -> tuple[str, ...]:
    binds = [
        f"{config}:{CONFIG_TARGET}",
        f"{logs}:{DATA_TARGETS[0]}",
        f"{store}:{DATA_TARGETS[1]}",
        f"{run}:{DATA_TARGETS[2]}",
    ]
    if cert and key:
        binds += [f"{cert}:{CERT_TARGETS[0]}", f"{key}:{CERT_TARGETS[1]}"]
    return tuple(binds)
