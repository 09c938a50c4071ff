"""How engine requests are made: the SDK, or the docker CLI on the node for an engine behind SSH that has no
`docker system dial-stdio` (Docker before 18.09, API 1.39); the environment file may say which."""

from __future__ import annotations

import pytest

from omsup.adapters.engine import Engine, api_tuple
from omsup.adapters.hosts import Result


class FakeHost:
    def __init__(self, answer: Result, local: bool = False) -> None:
        self.answer, self.is_local, self.calls, self.sudo, self.spec = answer, local, [], False, "ssh://n1"

    def run(self, command: str, *args: str, quiet: bool = False) -> Result:
        self.calls.append(command)
        return self.answer


@pytest.mark.parametrize(
    ("answer", "cli"),
    [
        (Result(0, "1.26\n", ""), True),  # Docker 1.13, the documented baseline
        (Result(0, "1.38\n", ""), True),  # 18.06: no dial-stdio
        (Result(0, "1.39\n", ""), False),  # 18.09
        (Result(0, "1.41\n", ""), False),
        (Result(1, "", "Cannot connect to the Docker daemon"), False),  # unknown: the SDK says what is wrong
        (Result(0, "garbage", ""), False),
    ],
)
def test_an_engine_behind_ssh_older_than_18_09_is_driven_by_the_cli(answer, cli):
    host = FakeHost(answer)
    eng = Engine("ssh://admin@n1", "n1", host)  # type: ignore[arg-type]
    assert eng.via_cli is cli
    assert host.calls == ["docker version --format '{{.Server.APIVersion}}'"]


def test_a_local_engine_and_the_env_files_choice_ask_nothing():
    host = FakeHost(Result(0, "1.26", ""), local=True)
    assert Engine("unix:///var/run/docker.sock", "n1", host).via_cli is False  # type: ignore[arg-type]
    assert Engine("ssh://a@n1", "n1", FakeHost(Result(0, "1.26", "")), via="sdk").via_cli is False  # type: ignore[arg-type]
    assert Engine("unix:///x.sock", "n1", host, via="cli").via_cli is True  # type: ignore[arg-type]
    assert host.calls == []


def test_api_tuple_is_total():
    assert api_tuple("1.26") == (1, 26) and api_tuple(" 1.41\n") == (1, 41)
    assert api_tuple(None) == api_tuple("1") == api_tuple("a.b") == api_tuple("1.2.3") == (0, 0)
