"""The sandbox from the tests' side: bring it up, inject faults, run runbooks, look independently.

Nothing here uses the runbooks' own adapters for checking: the MetaDB is read as MariaDB's root
over the sandbox's socket, the engines through their sockets, so a test sees what is really there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pymysql
import pytest

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("OMSUP_SANDBOX_DIR", "/tmp/omsup-sandbox"))

pytestmark = pytest.mark.integration


def _run(args: list[str], timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
        )
    return p


class Sandbox:
    def __init__(self, reports: Path) -> None:
        self.reports = reports
        self.env_file: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        return _run([sys.executable, "-m", "sandbox", *args], timeout=timeout, check=check)

    def fresh(self, *args: str) -> str:
        """A new sandbox with these arguments (down first, so nothing of an earlier test remains)."""
        self.cli("down")
        self.env_file = self.cli("up", *args).stdout.strip().splitlines()[-1]
        return self.env_file

    def edited_env(self, edit) -> str:
        """A copy of the sandbox's environment file, changed by ``edit(doc)``."""
        import yaml

        doc = yaml.safe_load(Path(self.env_file).read_text())
        edit(doc)
        out = self.reports / f"edited-{time.monotonic_ns()}.env.yaml"
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        return str(out)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json").stdout)

    def fault(self, name: str, node: str | None = None, version: str | None = None) -> None:
        args = ["fault", name] + (["--node", node] if node else []) + (["--version", version] if version else [])
        self.cli(*args)

    # -- running runbooks --------------------------------------------------------------------
    def runbook(
        self, name: str, *args: str, env_file: str | None = None, path: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run a runbook on the sandbox (or with another environment file, or with a PATH of the test's)."""
        assert self.env_file, "no sandbox is up"
        env = {**os.environ, "PATH": path} if path else None
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"runbooks/{name}",
                "--env",
                env_file or self.env_file,
                "--report-root",
                str(self.reports),
                "-p",
                "no:cacheprovider",
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        p.output = p.stdout + p.stderr  # type: ignore[attr-defined]
        return p

    def omsup(self, *args: str) -> subprocess.CompletedProcess:
        """The ``omsup`` command on the sandbox's environment file (``--env`` added after ``args``)."""
        assert self.env_file, "no sandbox is up"
        cmd = [sys.executable, "-m", "omsup", *args, "--env", self.env_file]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)

    def next_steps(self) -> list[str]:
        """What ``omsup status`` says to do next."""
        p = self.omsup("status", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)["next"]

    def start(self, name: str, *args: str, path: str | None = None) -> subprocess.Popen:
        """Start a runbook on the sandbox in the background (output to a pipe), with a PATH of the test's."""
        assert self.env_file, "no sandbox is up"
        env = {**os.environ, "PATH": path} if path else None
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", f"runbooks/{name}", "--env", self.env_file, "--report-root",
             str(self.reports), "-p", "no:cacheprovider", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    def start_paused(self, name: str, step: str, *args: str) -> subprocess.Popen:
        """Start ``name`` held at the start of ``step`` (tests/pause_plugin.py) and return once it is
        held there. ``release(proc)`` lets it go on (after 120 s it goes on by itself)."""
        assert self.env_file, "no sandbox is up"
        release = self.reports / f".release-{os.getpid()}-{time.monotonic_ns()}"
        held = Path(f"{release}.held")
        env = {
            **os.environ,
            "OMSUP_PAUSE_AT_STEP": step,
            "OMSUP_PAUSE_SECONDS": "120",
            "OMSUP_PAUSE_UNTIL_FILE": str(release),
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                f"runbooks/{name}",
                "--env",
                self.env_file,
                "--report-root",
                str(self.reports),
                "-p",
                "no:cacheprovider",
                "-p",
                "tests.pause_plugin",
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # a suite started in the background (`cmd &` in a script) inherits SIGINT ignored, and Python
            # then installs no KeyboardInterrupt handler: the run would not hear a test's Ctrl-C
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        proc.release_file = release  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if held.exists():
                return proc
            if proc.poll() is not None:
                raise AssertionError(f"{name} ended before step {step}: {proc.communicate()[0][-3000:]}")
            time.sleep(0.05)
        proc.kill()
        raise AssertionError(f"{name} never reached step {step}: {proc.communicate()[0][-3000:]}")

    @staticmethod
    def release(proc: subprocess.Popen) -> None:
        proc.release_file.touch()  # type: ignore[attr-defined]

    def last_report(self, name: str) -> Path:
        return sorted(self.reports.glob(f"{name}-sandbox-*"), key=lambda p: p.stat().st_mtime)[-1]

    # -- looking independently ---------------------------------------------------------------
    def sql(self, sql: str, db: str | None = None) -> list[tuple]:
        """A statement as the MetaDB's root (over TCP, with its password), not through the runbooks' adapter."""
        return self.sql_with_columns(sql, db)[1]

    def sql_with_columns(self, sql: str, db: str | None = None) -> tuple[list[str], list[tuple]]:
        st = json.loads((STATE / "state.json").read_text())
        conn = pymysql.connect(
            host="127.0.0.1",
            port=st["metadb"]["port"],
            user="root",
            database=db,
            autocommit=True,
            password=(STATE / "secrets" / "metadb_root_password").read_bytes(),
            charset="utf8mb4",
        )
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return [d[0] for d in cur.description or []], list(cur.fetchall())
        finally:
            conn.close()

    def engine(self, node: str) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"unix://{STATE}/nodes/{node}/docker.sock", timeout=60)

    def containers(self) -> dict[str, dict]:
        """Every node's containers: name -> (id, image tag, running, binds)."""
        out = {}
        for n in self.status()["nodes"]:
            c = self.engine(n["name"])
            out[n["name"]] = {
                x.name: {
                    "id": x.id,
                    "image": (x.image.tags or [x.image.id])[0],
                    "running": x.status == "running",
                    "binds": x.attrs["HostConfig"]["Binds"],
                }
                for x in c.containers.list(all=True)
            }
            c.close()
        return out

    def databases(self) -> list[str]:
        m = self.status()["metadb"]
        return [m["rm"], m["cm"], *m["cm_hb"]]

    def snapshot(self, skip: tuple[str, ...] = ()) -> dict:
        """Every table's DDL and rows, in every database of the deployment."""
        out: dict = {}
        for db in self.databases():
            tables = [r[0] for r in self.sql("SHOW FULL TABLES WHERE Table_type='BASE TABLE'", db)]
            out[db] = {}
            for t in sorted(x for x in tables if x not in skip):
                # the AUTO_INCREMENT counter moves with every heartbeat: not part of the schema
                ddl = re.sub(r" AUTO_INCREMENT ?= ?\d+", "", self.sql(f"SHOW CREATE TABLE `{t}`", db)[0][1])
                cols, rows = self.sql_with_columns(f"SELECT * FROM `{t}`", db)
                keep = [i for i, c in enumerate(cols) if c not in VOLATILE.get(t, ())]
                out[db][t] = {"ddl": ddl, "rows": sorted(repr(tuple(r[i] for i in keep)) for r in rows)}
        return out

    def snapshot_small(self) -> dict:
        """The snapshot without the bulk configuration history (compared by ``bulk_digest`` instead)."""
        return self.snapshot(skip=("config_job",))

    def ha(self) -> dict:
        rm = self.status()["metadb"]["rm"]
        return json.loads(self.sql("SELECT cfg_value FROM oms_normal_config WHERE cfg_name='ha.config'", rm)[0][0])

    def bulk_digest(self) -> tuple:
        """The configuration history of cm, summed by the test's own expression (not the runbooks' digest)."""
        cm = self.status()["metadb"]["cm"]
        return self.sql(
            "SELECT COUNT(*), SUM(CRC32(CONCAT(`key`, '=', `value`))), SUM(LENGTH(`value`)) FROM config_job", cm
        )[0]

    def wait_offline(self, node: str) -> None:
        """Until ``node`` counts as OFFLINE in cm.host (its supervisor heartbeat more than 10 s old)."""
        ip = next(n["ip"] for n in self.status()["nodes"] if n["name"] == node)
        cm = self.status()["metadb"]["cm"]
        self.wait(
            lambda: self.sql(f"SELECT host_status FROM host WHERE ip='{ip}'", cm) == [("OFFLINE",)],
            40,
            f"{node} OFFLINE",
        )

    def wait(self, check, timeout: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.fail("integration tests need root and the Docker engine: run `bash scripts/test.sh`", pytrace=False)
    sb = Sandbox(tmp_path_factory.mktemp("reports"))
    yield sb
    sb.cli("down", check=False)


# columns a running OMS keeps current by itself (the CM's host status, the supervisors' heartbeats)
VOLATILE = {"host": ("host_status", "gmt_modified"), "heart_beat": ("gmt_modified",)}


def ledger_paths(runbook: str) -> list[Path]:
    """The sandbox's run ledgers of ``runbook``, oldest first (read as files, not through omsup)."""
    return sorted((STATE / "ledgers" / runbook).glob("*/ledger.json"))


def without_volatile(snap: dict) -> dict:
    """A snapshot without what a running OMS changes by itself: heartbeats, host status and times."""
    out = json.loads(json.dumps(snap))
    for tables in out.values():
        if "heatbeat_sequence" in tables:
            tables["heatbeat_sequence"]["rows"] = len(tables["heatbeat_sequence"]["rows"]) > 0
        if "heart_beat" in tables:
            tables["heart_beat"]["rows"] = len(tables["heart_beat"]["rows"]) > 0
    return out


def assert_restored(at_backup: dict, restored: dict) -> None:
    """Tables after a rollback equal those at backup time, but for what a running OMS changes by
    itself: new heartbeats (the old rows must all be there), host status and times, and ha.config
    (disabled for the backup, enabled again by the rollback)."""
    for db, tables in at_backup.items():
        assert set(restored[db]) == set(tables), db
        for t, content in tables.items():
            assert restored[db][t]["ddl"] == content["ddl"], f"{db}.{t} schema differs after the rollback"
            if t in ("heatbeat_sequence", "heart_beat"):  # new heartbeats since: the old rows must all be there
                old_ids = {r.split(",")[0] for r in content["rows"]}
                assert old_ids <= {r.split(",")[0] for r in restored[db][t]["rows"]}, f"{db}.{t} lost rows"
            elif t == "host":  # its volatile columns are left out of every snapshot
                assert restored[db][t]["rows"] == content["rows"], f"{db}.host differs after the rollback"
            elif t == "oms_normal_config":
                others = [r for r in content["rows"] if "ha.config" not in r]
                assert [r for r in restored[db][t]["rows"] if "ha.config" not in r] == others
            else:
                assert restored[db][t]["rows"] == content["rows"], f"{db}.{t} rows differ after the rollback"
