"""The pytest plugin that makes a test module a runbook: options, ordering, skip cascade, report.

Options and the environment file become one frozen, validated object at configure time;
steps get it from the ``run`` fixture (fixtures/runbook.py) and never call getoption.
"""

from __future__ import annotations

import os
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import envfile, report
from .errors import ConfigError, OmsupError
from .redact import redact
from .runbook import Runbook, RunbookStep

ENV_KEY = pytest.StashKey[envfile.Environment]()
STATE_KEY = pytest.StashKey["RunbookSession"]()


class RunbookSession:
    """What the plugin knows of this session's runbook."""

    def __init__(self, config: pytest.Config, env: envfile.Environment | None, report_dir: Path | None) -> None:
        self.config = config
        self.env = env
        self.report_dir = report_dir
        self.runbook: Runbook | None = None
        self.run: Any = None  # omsup.context.Run, made by the fixture
        self.first_failure: tuple[RunbookStep, str] | None = None
        self.results: dict[int, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("omsup", "OMS CE runbooks")
    g.addoption("--env", metavar="FILE", help="environment file describing the OMS CE deployment (YAML)")
    g.addoption("--plan", action="store_true", help="run the preflight, then list what each later step would do; "
                "change nothing")
    g.addoption("--until", type=int, metavar="N", help="stop after step N (a later run resumes)")
    g.addoption("--report-root", default=None, metavar="DIR", help="where run folders are written (default: reports/)")
    g.addoption("--operator", default=None, help="who runs this (default: $SUDO_USER, $USER)")


def _runbook_name(config: pytest.Config) -> str:
    for arg in config.args:
        m = re.search(r"runbooks/([A-Za-z0-9_]+)", str(arg))
        if m:
            return m.group(1)
    return "run"


TEST_ONLY_PLUGINS = ("hypothesispytest",)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runbook_step(step): a step of a runbook (set by omsup.runbook.Runbook.step)")
    env_path = config.getoption("--env")
    env = None
    report_dir = None
    if env_path:
        # a library's deprecation must never stop an upgrade half way: warnings stay warnings
        config.addinivalue_line("filterwarnings", "default")
        config.addinivalue_line("filterwarnings", "ignore::ResourceWarning")  # the docker SDK's ssh subprocesses
        # The same for the whole session, not only while a step runs: pytest collects objects freed at
        # exit (the docker SDK's ssh sockets and subprocesses) after the steps, under the session filters.
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.filterwarnings("ignore", r".*(SSHSocket|Popen\.__del__)", pytest.PytestUnraisableExceptionWarning)
        # A runbook run is not a test session: the project's own test-only plugins (present where the
        # dev extras are installed, absent on a production install) stay out of it. Hypothesis' plugin
        # alone imports its whole engine (~0.5 s) to write its terminal summary.
        for name in TEST_ONLY_PLUGINS:
            config.pluginmanager.set_blocked(name)
        try:
            env = envfile.load(env_path)
        except ConfigError as e:
            raise pytest.UsageError(f"environment file refused:\n  {e}") from None
        config.stash[ENV_KEY] = env
        root = Path(config.getoption("--report-root") or Path(config.rootpath) / "reports")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kind = "plan-" if config.getoption("--plan") else ""
        report_dir = root / f"{kind}{_runbook_name(config)}-{env.name}-{stamp}"
        n = 1
        while report_dir.exists():  # never mix two runs in one folder
            n += 1
            report_dir = root / f"{kind}{_runbook_name(config)}-{env.name}-{stamp}-{n}"
        report_dir.mkdir(parents=True, mode=0o700)
        if not getattr(config.option, "allure_report_dir", None):
            config.option.allure_report_dir = str(report_dir / "allure-results")
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(report_dir / "junit.xml")
        from .audit import AUDIT

        AUDIT.set_sink(report_dir / "events.jsonl")
    config.stash[STATE_KEY] = RunbookSession(config, env, report_dir)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE_KEY]
    books: dict[str, Runbook] = {}
    for item in items:
        m = item.get_closest_marker("runbook_step")
        if m:
            rs: RunbookStep = m.args[0]
            books[rs.runbook.name] = rs.runbook
    if not books:
        return
    if len(books) > 1:
        raise pytest.UsageError(f"one runbook per run, saw {', '.join(sorted(books))}: run them one after the other")
    if state.env is None:
        raise pytest.UsageError(f"runbook {next(iter(books))} needs --env FILE (the environment file of the deployment)")
    state.runbook = next(iter(books.values()))

    def key(item: pytest.Item) -> int:
        m = item.get_closest_marker("runbook_step")
        return m.args[0].number if m else -1

    items.sort(key=key)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    state = config.stash[STATE_KEY]
    if state.runbook is None or state.env is None:
        return []
    rb, env = state.runbook, state.env
    mode = "PLAN (changes nothing)" if config.getoption("--plan") else "EXECUTE"
    lines = [f"runbook {rb.name}: {rb.title} (doc {rb.doc}) -- {mode}",
             f"environment {env.name} from {env.source}: {len(env.nodes)} node(s) in {len(env.regions)} region(s)",
             f"report folder: {state.report_dir}"]
    if config.getoption("--until") is not None:
        lines.append(f"stopping after step {config.getoption('--until')} (--until)")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip every step after a failed one, naming the failed step (before pytest-dependency's own skip)."""
    state = item.config.stash[STATE_KEY]
    if item.get_closest_marker("runbook_step") and state.first_failure is not None:
        rs, why = state.first_failure
        pytest.skip(f"not run: step {rs.label} failed ({why})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    m = item.get_closest_marker("runbook_step")
    if m is None:
        return rep
    rs: RunbookStep = m.args[0]
    state = item.config.stash[STATE_KEY]
    if rep.failed and state.first_failure is None:
        exc = call.excinfo.value if call.excinfo else None
        category = getattr(exc, "category", "Check failed" if isinstance(exc, AssertionError) else "Runbook error")
        first = redact(str(exc).splitlines()[0]) if exc is not None and str(exc) else rep.outcome
        state.first_failure = (rs, f"{category}: {first}")
    if rep.failed and call.excinfo is not None and isinstance(call.excinfo.value, OmsupError):
        exc = call.excinfo.value  # a project error reads as its message, not as a traceback
        rep.longrepr = redact(f"{type(exc).__name__} [{exc.category}]: {exc}")
    if rep.when == "call" or rep.skipped or rep.failed:
        prev = state.results.get(rs.number)
        if prev is None or rep.when == "call" or rep.failed:
            state.results[rs.number] = "failed" if rep.failed else ("skipped" if rep.skipped else "passed")
    return rep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None or state.runbook is None or state.run is None:
        return
    run = state.run
    planned = session.config.getoption("--plan")
    all_passed = len(state.results) == len(state.runbook.steps) and all(
        r == "passed" for r in state.results.values())
    if all_passed and not planned and session.config.getoption("--until") is None:
        run.ledger.finish()
    if run.lock is not None:
        from . import lock

        lock.release(run.backup_host, run.env, run.lock)
    report.write_run_folder(run, state, session.config)
    for eng in list(run.__dict__.get("engines", {}).values()):
        eng.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.runbook is None or state.run is None or state.env is None:
        return
    tr = terminalreporter
    run = state.run
    tr.section(f"runbook {state.runbook.name} on {state.env.name}")
    if run.resumed:
        tr.write_line(f"  resumed run {run.ledger.run_id}: finished steps were verified, not redone")
    for rs in state.runbook.steps:
        o = run.outcomes.get(rs.number, {})
        status = o.get("status") or state.results.get(rs.number) or "not run"
        if state.first_failure and rs.number > state.first_failure[0].number and status in ("not run", "skipped"):
            status = "skipped"
        secs = f"{o['seconds']:7.1f}s" if "seconds" in o else " " * 8
        tr.write_line(f"  {rs.number:>2}. {rs.step.title:<58} {status:<9} {secs}  [{rs.doc.split(':')[0]}]")
    if state.first_failure:
        rs, why = state.first_failure
        tr.write_line(f"  STOPPED at step {rs.label}: {why}", red=True)
        tr.write_line(f"  nothing later ran; fix the cause and run the same command again to resume "
                      f"(ledger {run.ledger.path})" if not run.plan else "  (plan mode)")
    for label, lines in run.plans.items():
        tr.write_line(f"  plan {label}:")
        for line in lines:
            tr.write_line(f"      {line}")
    for note in state.runbook.notes:
        tr.write_line(f"  operator action the document asks for: {note}", yellow=True)
    if state.report_dir:
        tr.write_line(f"  report folder: {state.report_dir}")
        html = state.report_dir / "report.html"
        if html.exists():
            tr.write_line(f"  HTML report:   {html}")
        elif (state.report_dir / "RENDER.txt").exists():
            tr.write_line(f"  HTML report not rendered: see {state.report_dir / 'RENDER.txt'}")


def operator(config: pytest.Config) -> str:
    import getpass

    try:
        fallback = getpass.getuser()
    except (KeyError, OSError):
        fallback = "unknown"
    return str(config.getoption("--operator") or os.environ.get("SUDO_USER") or os.environ.get("USER") or fallback)
