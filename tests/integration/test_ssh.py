"""SSH as OpenSSH does it: ProxyJump and Include globs for commands and the engine, host keys verified on
every connection (a reconnect mid-run included), BatchMode, and sudo where the documents use it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, STATE
from .test_upgrade_429 import assert_passed, assert_stopped_at

pytestmark = pytest.mark.integration
JUMP_IP = "127.0.0.50"


def start_sshd(d: Path, ip: str, authorized: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A private sshd on ``ip``:22 with its own host key; returns (process, host public key, log)."""
    d.mkdir()
    key, log = d / "host_ed25519", d / "sshd.log"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (d / "sshd_config").write_text(
        f"ListenAddress {ip}:22\nHostKey {key}\nPidFile {d / 'sshd.pid'}\nAuthorizedKeysFile "
        f"{authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nAllowTcpForwarding yes\nLogLevel DEBUG1\n"
    )
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    proc = subprocess.Popen([sshd, "-D", "-E", str(log), "-f", str(d / "sshd_config")], start_new_session=True)
    deadline = time.monotonic() + 20
    while not subprocess.run(["ssh-keyscan", "-T", "1", ip], capture_output=True, text=True).stdout.strip():
        assert proc.poll() is None and time.monotonic() < deadline, f"the sshd on {ip} did not start: {log}"
        time.sleep(0.2)
    return proc, Path(str(key) + ".pub"), log


class Jumps:
    """Jump hosts (private sshds) and ssh config entries for them, reached through an Include glob."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ssh_dir = STATE / "ssh"
        self.procs: list[subprocess.Popen] = []
        self.keys: dict[str, Path] = {}
        self.logs: dict[str, Path] = {}
        self.known = tmp / "known_hosts"
        self.conf_d = tmp / "conf.d"
        self.conf_d.mkdir()
        self.include = f"Include {self.conf_d}/*.conf\n"  # an Include with a glob
        self.config = Path.home() / ".ssh" / "config"

    def start(self, name: str, ip: str) -> None:
        proc, key, log = start_sshd(self.tmp / name, ip, self.ssh_dir / "authorized_keys")
        self.procs.append(proc)
        self.keys[ip], self.logs[name] = key, log

    def key_line(self, ip: str, key: Path | None = None) -> str:
        return f"{ip} {' '.join((key or self.keys[ip]).read_text().split()[:2])}\n"

    def write(self, known_lines: str, entries: str) -> None:
        self.known.write_text(known_lines + (self.ssh_dir / "known_hosts").read_text())
        (self.conf_d / "omsup-test-jump.conf").write_text(entries)
        text = self.config.read_text()
        if self.include not in text:
            self.config.write_text(self.include + text)

    def entry(self, name: str, hostname: str, extra: str = "") -> str:
        return (
            f"Host {name}\n  HostName {hostname}\n  User root\n  IdentityFile {self.ssh_dir / 'id_ed25519'}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {self.known}\n{extra}"
        )

    def close(self) -> None:
        self.config.write_text(self.config.read_text().replace(self.include, "", 1))
        for proc in self.procs:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=10)


@pytest.fixture
def jumps(sandbox, tmp_path):
    sandbox.fresh("--ssh")
    j = Jumps(tmp_path)
    try:
        yield j
    finally:
        j.close()


@pytest.fixture
def jump(jumps):
    """One jump host whose key is known, n1 reached through it; yields the jump host's log."""
    jumps.start("jump", JUMP_IP)
    jumps.write(
        jumps.key_line(JUMP_IP),
        jumps.entry("via-jump-n1", "127.0.0.11", "  ProxyJump jumpbox\n") + jumps.entry("jumpbox", JUMP_IP),
    )
    yield jumps.logs["jump"]


def via(sandbox, alias: str) -> str:
    return sandbox.edited_env(
        lambda d: d["regions"][0]["nodes"][0].update(host=f"ssh://{alias}", docker=f"ssh://{alias}")
    )


def test_proxyjump_and_an_include_glob_for_commands_and_the_engine(sandbox, jump):
    p = sandbox.runbook("upgrade_429", env_file=via(sandbox, "via-jump-n1"))
    assert_passed(p, 11)
    events = (sandbox.last_report("upgrade_429") / "events.jsonl").read_text()
    engine_calls = [json.loads(x) for x in events.splitlines() if '"system": "engine"' in x and '"node": "n1"' in x]
    host_calls = [json.loads(x) for x in events.splitlines() if '"system": "host"' in x and '"target": "n1"' in x]
    assert engine_calls and host_calls
    # the connections to n1 went through the jump host: it let the client in and forwarded to n1's sshd
    seen = jump.read_text()
    assert "Accepted publickey for root" in seen and "127.0.0.11 port 22" in seen, seen[-3000:]
    ctrs = sandbox.containers()["n1"]
    assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.9_ce") and ctrs["oms_ce"]["running"]


def test_a_changed_host_key_is_refused_on_a_reconnect_mid_run(sandbox):
    sandbox.fresh("--ssh")
    proc = sandbox.start_paused("upgrade_429", "start_new")  # steps 0-5 done over ssh, the masters open
    sandbox.fault("sshd-rekey", node="n1")  # n1 comes back with another host key, its sessions ended
    sandbox.release(proc)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 1 and "STOPPED at step 6." in out, out[-3000:]
    assert "Host key verification failed" in out or "REMOTE HOST IDENTIFICATION HAS CHANGED" in out, out[-3000:]
    old = {n: c for n, c in sandbox.containers().items()}
    assert "oms_ce" not in old["n1"] or not old["n1"]["oms_ce"]["image"].endswith("4.2.9_ce")  # nothing started there
    # the backup host is n1 too: the lock could not be released there, and the run said how to
    assert "the lock of sandbox could not be released" in out and "omsup unlock --env" in out, out[-3000:]
    sandbox.fault("sshd-up", node="n1")  # its own key again
    unlock = subprocess.run(
        [sys.executable, "-m", "omsup", "unlock", "--env", sandbox.env_file], cwd=ROOT, capture_output=True, text=True
    )
    assert unlock.returncode == 0 and "no longer runs on this machine" in unlock.stdout, unlock.stdout + unlock.stderr
    assert_passed(sandbox.runbook("upgrade_429"), 11)  # the same command goes on


def test_sudo_for_the_docker_and_file_commands(sandbox):
    sandbox.fresh("--ssh")
    # sudo starts from a clean environment (env_reset): the engine is named by its socket on the node
    with_sudo = sandbox.edited_env(
        lambda d: [
            n.update(sudo=True, docker=f"unix://{STATE}/nodes/{n['name']}/docker.sock")
            for n in d["regions"][0]["nodes"]
        ]
    )
    assert_passed(sandbox.runbook("upgrade_429", env_file=with_sudo), 11)
    events = (sandbox.last_report("upgrade_429") / "events.jsonl").read_text()
    assert "sudo -n /bin/sh -c" in events and "docker exec" in events
    docker_cli = [json.loads(x)["action"] for x in events.splitlines() if '"system": "host"' in x and " docker " in x]
    assert docker_cli and all(a.startswith("sudo -n ") for a in docker_cli), docker_cli


def test_batchmode_never_prompts_an_unknown_host_is_refused(sandbox):
    """A host whose key this machine does not know is refused at once (no prompt, no trust on first use)."""
    sandbox.fresh("--ssh")
    known = STATE / "ssh" / "known_hosts"
    before = known.read_text()
    known.write_text("".join(x for x in before.splitlines(keepends=True) if not x.startswith("127.0.0.11 ")))
    try:
        p = sandbox.runbook("upgrade_429")
        assert "127.0.0.11 " not in known.read_text()  # nothing was trusted on first use
    finally:
        known.write_text(before)
    assert_stopped_at(p, 0, "n1", "Host key verification failed")
    assert p.returncode == 10  # refused before any change


LAX = "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"  # a jump host entry as many configs have it


def test_a_jump_host_with_an_unknown_key_is_refused_whatever_its_entry_says_and_not_learned(sandbox, jumps):
    """The review's HIGH finding: OpenSSH's own inner `ssh -W` of a ProxyJump would take the jump host's
    entry (StrictHostKeyChecking no) and learn its key; every hop is strict here."""
    jumps.start("jump", JUMP_IP)
    entries = jumps.entry("via-jump-n1", "127.0.0.11", "  ProxyJump jumpbox\n") + jumps.entry("jumpbox", JUMP_IP, LAX)
    jumps.write("", entries.replace(f"  UserKnownHostsFile {jumps.known}\n{LAX}", LAX))
    before = jumps.known.read_text()
    p = sandbox.runbook("upgrade_429", env_file=via(sandbox, "via-jump-n1"))
    assert_stopped_at(p, 0, "n1", "Host key verification failed")
    assert p.returncode == 10 and jumps.known.read_text() == before  # refused before anything ran, nothing learned
    assert (
        JUMP_IP not in (Path.home() / ".ssh" / "known_hosts").read_text()
        if (Path.home() / ".ssh" / "known_hosts").exists()
        else True
    )
    assert "Accepted publickey" not in jumps.logs["jump"].read_text()


def test_a_jump_host_whose_key_changed_is_refused(sandbox, jumps, tmp_path):
    jumps.start("jump", JUMP_IP)
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    jumps.write(
        jumps.key_line(JUMP_IP, Path(str(other) + ".pub")),
        jumps.entry("via-jump-n1", "127.0.0.11", "  ProxyJump jumpbox\n") + jumps.entry("jumpbox", JUMP_IP, LAX),
    )
    p = sandbox.runbook("upgrade_429", "--plan", env_file=via(sandbox, "via-jump-n1"))
    assert p.returncode == 10 and "n1" in p.output, p.output[-3000:]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in p.output or "Host key verification failed" in p.output


def test_two_hops_reach_the_node_when_every_key_is_known(sandbox, jumps):
    jumps.start("jump", JUMP_IP)
    jumps.start("jump2", "127.0.0.51")
    jumps.write(
        jumps.key_line(JUMP_IP) + jumps.key_line("127.0.0.51"),
        jumps.entry("via-two-n1", "127.0.0.11", "  ProxyJump jumpbox,jumpbox2\n")
        + jumps.entry("jumpbox", JUMP_IP, LAX)
        + jumps.entry("jumpbox2", "127.0.0.51", LAX),
    )
    p = sandbox.runbook("upgrade_429", "--plan", env_file=via(sandbox, "via-two-n1"))
    assert p.returncode == 0, p.output[-3000:]
    first, second = jumps.logs["jump"].read_text(), jumps.logs["jump2"].read_text()
    assert "Accepted publickey for root" in first and "127.0.0.51 port 22" in first, first[-2000:]
    assert "Accepted publickey for root" in second and "127.0.0.11 port 22" in second, second[-2000:]


def test_a_proxycommand_that_runs_ssh_is_refused_naming_it(sandbox, jumps):
    jumps.write("", jumps.entry("via-cmd-n1", "127.0.0.11", f"  ProxyCommand ssh -W %h:%p root@{JUMP_IP}\n"))
    p = sandbox.runbook("upgrade_429", "--plan", env_file=via(sandbox, "via-cmd-n1"))
    assert p.returncode == 10 and "ProxyCommand ssh -W" in p.output and "write the jump as ProxyJump" in p.output
