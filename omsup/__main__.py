"""python -m omsup path FROM TO | report RUN_FOLDER | check-env FILE"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ConfigError
from .versions import VersionError, upgrade_chain


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m omsup", description="OMS CE upgrade runbooks: helpers")
    sub = p.add_subparsers(dest="cmd", required=True)
    pa = sub.add_parser("path", help="the chain of documented upgrades (and their runbooks) from one version to another")
    pa.add_argument("source")
    pa.add_argument("target")
    rp = sub.add_parser("report", help="render the single-file HTML report of an existing run folder again")
    rp.add_argument("folder", type=Path)
    ce = sub.add_parser("check-env", help="validate an environment file (no connection is made)")
    ce.add_argument("file")
    ul = sub.add_parser("unlock", help="release the lock a killed run left on an environment (check no run is going on)")
    ul.add_argument("--env", required=True)
    a = p.parse_args(argv)
    if a.cmd == "path":
        try:
            chain = upgrade_chain(a.source, a.target)
        except VersionError as e:
            print(f"no documented path: {e}", file=sys.stderr)
            return 1
        if not chain:
            print("already there: nothing to do")
        for rule in chain:
            how = f"runbooks/{rule.runbook}" if rule.runbook else "no runbook here (no procedure is documented)"
            print(f"-> {rule.target}  (doc {rule.doc}): {how}")
        return 0
    if a.cmd == "report":
        from .report import render_html

        if not (a.folder / "allure-results").is_dir():
            print(f"{a.folder} is not a run folder (no allure-results inside)", file=sys.stderr)
            return 1
        out = render_html(a.folder)
        if out is None:
            print((a.folder / "RENDER.txt").read_text(), file=sys.stderr)
            return 1
        print(out)
        return 0
    from . import envfile

    if a.cmd == "unlock":
        from . import lock
        from .adapters.hosts import Host

        try:
            env = envfile.load(a.env)
        except ConfigError as e:
            print(f"environment file refused:\n  {e}", file=sys.stderr)
            return 1
        host = next((Host(n.host, n.name) for n in env.nodes if n.host == env.backup.host),
                    Host(env.backup.host, "backup host"))
        released = lock.release(host, env)
        print(f"released the lock held by {released}" if released else f"no lock on {env.name}")
        return 0
    try:
        env = envfile.load(a.file)
    except ConfigError as e:
        print(f"environment file refused:\n  {e}", file=sys.stderr)
        return 1
    print(f"{env.name}: {len(env.nodes)} node(s) in {len(env.regions)} region(s); databases "
          f"{', '.join(db for _, db in env.databases())}; state in {env.state_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
