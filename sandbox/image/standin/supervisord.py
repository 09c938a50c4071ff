"""The stand-in's entry point (/root/docker_cmd.sh): a small supervisord and its programs.

OMS runs its processes under supervisord (obd): nginx, oms_console, oms_drc_cm,
oms_drc_supervisor, sshd (and crond from 3.3.0). Each program here is a process of its own with
a start delay (STARTING, then RUNNING). With supervisor's defaults (startretries=3, autorestart
unexpected, exitcodes 0; supervisor's process.py): a program that exits before its start delay is
BACKOFF for 1, 2, then 3 seconds before the next try, and FATAL when the fourth try fails; one
that exits after it is EXITED, and started again at once unless it exited 0. `start` of a
STARTING, RUNNING or BACKOFF program is "already started". `supervisorctl` (supervisorctl.py)
reads the state file and asks for start/stop/restart through the control folder. With
IS_UPGRADE=true oms_console does not start by itself: docker_init.sh starts it on its own node,
`supervisorctl start oms_console` on the others (facts.CHOICES console_waits_for_init; the variant
console-starts-itself starts it as on a fresh deployment).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import common
import facts
from common import IS_UPGRADE, VERSION, log

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT = float(os.environ.get("STANDIN_BOOT_SECONDS", "2"))
STARTRETRIES = 3  # supervisor's default
RUNNING_STATES = ("RUNNING", "STARTING", "BACKOFF")  # as supervisor's states.py: `start` says already started
TOO_QUICKLY = "Exited too quickly (process log may have details)"
# program: (command, start delay in seconds)
COMMANDS = {
    "nginx": (["python3", f"{HERE}/console.py"], 0.5),
    "oms_console": (["python3", f"{HERE}/idle.py", "oms_console"], 1.0),
    "oms_drc_cm": (["python3", f"{HERE}/cm.py"], BOOT),
    "oms_drc_supervisor": (["python3", f"{HERE}/agent.py"], BOOT),
    "sshd": (["python3", f"{HERE}/idle.py", "sshd"], 0.3),
    "crond": (["python3", f"{HERE}/idle.py", "crond"], 0.3),
}


class Program:
    def __init__(self, name: str) -> None:
        self.name = name
        self.command, self.startsecs = COMMANDS[name]
        self.proc: subprocess.Popen | None = None
        self.state = "STOPPED"
        self.started = 0.0
        self.tries = 0
        self.retry_at = 0.0
        self.description = "Not started"

    def start(self) -> str:
        if self.state in RUNNING_STATES:
            return "ERROR (already started)"
        self.tries = 0  # a start by hand (or by supervisord itself) begins a new series of tries
        return self.spawn()

    def spawn(self) -> str:
        faults = common.faults()
        stuck = (faults.get("supervisor_stuck") or {}).get(self.name)
        command = self.command
        if (faults.get("program_crash") or {}).get(self.name):  # sandbox fault: it dies at once
            command = ["python3", "-c", "import sys; sys.exit(1)"]
        self.proc = subprocess.Popen(command, stdout=sys.stdout, stderr=sys.stdout, start_new_session=False)
        self.state, self.started, self.description = "STARTING", time.monotonic(), ""
        log(f"INFO spawned: '{self.name}' with pid {self.proc.pid}")
        if stuck:
            self.stuck = True
        return "started"

    def stop(self) -> str:
        if self.state not in RUNNING_STATES:
            return "ERROR (not running)"
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.state, self.description, self.tries = "STOPPED", time.strftime("%b %d %I:%M %p"), 0
        log(f"INFO stopped: {self.name} (terminated by SIGTERM)")
        return "stopped"

    def tick(self) -> None:
        if self.state == "BACKOFF":
            if time.monotonic() >= self.retry_at:
                self.spawn()
            return
        if self.proc is None or self.state in ("STOPPED", "FATAL", "EXITED"):
            return
        rc = self.proc.poll()
        if rc is not None:
            self.proc = None
            log(f"INFO exited: {self.name} (exit status {rc}; {'expected' if rc == 0 else 'not expected'})")
            if self.state == "RUNNING":  # it had started: EXITED, and autorestart starts it again unless it exited 0
                self.state, self.description = "EXITED", time.strftime("%b %d %I:%M %p")
                if rc != 0:
                    self.start()
                return
            self.tries += 1
            if self.tries > STARTRETRIES:
                self.state, self.description = "FATAL", TOO_QUICKLY
                log(f"INFO gave up: {self.name} entered FATAL state, too many start retries too quickly")
                return
            self.state, self.retry_at, self.description = "BACKOFF", time.monotonic() + self.tries, TOO_QUICKLY
            return
        if self.state == "STARTING" and time.monotonic() - self.started >= self.startsecs:
            if getattr(self, "stuck", False):  # sandbox fault: it never gets there
                return
            self.state, self.tries = "RUNNING", 0
            log(
                f"INFO success: {self.name} entered RUNNING state, process has stayed up for > than "
                f"{self.startsecs:g} seconds (startsecs)"
            )
            if self.name == "oms_console" and (not IS_UPGRADE or common.variant("start-line-in-docker-logs")):
                # obd waits for this line in docker logs after a fresh deployment; after an upgrade docker_init.sh
                # prints it (facts.CHOICES start_line_after_upgrade), or the console's start does (the variant)
                print(facts.START_LINE, flush=True)

    def status(self) -> dict:
        pid = self.proc.pid if self.proc is not None and self.state in ("RUNNING", "STARTING") else None
        return {"state": self.state, "pid": pid, "started": self.started, "description": self.description}


def main() -> None:
    os.makedirs(common.CTL_DIR, exist_ok=True)
    log(f"starting OMS stand-in {VERSION} on {common.HOST_IP} (IS_UPGRADE={IS_UPGRADE})")
    if VERSION in (common.faults().get("start_fail") or []):
        common.fail("FATAL sandbox fault: the container fails to start")
    log("INFO supervisord started with pid 1")
    programs = {name: Program(name) for name in facts.programs(VERSION)}
    stopping = []

    def on_term(signum: int, frame: object) -> None:
        # As PID 1 the process ignores SIGTERM unless it handles it; supervisord stops its programs
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_term)
    for name, p in programs.items():
        if name == "oms_console" and IS_UPGRADE and not common.variant("console-starts-itself"):
            continue  # facts.CHOICES console_waits_for_init
        p.start()
    while not stopping:
        for p in programs.values():
            p.tick()
        answers = []
        for req in sorted(os.listdir(common.CTL_DIR)):
            if not req.endswith(".req"):
                continue
            path = os.path.join(common.CTL_DIR, req)
            try:
                with open(path) as f:
                    ask = json.load(f)
                os.unlink(path)
            except (OSError, ValueError):
                continue
            out = []
            for name in ask.get("names") or []:
                p = programs.get(name)
                if p is None:
                    out.append(f"{name}: ERROR (no such process)")
                elif ask.get("action") == "start":
                    out.append(f"{name}: {p.start()}")
                elif ask.get("action") == "stop":
                    out.append(f"{name}: {p.stop()}")
                elif ask.get("action") == "restart":
                    p.stop()
                    out.append(f"{name}: {p.start()}")
            answers.append((path[:-4], "\n".join(out)))
        state = {name: p.status() for name, p in programs.items()}
        with open(common.SUPERVISOR_STATE + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(common.SUPERVISOR_STATE + ".tmp", common.SUPERVISOR_STATE)
        # answered only once the state file shows what the request did: supervisorctl start waits on it
        for base, text in answers:
            with open(base + ".tmp", "w") as f:
                f.write(text)
            os.replace(base + ".tmp", base + ".done")
        time.sleep(0.1)
    log("received SIGTERM: stopping")
    for p in programs.values():
        if p.proc is not None:
            p.proc.terminate()
    for p in programs.values():
        if p.proc is not None:
            try:
                p.proc.wait(5)
            except subprocess.TimeoutExpired:
                p.proc.kill()
    sys.exit(0)


if __name__ == "__main__":
    main()
