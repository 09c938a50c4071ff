"""python -m omsup: the path command answers for every pair of documented versions."""

import itertools
import subprocess
import sys

import pytest

from omsup.cli import main
from omsup.versions import KNOWN_VERSIONS, VersionError, upgrade_chain

DOC_VERSIONS = ["3.2.2-CE", "3.3.0-CE", "3.3.1-CE", "4.0.0-CE", "4.1.1-CE", "4.2.0-CE", "4.2.8-CE", "4.2.9-CE"]


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations(DOC_VERSIONS, 2)))
def test_path_answers_every_pair(a, b, capsys):
    rc = main(["path", a, b])
    out, err = capsys.readouterr()
    try:
        chain = upgrade_chain(a, b)
    except VersionError:
        assert rc == 10 and "no documented path" in err  # refused: nothing can be done (README)
    else:
        assert rc == 0 and out.count("->") == len(chain)
        for rule in chain:
            assert str(rule.target) in out


def test_path_names_runbooks_in_order(capsys):
    assert main(["path", "3.2.2-CE", "3.3.1-CE"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("-> 3.3.0-CE") and "upgrade_331" in lines[1]


@pytest.mark.parametrize("bad", ["4.2", "x", "4.2.9-EE"])
def test_path_refuses_malformed_versions(bad, capsys):
    assert main(["path", bad, "4.2.9-CE"]) == 4  # a usage mistake
    assert "expected a version" in capsys.readouterr().err


def test_check_env_reports_a_bad_file_without_traceback(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("name: x\n")
    r = subprocess.run([sys.executable, "-m", "omsup", "check-env", str(p)], capture_output=True, text=True)
    assert r.returncode == 4 and "key 'backup': expected a value" in r.stderr and "Traceback" not in r.stderr


def test_known_versions_cover_the_documents():
    assert {str(v) for v in KNOWN_VERSIONS} >= set(DOC_VERSIONS)


def test_abandon_calls_off_an_unfinished_run_that_left_a_way_back_by_hand(tmp_path, monkeypatch, capsys):
    import json as _json

    from omsup.record import Facts, Record, RunStatus

    from .envfiles import write

    monkeypatch.setenv("OMSUP_TEST_PW", "meta'pw\"$;#\\x")
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-7Yq!")
    (tmp_path / "backups").mkdir()
    state = tmp_path / "state"
    env = str(write(tmp_path, backup={"host": "local://", "dir": str(tmp_path / "backups")}, state_dir=str(state)))
    facts = Facts(target="4.2.9-CE", environment_file=env)
    args = ["abandon", "upgrade_429", "--env", env, "--reason", "old containers started by hand; another night"]

    assert main(args) == 10
    assert "no unfinished run of upgrade_429 on prod-eu" in capsys.readouterr().err
    assert not (tmp_path / "backups" / "prod-eu").exists()  # said before the backup host was reached

    rec, _ = Record.open(state, "upgrade_429", "prod-eu", facts.model_copy())
    for key in ("preflight", "disable_ha", "stop_old", "prune_heartbeats", "backup"):
        rec.mark(key, "done")
    with rec.change() as f:
        f.t1, f.ha_before = "2026-11-25T01:00:00.000Z", {"enable": True}
    lock = tmp_path / "backups" / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(_json.dumps({"runbook": "upgrade_429", "pid": 1, "machine": "elsewhere", "since": "x"}))
    # a mistyped runbook is said before the lock is tried, with the runbooks that have an unfinished run
    assert main(["abandon", "upgrade_492", *args[2:]]) == 10
    err = capsys.readouterr().err
    assert "no unfinished run of upgrade_492" in err and "(unfinished there: upgrade_429)" in err
    assert main(args) == 10  # a run of it may be going on
    assert "another run holds the lock" in capsys.readouterr().err
    assert Record.load(rec.path).data.status == RunStatus.RUNNING
    lock.unlink()

    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"abandoned run {rec.run_id} of upgrade_429 on prod-eu" in out
    assert "start them again (docker start)" in out and "set ha.config's enable back to true" in out
    data = Record.load(rec.path).data
    assert data.status == RunStatus.ABANDONED and data.finished and data.abandoned is not None
    assert data.abandoned.reason == "old containers started by hand; another night" and "@" in data.abandoned.by
    assert not lock.exists()
    fresh, resumed = Record.open(state, "upgrade_429", "prod-eu", facts.model_copy())
    assert not resumed and fresh.run_id != rec.run_id

    fresh.mark("start_new", "failed", error="x")  # new containers may run: only the rollback goes back
    assert main(args) == 10
    assert "began start_new" in capsys.readouterr().err
    assert Record.load(fresh.path).data.status == RunStatus.RUNNING

    # a rollback called off before its restore: the new containers it stopped are to be started again
    rb, _ = Record.open(state, "rollback_429", "prod-eu", facts.model_copy())
    for key in ("rollback_preflight", "disable_ha", "stop_new"):
        rb.mark(key, "done")
    with rb.change() as f:
        f.t3, f.ha_before = "2026-11-25T02:00:00.000Z", {"enable": False}
    rb_args = ["abandon", "rollback_429", "--env", env, "--reason", "we stay on 4.2.9"]
    assert main(rb_args) == 0
    out = capsys.readouterr().out
    assert "it stopped the new containers (T3 2026-11-25T02:00:00.000Z)" in out and "back to false" in out
    rb2, _ = Record.open(state, "rollback_429", "prod-eu", facts.model_copy())
    rb2.mark("restore", "failed", error="MetaDB gone")  # a database may be dropped: only finishing goes on
    assert main(rb_args) == 10
    assert "began restore" in capsys.readouterr().err


def test_omsup_report_replaces_a_symlinked_report_html_instead_of_writing_through_it(tmp_path):
    """`omsup report` on a folder whose report.html is a symlink overwrote the link's target."""
    import json as _j
    import uuid

    from omsup.report import ALLURE_BIN

    if not ALLURE_BIN.exists():
        pytest.fail("Allure Report 3 is not installed (bash scripts/setup.sh)")
    folder = tmp_path / "run"
    results = folder / "allure-results"
    results.mkdir(parents=True)
    u = str(uuid.uuid4())
    (results / f"{u}-result.json").write_text(
        _j.dumps({"uuid": u, "historyId": u, "name": "step", "status": "passed", "start": 1, "stop": 2})
    )
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (folder / "report.html").symlink_to(victim)
    assert main(["report", str(folder)]) == 0
    assert victim.read_text() == "keep me"
    assert not (folder / "report.html").is_symlink() and "<html" in (folder / "report.html").read_text().lower()


@pytest.mark.parametrize("name", ["../elsewhere/upgrade_429", "/tmp/x", "upgrade_429\n", "Upgrade 429"])
def test_abandon_takes_a_runbook_name_only(tmp_path, monkeypatch, capsys, name):
    from .envfiles import write

    monkeypatch.setenv("OMSUP_TEST_PW", "meta'pw\"$;#\\x")
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-7Yq!")
    env = str(write(tmp_path, state_dir=str(tmp_path / "state")))
    assert main(["abandon", name, "--env", env, "--reason", "test"]) == 10
    assert "is not a runbook's name" in capsys.readouterr().err


def test_abandon_says_only_what_it_knows_of_ha(tmp_path, monkeypatch, capsys):
    """It said "it disabled HA" when disabling HA had failed."""
    from omsup.record import Facts, Record

    from .envfiles import write

    monkeypatch.setenv("OMSUP_TEST_PW", "meta'pw\"$;#\\x")
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-7Yq!")
    (tmp_path / "backups").mkdir()
    state = tmp_path / "state"
    env = str(write(tmp_path, backup={"host": "local://", "dir": str(tmp_path / "backups")}, state_dir=str(state)))
    rec, _ = Record.open(state, "upgrade_429", "prod-eu", Facts(target="4.2.9-CE", environment_file=env))
    rec.mark("preflight", "done")
    rec.mark("disable_ha", "failed", error="MetaDB problem")
    with rec.change() as f:
        f.ha_before = {"enable": True}
    assert main(["abandon", "upgrade_429", "--env", env, "--reason", "test"]) == 0
    out = capsys.readouterr().out
    assert "it disabled HA" not in out and "began disabling HA and that step did not finish (failed)" in out


# -- --json wherever there is output (issue 31, point 6) ----------------------------------------------------
def test_path_json_gives_each_hop_with_its_commands_and_a_refusal_as_json(capsys):
    import json

    assert main(["path", "4.1.1-CE", "4.2.13-CE", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["documented"] and [h["target"] for h in doc["hops"]] == ["4.2.0-CE", "4.2.1-CE", "4.2.13-CE"], doc
    assert (
        doc["hops"][-1]["kind"] == "hot" and doc["hops"][-1]["command"] == "pytest runbooks/hot_upgrade_4213 --env FILE"
    )
    assert main(["path", "4.1.0-CE", "4.2.0-CE", "--json"]) == 10
    doc = json.loads(capsys.readouterr().out)
    assert doc["documented"] is False and "deployed anew" in doc["why"] and doc["hops"] == []


def test_check_env_json_gives_the_environment_or_every_problem(tmp_path, capsys):
    import json
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "env.example.yaml"
    assert main(["check-env", str(example), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["environment"] and doc["secrets"]["metadb.password"]["resolved"] is False
    bad = tmp_path / "e.yaml"
    bad.write_text("name: x\n")
    assert main(["check-env", str(bad), "--json"]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and {p["key"] for p in doc["problems"]} >= {"backup", "metadb", "regions"}


def test_a_reader_that_goes_away_gets_no_traceback():
    import os

    r, w = os.pipe()
    os.close(r)  # every write to the pipe fails at once (EPIPE)
    p = subprocess.run([sys.executable, "-m", "omsup", "schema"], stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


def test_bash_completion_offers_the_subcommands_and_each_ones_options(tmp_path):
    script = tmp_path / "omsup.bash"
    out = subprocess.run([sys.executable, "-m", "omsup", "completion", "bash"], capture_output=True, text=True)
    assert out.returncode == 0
    script.write_text(out.stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        probe = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _omsup; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("omsup", "sta") == ["status"]
    assert set(complete("omsup", "")) >= {"path", "status", "check-env", "abandon", "runbooks", "completion"}
    assert complete("omsup", "status", "--j") == ["--json"]
    assert complete("omsup", "abandon", "--r") == ["--reason"]
    assert complete("omsup", "check-env", "--s") == ["--secrets"]
