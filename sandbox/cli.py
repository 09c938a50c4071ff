"""python -m sandbox up|status|down|fault|images: the local OMS CE deployment."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import deploy, facts, faults, images
from .procs import SandboxError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="bring up (or reuse) the deployment and print the env file's path")
    u.add_argument("--nodes", type=int, default=2)
    u.add_argument("--regions", type=int, default=1)
    u.add_argument("--version", default="4.2.8-CE")
    u.add_argument("--heartbeat-rows", type=int, default=100_000)
    u.add_argument("--ssh", action="store_true", help="each node also reachable over its own sshd")
    u.add_argument("--https", action="store_true", help="mount an HTTPS certificate (console serves HTTPS only)")
    u.add_argument(
        "--own-cm-nodes",
        action="store_true",
        help="give each node of a region its own cm_nodes (docker_init.sh must run on every node)",
    )
    u.add_argument("--bulk-mb", type=int, default=0, help="add this many MiB of configuration history to cm")
    u.add_argument("--env-file", help="where to write the environment file")
    u.add_argument(
        "--metadb",
        choices=["oceanbase", "mariadb"],
        default="oceanbase",
        help="the MetaDB engine: an OceanBase-kernel server (seekdb, the default) or MariaDB",
    )
    u.add_argument(
        "--variant",
        action="append",
        default=[],
        choices=list(facts.VARIANTS),
        metavar="NAME",
        help="a behaviour the public sources leave open, other than the stand-in's default (repeatable): "
        + "; ".join(f"{k}: {v}" for k, v in facts.VARIANTS.items()),
    )
    u.add_argument(
        "--host-down-seconds",
        type=int,
        help="ha.config's checkHostDownIntervalSec (540 by default, as documented): how long before a host "
        "without heartbeats turns OFFLINE; tests shorten it",
    )
    s = sub.add_parser("status", help="what runs")
    s.add_argument("--json", action="store_true")
    sub.add_parser("down", help="stop and remove everything `up` started")
    f = sub.add_parser(
        "fault",
        help="inject a fault",
        description="\n".join(f"{k}: {v}" for k, v in faults.FAULTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument("name", choices=list(faults.FAULTS))
    f.add_argument("--node")
    f.add_argument("--version")
    f.add_argument("--program", help="supervisor-stuck, program-crash: which program (default oms_drc_cm, oms_console)")
    f.add_argument("--count", type=int, help="many-projects: how many (default 200)")
    i = sub.add_parser("images", help="build the installation packages (all versions with --all)")
    i.add_argument("--all", action="store_true")
    i.add_argument("versions", nargs="*")
    a = p.parse_args(argv)
    if os.geteuid() != 0 and a.cmd in ("up", "down", "fault", "images"):
        print("sandbox: must run as root (it starts Docker engines, the MetaDB and sshd)", file=sys.stderr)
        return 2
    try:
        if a.cmd == "up":
            t0 = time.monotonic()
            path = deploy.up(
                a.nodes,
                a.regions,
                a.version,
                a.heartbeat_rows,
                a.ssh,
                a.env_file,
                own_cm_nodes=a.own_cm_nodes,
                https=a.https,
                bulk_mb=a.bulk_mb,
                metadb_engine=a.metadb,
                variants=a.variant,
                host_down_seconds=a.host_down_seconds,
            )
            print(f"sandbox up in {time.monotonic() - t0:.1f}s", file=sys.stderr)
            print(path)
        elif a.cmd == "status":
            st = deploy.status()
            if a.json:
                print(json.dumps(st, indent=2))
            elif not st["up"]:
                print("sandbox: down")
            else:
                print(f"env file: {st['env_file']}")
                m = st["metadb"]
                print(f"metadb: {m['engine']} {m.get('version')} at {m['host']}:{m['port']} running={m['running']}")
                for n in st["nodes"]:
                    print(
                        f"  {n['name']:<4} {n['region']:<9} {n['ip']:<12} {n['image'] or '-':<40} running={n['running']}"
                    )
        elif a.cmd == "down":
            deploy.down()
            print("sandbox: down")
        elif a.cmd == "fault":
            print(f"sandbox: fault {faults.inject(a.name, a.node, a.version, a.program, a.count)}")
        elif a.cmd == "images":
            vs = list(facts.VERSIONS) if a.all else [deploy.normal(v) for v in a.versions]
            for ver, path in images.ensure_packages(vs).items():
                print(f"{ver}\t{path}")
    except SandboxError as e:
        print(f"sandbox {a.cmd}: {e}", file=sys.stderr)
        return 1
    return 0
