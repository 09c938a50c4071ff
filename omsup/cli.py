"""The ``omsup`` command: helpers around the runbooks (check-env, path, report, status, unlock, abandon, --version).

The runbooks themselves run under pytest: ``pytest runbooks/upgrade_429 --env prod.yaml``.

Start-up time: the run's modules (pydantic, docker, PyMySQL, testinfra) take 0.3-1 s to load; `omsup path`,
`completion` and `--help` need none of them and answer in about 0.2 s. So a command imports them in its own
function ("imported here: start-up time"), the only function-local imports here.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import shutil
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .errors import ConfigError, MetaDBProblem, OmsupError, PreconditionRefused
from .redact import printable, printable_obj
from .runbook import RUNBOOK_NAME, command, omsup_command
from .versions import Version, VersionError, upgrade_chain

if TYPE_CHECKING:
    from .context import Deployment
    from .record import Record


class _Parser(argparse.ArgumentParser):
    """A usage mistake exits 4, as a runbook's does (the README's exit-code table), not argparse's 2
    (which the table gives to an interrupted run)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 1, 4, 10  # the runbooks' codes (omsup.executor.ExitCode)


def _env_arg(p: argparse.ArgumentParser) -> None:
    default = os.environ.get("OMSUP_ENV") or None
    p.add_argument(
        "--env",
        required=default is None,
        default=default,
        metavar="FILE",
        help="the environment file of the deployment (default: $OMSUP_ENV)",
    )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="omsup",
        description="OMS CE upgrade runbooks: helpers. The runbooks run "
        "under pytest: pytest runbooks/upgrade_429 --env FILE",
    )
    p.add_argument("--version", action="version", version=f"omsup {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    pa = sub.add_parser(
        "path", help="the chain of documented upgrades (and their runbooks) from one version to another"
    )
    pa.add_argument("source", help="the version the deployment runs, e.g. 4.1.1-CE")
    pa.add_argument("target", help="the version to reach, e.g. 4.2.9-CE")
    pa.add_argument("--json", action="store_true", help="the chain as JSON (hops with their runbooks and commands)")
    rp = sub.add_parser(
        "report",
        help="render the single-file HTML report of an existing run folder again",
        description="Render reports/<run>/report.html again from its allure-results (Allure Report 3: OMSUP_ALLURE, "
        "the checkout's node_modules, or `allure` on PATH).",
    )
    rp.add_argument("folder", type=Path, help="a run folder (reports/<runbook>-<env>-<UTC>)")
    ce = sub.add_parser("check-env", help="validate an environment file (no connection is made)")
    ce.add_argument("file", help="the environment file (YAML)")
    ce.add_argument(
        "--secrets",
        action="store_true",
        help="resolve the secret references too (variables, files, commands) and check them",
    )
    ce.add_argument("--json", action="store_true", help="the result as JSON: the environment, or every problem")
    sub.add_parser("schema", help="print the JSON Schema of the environment file (for editors)")
    rb = sub.add_parser(
        "runbooks",
        help="copy the installed package's runbooks into DIR/runbooks (then: pytest DIR/runbooks/NAME --env FILE)",
    )
    rb.add_argument(
        "dir", metavar="DIR", help="an existing folder; DIR/runbooks must not exist yet (nothing is overwritten)"
    )
    ul = sub.add_parser(
        "unlock", help="release the lock a killed run left on an environment (check no run is going on)"
    )
    _env_arg(ul)
    ul.add_argument(
        "--force",
        metavar="ID",
        help="release the lock with this id (shown by unlock and status) even though its holder cannot be "
        "proven gone; only that lock is removed",
    )
    st = sub.add_parser(
        "status",
        help="where the runs on an environment stand (the lock, unfinished runs, backups, T1/T2/T3) and what "
        "to do next; reads the ledgers and the lock only",
    )
    _env_arg(st)
    st.add_argument("--json", action="store_true", help="the same as JSON, for pipelines")
    ab = sub.add_parser(
        "abandon",
        help="call off the unfinished run of a runbook so that the next run starts anew (its ledger and "
        "backups stay); refused once new containers may run or a database was dropped",
    )
    ab.add_argument("runbook", help="the runbook's name, e.g. upgrade_429")
    _env_arg(ab)
    ab.add_argument("--reason", required=True, help="why, for the audit (kept in the run's ledger)")
    co = sub.add_parser(
        "completion",
        help='print a bash completion script: eval "$(omsup completion bash)" (or save it under '
        "/etc/bash_completion.d/omsup)",
    )
    co.add_argument("shell", choices=["bash"], help="the shell (bash)")
    return p


def _completion_words(p: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each subcommand's options, read from the parser itself (a new option completes without a hand-kept list)."""
    words: dict[str, list[str]] = {"": ["--version", "--help"]}
    for action in p._actions:  # argparse keeps its subparsers there; it offers no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                words[""].append(name)
                words[name] = sorted(o for a in sp._actions for o in a.option_strings if o.startswith("--"))
    return words


def _completion_bash() -> str:
    words = _completion_words(_parser())
    cases = "\n".join(
        f"    {name}) opts={shlex.quote(' '.join(opts))} ;;" for name, opts in sorted(words.items()) if name
    )
    return f"""# bash completion for omsup (omsup completion bash)
_omsup() {{
  local cur sub opts
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  sub="${{COMP_WORDS[1]}}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W {shlex.quote(" ".join(words[""]))} -- "$cur"))
    return
  fi
  case "$sub" in
{cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -F _omsup omsup
"""


def _path(source: str, target: str, as_json: bool = False) -> int:

    try:
        Version.parse(source), Version.parse(target)
    except VersionError as e:
        print(f"omsup path: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        chain = upgrade_chain(source, target)
    except VersionError as e:
        if as_json:
            print(json.dumps({"source": source, "target": target, "documented": False, "why": str(e), "hops": []}))
        print(f"no documented path: {e}", file=sys.stderr)
        return EXIT_REFUSED
    if as_json:
        hops = [
            {
                "target": str(rule.target),
                "doc": rule.doc,
                "kind": rule.kind,
                "runbook": rule.runbook,
                "command": command(rule.runbook, "FILE") if rule.runbook else None,
                "rollback": rule.rollback,
                "rollback_command": command(rule.rollback, "FILE") if rule.rollback else None,
            }
            for rule in chain
        ]
        print(json.dumps({"source": source, "target": target, "documented": True, "why": None, "hops": hops}, indent=2))
        return 0
    if not chain:
        print("already there: nothing to do")
    for rule in chain:
        how = command(rule.runbook, "FILE") if rule.runbook else "no runbook here (no procedure is documented)"
        back = f"; back: {command(rule.rollback, 'FILE')}" if rule.rollback else ""
        kind = ", hot: in place, the tasks keep running" if rule.kind == "hot" else ""
        print(f"-> {rule.target}  (doc {rule.doc}{kind}): {how}{back}")
    if len(chain) > 1:
        print("between the hops: set `version` in the environment file to the version the deployment runs then")
    return 0


def _report(folder: Path) -> int:
    # imported here: start-up time (module docstring)
    from .report import render_html

    if not (folder / "allure-results").is_dir():
        print(f"{folder} is not a run folder (no allure-results inside)", file=sys.stderr)
        return 1
    out = render_html(folder)
    if out is None:
        print((folder / "RENDER.txt").read_text(), file=sys.stderr)
        return 1
    print(out)
    return 0


def _unlock(env_file: str, force_id: str | None) -> int:
    # imported here: start-up time (module docstring)
    from . import envfile, lock
    from .context import Deployment

    env = envfile.load(env_file, secrets="if available")  # the lock needs no password
    host = Deployment(env).backup_host
    held = lock.holder(host, env)
    if held is None:
        print(f"no lock on {env.name} ({lock.lock_path(env)} on {host.label})")
        return 0
    alive, why = lock.may_live(held)
    print(f"the lock of {env.name} is held by {lock.describe(held)}: {why}")
    if force_id is not None and force_id != held["id"]:
        print(
            f"not released: the lock there has id {held['id']}, not {force_id}: it is not the lock you checked "
            "(taken again since?); read it again",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if alive and force_id is None:
        print(
            "not released: its holder cannot be proven gone. Make sure that run is over (ask its operator, look at "
            f"that machine), then: {omsup_command('unlock', '--env', env.source, '--force', held['id'])}",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    gone = lock.release(host, env, held)
    if gone is not None and gone.get("id") != held["id"]:
        print(f"not released: the lock changed while it was read (now {lock.describe(gone)})", file=sys.stderr)
        return EXIT_REFUSED
    print(f"released the lock held by {lock.describe(held)}")
    return 0


def _abandon(env_file: str, runbook: str, reason: str) -> int:

    # imported here: start-up time (module docstring)
    from . import envfile, lock
    from .context import Deployment
    from .history import no_way_back_begun
    from .record import Record

    if not reason.strip():
        raise PreconditionRefused("--reason is empty", "say why the run is called off: it is kept for the audit")
    if not RUNBOOK_NAME.fullmatch(runbook):  # a name, never a path: '../elsewhere/upgrade_429' reached another folder
        raise PreconditionRefused(
            f"{printable(runbook)!r} is not a runbook's name", "give the name alone, such as upgrade_429"
        )
    env = envfile.load(env_file)

    def unfinished() -> Record:
        rec = Record.unfinished(env.state_dir, runbook, env.name)
        if rec is None:
            others = _unfinished_runbooks(env.state_dir, env.name)
            raise PreconditionRefused(
                f"no unfinished run of {runbook} on {env.name} under {env.state_dir}: nothing to abandon "
                f"(unfinished there: {', '.join(others) or 'none'})",
                "check the runbook's name and the environment file's state_dir",
            )
        return rec

    unfinished()  # a mistyped name or state_dir is said before any host is reached
    deployment = Deployment(env)
    host = deployment.backup_host
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    mine = lock.acquire(host, env, f"abandon {runbook}", who)  # no run of it is going on meanwhile
    try:
        rec = unfinished()  # again under the lock: the run may have finished meanwhile
        began = no_way_back_begun(rec)
        if began:
            raise PreconditionRefused(
                f"run {rec.run_id} of {runbook} began {', '.join(began)}: new containers (or, in a hot upgrade, new "
                "files in the running containers) may run on migrated metadata, or a database was dropped; abandoning "
                "it would leave that without a way back",
                "finish it (run the same runbook again) or, for an upgrade, roll it back (its rollback runbook)",
            )
        ob_set_back = _set_back_ob_globals(deployment, rec)
        rec.abandon(who, reason)
    finally:
        lock.release(host, env, mine)
    steps = ", ".join(f"{k} {e.status}" for k, e in rec.data.steps.items()) or "none"
    print(f"abandoned run {rec.run_id} of {runbook} on {env.name} ({rec.path}); the next run of {runbook} starts anew")
    print(f"  its steps: {steps}")
    if rec.facts.t1:
        print(
            f"  it stopped the old containers (T1 {rec.facts.t1}): start them again (docker start) before the next run"
        )
    if rec.facts.t3:
        print(
            f"  it stopped the new containers (T3 {rec.facts.t3}): start them again (docker start) if they are to run"
        )
    ha = rec.data.steps.get("disable_ha")
    if ha is not None:
        before = json.dumps((rec.facts.ha_before or {}).get("enable"))
        print(
            f"  it disabled HA: set ha.config's enable back to {before} (as before the run) before the next run"
            if ha.status == "done"
            else f"  it began disabling HA and that step did not finish ({ha.status}): check ha.config's enable "
            f"(before the run: {before}) and set it back if it changed"
        )
    if ob_set_back:
        print(
            f"  set back the OceanBase global timeouts its dumps had raised (it was stopped in between): {ob_set_back}"
        )
    return 0


def _unfinished_runbooks(state_dir: str, env_name: str) -> list[str]:
    """The runbooks with an unfinished run on ``env_name`` under ``state_dir`` (one folder per runbook)."""
    # imported here: start-up time (module docstring)
    from .record import Record

    return [n for n in Record.runbooks(state_dir) if Record.unfinished(state_dir, n, env_name) is not None]


def _set_back_ob_globals(deployment: Deployment, rec: Record) -> dict[str, int] | None:
    """A run killed while its dumps ran leaves the MetaDB tenant's global timeouts raised; its own
    next attempt would set them back, a run called off never runs again: so they are set back here."""
    before = rec.facts.ob_globals_before
    if not before or rec.facts.ob_globals_restored:
        return None
    try:
        deployment.metadb.set_ob_globals(before)
    except MetaDBProblem as e:
        raise PreconditionRefused(
            f"run {rec.run_id} raised the OceanBase tenant's global timeouts for its dumps and was stopped before "
            f"it set them back ({before}); setting them back failed: {e.message}; nothing was abandoned",
            "make the MetaDB reachable and run omsup abandon again (or SET GLOBAL those values by hand first)",
        ) from None
    with rec.change() as f:
        f.ob_globals_restored = True
    return dict(before)


def _status(env_file: str, as_json: bool) -> int:

    # imported here: start-up time (module docstring)
    from . import envfile, status

    env = envfile.load(env_file, secrets="if available")  # reads the ledgers and the lock: no password needed
    s = status.survey(env, status.lock_state(env))
    print(json.dumps(s, indent=2) if as_json else status.render(s))
    return 1 if s["unreadable"] else 0


def _check_env(file: str, secrets: bool, as_json: bool = False) -> int:

    # imported here: start-up time (module docstring)
    from . import envfile

    if as_json:
        try:
            env = envfile.load(file, secrets=secrets)
        except ConfigError as e:
            problems = [
                {
                    "line": p.line,
                    "key": p.key,
                    "expected": p.expected,
                    "seen": None if p.seen is None else repr(p.seen)[:200],
                    "hint": p.hint,
                }
                for p in e.problems
            ]
            print(json.dumps(printable_obj({"file": file, "ok": False, "problems": problems}), indent=2))
            return EXIT_USAGE
        doc = {
            "file": file,
            "ok": True,
            "environment": env.name,
            "sha256": env.sha256,
            "regions": [{"name": r.name, "cm_hb": r.cm_hb, "nodes": [n.name for n in r.nodes]} for r in env.regions],
            "databases": [db for _, db in env.databases()],
            "state_dir": env.state_dir,
            "secrets": {
                k: {"source": sec.source, "resolved": sec.resolved}
                for k, sec in (("metadb.password", env.metadb.password), ("console.password", env.console.password))
            },
        }
        print(json.dumps(printable_obj(doc), indent=2))
        return 0
    env = envfile.load(file, secrets=secrets)
    print(
        f"{env.name}: {len(env.nodes)} node(s) in {len(env.regions)} region(s); databases "
        f"{', '.join(db for _, db in env.databases())}; state in {env.state_dir}"
    )
    if not secrets:
        print(
            f"secrets not resolved: {env.metadb.password.source}, {env.console.password.source} "
            "(check them with --secrets, where they are available)"
        )
    return 0


def _copy_runbooks(folder: str) -> int:
    """The runbooks the package carries (omsup.runbooks), copied as a runbooks/ folder: each runbook's
    Python files, nothing compiled. Refused when DIR is not a folder or DIR/runbooks exists."""
    base = Path(folder)
    dest = base / "runbooks"
    if not base.is_dir():
        print(f"omsup runbooks: {folder} is not a folder; create it first", file=sys.stderr)
        return EXIT_USAGE
    if dest.exists() or dest.is_symlink():
        print(
            f"omsup runbooks: {dest} already exists; nothing was copied (move it aside, or name another folder)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    src = resources.files("omsup.runbooks")
    books = sorted(p.name for p in src.iterdir() if p.is_dir() and p.joinpath("__init__.py").is_file())
    dest.mkdir()
    shutil.copyfile(str(src.joinpath("__init__.py")), dest / "__init__.py")
    for name in books:
        (dest / name).mkdir()
        for f in src.joinpath(name).iterdir():
            if f.name.endswith(".py") and f.is_file():
                shutil.copyfile(str(f), dest / name / f.name)
    print(f"{len(books)} runbooks copied into {dest}: {', '.join(books)}")
    print(f"run one with: pytest {dest}/probe --env FILE")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "path":
            return _path(a.source, a.target, a.json)
        if a.cmd == "report":
            return _report(a.folder)
        if a.cmd == "unlock":
            return _unlock(a.env, a.force)
        if a.cmd == "status":
            return _status(a.env, a.json)
        if a.cmd == "abandon":
            return _abandon(a.env, a.runbook, a.reason)
        if a.cmd == "completion":
            print(_completion_bash(), end="")
            return 0
        if a.cmd == "runbooks":
            return _copy_runbooks(a.dir)
        if a.cmd == "schema":
            # imported here: start-up time (module docstring)
            from .envfile import json_schema

            print(json.dumps(json_schema(), indent=2))
            return 0
        return _check_env(a.file, a.secrets, a.json)
    except ConfigError as e:
        print(f"environment file refused:\n  {e}", file=sys.stderr)
        return EXIT_USAGE
    except OmsupError as e:
        print(f"omsup {a.cmd}: {e}", file=sys.stderr)
        return EXIT_REFUSED  # a helper refuses and changes nothing (abandon: nothing until it records the call-off)
    except BrokenPipeError:  # `omsup ... | head`: the reader went away; no traceback (the Python docs' recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
