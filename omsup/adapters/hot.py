"""The hot upgrade's commands on one node (oceanbase/oms-doc zh-CN/1300.upgrade-guide/309.hot-upgrade.md).

The page has the operator, on the host of the OMS container, fetch three scripts out of the new image
through a tool container, run them there, and run two commands in the container::

    docker run -d --net host --name oms-config-tool ${OMS_IMAGE} bash \\
      && docker cp oms-config-tool:/root/docker_dump_file_from_image.sh . \\
      && docker cp oms-config-tool:/root/docker_copy_dumpfile_to_container.sh . \\
      && docker cp oms-config-tool:/root/docker_copy_dumpfile_rollback.sh . \\
      && docker rm -f oms-config-tool                                  (step 2)
    sh docker_dump_file_from_image.sh ${OMS_IMAGE}                      (step 4)
    supervisorctl stop nginx oms_console oms_drc_cm oms_drc_supervisor sshd   (step 5, in the container)
    sh docker_copy_dumpfile_to_container.sh ${CONTAINER}                (step 6)
    docker exec -it ${CONTAINER} /root/docker_hot_update_init.sh        (step 7)
    sh docker_copy_dumpfile_rollback.sh ${CONTAINER} /home/admin/logs/backup<ts>; docker exec ... /root/docker_init.sh

Each runs in the node's work folder (the scripts write the dumped files beside them: where exactly is not
public, so nothing here depends on it). The container's backup folder is found, not parsed from the
script's words: the ``/home/admin/logs/backup*`` folders after step 6 that were not there before.
``docker top`` lists the container's processes, to show which ones outlived the stop of the management
programs (the tasks' components: the page says the tasks keep running) and that they kept running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import HostProblem
from ..redact import excerpt
from .engine import Engine
from .hosts import Host

TOOL_CONTAINER = "oms-config-tool"  # the page's name for it
SCRIPTS = (
    "docker_dump_file_from_image.sh",
    "docker_copy_dumpfile_to_container.sh",
    "docker_copy_dumpfile_rollback.sh",
)
HOT_INIT = "/root/docker_hot_update_init.sh"  # in the image (step 7)
INIT = "/root/docker_init.sh"  # the rollback runs it again (step 7)
# step 5: the management programs; the tasks' components are not among them
MANAGEMENT_PROGRAMS = ("nginx", "oms_console", "oms_drc_cm", "oms_drc_supervisor", "sshd")
BACKUP_GLOB = "/home/admin/logs/backup*"
BACKUP_FOLDER = re.compile(r"^/home/admin/logs/backup[A-Za-z0-9_.:-]{1,64}$")
TOP_LINE = re.compile(r"^\s*(\d{1,10})\s+(\d{1,10})\s+(.*)$")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    args: str


def parse_top(text: str, what: str) -> list[Proc]:
    """`docker top CONTAINER -o pid,ppid,args`: a header line, then PID PPID ARGS per line."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    if not lines or not lines[0].split()[:2] == ["PID", "PPID"]:
        raise HostProblem(f"{what}: docker top answered {excerpt(text)!r}, not a PID PPID ARGS listing")
    out = []
    for line in lines[1:]:
        m = TOP_LINE.match(line)
        if not m:
            raise HostProblem(f"{what}: docker top answered the line {excerpt(line)!r}, not PID PPID ARGS")
        out.append(Proc(int(m.group(1)), int(m.group(2)), m.group(3).strip()[:300]))
    return out


def parse_backup_folders(text: str) -> list[str]:
    """`ls -d /home/admin/logs/backup*`: the backup folders the copy script made (other lines left out)."""
    return sorted({line.strip() for line in str(text).splitlines() if BACKUP_FOLDER.fullmatch(line.strip())})


class HotUpgrade:
    """The page's commands on one node: its host (the scripts, in ``folder``) and its container."""

    def __init__(self, host: Host, engine: Engine, container: str, folder: str) -> None:
        self.host = host
        self.engine = engine
        self.container = container
        self.folder = folder

    def _in_folder(self, command: str, *args: str) -> tuple[int, str]:
        """``<docker's environment> cd FOLDER && COMMAND``: exit code and output (stdout, then stderr)."""
        r = self.host.run(self.engine.cli_env() + "cd -- %s && " + command, self.folder, *args)
        return r.rc, (r.stdout + r.stderr).strip()

    def _docker(self, command: str, *args: str) -> tuple[int, str]:
        """``docker COMMAND`` on the node, talking to its engine: exit code and output."""
        r = self.host.run(self.engine.cli_env() + "docker " + command, *args)
        return r.rc, (r.stdout + r.stderr).strip()

    # -- step 2 ----------------------------------------------------------------------------------
    def tool_container(self) -> dict[str, Any] | None:
        """The page's tool container, if one is there (left by an earlier attempt, or someone else's)."""
        return self.engine.inspect(TOOL_CONTAINER)

    def remove_tool_container(self) -> tuple[int, str]:
        return self._docker("rm -f %s", TOOL_CONTAINER)

    def fetch_scripts(self, image: str) -> tuple[int, str]:
        """Step 2 as the page writes it, in the (new, private) work folder; the tool container is removed
        whatever happened (the page's chain leaves it behind when a `docker cp` fails)."""
        self.host.make_empty_private_dir(self.folder)
        chain = " && ".join(
            ["docker run -d --net host --name %s %s bash"] + [f"docker cp %s:/root/{s} ." for s in SCRIPTS]
        )
        rc, out = self._in_folder(chain, TOOL_CONTAINER, image, *([TOOL_CONTAINER] * len(SCRIPTS)))
        rm_rc, rm_out = self.remove_tool_container()
        return rc, out + (f"\n(docker rm -f {TOOL_CONTAINER}: exit {rm_rc} {rm_out})" if rm_rc else "")

    def script_path(self, name: str) -> str:
        return f"{self.folder.rstrip('/')}/{name}"

    # -- steps 4, 6 and the rollback ------------------------------------------------------------------
    def dump_files(self, image: str) -> tuple[int, str]:
        """Step 4: ``sh docker_dump_file_from_image.sh ${OMS_IMAGE}``."""
        return self._in_folder("sh %s %s", SCRIPTS[0], image)

    def copy_to_container(self) -> tuple[int, str]:
        """Step 6: ``sh docker_copy_dumpfile_to_container.sh ${CONTAINER}``."""
        return self._in_folder("sh %s %s", SCRIPTS[1], self.container)

    def copy_back(self, backup: str) -> tuple[int, str]:
        """The rollback: ``sh docker_copy_dumpfile_rollback.sh ${CONTAINER} /home/admin/logs/backup<ts>``."""
        return self._in_folder("sh %s %s %s", SCRIPTS[2], self.container, backup)

    # -- in the container -------------------------------------------------------------------------
    def stop_programs(self) -> tuple[int, str]:
        """Step 5: ``supervisorctl stop nginx oms_console oms_drc_cm oms_drc_supervisor sshd``."""
        return self.engine.exec(self.container, "supervisorctl", "stop", *MANAGEMENT_PROGRAMS)

    def start_programs(self, names: list[str]) -> tuple[int, str]:
        return self.engine.exec(self.container, "supervisorctl", "start", *names)

    def hot_update_init(self) -> tuple[int, str]:
        """Step 7: ``docker exec ${CONTAINER} /root/docker_hot_update_init.sh`` (no terminal: -it left out)."""
        return self.engine.exec(self.container, HOT_INIT)

    def init_again(self) -> tuple[int, str]:
        """The rollback's ``docker exec ${CONTAINER} /root/docker_init.sh``."""
        return self.engine.exec(self.container, INIT)

    def backup_folders(self) -> list[str]:
        """The ``/home/admin/logs/backup*`` folders in the container."""
        _, out = self.engine.exec(self.container, "sh", "-c", f"ls -d {BACKUP_GLOB} 2>/dev/null; true")
        return parse_backup_folders(out)

    def has_folder(self, path: str) -> bool:
        rc, _ = self.engine.exec(self.container, "test", "-d", path)
        return rc == 0

    def processes(self) -> list[Proc]:
        """`docker top CONTAINER -o pid,ppid,args` (the PIDs as the node sees them)."""
        rc, out = self._docker("top %s -o pid,ppid,args", self.container)
        if rc != 0:
            raise HostProblem(f"docker top {self.container} on {self.host.label} exited {rc}: {excerpt(out)!r}")
        return parse_top(out, f"docker top {self.container} on {self.host.label}")
