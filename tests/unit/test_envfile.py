"""The environment file: validated once, every mistake named by file and key."""

import copy

import pytest

from omsup import envfile, redact
from omsup.errors import ConfigError

from .envfiles import BASE, write


@pytest.fixture(autouse=True)
def secrets(monkeypatch):
    monkeypatch.setenv("OMSUP_TEST_PW", "meta'pw\"$;#\\x")
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-1")
    redact.clear()


def test_valid_file_loads_frozen(tmp_path):
    env = envfile.load(write(tmp_path))
    assert [n.name for n in env.nodes] == ["n1", "n2"]
    assert env.databases() == [("rm", "rm_428"), ("cm", "cm_428"), ("cm_hb", "cm_hb_428")]
    assert env.metadb.password.value == "meta'pw\"$;#\\x"
    assert "meta'pw" not in repr(env) and "meta'pw" not in str(env.metadb.password)
    with pytest.raises(AttributeError):
        env.name = "x"  # frozen


def test_secret_values_are_registered_for_redaction(tmp_path):
    envfile.load(write(tmp_path))
    assert redact.redact("pw is meta'pw\"$;#\\x") == f"pw is {redact.MASK}"


def mutate(path, value):
    d = copy.deepcopy(BASE)
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "key", "expected"),
    [
        ("metadb.rm", "rm_428; DROP DATABASE cm_428", "metadb.rm", "a database name"),
        ("metadb.cm", "cm`x", "metadb.cm", "a database name"),
        ("container", "oms ce", "container", "a Docker container name"),
        ("container", "$(reboot)", "container", "a Docker container name"),
        ("metadb.port", "2881", "metadb.port", "a whole number from 1 to 65535"),
        ("metadb.port", 70000, "metadb.port", "a whole number from 1 to 65535"),
        ("version", "4.2", "version", "a version such as 4.2.8-CE"),
        ("regions.0.nodes.0.ip", "10.0.0.300", "regions[0].nodes[0].ip", "an IP address"),
        ("regions.0.nodes.0.host", "10.0.0.2", "regions[0].nodes[0].host", "a host spec"),
        ("regions.0.nodes.1.docker", "unix://relative.sock", "regions[0].nodes[1].docker", "a Docker engine URL"),
        ("backup.dir", "backups", "backup.dir", "an absolute path"),
        ("backup.dir", "/tmp/a b", "backup.dir", "an absolute path"),
        ("backup.dir", "/tmp/$(id)", "backup.dir", "an absolute path"),
        ("ha.refetch_margin_min", -1, "ha.refetch_margin_min", "a whole number"),
        ("console.scheme", "ftp", "console.scheme", "http or https"),
        ("metadb.password", {"env": "OMSUP_UNSET_VARIABLE"}, "metadb.password", "the environment variable"),
        ("metadb.password", {"vault": "x"}, "metadb.password", "a secret reference"),
        ("metadb.host", KeyError, "metadb.host", "a value"),
        ("regions", [], "regions", "a non-empty list"),
    ],
)
def test_mistakes_name_file_key_expected_and_seen(tmp_path, path, value, key, expected):
    p = write(tmp_path, mutate(path, value))
    with pytest.raises(ConfigError) as e:
        envfile.load(p)
    msg = str(e.value)
    assert str(p) in msg and f"key '{key}'" in msg and expected in msg
    assert "next:" in msg


def test_unknown_key_is_a_typo_not_ignored(tmp_path):
    d = copy.deepcopy(BASE)
    d["metadb"]["pasword"] = "x"
    with pytest.raises(ConfigError, match=r"metadb\.pasword.*one of the known keys"):
        envfile.load(write(tmp_path, d))


def test_duplicate_node_names_and_ips(tmp_path):
    d = copy.deepcopy(BASE)
    d["regions"][0]["nodes"][1]["ip"] = "10.0.0.2"
    with pytest.raises(ConfigError, match="an IP not used already"):
        envfile.load(write(tmp_path, d))


def test_cm_hb_may_not_reuse_rm(tmp_path):
    d = copy.deepcopy(BASE)
    d["regions"][0]["cm_hb"] = "rm_428"
    with pytest.raises(ConfigError, match="a database other than metadb.rm's"):
        envfile.load(write(tmp_path, d))


def test_secret_from_file(tmp_path):
    (tmp_path / "pw").write_text("from-file-secret\n")
    d = copy.deepcopy(BASE)
    d["metadb"]["password"] = {"file": "pw"}
    env = envfile.load(write(tmp_path, d))
    assert env.metadb.password.value == "from-file-secret"


def test_secret_file_in_utf8_and_not(tmp_path):
    (tmp_path / "pw").write_text("pässwörd-€密\n", encoding="utf-8")
    d = copy.deepcopy(BASE)
    d["metadb"]["password"] = {"file": "pw"}
    assert envfile.load(write(tmp_path, d)).metadb.password.value == "pässwörd-€密"
    (tmp_path / "pw").write_bytes("pässwörd".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"metadb\.password.*a secret file in UTF-8.*byte 1 is not UTF-8"):
        envfile.load(write(tmp_path, d))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="an existing environment file"):
        envfile.load(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"valid YAML.*line"):
        envfile.load(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="a mapping"):
        envfile.load(p)


def test_example_file_in_the_repository_is_valid(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("OMS_META_PASSWORD", "x" * 8)
    monkeypatch.setenv("OMS_CONSOLE_PASSWORD", "y" * 8)
    env = envfile.load(Path(__file__).resolve().parents[2] / "env.example.yaml")
    assert len(env.regions) == 2
