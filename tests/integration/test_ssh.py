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


@pytest.fixture
def jump(sandbox, tmp_path):
    """A sandbox over ssh, a second local sshd (the jump host), and an ssh config entry reached through
    an Include glob; yields the jump host's log."""
    sandbox.fresh("--ssh")
    ssh_dir = STATE / "ssh"
    d = tmp_path / "jump"
    d.mkdir()
    key, log = d / "host_ed25519", d / "sshd.log"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (d / "sshd_config").write_text(
        f"ListenAddress {JUMP_IP}:22\nHostKey {key}\nPidFile {d / 'sshd.pid'}\nAuthorizedKeysFile "
        f"{ssh_dir / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nAllowTcpForwarding yes\nLogLevel DEBUG1\n"
    )
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    proc = subprocess.Popen([sshd, "-D", "-E", str(log), "-f", str(d / "sshd_config")], start_new_session=True)
    deadline = time.monotonic() + 20
    while not subprocess.run(["ssh-keyscan", "-T", "1", JUMP_IP], capture_output=True, text=True).stdout.strip():
        assert proc.poll() is None and time.monotonic() < deadline, f"the jump host's sshd did not start: {log}"
        time.sleep(0.2)
    known = d / "known_hosts"
    known.write_text(
        f"{JUMP_IP} {' '.join(Path(str(key) + '.pub').read_text().split()[:2])}\n"
        + (ssh_dir / "known_hosts").read_text()
    )
    conf_d = d / "conf.d"
    conf_d.mkdir()
    (conf_d / "omsup-test-jump.conf").write_text(
        f"Host via-jump-n1\n  HostName 127.0.0.11\n  User root\n  ProxyJump jumpbox\n"
        f"  IdentityFile {ssh_dir / 'id_ed25519'}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
        f"Host jumpbox\n  HostName {JUMP_IP}\n  User root\n  IdentityFile {ssh_dir / 'id_ed25519'}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
    )
    config = Path.home() / ".ssh" / "config"
    line = f"Include {conf_d}/*.conf\n"  # an Include with a glob
    config.write_text(line + config.read_text())
    try:
        yield log
    finally:
        config.write_text(config.read_text().replace(line, "", 1))
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)


def test_proxyjump_and_an_include_glob_for_commands_and_the_engine(sandbox, jump):
    via = sandbox.edited_env(
        lambda d: d["regions"][0]["nodes"][0].update(host="ssh://via-jump-n1", docker="ssh://via-jump-n1")
    )
    p = sandbox.runbook("upgrade_429", env_file=via)
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
