"""The pytest plugin (entry point ``pytest11``): glue between pytest, the executor and the report.

It registers the options in every pytest session and activates only when ``--env`` is given:
then the environment file becomes one frozen, validated object at configure time, the runbook's
steps are ordered and chained, each step's test hands its step to the executor, and the session
ends with the run folder. Steps and the executor know nothing of pytest.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import allure
import allure_commons
import pytest
from allure_commons.logger import AllureFileLogger
from allure_pytest.listener import AllureListener

from . import envfile, hookspecs, lock
from .audit import AUDIT
from .ci_identity import ci_job, operator_of
from .context import Deployment, Run
from .errors import ConfigError, OmsupError
from .executor import EXIT_CODES_HELP, Executor, ExitCode, NotRun, Outcomes, exit_code
from .record import Facts, Record, RunStatus, utc_now
from .redact import redact, redacted_copy
from .report import Ended, write_run_folder
from .runbook import Runbook, RunbookStep, StepRunner, omsup_command, step_of
from .signals import SignalGuard

SESSION_KEY = pytest.StashKey["RunbookSession"]()
STDOUT_KEY = pytest.StashKey[Any]()  # --events -: the sys.stdout the terminal reporter did not get

# allure-python carries no type information: its decorators, typed once here
_allure_label: Callable[[str, str], pytest.MarkDecorator] = allure.label
_allure_title: Callable[[str], Callable[[Callable[..., Any]], Any]] = allure.title
_allure_description: Callable[[str], pytest.MarkDecorator] = allure.description  # a mark
TEST_ONLY_PLUGINS = ("hypothesispytest",)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("omsup", f"OMS CE runbooks ({EXIT_CODES_HELP})")
    g.addoption(
        "--env",
        metavar="FILE",
        default=os.environ.get("OMSUP_ENV") or None,
        help="environment file describing the OMS CE deployment (YAML); a runbook runs only with it "
        "(default: $OMSUP_ENV)",
    )
    g.addoption(
        "--plan", action="store_true", help="run the preflight, then list what each later step would do; change nothing"
    )
    g.addoption("--until", type=int, metavar="N", help="stop after step N (a later run resumes)")
    g.addoption(
        "--report-root",
        default=None,
        metavar="DIR",
        help="where run folders are written (default: ./reports of the working directory)",
    )
    g.addoption(
        "--operator",
        default=None,
        help="who runs this (default: the CI job's user on GitLab, GitHub or Jenkins, then $SUDO_USER, $USER)",
    )
    g.addoption(
        "--rehearsal",
        default=None,
        metavar="FILE",
        help="an upgrade or rollback follows the rehearsal.json of a rehearsal (runbooks/rehearse_*): refused before "
        "any change unless it rehearsed what is about to run; its observations are expected where the documents "
        "are silent",
    )
    g.addoption(
        "--keep-replica",
        action="store_true",
        help="a rehearsal leaves its replica (namespaces, engines, scratch MetaDB) running for a look; "
        "remove it by hand afterwards (the summary says how)",
    )
    g.addoption(
        "--events",
        default=None,
        metavar="-",
        help="'-': write the run's events (run and step start and end, every command, statement and request) "
        "as NDJSON to stdout as they happen, the same lines as the run folder's events.jsonl",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    env_path = config.getoption("--env", default=None)
    if not env_path:
        return
    foreign = [
        flag
        for flag, dest in (("--hosts", "hosts"), ("--ssh-config", "ssh_config"), ("--sudo", "sudo"),
                           ("--ansible-inventory", "ansible_inventory"), ("--ssh-identity-file", "ssh_identity_file"))
        if config.getoption(dest, default=None)
    ]  # fmt: skip
    if foreign:  # testinfra's own options: a runbook's hosts are the environment file's, never these
        raise pytest.UsageError(
            f"{', '.join(foreign)}: testinfra's option(s) do nothing for a runbook; the environment file decides the "
            "hosts, users, sudo and SSH settings (its nodes' host, sudo; your ~/.ssh/config): remove them"
        )
    events = config.getoption("--events", default=None)
    if events not in (None, "-"):
        raise pytest.UsageError(f"--events {events}: only '-' (stdout) is offered; the run folder keeps events.jsonl")
    try:
        env = envfile.load(env_path)
    except ConfigError as e:
        raise pytest.UsageError(f"environment file refused:\n  {e}") from None
    config.pluginmanager.register(RunbookSession(config, env), "omsup-runbook")
    if events == "-":
        # stdout carries only the NDJSON: the events go to a copy of the real stdout taken now (no test's capture
        # swallows it), and pytest's terminal reporter, made after this hook, writes to stderr (set back below)

        sys.stdout.flush()
        AUDIT.stream_to(os.dup(1))
        config.stash[STDOUT_KEY] = sys.stdout
        sys.stdout = sys.stderr


def pytest_sessionstart(session: pytest.Session) -> None:
    """--events -: the terminal reporter exists now (on stderr); sys.stdout is set back."""
    saved = session.config.stash.get(STDOUT_KEY, None)
    if saved is not None:
        sys.stdout = saved


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --env, a runbook refuses to start (its steps would only fail on a missing fixture)."""
    if SESSION_KEY not in config.stash:
        books = sorted({rs.runbook.name for rs in (step_of(getattr(i, "obj", None)) for i in items) if rs})
        if books:
            raise pytest.UsageError(f"runbook {books[0]} needs --env FILE (the environment file of the deployment)")


def operator(config: pytest.Config) -> str:
    """--operator, the CI job's user, the sudo user, the login (omsup.ci_identity)."""

    try:
        fallback = getpass.getuser()
    except (KeyError, OSError):
        fallback = "unknown"
    return operator_of(config.getoption("--operator"), os.environ, fallback)


class AllureReporter:
    """The executor's reporter: evidence and sub-steps into the Allure results."""

    def attach(self, name: str, body: str, is_json: bool) -> None:
        allure.attach(body, name, allure.attachment_type.JSON if is_json else allure.attachment_type.TEXT)

    @contextmanager
    def part(self, title: str) -> Iterator[None]:
        with allure.step(title):
            yield


class RunbookSession(StepRunner):
    """The runbook of this pytest session: registered as a plugin only when --env is given."""

    def __init__(self, config: pytest.Config, env: envfile.Environment) -> None:
        self.config = config
        self.env = env
        self.runbook: Runbook | None = None
        self.outcomes: Outcomes | None = None
        self.report_dir: Path | None = None
        self.run: Run | None = None
        self.executor: Executor | None = None
        self.lock: dict[str, Any] | None = None
        self.exit_code: ExitCode | None = None
        self.started: str | None = None  # UTC, when the run folder was made
        self.lock_left: str | None = None  # why the lock could not be released at the end
        self.signals = SignalGuard()  # SIGTERM and SIGHUP end the run as Ctrl-C does
        self.signals.install()
        self.plan = bool(config.getoption("--plan"))
        self.until: int | None = config.getoption("--until")
        config.stash[SESSION_KEY] = self
        # a library's deprecation must never stop an upgrade half way: warnings stay warnings, for the
        # whole session (pytest collects objects freed at exit, the docker SDK's ssh sockets among them)
        config.addinivalue_line("filterwarnings", "default")
        config.addinivalue_line("filterwarnings", "ignore::ResourceWarning")
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.filterwarnings("ignore", r".*(SSHSocket|Popen\.__del__)", pytest.PytestUnraisableExceptionWarning)
        # A runbook run is not a test session: the project's test-only plugins (present where the dev
        # extras are installed) stay out of it. Hypothesis' plugin alone imports its whole engine.
        for name in TEST_ONLY_PLUGINS:
            config.pluginmanager.set_blocked(name)
        _redact_log_records()
        config.pluginmanager.register(ExitStatus(self), "omsup-exit-status")
        config.pluginmanager.import_plugin("omsup.fixtures.runbook")

    # -- collection ------------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        steps = [(i, step_of(getattr(i, "obj", None))) for i in items]
        books = {rs.runbook.name: rs.runbook for _, rs in steps if rs}
        if not books:
            return
        if len(books) > 1:
            raise pytest.UsageError(
                f"one runbook per run, saw {', '.join(sorted(books))}: run them one after the other"
            )
        self.runbook = next(iter(books.values()))
        self._whole_or_up_to_a_step({rs.number for _, rs in steps if rs})
        self.outcomes = Outcomes(self.runbook)
        self.collect_only = bool(config.getoption("collectonly", False))
        items.sort(key=lambda i: rs.number if (rs := step_of(getattr(i, "obj", None))) else -1)
        previous: RunbookStep | None = None
        for item, rs in sorted(((i, r) for i, r in steps if r), key=lambda x: x[1].number):
            item.add_marker(
                pytest.mark.dependency(
                    name=rs.dependency_name, scope="session", depends=[previous.dependency_name] if previous else []
                )
            )
            for label, value in (("feature", rs.runbook.name), ("story", rs.label), ("runbook", rs.runbook.name)):
                item.add_marker(_allure_label(label, value))
            func = getattr(item, "function", None)
            if func is not None:
                _allure_title(rs.label)(func)
            item.add_marker(_allure_description(f"Implements: {rs.doc}"))
            previous = rs
        if not self.collect_only:  # --co lists the steps: no run folder, no connection, nothing written
            self._open_report_folder()

    def _whole_or_up_to_a_step(self, selected: set[int]) -> None:
        """A runbook runs whole, or up to a step (--until N): never with holes (-k, node ids)."""
        assert self.runbook is not None
        last = len(self.runbook.steps) - 1
        if self.until is not None and not 0 <= self.until <= last:
            raise pytest.UsageError(f"--until {self.until}: runbook {self.runbook.name} has steps 0 to {last}")
        upto = last if self.until is None else self.until
        missing = sorted(set(range(upto + 1)) - selected)
        if missing:
            names = ", ".join(self.runbook.steps[n].label for n in missing[:4]) + (" ..." if len(missing) > 4 else "")
            raise pytest.UsageError(
                f"runbook {self.runbook.name} runs whole or up to a step, never with holes: not selected: {names}. "
                "Select the runbook's folder (no -k, no node id); to stop early, use --until N"
            )

    def _open_report_folder(self) -> None:
        assert self.runbook is not None
        root = Path(self.config.getoption("--report-root") or Path.cwd() / "reports")  # said at the start
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = f"{'plan-' if self.plan else ''}{self.runbook.name}-{self.env.name}-{stamp}"
        folder, n = root / base, 1
        while folder.exists():  # never mix two runs in one folder
            n += 1
            folder = root / f"{base}-{n}"
        folder.mkdir(parents=True, mode=0o700)
        self.report_dir = folder
        self.started = utc_now()
        attach_result_writers(self.config, folder)
        AUDIT.set_sink(folder / "events.jsonl")

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        if self.runbook is None:
            return []
        rb, env = self.runbook, self.env
        mode = "PLAN (changes nothing)" if self.plan else "EXECUTE"
        lines = [
            f"runbook {rb.name}: {rb.title} (doc {rb.doc}) -- {mode}",
            f"environment {env.name} from {env.source}: {len(env.nodes)} node(s) in {len(env.regions)} region(s)",
            f"report folder: {self.report_dir}",
        ]
        if self.until is not None:
            lines.append(f"stopping after step {self.until} (--until)")
        lines += [f"WARNING: {w}" for w in env.transport_warnings()]
        return lines

    # -- the run -----------------------------------------------------------------------------------
    def start(self) -> StepRunner:
        """The run of this session's runbook: the lock, its record (resumed when unfinished), its executor."""
        assert self.runbook is not None and self.outcomes is not None
        book, env = self.runbook, self.env
        facts = Facts(target=str(book.target), environment_file=env.source)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.plan or book.read_only:  # changes nothing, so takes no lock and writes no record
            record, resumed = Record.in_memory(book.name, env.name, facts), False
        else:  # one operator at a time: the lock before anything is written
            self.lock = lock.acquire(Deployment(env).backup_host, env, book.name, operator(self.config))
            record, resumed = Record.open(env.state_dir, book.name, env.name, facts)
            record.attempt(operator(self.config), ci_job(os.environ))
        live = (lambda msg: tr.write_line(f"    ... {msg}")) if tr is not None else None
        self.run = Run(env, book, record, resumed, self.plan, self.until, AllureReporter(), live)
        self.run.rehearsal_file = self.config.getoption("--rehearsal", default=None)
        self.run.keep_replica = bool(self.config.getoption("--keep-replica", default=False))
        if self.lock is not None:  # the one run on this environment: option files of killed runs go
            self.run.metadb.option_tag = self.lock["id"]
            stale = self.run.metadb.remove_stale_option_files(self.run.backup_host, env.backup_dir)
            if stale and tr is not None:
                tr.write_line(f"removed {len(stale)} MySQL option file(s) a killed run left: {', '.join(stale)}")
        AUDIT.run_id = record.run_id
        AUDIT.milestone(
            "run_start",
            env.name,
            f"{'plan' if self.plan else 'run'} of {book.name}"
            + (f" (resumed, attempt {record.data.attempts})" if resumed else ""),
        )
        self.executor = Executor(self.run, self.outcomes)
        self.executor.on_begin.append(lambda rs: self.config.hook.pytest_omsup_step_begin(step=rs.step.key))
        self.executor.keep_traceback = self._keep_traceback
        if resumed and tr is not None:
            tr.write_line(f"resuming run {record.run_id} of {book.name} (ledger {record.path})")
        return self

    def run_step(self, rs: RunbookStep) -> None:
        __tracebackhide__ = True

        assert self.executor is not None and self.outcomes is not None
        AUDIT.milestone("step_start", self.env.name, f"step {rs.label}")
        try:
            self.executor.execute(rs)
        except NotRun as e:
            pytest.skip(str(e))
        finally:
            o = self.outcomes.get(rs)
            AUDIT.milestone("step_end", self.env.name, f"step {rs.label}", o.status.value, o.seconds or 0.0)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Skip every step after a failed one, naming the failed step (before pytest-dependency's own skip)."""
        rs = step_of(getattr(item, "obj", None))
        if rs is not None and self.outcomes is not None:
            reason = self.outcomes.blocked(rs)
            if reason:
                pytest.skip(reason)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        rep = yield
        rs = step_of(getattr(item, "obj", None))
        if rs is None or self.outcomes is None or not rep.failed:
            return rep
        exc = call.excinfo.value if call.excinfo else None
        if exc is None:
            return rep
        if (
            self.outcomes.get(rs).status.value != "failed"
        ):  # a failure outside the step itself (the run could not start)
            self.outcomes.failed(rs, exc)
            self._keep_traceback(f"{rs.step.key}-{rep.when}", redact("".join(traceback.format_exception(exc))))
        # The report's text of every failure is the redacted message, never a traceback (which -l would
        # fill with locals); the whole traceback is in the run folder's tracebacks/ (0600, redacted).
        copy = redacted_copy(exc)
        category = getattr(copy, "category", "Check failed" if isinstance(copy, AssertionError) else "Runbook error")
        rep.longrepr = f"{type(exc).__name__} [{category}]: {copy}"
        try:  # what Allure's status details read: the redacted copy
            raise copy
        except BaseException:  # noqa: BLE001 - caught only to hold it as an ExceptionInfo
            call.excinfo = pytest.ExceptionInfo.from_current()
        return rep

    def _keep_traceback(self, name: str, text: str) -> None:
        if self.report_dir is None:
            return
        folder = self.report_dir / "tracebacks"
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(folder / f"{name}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)

    @pytest.hookimpl(trylast=True)  # after junitxml wrote junit.xml: the run folder is complete, then swept
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.runbook is None or self.outcomes is None:
            return
        run = self.run
        if run is not None and self.outcomes.all_done and not self.plan and self.until is None:
            run.record.finish(RunStatus.COMPLETE)
        if self.lock is not None:
            try:
                lock.release(
                    run.backup_host if run is not None else Deployment(self.env).backup_host, self.env, self.lock
                )
            except OmsupError as e:  # the backup host went away: the run's outcome stands, the lock stays
                self.lock_left = (
                    f"the lock of {self.env.name} could not be released ({e.message}); once the backup host "
                    f"answers: {omsup_command('unlock', '--env', self.env.source)}"
                )
        if self.report_dir is not None:
            write_run_folder(
                Ended(
                    runbook=self.runbook,
                    env=self.env,
                    outcomes=self.outcomes,
                    run=run,
                    plan=self.plan,
                    exit_code=self.exit_code,
                    started=self.started,
                    operator=operator(self.config),
                    lock_left=self.lock_left,
                    report_dir=self.report_dir,
                )
            )
        if run is not None:
            run.close()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.signals.uninstall()

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.runbook is None or self.outcomes is None:
            return
        tr, run = terminalreporter, self.run
        if self.signals.received:
            tr.write_line(
                f"  interrupted by {', '.join(self.signals.received)}"
                + (
                    f" (then {', '.join(self.signals.ignored)}, ignored while the run ended)"
                    if self.signals.ignored
                    else ""
                )
            )
        tr.section(f"runbook {self.runbook.name} on {self.env.name}")
        if run is not None and run.resumed:
            tr.write_line(f"  resumed run {run.record.run_id}: finished steps were verified, not redone")
        for o in self.outcomes:
            secs = f"{o.seconds:7.1f}s" if o.seconds is not None else " " * 8
            tr.write_line(
                f"  {o.rs.number:>2}. {o.rs.step.title:<58} {o.status.value:<9} {secs}  [{o.rs.doc.split(':')[0]}]"
            )
        failed = self.outcomes.first_failure
        if failed:
            tr.write_line(f"  STOPPED at step {failed.rs.label}: {failed.category}: {failed.error}", red=True)
            where = f" (ledger {run.record.path})" if run is not None else ""
            if failed.hint:
                tr.write_line(f"  next: {failed.hint}")
            then = (
                "it changed nothing and is closed"
                if failed.nothing_to_do
                else "fix the cause and run the same command again to resume"
                if failed.resumable
                else "this run is not to be resumed"
            )
            tr.write_line(
                "  (plan mode)"
                if self.plan
                else "  (reads only: nothing was changed)"
                if self.runbook.read_only
                else f"  nothing later ran; {then}{where}"
            )
        if run is not None:
            for label, lines in run.plans.items():
                tr.write_line(f"  plan {label}:")
                for line in lines:
                    tr.write_line(f"      {line}")
        for note in self.runbook.notes:
            tr.write_line(f"  operator action the document asks for: {note}", yellow=True)
        if self.lock_left:
            tr.write_line(f"  WARNING: {redact(self.lock_left)}", yellow=True)
        if self.report_dir:
            tr.write_line(f"  report folder: {self.report_dir}")
            html = self.report_dir / "report.html"
            if html.exists():
                tr.write_line(f"  HTML report:   {html}")
            elif (self.report_dir / "RENDER.txt").exists():
                tr.write_line(f"  HTML report not rendered: see {self.report_dir / 'RENDER.txt'}")


class ExitStatus:
    """Sets the session's exit status from the outcomes (0, 1, 2, 10), before junit.xml is written."""

    def __init__(self, session: RunbookSession) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        s = self.session
        s.signals.closing()  # the run folder and the lock come first now: a further signal is noted, not raised
        if s.outcomes is None:
            return
        if exitstatus == pytest.ExitCode.USAGE_ERROR:
            code = ExitCode.USAGE
        else:
            code = exit_code(s.outcomes, s.run, exitstatus == pytest.ExitCode.INTERRUPTED)
        s.exit_code = code
        session.exitstatus = int(code)


def attach_result_writers(config: pytest.Config, folder: Path) -> None:
    """Allure results into the run folder (unless the operator named another place with --alluredir).

    The folder's name is known once the runbook is collected; allure-pytest's listener and file logger are
    registered then, as allure-pytest registers its own at configure time when --alluredir is given. (junit.xml is
    one of the report's renderers: report.junit_xml.)
    """
    if not getattr(config.option, "allure_report_dir", None):
        config.option.allure_report_dir = str(folder / "allure-results")
        listener = AllureListener(config)
        config.pluginmanager.register(listener, "allure_listener")
        allure_commons.plugin_manager.register(listener)
        make_logger: Callable[[str, bool], Any] = AllureFileLogger  # allure carries no type information
        file_logger = make_logger(config.option.allure_report_dir, False)
        allure_commons.plugin_manager.register(file_logger)

        def cleanup() -> None:
            for obj in (listener, file_logger):
                allure_commons.plugin_manager.unregister(obj)

        config.add_cleanup(cleanup)


def _redact_log_records() -> None:
    """Every log record is redacted where it is made, whichever logger reaches the report (testinfra
    logs whole command outputs at DEBUG)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "omsup_redacts", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = factory(*args, **kwargs)
        try:
            text = rec.getMessage()
        except (TypeError, ValueError):
            text = str(rec.msg)
        clean = redact(text)
        if clean != text or rec.args:
            rec.msg, rec.args = clean, None
        if rec.exc_info and rec.exc_info[1] is not None:
            rec.exc_text = redact("".join(traceback.format_exception(rec.exc_info[1])))
            rec.exc_info = None
        return rec

    make.omsup_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
