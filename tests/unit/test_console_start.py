"""`supervisorctl start oms_console` on a node whose init ran elsewhere: a start is recorded, a console
that already ran (supervisor's "ERROR (already started)", exit 0) is not; both then wait for RUNNING."""

from types import SimpleNamespace

import pytest

from omsup.adapters.oms import Oms
from omsup.record import Facts, Record
from omsup.steps import serving


class FakeEngine:
    def __init__(self, answer: str) -> None:
        self.answer, self.calls = answer, []

    def exec(self, container, *argv):
        self.calls.append((container, argv))
        return 0, self.answer


class FakeRun:
    def __init__(self, tmp_path, answer):
        self.record, _ = Record.open(tmp_path, "upgrade_429", "t", Facts(target="4.2.9-CE", environment_file="e"))
        self.engines = {"n2": FakeEngine(answer)}
        self.env = SimpleNamespace(container="oms_ce")
        self.oms = {"n2": Oms(self.engines["n2"], "oms_ce")}  # the container's verbs over this engine
        self.shown: list[tuple[str, object]] = []

    def evidence(self, title, body):
        self.shown.append((title, body))


@pytest.mark.parametrize(
    ("answer", "recorded"),
    [("oms_console: started", ["n2"]), ("oms_console: ERROR (already started)", [])],
)
def test_a_start_is_recorded_and_a_console_already_running_is_not(tmp_path, monkeypatch, answer, recorded):
    waited = []
    monkeypatch.setattr(serving, "wait_programs", lambda run, node, names, timeout: waited.append((node.name, names)))
    run = FakeRun(tmp_path, answer)
    serving.start_console(run, SimpleNamespace(name="n2"))
    assert run.engines["n2"].calls == [("oms_ce", ("supervisorctl", "start", "oms_console"))]
    assert run.record.facts.consoles_started == recorded
    assert waited == [("n2", ("oms_console",))]  # then until supervisor shows it RUNNING, either way
    assert run.shown == [("n2: supervisorctl start oms_console", f"exit 0\n{answer}")]
