"""The documented docker run, as SDK arguments and as a shell line."""

import shlex

from omsup.adapters.engine import run_kwargs
from omsup.container_spec import ContainerSpec, bind_target, standard_binds


def spec(upgrade=True):
    binds = standard_binds("/data/config.yaml", "/data/oms/oms_logs", "/data/oms/oms_store", "/data/oms/oms_run")
    return ContainerSpec(
        "oms_xxx", "oms:feature_4.2.9-ce", binds, "10.0.0.2", upgrade, (("TZ", "UTC"),), (("omsup.run", "r1"),)
    )


def test_sdk_arguments_match_the_documented_flags():
    kw = run_kwargs(spec())
    assert kw["network_mode"] == "host" and kw["privileged"] is True and kw["pids_limit"] == -1
    assert kw["tty"] and kw["stdin_open"] and kw["detach"]
    assert [(u["Name"], u["Soft"], u["Hard"]) for u in kw["ulimits"]] == [("nproc", 65535, 65535)]
    assert kw["environment"] == {"TZ": "UTC", "OMS_HOST_IP": "10.0.0.2", "IS_UPGRADE": "true"}
    assert kw["volumes"] == list(spec().binds)
    assert kw["labels"] == {"omsup.run": "r1"}


def test_is_upgrade_only_when_upgrading():
    assert "IS_UPGRADE" not in spec(upgrade=False).environment()


def test_command_line_is_the_documented_one():
    line = spec().command_line()
    words = shlex.split(line)
    assert words[:5] == ["docker", "run", "-dit", "--net", "host"]
    for flag in ("--privileged=true", "IS_UPGRADE=true", "nproc=65535:65535", "OMS_HOST_IP=10.0.0.2"):
        assert flag in words
    assert words[-3:] == ["--name", "oms_xxx", "oms:feature_4.2.9-ce"]


def test_bind_target():
    assert bind_target("/a:/home/ds/store:rw") == "/home/ds/store"
    assert bind_target("nonsense") == ""


def test_certificate_binds_only_with_both_files():
    assert len(standard_binds("/c", "/l", "/s", "/r", "/crt", None)) == 4
    assert len(standard_binds("/c", "/l", "/s", "/r", "/crt", "/key")) == 6
