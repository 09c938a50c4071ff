"""The runbook plugin from outside (pytester): ordering, skip cascade, resume, --until, --plan."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.unit.envfiles import BASE

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]

RUNBOOK = """
import os
from omsup.runbook import Runbook, Step, Touches

LOG = os.environ["STEPLOG"]

def note(text):
    with open(LOG, "a") as f:
        f.write(text + "\\n")

def act(name):
    def do(run):
        note(name)
        if os.environ.get("FAIL_AT") == name:
            how, secret = os.environ.get("FAIL_HOW", "assert"), os.environ.get("LEAK", "")
            import logging
            logging.getLogger("testinfra").debug("RUN stdout=%s", secret)
            config = {"oms_meta_password": secret, "token": secret}  # a local that -l would show
            if how == "interrupt":
                raise KeyboardInterrupt()
            if how in ("SIGTERM", "SIGHUP"):  # a signal from outside while a child process works for the step
                import signal, subprocess, threading, time
                child = subprocess.Popen(["sleep", "60"])
                note(f"child {child.pid}")
                threading.Timer(0.5, lambda: os.kill(os.getpid(), getattr(signal, how))).start()
                child.wait()
                time.sleep(30)
            if how == "runtime":
                raise RuntimeError(f"{name} broke: {config}")
            if how == "nothing":
                from omsup.errors import NothingToDo
                raise NothingToDo(f"{name}: already there", "nothing to do")
            if how == "omsup":
                from omsup.errors import MetaDBProblem
                raise MetaDBProblem(f"{name} broke: password {secret!r} refused", f"retry with {secret}")
            raise AssertionError(f"{name} broke" + (f": {config}" if secret else ""))
        with run.record.change() as f:
            f.backup_attempt += 1
    return do

def plan(name):
    return lambda run: [f"would {name}"]

def verify(name):
    def check(run):
        note("verify " + name)
        assert os.environ.get("FAIL_VERIFY") != name, f"{name} no longer holds"
    return check

NONE = frozenset()
rb = Runbook.maintenance("fake_rb", doc="T", title="fake")
A = Step("a", "Look around", act("a"), NONE, False, None, verify("a"), taken_once=bool(os.environ.get("TAKEN_ONCE")))
B = Step("b", "Change b", act("b"), NONE, True, plan("b"), verify("b"))
C = Step("c", "Change c", act("c"), NONE, True, plan("c"), verify("c"), supersedes=(B,))
D = Step("d", "Change d", act("d"), NONE, True, plan("d"), verify("d"))
test_00_a = rb.step(0, A, "T step 0")
test_01_b = rb.step(1, B, "T step 1")
test_02_c = rb.step(2, C, "T step 2")
test_03_d = rb.step(3, D, "T step 3")
"""


@pytest.fixture
def book(pytester, tmp_path, monkeypatch):
    env = json.loads(json.dumps(BASE))
    env["metadb"]["password"] = "meta-secret-1"
    env["console"]["password"] = "console-secret-1"
    env["state_dir"] = str(tmp_path / "state")
    env["backup"] = {"host": "local://", "dir": str(tmp_path / "backups")}
    (tmp_path / "backups").mkdir()
    (pytester.path / "env.yaml").write_text(yaml.safe_dump(env))
    pytester.mkdir("runbooks")
    pytester.mkdir("runbooks/fake_rb")
    (pytester.path / "runbooks/fake_rb/test_fake_rb.py").write_text(RUNBOOK)
    log = tmp_path / "steps.log"
    monkeypatch.setenv("STEPLOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("FAIL_AT", raising=False)

    def go(*args):
        return pytester.runpytest_subprocess(
            "runbooks/fake_rb",
            "--env",
            "env.yaml",
            "--report-root",
            str(tmp_path / "reports"),
            "-p",
            "no:cacheprovider",
            *args,
        )

    go.backups = tmp_path / "backups"
    go.log = lambda: log.read_text().splitlines() if log.exists() else []
    go.state = tmp_path / "state"
    go.reports = tmp_path / "reports"
    return go


def ledgers(state):
    return [json.loads(p.read_text()) for p in sorted(state.glob("fake_rb/*/ledger.json"))]


def test_steps_run_in_order_and_complete_the_ledger(book):
    r = book()
    r.assert_outcomes(passed=4)
    assert book.log() == ["a", "b", "c", "d"]
    (led,) = ledgers(book.state)
    assert led["status"] == "complete" and all(led["steps"][k]["status"] == "done" for k in "abcd")


def test_failed_step_skips_every_later_one_naming_it(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "b")
    r = book("-rs")
    r.assert_outcomes(passed=1, failed=1, skipped=2)
    assert book.log() == ["a", "b"]
    r.stdout.fnmatch_lines(["*not run: step 1. Change b failed (Check failed: b broke)*"])
    r.stdout.fnmatch_lines(["*STOPPED at step 1. Change b*"])
    (led,) = ledgers(book.state)
    assert led["status"] == "running" and led["steps"]["b"]["status"] == "failed"


def test_second_run_resumes_verifying_finished_steps(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "b")
    book().assert_outcomes(passed=1, failed=1, skipped=2)
    monkeypatch.delenv("FAIL_AT")
    r = book()
    r.assert_outcomes(passed=4)
    assert book.log() == ["a", "b", "verify a", "b", "c", "d"]
    (led,) = ledgers(book.state)  # the same run, resumed, not a new one
    assert led["status"] == "complete" and led["attempts"] == 2
    r.stdout.fnmatch_lines(["*resumed run *: finished steps were verified, not redone*"])


def test_until_stops_and_a_later_run_resumes(book):
    r = book("--until", "1")
    r.assert_outcomes(passed=2, skipped=2)
    assert book.log() == ["a", "b"]
    assert ledgers(book.state)[0]["status"] == "running"
    book().assert_outcomes(passed=4)
    assert book.log()[-2:] == ["c", "d"]


def test_plan_runs_only_the_preflight_and_writes_no_ledger(book):
    r = book("--plan")
    r.assert_outcomes(passed=4)
    assert book.log() == ["a"]
    assert ledgers(book.state) == []
    r.stdout.fnmatch_lines(["*plan 1. Change b:*", "*would b*"])
    (folder,) = book.reports.iterdir()
    plan = json.loads((folder / "summary.json").read_text())["plan"]
    assert [(e["number"], e["actions"]) for e in plan] == [
        (n, [{"node": None, "action": f"would {k}"}]) for n, k in ((1, "b"), (2, "c"), (3, "d"))
    ]


def test_every_run_writes_its_own_report_folder(book):
    book().assert_outcomes(passed=4)
    book().assert_outcomes(passed=4)
    folders = sorted(book.reports.iterdir())
    assert len(folders) == 2
    for f in folders:
        s = json.loads((f / "summary.json").read_text())
        assert [st["status"] for st in s["steps"]] == ["passed"] * 4
        assert (f / "allure-results").is_dir() and (f / "junit.xml").exists() and (f / "summary.md").exists()
        assert "meta-secret-1" not in "".join(p.read_text(errors="ignore") for p in f.rglob("*") if p.is_file())


def test_a_step_numbered_wrong_fails_collection(book, pytester):
    p = pytester.path / "runbooks/fake_rb/test_fake_rb.py"
    p.write_text(p.read_text().replace("rb.step(3,", "rb.step(4,"))
    r = book()
    assert r.ret != 0
    r.stdout.fnmatch_lines(["*numbered 4, expected 3*"])
    assert book.log() == []


def test_without_env_the_runbook_refuses_to_start(pytester, book):
    r = pytester.runpytest_subprocess("runbooks/fake_rb", "-p", "no:cacheprovider")
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*needs --env FILE*"])
    assert book.log() == []


def test_bad_env_file_is_refused_with_file_and_key(pytester, book):
    (pytester.path / "env.yaml").write_text(
        (pytester.path / "env.yaml").read_text().replace("port: 2881", "port: many")
    )
    r = book()
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*environment file refused*", "*key 'metadb.port': expected a whole number*"])
    assert "Traceback" not in r.stderr.str() and book.log() == []


def test_a_second_operator_is_refused_naming_who_holds_the_lock(book, pytester):
    lock = hold_lock(book, 4242, machine="jump1", runbook="rollback_429", who="alice")
    r = book()
    assert r.ret != 0 and book.log() == []
    r.stdout.fnmatch_lines(
        ["*another run holds the lock of environment prod-eu: rollback_429 by alice*since 2026-11-23T01:00:00Z*"]
    )
    u = unlock(pytester)
    assert u.ret == 10 and "taken on jump1" in u.stdout.str() and "--force 0123456789ab" in u.stderr.str()
    assert lock.exists()
    u = unlock(pytester, "--force", "0123456789ab")
    assert u.ret == 0 and "released the lock held by rollback_429 by alice" in u.stdout.str()
    book().assert_outcomes(passed=4)
    assert not lock.exists()  # released at the end of the run


@pytest.mark.parametrize("content", ["5", "null", '{"pid": [1]}', "\udcff garbage"])
def test_a_lock_file_omsup_did_not_write_is_shown_not_a_traceback(book, pytester, content):
    lock = book.backups / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(content.encode("utf-8", "surrogateescape"))
    r = book()
    assert r.ret == 10 and book.log() == [] and "Traceback" not in r.stdout.str() + r.stderr.str()
    r.stdout.fnmatch_lines(["*another run holds the lock of environment prod-eu: a lock file omsup did not write*"])
    u = unlock(pytester)
    assert u.ret == 10 and "cannot be told" in u.stdout.str() and lock.exists()
    assert "Traceback" not in u.stdout.str() + u.stderr.str()
    lock_id = re.search(r"--force ([0-9a-f]{12})", u.stderr.str()).group(1)  # a file without an id: its digest
    assert f"(lock id {lock_id})" in u.stdout.str()
    u = unlock(pytester, "--force", lock_id)
    assert u.ret == 0 and not lock.exists()
    book().assert_outcomes(passed=4)


def hold_lock(
    book, pid: int, machine: str | None = None, runbook: str = "upgrade_429", who: str = "bob", **identity
) -> Path:
    """A lock file as omsup writes it, held by ``pid`` on ``machine`` (this one by default), with the identity
    of that process as omsup records it (boot, PID namespace, start time); ``identity`` overrides."""
    import socket

    from omsup import lock as omsup_lock

    lock = book.backups / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    held = {
        "id": "0123456789ab",
        "runbook": runbook,
        "operator": who,
        "user": who,
        "pid": pid,
        "machine": machine or socket.gethostname(),
        "boot_id": omsup_lock.boot_id(),
        "pid_ns": omsup_lock.pid_namespace(),
        "start_time": omsup_lock.start_time(pid),
        "since": "2026-11-23T01:00:00Z",
        **identity,
    }
    lock.write_text(json.dumps(held) + "\n")
    return lock


def unlock(pytester, *args: str):
    return pytester.run(sys.executable, "-m", "omsup", "unlock", "--env", "env.yaml", *args)


def test_unlock_of_a_run_killed_on_this_machine_needs_no_force(book, pytester):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = hold_lock(book, dead.pid, start_time=12345)
    u = unlock(pytester)
    assert u.ret == 0 and f"pid {dead.pid} no longer runs on this machine" in u.stdout.str() and not lock.exists()


def test_unlock_of_a_live_run_on_this_machine_needs_force_with_its_id(book, pytester):
    """A live holder is told by its identity, whatever its command line says (here: a plain sleep)."""
    live = subprocess.Popen(["sleep", "60"])
    try:
        lock = hold_lock(book, live.pid)
        u = unlock(pytester)
        assert u.ret == 10 and f"pid {live.pid} still runs on this machine" in u.stdout.str() and lock.exists()
        assert "--force 0123456789ab" in u.stderr.str()
        u = unlock(pytester, "--force", "ffffffffffff")  # another lock than the one checked: left alone
        assert u.ret == 10 and "not ffffffffffff" in u.stderr.str() and lock.exists()
        u = unlock(pytester, "--force", "0123456789ab")
        assert u.ret == 0 and not lock.exists()
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize(
    "identity, alive, why",
    [
        ({"start_time": 1}, False, "is now another process"),  # the pid was given to another process since
        ({"boot_id": "another-boot"}, False, "rebooted since"),
        ({"pid_ns": "pid:[1]"}, True, "another PID namespace"),  # a CI container with the same host name
        ({"start_time": None}, True, "an older omsup"),
    ],
)
def test_unlock_proves_a_holder_gone_by_its_identity_only(book, pytester, identity, alive, why):
    live = subprocess.Popen(["sleep", "60"])
    try:
        lock = hold_lock(book, live.pid, **identity)
        u = unlock(pytester)
        assert why in u.stdout.str(), u.stdout.str()
        assert (u.ret, lock.exists()) == ((10, True) if alive else (0, False))
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("target", ["/dev/null", "fifo"])
def test_a_lock_path_that_is_not_a_regular_file_is_refused(book, pytester, target):
    """A symlink to /dev/null let every run 'create' the lock: two runs at once."""
    lock = book.backups / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir(parents=True)
    if target == "fifo":
        os.mkfifo(lock)
    else:
        lock.symlink_to(target)
    r = book()
    assert r.ret == 10 and book.log() == [] and "is not a regular file" in r.stdout.str()
    u = unlock(pytester)
    assert u.ret == 10 and "is not a regular file" in u.stderr.str()


def test_the_lock_is_released_after_a_failed_run(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "c")
    book()
    assert not (book.backups / "prod-eu" / ".omsup.lock").exists()


def test_a_step_replaced_by_a_later_one_is_not_checked_again(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "d")
    book()
    monkeypatch.delenv("FAIL_AT")
    book().assert_outcomes(passed=4)
    assert book.log() == ["a", "b", "c", "d", "verify a", "verify c", "d"]


def test_a_later_step_that_failed_half_way_also_ends_the_check(book, monkeypatch):
    """c began and failed: what it changed before failing may contradict b's check, so a resumed run
    must not stop at b's verification (it would never get to finish c)."""
    monkeypatch.setenv("FAIL_AT", "c")
    book().assert_outcomes(passed=2, failed=1, skipped=1)
    monkeypatch.delenv("FAIL_AT")
    book().assert_outcomes(passed=4)
    assert book.log() == ["a", "b", "c", "verify a", "c", "d"]
    (led,) = ledgers(book.state)
    assert led["steps"]["c"]["status"] == "done"
    assert [f["error"] for f in led["steps"]["c"]["earlier_failures"]] == ["c broke"]


def test_a_runbook_run_leaves_test_only_plugins_out(book, pytester, tmp_path):
    """Hypothesis' plugin (dev extras only) would import its engine to write a terminal summary."""
    seen = tmp_path / "modules.txt"
    (pytester.path / "conftest.py").write_text(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        f"    open({str(seen)!r}, 'w').write(str('hypothesis' in sys.modules) + ' '\n"
        "        + str(config.pluginmanager.is_blocked('hypothesispytest')))\n"
    )
    book().assert_outcomes(passed=4)
    assert seen.read_text() == "False True"


# -- exit codes (issue: operators and CI) -----------------------------------------------------------
def junit_props(book) -> dict:
    import xml.etree.ElementTree as ET

    (folder,) = sorted(book.reports.iterdir())[-1:]
    root = ET.parse(folder / "junit.xml").getroot()
    return {p.get("name"): p.get("value") for p in root.iter("property")}


def test_exit_0_when_every_step_is_done(book):
    r = book()
    assert r.ret == 0
    props = junit_props(book)
    assert props.pop("omsup.run_id")  # the ledger's run id, for the CI job to name the run
    assert props == {"omsup.exit_code": "0", "omsup.outcome": "done"}


def test_exit_10_when_refused_before_any_change(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "a")  # step a reads only (changes=False)
    r = book()
    assert r.ret == 10
    assert junit_props(book)["omsup.exit_code"] == "10"


def test_a_run_with_nothing_to_do_is_closed_unless_it_changed_something(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "a")
    monkeypatch.setenv("FAIL_HOW", "nothing")
    r = book()
    assert r.ret == 10 and "nothing later ran; it changed nothing and is closed" in r.stdout.str()
    assert [led["status"] for led in ledgers(book.state)] == ["nothing to do"]
    r = book()  # a new run, not a resume of the closed one
    assert "resumed run" not in r.stdout.str()
    assert [led["status"] for led in ledgers(book.state)] == ["nothing to do", "nothing to do"]
    monkeypatch.setenv("FAIL_AT", "c")  # b changed something before c said there is nothing to do
    r = book()
    assert r.ret == 1 and "fix the cause and run the same command again to resume" in r.stdout.str()
    assert [led["status"] for led in ledgers(book.state)][-1] == "running"
    said = [json.loads((f / "summary.json").read_text())["failed_step"] for f in sorted(book.reports.iterdir())]
    assert [(s["nothing_to_do"], s["resumable"]) for s in said] == [(True, False), (True, False), (False, True)]


def test_exit_1_when_a_step_failed_after_changes_began(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "c")  # b changed something before c failed
    r = book()
    assert r.ret == 1
    props = junit_props(book)
    assert props.pop("omsup.run_id") and props == {"omsup.exit_code": "1", "omsup.outcome": "failed"}


def test_exit_1_also_when_the_change_was_in_an_earlier_attempt(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "c")
    book()
    monkeypatch.delenv("FAIL_AT")
    monkeypatch.setenv("FAIL_VERIFY", "a")  # the resumed run fails at its first check: changes began before
    r = book()
    assert r.ret == 1 and "a no longer holds" in r.stdout.str()


def test_evidence_taken_once_is_never_taken_again_after_a_later_change(book, monkeypatch):
    """A done step whose evidence is taken once and that no longer verifies on resume, once a later change
    began, stops the run (evidence lost) and stays done; put back, the run resumes without redoing it."""
    monkeypatch.setenv("TAKEN_ONCE", "1")
    monkeypatch.setenv("FAIL_AT", "c")
    assert book().ret == 1
    monkeypatch.delenv("FAIL_AT")
    monkeypatch.setenv("FAIL_VERIFY", "a")
    r = book()
    assert (
        r.ret == 1
        and "Evidence lost" in r.stdout.str()
        and "never taken again once 1. Change b began" in r.stdout.str()
    )
    (led,) = ledgers(book.state)
    assert led["steps"]["a"]["status"] == "done" and "a no longer holds" in led["steps"]["a"]["error"]
    monkeypatch.delenv("FAIL_VERIFY")
    r = book()
    r.assert_outcomes(passed=4)
    assert book.log().count("a") == 1  # verified three times, done once
    (led,) = ledgers(book.state)
    assert led["status"] == "complete" and led["steps"]["a"]["error"] is None
    assert "a no longer holds" in led["steps"]["a"]["earlier_failures"][0]["error"]


def test_evidence_taken_once_is_taken_again_while_nothing_changed_after_it(book, monkeypatch):
    monkeypatch.setenv("TAKEN_ONCE", "1")
    assert book("--until", "0").ret == 0
    monkeypatch.setenv("FAIL_VERIFY", "a")
    assert book().ret == 10  # refused before any change
    monkeypatch.delenv("FAIL_VERIFY")
    book().assert_outcomes(passed=4)
    assert book.log().count("a") == 2


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_the_run_as_ctrl_c_does(book, monkeypatch, sig):
    """Exit 2, the step recorded as interrupted, the run folder written, the lock released, the step's
    child process ended (it would have held the run for a minute)."""
    monkeypatch.setenv("FAIL_AT", "b")
    monkeypatch.setenv("FAIL_HOW", sig)
    t0 = time.monotonic()
    r = book()
    assert r.ret == 2 and time.monotonic() - t0 < 20, r.stdout.str()[-2000:]
    assert f"interrupted by {sig}" in r.stdout.str()
    child = int(next(x for x in book.log() if x.startswith("child ")).split()[1])
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    (led,) = ledgers(book.state)
    entry = led["steps"]["b"]
    assert (entry["status"], entry["category"], entry["error"]) == ("failed", "Interrupted", f"interrupted by {sig}")
    assert not (book.backups / "prod-eu" / ".omsup.lock").exists()
    (folder,) = book.reports.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["exit_code"] == 2 and (folder / "junit.xml").exists()
    monkeypatch.delenv("FAIL_AT")
    book().assert_outcomes(passed=4)  # the same command resumes


def test_option_files_a_killed_run_left_are_removed_when_the_next_run_holds_the_lock(book):
    folder = book.backups / "prod-eu" / "upgrade_429-x-a1"
    folder.mkdir(parents=True)
    stale = [folder / ".omsup-client-0123456789ab-aaaa.cnf", book.backups / "prod-eu" / ".omsup-client-ro-bbbb.cnf"]
    for f in stale:
        f.write_text("[client]\npassword=x\n")
    os.utime(stale[1], (time.time() - 3600, time.time() - 3600))  # a read-only run's, an hour old
    fresh = book.backups / "prod-eu" / ".omsup-client-ro-cccc.cnf"  # a probe's, maybe running now
    fresh.write_text("[client]\n")
    book().assert_outcomes(passed=4)
    assert not any(f.exists() for f in stale) and fresh.exists()


def test_exit_2_when_interrupted(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "b")
    monkeypatch.setenv("FAIL_HOW", "interrupt")
    assert book().ret == 2


def test_exit_10_when_another_operator_holds_the_lock(book):
    lock = book.backups / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"runbook": "x", "pid": 1, "since": "2026-11-23T01:00:00Z"}) + "\n")
    assert book().ret == 10 and book.log() == []


@pytest.mark.parametrize(
    "args", [("--until", "9"), ("--until", "-1"), ("-k", "not test_02"), ("-k", "test_00 or test_02", "--until", "2")]
)
def test_exit_4_for_a_runbook_with_holes_or_an_until_out_of_range(book, args):
    r = book(*args)
    assert r.ret == 4 and book.log() == []
    r.stderr.fnmatch_lines(["*runbook fake_rb*"])


def test_a_node_id_runs_only_with_until_up_to_it(book, pytester):
    first = "runbooks/fake_rb/test_fake_rb.py::test_00_a"
    r = pytester.runpytest_subprocess(
        first, "--env", "env.yaml", "--report-root", str(book.reports), "-p", "no:cacheprovider"
    )
    assert r.ret == 4 and "never with holes" in r.stderr.str()
    r = pytester.runpytest_subprocess(
        first, "--env", "env.yaml", "--report-root", str(book.reports), "-p", "no:cacheprovider", "--until", "0"
    )
    assert r.ret == 0 and book.log() == ["a"]


def test_exit_4_for_a_bad_environment_file(book, pytester):
    (pytester.path / "env.yaml").write_text("name: [\n")
    assert book().ret == 4


def test_exit_codes_are_in_the_help(pytester):
    r = pytester.runpytest_subprocess("--help")
    r.stdout.fnmatch_lines(["*exit codes: 0 done; 1 a step failed after changes began; 2 interrupted; 4 usage*"])


# -- secrets never escape (issue: security and safety) -------------------------------------------
LEAK_SECRET = "meta-secret-1"  # the fixture's MetaDB password


@pytest.mark.parametrize("how", ["assert", "runtime", "omsup"])
def test_a_failure_carrying_a_secret_leaks_it_nowhere(book, monkeypatch, how):
    monkeypatch.setenv("FAIL_AT", "c")
    monkeypatch.setenv("FAIL_HOW", how)
    monkeypatch.setenv("LEAK", LEAK_SECRET)
    r = book("-l", "--log-level=DEBUG", "-rA", "--tb=long")
    assert r.ret == 1
    out = r.stdout.str() + r.stderr.str()
    assert "c broke" in out and LEAK_SECRET not in out
    # the summary says what to do next: the failure's own advice (redacted), and how to resume
    assert ("  next: retry with " in out) is (how == "omsup")
    assert "nothing later ran; fix the cause and run the same command again to resume" in out
    (folder,) = book.reports.iterdir()
    said = json.loads((folder / "summary.json").read_text())["failed_step"]["next"]
    assert (said or "").startswith("retry with ") if how == "omsup" else said is None
    for p in folder.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert LEAK_SECRET.encode() not in data, p
            if p.name == "report.html":  # the results are embedded as base64
                import base64
                import re

                for blob in re.findall(rb'"([A-Za-z0-9+/=]{40,})"', data):
                    assert LEAK_SECRET.encode() not in base64.b64decode(blob + b"==="), p
    kept = list((folder / "tracebacks").iterdir())
    assert kept and "c broke" in kept[0].read_text() and oct(kept[0].stat().st_mode)[-3:] == "600"
    (led,) = ledgers(book.state)
    assert LEAK_SECRET not in json.dumps(led["steps"])  # the error recorded is the redacted one
    # the failure's advice is kept with it (omsup status reads it there), redacted too
    (failed,) = [e for e in led["steps"].values() if e["status"] == "failed"]
    assert (failed["hint"] or "").startswith("retry with ") if how == "omsup" else failed["hint"] is None
    assert failed["resumable"] is True


@pytest.mark.parametrize("t1", ["garbage", "2026-12-06T01:02:03"])
def test_a_ledger_with_a_bad_value_is_refused_naming_file_and_key_and_the_run_folder_stays_right(book, pytester, t1):
    book("--until", "1").assert_outcomes(passed=2, skipped=2)
    (path,) = book.state.glob("fake_rb/*/ledger.json")
    d = json.loads(path.read_text())
    d["facts"]["t1"] = t1
    path.write_text(json.dumps(d))
    r = book()
    out = r.stdout.str() + r.stderr.str()
    assert r.ret == 10 and "Traceback" not in out, out[-3000:]
    assert f"run ledger {path} holds a value omsup does not write: key facts.t1" in out
    summary = json.loads((sorted(book.reports.iterdir())[-1] / "summary.json").read_text())
    assert summary["exit_code"] == 10 and summary["outcome"] == "failed"
    s = pytester.run(sys.executable, "-m", "omsup", "status", "--env", "env.yaml")
    assert s.ret == 1 and "key facts.t1" in s.stdout.str() and "Traceback" not in s.stdout.str() + s.stderr.str()


def test_collect_only_writes_nothing_and_connects_nowhere(book, tmp_path):
    """`--co` lists the steps; it wrote a run folder (summary 'PARTIAL', junit, report) before."""
    r = book("--co")
    assert r.ret == 0 and "test_00_a" in r.stdout.str()
    assert not book.reports.exists() and not book.state.exists() and book.log() == []
    assert not list((book.backups).rglob("*"))


def test_testinfras_own_host_options_are_refused_for_a_runbook(book, tmp_path):
    missing = tmp_path / "no-such-inventory"
    r = book("--hosts", "ssh://elsewhere", "--ansible-inventory", str(missing))
    assert r.ret == 4 and "the environment file decides the hosts" in r.stderr.str() and book.log() == []


def test_status_and_unlock_work_without_the_secrets_variables(book, pytester, monkeypatch):
    """On-call staff and a CI lint stage look without the production passwords."""
    book("--until", "1")
    (pytester.path / "env.yaml").write_text(
        (pytester.path / "env.yaml").read_text().replace("meta-secret-1", "{env: OMSUP_UNSET_SECRET}")
    )
    monkeypatch.delenv("OMSUP_UNSET_SECRET", raising=False)
    s = pytester.run(sys.executable, "-m", "omsup", "status", "--env", "env.yaml")
    assert s.ret == 0 and "unfinished" in s.stdout.str(), s.stdout.str() + s.stderr.str()
    u = unlock(pytester)
    assert u.ret == 0 and "no lock" in u.stdout.str()
    c = pytester.run(sys.executable, "-m", "omsup", "check-env", "env.yaml")
    assert c.ret == 0 and "secrets not resolved: env:OMSUP_UNSET_SECRET" in c.stdout.str()
    c = pytester.run(sys.executable, "-m", "omsup", "check-env", "env.yaml", "--secrets")
    assert c.ret == 4 and "OMSUP_UNSET_SECRET" in c.stderr.str()
    r = book()  # a runbook resolves them at its start: refused, naming the variable
    assert r.ret == 4 and "OMSUP_UNSET_SECRET" in r.stderr.str()


def test_omsup_env_names_the_environment_file(book, pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("OMSUP_ENV", str(pytester.path / "env.yaml"))
    r = pytester.runpytest_subprocess(
        "runbooks/fake_rb", "--report-root", str(tmp_path / "r"), "-p", "no:cacheprovider"
    )
    r.assert_outcomes(passed=4)
    s = pytester.run(sys.executable, "-m", "omsup", "status")
    assert s.ret == 0 and "environment prod-eu" in s.stdout.str()


# -- CI identity (issue 31, point 9) ------------------------------------------------------------------
def test_a_gitlab_job_is_the_operator_with_its_job_url_in_the_summary_and_the_ledger(book, monkeypatch):
    for k, v in {
        "GITLAB_CI": "true",
        "GITLAB_USER_LOGIN": "alice",
        "CI_JOB_URL": "https://gitlab.example.com/ops/oms/-/jobs/4711",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FAIL_AT", "b")
    book().assert_outcomes(passed=1, failed=1, skipped=2)
    monkeypatch.setenv("GITLAB_USER_LOGIN", "bob")  # another user resumes it
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example.com/ops/oms/-/jobs/4712")
    monkeypatch.delenv("FAIL_AT")
    book().assert_outcomes(passed=4)
    folder = sorted(book.reports.iterdir())[-1]
    s = json.loads((folder / "summary.json").read_text())
    assert s["operator"] == "bob via GitLab CI"
    assert s["ci_job"]["job_url"] == "https://gitlab.example.com/ops/oms/-/jobs/4712"
    assert "https://gitlab.example.com/ops/oms/-/jobs/4712" in (folder / "summary.md").read_text()
    (led,) = ledgers(book.state)
    assert [(b["operator"], b["ci"]["job_url"]) for b in led["attempts_by"]] == [
        ("alice via GitLab CI", "https://gitlab.example.com/ops/oms/-/jobs/4711"),
        ("bob via GitLab CI", "https://gitlab.example.com/ops/oms/-/jobs/4712"),
    ]


# -- a stream for pipelines (issue 31, point 8) -------------------------------------------------------
def test_events_carry_the_run_and_its_steps_and_events_dash_streams_them_to_stdout(book, monkeypatch):
    monkeypatch.setenv("FAIL_AT", "c")
    r = book("--events", "-")
    assert r.ret == 1 and "1 failed, 2 passed, 1 skipped" in r.stderr.str()  # the terminal's report: on stderr
    folder = sorted(book.reports.iterdir())[-1]
    lines = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    milestones = [(e["event"], e["outcome"]) for e in lines if e["event"] != "call"]
    assert milestones == [
        ("run_start", ""),
        ("step_start", ""),
        ("step_end", "passed"),
        ("step_start", ""),
        ("step_end", "passed"),
        ("step_start", ""),
        ("step_end", "failed"),
        ("run_end", "failed"),  # step 3 never started (skipped: summary.json lists it)
    ], milestones
    (led,) = ledgers(book.state)
    # from run_start on, every line names the run (the lock is taken and the ledger found before: run_id null)
    start = next(i for i, e in enumerate(lines) if e["event"] == "run_start")
    assert {e["run_id"] for e in lines[start:]} == {led["run_id"]}
    assert all(e["run_id"] is None and e["event"] == "call" for e in lines[:start])
    # the same lines, as they happened, on stdout (not swallowed by pytest's capture during the steps)
    # (stdout holds nothing else: the terminal's report went to stderr)
    streamed = [json.loads(x) for x in r.stdout.lines if x.strip()]
    assert streamed == lines
    assert "STOPPED at step 2. Change c" in r.stderr.str()
    assert "meta-secret-1" not in r.stdout.str()


def test_events_accepts_only_a_dash(book):
    r = book("--events", "events.out")
    assert r.ret == 4 and "--events events.out: only '-' (stdout) is offered" in r.stderr.str()
