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
        assert rc == 1 and "no documented path" in err
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
    assert main(["path", bad, "4.2.9-CE"]) == 1
    assert "expected a version" in capsys.readouterr().err


def test_check_env_reports_a_bad_file_without_traceback(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("name: x\n")
    r = subprocess.run([sys.executable, "-m", "omsup", "check-env", str(p)], capture_output=True, text=True)
    assert r.returncode == 1 and "key 'backup': expected a value" in r.stderr and "Traceback" not in r.stderr


def test_known_versions_cover_the_documents():
    assert {str(v) for v in KNOWN_VERSIONS} >= set(DOC_VERSIONS)
