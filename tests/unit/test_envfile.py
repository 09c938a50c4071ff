"""The environment file: validated once, every mistake named by file and key."""

import copy
import os

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
    (tmp_path / "pw").chmod(0o600)
    d = copy.deepcopy(BASE)
    d["metadb"]["password"] = {"file": "pw"}
    env = envfile.load(write(tmp_path, d))
    assert env.metadb.password.value == "from-file-secret"


def test_secret_file_in_utf8_and_not(tmp_path):
    (tmp_path / "pw").write_text("pässwörd-€密\n", encoding="utf-8")
    (tmp_path / "pw").chmod(0o600)
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


# -- every mistake of a file at once, each with its line (issue: operators and CI) ---------------
GOOD = """\
name: prod-eu
container: oms_428
metadb:
  host: 10.0.0.1
  port: 2881
  user: root@oms_tenant
  password: {env: OMSUP_TEST_PW}
  rm: rm_428
  cm: cm_428
regions:
  - name: hz
    cm_hb: cm_hb_428
    nodes:
      - {name: n1, ip: 10.0.0.2, host: "ssh://admin@10.0.0.2", docker: "ssh://admin@10.0.0.2"}
backup: {host: "local://", dir: /home/admin/backups}
console: {user: admin, password: {env: OMSUP_TEST_CONSOLE_PW}}
"""


def load_text(tmp_path, text):
    p = tmp_path / "env.yaml"
    p.write_text(text)
    return envfile.load(p)


def refused(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    return str(e.value)


def test_the_plain_good_file_loads(tmp_path):
    env = load_text(tmp_path, GOOD)
    assert env.name == "prod-eu" and env.console.port is None and len(env.sha256) == 64  # None: config.yaml says


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path):
    text = GOOD.replace("  port: 2881\n", "  port: 2881\n  port: 2882\n")
    msg = refused(tmp_path, text)
    assert "line 6: key 'metadb.port': expected each key once, saw 'it at lines 5 and 6'" in msg
    assert "YAML would silently keep the last" in msg


def test_every_mistake_is_reported_at_once_each_with_its_line(tmp_path):
    text = (
        GOOD.replace("port: 2881", "port: many")
        .replace("rm: rm_428", "rm: rm-428")
        .replace("ip: 10.0.0.2", "ip: 10.0.0.300")
        .replace("name: hz", "name: hz\n    colour: red")
        .replace("dir: /home/admin/backups", "dir: backups")
    )
    msg = refused(tmp_path, text)
    assert "5 problems, fix them all and run again" in msg
    for expected in (
        "line 5: key 'metadb.port': expected a whole number from 1 to 65535, saw 'many'",
        "line 8: key 'metadb.rm': expected a database name of letters, digits and _, saw 'rm-428'",
        "line 12: key 'regions[0].colour': expected one of the known keys (cm_hb, name, nodes), saw 'colour'",
        "line 15: key 'regions[0].nodes[0].ip': expected an IP address such as 10.0.0.2, saw '10.0.0.300'",
        "line 16: key 'backup.dir': expected an absolute path",
    ):
        assert expected in msg, (expected, msg)
    assert msg.index("line 5:") < msg.index("line 8:") < msg.index("line 16:")  # in the order of the file


def test_a_variable_written_as_a_password_is_flagged_with_the_fix(tmp_path):
    msg = refused(tmp_path, GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: ${OMS_META_PASSWORD}"))
    assert "line 7: key 'metadb.password'" in msg and "a ${VARIABLE} written as a literal password" in msg
    assert "YAML does not expand variables: write password: {env: OMS_META_PASSWORD}" in msg


def test_a_number_where_a_name_is_expected_says_how_to_quote_it(tmp_path):
    msg = refused(tmp_path, GOOD.replace("name: prod-eu", "name: 0755"))
    assert "line 1: key 'name': expected a name of letters, digits, _ . - (at most 64), saw 493" in msg
    assert """YAML read '0755' as int 493: quote it (name: "0755")""" in msg


@pytest.mark.parametrize(("mode", "ok"), [(0o600, True), (0o400, True), (0o640, False), (0o644, False), (0o604, False)])
def test_a_secret_file_must_be_private(tmp_path, mode, ok):
    pw = tmp_path / "pw"
    pw.write_text("a-long-enough-secret\n")
    pw.chmod(mode)
    text = GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: {file: pw}")
    if ok:
        assert load_text(tmp_path, text).metadb.password.value == "a-long-enough-secret"
    else:
        msg = refused(tmp_path, text)
        assert f"expected a secret file of mode 0600 (or 0400) owned by you, saw '{pw}: mode {mode:04o}" in msg
        assert f"chmod 600 {pw}" in msg


def test_a_secret_file_owned_by_someone_else_is_refused(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("a-long-enough-secret\n")
    pw.chmod(0o600)
    os.chown(pw, 4242, 4242)
    msg = refused(tmp_path, GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: {file: pw}"))
    assert "owner uid 4242" in msg


def test_a_huge_file_is_refused_at_once(tmp_path):
    p = tmp_path / "env.yaml"
    with open(p, "w") as f:
        f.write(GOOD)
        f.write("# " + "x" * 2_000_000 + "\n")
    with pytest.raises(ConfigError, match=r"an environment file of at most 1024 KiB, saw '2000\d+ bytes'"):
        envfile.load(p)


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time

    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        bomb += f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
    t0 = time.monotonic()
    msg = refused(tmp_path, bomb)
    assert time.monotonic() - t0 < 1
    assert "at most 10000 values" in msg and "without anchors and aliases" in msg


@pytest.mark.parametrize(
    "text",
    [
        "name: !!timestamp x\n",
        "name: !!int x\n",
        "name: !!python/object:os.system x\n",
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "{1: 2}\n",
        "name: !vault x\n",
    ],
)
def test_tags_and_nesting_give_the_projects_error(tmp_path, text):
    with pytest.raises(ConfigError):
        load_text(tmp_path, text)


@pytest.mark.parametrize("secret", ["short", "prod-eu", "oms_428", "cm_hb_428", "10.0.0.2"])
def test_a_secret_too_short_or_common_to_mask_is_refused(tmp_path, monkeypatch, secret):
    monkeypatch.setenv("OMSUP_TEST_PW", secret)
    msg = refused(tmp_path, GOOD)
    assert "key 'metadb.password'" in msg
    assert ("at least 8 characters" in msg) or ("a secret that no other value of the file contains" in msg)
    assert f"'{secret}'" not in msg  # the secret itself is never shown


def test_a_tcp_engine_needs_tls_or_an_explicit_insecure(tmp_path):
    tcp = GOOD.replace('docker: "ssh://admin@10.0.0.2"', 'docker: "tcp://10.0.0.2:2376"')
    msg = refused(tmp_path, tcp)
    assert "a tcp:// engine with tls: {ca, cert, key} (or insecure: true)" in msg
    assert load_text(tmp_path, tcp.replace('docker: "tcp', 'insecure: true, docker: "tcp')).nodes[0].insecure
    tls = tcp.replace('docker: "tcp', 'tls: {ca: /etc/d/ca.pem, cert: /etc/d/c.pem, key: /etc/d/k.pem}, docker: "tcp')
    assert load_text(tmp_path, tls).nodes[0].tls is not None


def test_the_schema_validates_the_example_and_refuses_what_the_loader_refuses(tmp_path):
    import json
    from pathlib import Path

    import jsonschema
    import yaml

    root = Path(__file__).resolve().parents[2]
    schema = envfile.json_schema()
    assert json.loads((root / "env.schema.json").read_text()) == schema, "run: omsup schema > env.schema.json"
    assert "yaml-language-server: $schema=./env.schema.json" in (root / "env.example.yaml").read_text()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(yaml.safe_load((root / "env.example.yaml").read_text()))
    validator.validate(yaml.safe_load(GOOD))
    for bad in (
        GOOD.replace("port: 2881", "port: many"),
        GOOD.replace("rm: rm_428", "rm: rm-428"),
        GOOD.replace("name: hz", "name: hz\n    colour: red"),
        GOOD.replace("name: prod-eu", "name: 0755"),
        GOOD.replace("dir: /home/admin/backups", "dir: backups"),
        GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: {vault: x}"),
    ):
        with pytest.raises(ConfigError):
            load_text(tmp_path, bad)
        assert not validator.is_valid(yaml.safe_load(bad)), bad


@pytest.mark.parametrize("secret", ["Password1", "P@ssw0rd", "oceanbase2024!", "Welcome123", "changeme", "database99"])
def test_a_secret_that_is_a_common_password_or_word_is_refused(tmp_path, monkeypatch, secret):
    monkeypatch.setenv("OMSUP_TEST_PW", secret)
    msg = refused(tmp_path, GOOD)
    assert "key 'metadb.password'" in msg and "a secret that is not a common password or word" in msg
    assert secret not in msg


@pytest.mark.parametrize(
    "secret", ["Qz7kFirst\nSecondHalf-x", "Vb9mAbc\x00nulQq-123", "Tk3bX\there-12345", "Esc7Zk\x1b[31m-red-1"]
)
def test_a_secret_with_a_control_character_is_refused_and_never_echoed(tmp_path, monkeypatch, secret):
    """A newline split the MySQL option file: half the secret was printed by mysqldump, and a crafted one
    injected client options (plugin-dir=, default-auth=)."""
    monkeypatch.setenv("OMSUP_TEST_PW", secret) if "\x00" not in secret else None
    d = copy.deepcopy(BASE)
    if "\x00" in secret:  # an environment variable cannot hold a NUL: a file can
        (tmp_path / "pw").write_bytes(secret.encode())
        (tmp_path / "pw").chmod(0o600)
        d["metadb"]["password"] = {"file": "pw"}
    with pytest.raises(ConfigError) as e:
        envfile.load(write(tmp_path, d))
    msg = str(e.value)
    assert "key 'metadb.password'" in msg and "without control characters" in msg
    for part in (p for p in secret.replace("\x00", "\n").replace("\t", "\n").replace("\x1b", "\n").split("\n") if p):
        assert part not in msg, part


def test_a_secret_files_single_trailing_newline_is_not_part_of_it(tmp_path):
    d = copy.deepcopy(BASE)
    d["metadb"]["password"] = {"file": "pw"}
    for text, value in (("from-file-secret\n", "from-file-secret"), ("from-file-secret\r\n", "from-file-secret")):
        (tmp_path / "pw").write_text(text, newline="")
        (tmp_path / "pw").chmod(0o600)
        assert envfile.load(write(tmp_path, d)).metadb.password.value == value
    (tmp_path / "pw").write_text("from-file-secret\n\n")
    with pytest.raises(ConfigError, match="without control characters"):
        envfile.load(write(tmp_path, d))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "big"])
def test_a_secret_file_is_checked_before_it_is_read(tmp_path, kind):
    """A FIFO hung check-env, /dev/zero gave a MemoryError: type, mode and size come first."""
    import time

    d = copy.deepcopy(BASE)
    target = tmp_path / "pw"
    if kind == "fifo":
        os.mkfifo(target, 0o600)
    elif kind == "dev-zero":
        target = "/dev/zero"
    elif kind == "folder":
        target.mkdir(mode=0o700)
    else:
        target.write_bytes(b"x" * (64 * 1024 + 1))
        target.chmod(0o600)
    d["metadb"]["password"] = {"file": str(target)}
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as e:
        envfile.load(write(tmp_path, d))
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    said = {"fifo": "a FIFO", "dev-zero": "a device", "folder": "a folder", "big": "at most 64 KiB"}[kind]
    assert "key 'metadb.password'" in msg and said in msg, msg


@pytest.mark.parametrize("raw", ["12345678901", "2026-12-06", "[hunter22, x]", "true", "1.5e+10", "!!binary aGVsbG8="])
def test_an_inline_secret_yaml_reads_as_another_type_is_never_shown(tmp_path, raw):
    d = GOOD.replace("password: {env: OMSUP_TEST_PW}", f"password: {raw}")
    assert d != GOOD
    msg = refused(tmp_path, d)
    assert "metadb.password" in msg and "not shown" in msg
    for part in ("12345678901", "2026", "hunter22", "1.5e", "aGVsbG8", "hello"):
        assert part not in msg


@pytest.mark.parametrize("key, value", [("rm", "rm_428\n"), ("cm", "cm_428\n"), ("user", "root@t\n")])
def test_names_are_matched_whole_a_trailing_newline_is_refused(tmp_path, key, value):
    """Every `^...$` pattern accepted a trailing newline ('rm_428\\n'), which then reached SQL and shells."""
    d = copy.deepcopy(BASE)
    d["metadb"][key] = value
    with pytest.raises(ConfigError, match=f"metadb.{key}"):
        envfile.load(write(tmp_path, d))


# -- one parser of ssh:// and tcp:// addresses; merge keys and x- keys (issue 31, point 4) ------------------
@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("ssh://admin@[fd00::11]:2222", ("admin", "fd00::11", 2222)),
        ("ssh://[::1]", (None, "::1", None)),
        ("ssh://admin@oms-1.example.com:65535", ("admin", "oms-1.example.com", 65535)),
        ("ssh://10.0.0.2:1", (None, "10.0.0.2", 1)),
    ],
)
def test_ssh_urls_with_ipv6_in_brackets_and_any_port_load_and_reach_the_ssh_adapter_alike(tmp_path, spec, parsed):
    from omsup.adapters.ssh import parse_spec

    env = load_text(tmp_path, GOOD.replace('host: "ssh://admin@10.0.0.2"', f'host: "{spec}"'))
    assert env.nodes[0].host == spec
    user, host, port = parse_spec(spec)
    assert (user, host, None if port is None else int(port)) == parsed


@pytest.mark.parametrize(
    "spec, said",
    [
        ("ssh://admin@fd00::11", "an IPv6 address is written in brackets"),
        ("ssh://admin@10.0.0.2:0", "port '0' is not a number from 1 to 65535"),
        ("ssh://admin@10.0.0.2:65536", "port '65536' is not a number from 1 to 65535"),
        ("ssh://admin@10.0.0.2:99999", "port '99999' is not a number from 1 to 65535"),
        ("ssh://admin@[fd00::zz]", "is not an IPv6 address in brackets"),
        ("ssh://-oProxyCommand=x", "is not a host name or an IP address"),
        ("ssh://ad min@h", "is not a user name"),
    ],
)
def test_a_bad_ssh_url_is_refused_by_the_file_and_by_the_adapter_with_the_same_reason(tmp_path, spec, said):
    from omsup.adapters.ssh import parse_spec
    from omsup.errors import HostProblem
    from omsup.hostspec import SpecError, parse_url

    msg = refused(tmp_path, GOOD.replace('host: "ssh://admin@10.0.0.2"', f'host: "{spec}"'))
    assert "key 'regions[0].nodes[0].host'" in msg and said in msg  # the reason, as the hint
    with pytest.raises(SpecError) as e:
        parse_url(spec)
    assert said in str(e.value)
    with pytest.raises(HostProblem) as h:
        parse_spec(spec)
    assert said in h.value.message


def test_tcp_engines_take_ipv6_in_brackets_and_need_a_port_in_range(tmp_path):
    base = GOOD.replace('docker: "ssh://admin@10.0.0.2"', 'insecure: true, docker: "tcp://[fd00::2]:2376"')
    assert load_text(tmp_path, base).nodes[0].docker == "tcp://[fd00::2]:2376"
    for bad in ("tcp://[fd00::2]", "tcp://10.0.0.2:70000", "tcp://fd00::2:2376"):
        assert "key 'regions[0].nodes[0].docker'" in refused(tmp_path, base.replace("tcp://[fd00::2]:2376", bad))


def test_yaml_merge_keys_and_x_keys_are_accepted(tmp_path):
    text = GOOD.replace(
        "regions:\n",
        'x-node: &node {host: "ssh://admin@10.0.0.2", docker: "ssh://admin@10.0.0.2"}\nregions:\n',
    ).replace(
        '      - {name: n1, ip: 10.0.0.2, host: "ssh://admin@10.0.0.2", docker: "ssh://admin@10.0.0.2"}\n',
        "      - {<<: *node, name: n1, ip: 10.0.0.2}\n"
        '      - {<<: *node, name: n2, ip: 10.0.0.3, host: "ssh://admin@10.0.0.3"}\n',
    )
    env = load_text(tmp_path, text)
    assert [(n.name, n.host, n.docker) for n in env.nodes] == [
        ("n1", "ssh://admin@10.0.0.2", "ssh://admin@10.0.0.2"),
        ("n2", "ssh://admin@10.0.0.3", "ssh://admin@10.0.0.2"),  # a key written beside the merge wins
    ]
    # a merge of something that is not a mapping is refused with its line; other unknown keys stay refused
    assert "a mapping or a list of mappings to merge" in refused(
        tmp_path, text.replace("<<: *node, name: n1", "<<: 3, name: n1")
    )
    assert "key 'colour'" in refused(tmp_path, text.replace("x-node:", "colour: red\nx-node:"))


# -- {command: [argv...]}: Vault, SOPS, pass, a cloud CLI (issue 31, point 3) ---------------------------------
def _vault(tmp_path, body: str) -> str:
    prog = tmp_path / "fake-vault"
    prog.write_text("#!/bin/sh\n" + body)
    prog.chmod(0o700)
    return str(prog)


def test_a_command_secret_is_its_programs_stdout_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-Secret-9")
    vault = _vault(tmp_path, 'test "$1" = kv && test "$2" = get && printf "%s\\n" "Vault-Said-7xq"\n')
    env = load_text(
        tmp_path, GOOD.replace("password: {env: OMSUP_TEST_PW}", f'password: {{command: ["{vault}", kv, get]}}')
    )
    assert env.metadb.password.value == "Vault-Said-7xq" and env.metadb.password.source == f"command:{vault}"
    assert "Vault-Said" not in repr(env) and "Vault-Said" not in str(env.metadb.password)


def test_a_command_that_fails_prompts_or_hangs_is_refused_naming_it_and_never_its_output(tmp_path, monkeypatch):
    from omsup import envfile as ef

    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-Secret-9")
    monkeypatch.setattr(ef, "SECRET_COMMAND_TIMEOUT", 1.0)

    def with_cmd(argv: str) -> str:
        return GOOD.replace("password: {env: OMSUP_TEST_PW}", f"password: {{command: {argv}}}")

    failing = _vault(tmp_path, 'printf "Half-Secret-1x"; echo "denied: Half-Secret-1x" >&2; exit 3\n')
    msg = refused(tmp_path, with_cmd(f'["{failing}"]'))
    assert "exit 3" in msg and "denied: ******" in msg and "Half-Secret" not in msg
    prompting = _vault(tmp_path, 'read answer; printf "%s" "$answer"\n')  # stdin is /dev/null: reads nothing
    assert "to print one secret, saw 'nothing'" in refused(tmp_path, with_cmd(f'["{prompting}"]'))
    sleeper = _vault(tmp_path, "sleep 30\n")
    msg = refused(tmp_path, with_cmd(f'["{sleeper}"]'))
    assert "to answer within 1 s" in msg and "a login or an unlock" in msg
    assert "not found" in refused(tmp_path, with_cmd('["/nonexistent/vault", get]'))


def test_an_unknown_secret_kind_is_answered_with_the_kinds_that_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-Secret-9")
    msg = refused(tmp_path, GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: {vault: secret/oms}"))
    assert "the kinds are env, file, command; the one written is none of them" in msg and "vault" not in msg
    msg = refused(tmp_path, GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: {Hunter-Secret-22}"))
    assert "Hunter-Secret" not in msg  # YAML's mapping whose key is the secret: the key is never shown
    msg = refused(tmp_path, GOOD.replace("password: {env: OMSUP_TEST_PW}", "password: {command: vault kv get}"))
    assert "no shell is involved" in msg  # a string is not an argv


def test_readers_never_run_a_command_secret(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    prog = _vault(tmp_path, f'touch "{marker}"; printf "Vault-Said-7xq"\n')
    text = GOOD.replace("password: {env: OMSUP_TEST_PW}", f'password: {{command: ["{prog}"]}}')
    p = tmp_path / "env.yaml"
    p.write_text(text)
    for mode in (False, "if available"):
        env = envfile.load(p, secrets=mode)
        assert not env.metadb.password.resolved and env.metadb.password.source == f"command:{prog} (not resolved)"
    assert not marker.exists()


def test_a_scratch_metadb_for_rehearsals_is_read_with_its_secret_masked(tmp_path):
    (tmp_path / "scratch-pw").write_text("scratch-secret-77\n")
    (tmp_path / "scratch-pw").chmod(0o600)
    d = copy.deepcopy(BASE)
    d["rehearsal"] = {
        "metadb": {"host": "10.9.0.5", "port": 3306, "user": "rehearsals", "password": {"file": "scratch-pw"}}
    }
    env = envfile.load(write(tmp_path, d))
    scratch = env.rehearsal.metadb
    assert scratch is not None and (scratch.host, scratch.port, scratch.user) == ("10.9.0.5", 3306, "rehearsals")
    assert scratch.password.value == "scratch-secret-77" and (scratch.rm, scratch.cm) == ("rm_428", "cm_428")
    assert redact.redact("it is scratch-secret-77") == f"it is {redact.MASK}"
    assert envfile.load(write(tmp_path)).rehearsal.metadb is None  # by default: a private seekdb
    d["rehearsal"]["metadb"]["password"] = {"file": "missing-pw"}
    with pytest.raises(ConfigError, match=r"rehearsal\.metadb\.password"):
        envfile.load(write(tmp_path, d))
    d["rehearsal"]["metadb"]["password"] = {"file": "scratch-pw"}
    d["rehearsal"]["metadb"]["ssl"] = True
    with pytest.raises(ConfigError, match=r"rehearsal\.metadb\.ssl"):
        envfile.load(write(tmp_path, d))


def test_another_rehearsal_host_is_refused_saying_where_to_run_the_rehearsal(tmp_path):
    d = copy.deepcopy(BASE)
    d["rehearsal"] = {"host": "ssh://root@10.0.0.9"}
    with pytest.raises(ConfigError) as e:
        envfile.load(write(tmp_path, d))
    assert "key 'rehearsal.host': expected local://, saw 'ssh://root@10.0.0.9'" in str(e.value)
    assert "install omsup there and run the rehearsal there" in str(e.value)
