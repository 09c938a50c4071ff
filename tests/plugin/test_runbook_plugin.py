"""The runbook plugin from outside (pytester): ordering, skip cascade, resume, --until, --plan."""

import json
import sys
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
            raise AssertionError(f"{name} broke")
        with run.record.change() as f:
            f.backup_attempt += 1
    return do

def plan(name):
    return lambda run: [f"would {name}"]

def verify(name):
    return lambda run: note("verify " + name)

NONE = frozenset()
rb = Runbook.maintenance("fake_rb", doc="T", title="fake")
A = Step("a", "Look around", act("a"), NONE, False, None, verify("a"))
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
    lock = book.backups / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(
        json.dumps(
            {
                "runbook": "rollback_429",
                "operator": "alice",
                "user": "alice",
                "machine": "jump1",
                "pid": 4242,
                "since": "2026-11-23T01:00:00Z",
            }
        )
        + "\n"
    )
    r = book()
    assert r.ret != 0 and book.log() == []
    r.stdout.fnmatch_lines(
        ["*another run holds the lock of environment prod-eu: rollback_429 by alice*since 2026-11-23T01:00:00Z*"]
    )
    u = pytester.run(sys.executable, "-m", "omsup", "unlock", "--env", "env.yaml")
    assert u.ret == 0 and "alice" in u.stdout.str()
    book().assert_outcomes(passed=4)
    assert not lock.exists()  # released at the end of the run


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
