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


# -- CI's slice and the full profile ----------------------------------------------------------------------------
# CI runs a representative slice of the integration tests within its 60 minutes (on this machine the suite
# as a whole takes well over an hour). The tests below run only with OMSUP_PROFILE=full (README, "Opt-in
# profiles"): they are deselected at collection, never skipped. Every entry must name collected tests
# (tests/unit/test_profiles.py), so the list cannot silently rot; a test not listed here runs in CI.
FULL_ONLY = (
    "test_ci_examples.py::test_the_pipeline_commands_against_the_sandbox",
    "test_engine_api.py::test_the_api_version_is_negotiated_where_a_pinned_one_is_refused",
    "test_engine_api.py::test_the_docker_cli_on_the_node_drives_the_upgrade_and_the_rollback",
    "test_fault_matrix.py::test_faults_at_every_step",
    "test_faults.py::test_a_console_that_dies_starting_stops_the_init_step_and_the_run_resumes",
    "test_faults.py::test_rollback_after_an_upgrade_that_stopped[start-fail-6]",
    "test_faults.py::test_rollback_refuses_a_damaged_backup_before_dropping_anything[delete]",
    "test_faults.py::test_rollback_refuses_a_damaged_backup_before_dropping_anything[alter]",
    "test_faults.py::test_rollback_resumes_after_the_metadb_stopped_during_the_restore",
    "test_faults.py::test_a_backup_changed_after_the_preflight_is_hashed_again_and_refused_before_its_drop",
    "test_faults.py::test_an_old_container_started_again_by_hand_stops_the_resume_until_the_run_is_abandoned",
    "test_faults.py::test_abandon_sets_back_the_oceanbase_timeouts_a_run_killed_during_its_dumps_left_raised",
    "test_faults.py::test_an_old_container_started_again_before_the_backups_only_makes_t1_early",
    "test_hot_upgrade.py::test_hot_upgrade_refusals",
    "test_metadb.py::test_an_engine_the_table_does_not_list_is_refused_unless_said_why",
    "test_metadb.py::test_the_metadb_the_nodes_use_must_be_the_one_of_the_environment_file",
    "test_metadb.py::test_the_metadb_in_another_time_zone_is_refused",
    "test_metadb.py::test_client_tools_on_the_backup_host_are_checked_up_front",
    "test_metadb.py::test_oceanbase_timeouts_are_raised_for_the_dumps_and_set_back",
    "test_metadb.py::test_a_rollback_compares_the_digest_kind_its_backup_recorded",
    "test_probe.py::test_the_probe_names_a_missing_client_on_the_backup_host",
    "test_probe.py::test_the_probe_observes_init_run_again_and_fails_on_nothing_it_leaves_open",
    "test_rehearsal.py::test_a_rehearsal_observes_the_variant_and_production_on_it_follows[oms-version-not-written]",
    "test_rehearsal.py::test_a_rehearsal_observes_the_variant_and_production_on_it_follows[init-flag]",
    "test_rehearsal.py::test_production_that_does_otherwise_than_its_rehearsal_is_warned_about",
    "test_rehearsal.py::test_rehearse_331_on_a_3_3_0_deployment",
    "test_rehearsal.py::test_a_deployment_whose_consoles_serve_https_is_rehearsed_with_the_replicas_own_certificates",
    "test_rehearsal.py::test_a_mariadb_metadb_is_rehearsed_on_the_scratch_server_the_user_names",
    "test_sandbox.py::test_each_engine_runs_runc_through_a_front_that_trims_capabilities_only_where_they_are_given",
    "test_sandbox.py::test_heartbeats_grow_and_the_metadb_holds_every_table",
    "test_sandbox.py::test_up_again_with_the_same_arguments_reuses_what_runs",
    "test_sandbox.py::test_a_stopped_node_turns_offline_and_store_files_are_written",
    "test_sandbox.py::test_console_api_needs_basic_auth_and_speaks_the_envelope",
    "test_sandbox.py::test_other_shapes_come_up_the_same_way",
    "test_sandbox.py::test_ssh_nodes_are_real_ssh_hosts_talking_to_their_engine",
    "test_ssh.py::test_a_changed_host_key_is_refused_on_a_reconnect_mid_run",
    "test_ssh.py::test_sudo_for_the_docker_and_file_commands",
    "test_ssh.py::test_a_jump_host_whose_key_changed_is_refused",
    "test_ssh.py::test_two_hops_reach_the_node_when_every_key_is_known",
    "test_ssh.py::test_a_proxycommand_that_runs_ssh_is_refused_naming_it",
    "test_standin.py::test_a_program_that_dies_starting_backs_off_then_goes_fatal_as_supervisor_does",
    "test_standin.py::test_after_an_upgrade_an_init_whose_console_dies_says_so_instead_of_the_start_line",
    "test_standin.py::test_the_console_publishes_no_server_or_connector_action_and_pages_with_a_null_total",
    "test_standin.py::test_five_wrong_passwords_lock_the_console_account",
    "test_standin.py::test_the_cm_updates_only_a_stopped_connector",
    "test_standin.py::test_installation_packages_load_with_the_tags_seen_in_practice",
    "test_upgrade_3x.py::test_upgrade_fixes_dbtype_and_rollback_restores[3.3.0-CE-upgrade_331-3.3.1-rollback_331-12-mariadb]",
    "test_upgrade_3x.py::test_upgrade_fixes_dbtype_and_rollback_restores[3.2.2-CE-upgrade_400-4.0.0-rollback_400-12-oceanbase]",
    "test_upgrade_3x.py::test_single_node_runbook_refuses_several_nodes",
    "test_upgrade_3x.py::test_connector_dbtype_alone_uses_batch_om_where_a_host_has_one_source_type",
    "test_upgrade_3x.py::test_without_the_cm_by_name_api_the_dbtype_step_gives_the_consoles_steps_and_resumes",
    "test_upgrade_3x.py::test_a_connector_stopped_for_its_fix_runs_again_whatever_fails_after",
    "test_upgrade_429.py::test_from_420_without_oms_version_takes_the_documented_recovery",
    "test_upgrade_429.py::test_from_410_preflight_refuses_and_changes_nothing",
    "test_upgrade_429.py::test_own_cm_nodes_runs_init_on_every_node",
    "test_upgrade_429.py::test_https_console_is_verified_against_the_private_ca",
    "test_upgrade_429.py::test_old_heartbeats_go_before_t1_and_the_documents_delete_still_runs_at_its_step[mariadb]",
    "test_upgrade_429.py::test_a_project_not_running_after_the_rollback_is_resumed_and_reported",
    "test_upgrade_429.py::test_a_failed_early_image_load_stops_the_run_before_any_container_stops",
)
PROFILES = ("ci", "full")


def full_only(nodeid: str) -> str | None:
    """The FULL_ONLY entry naming this test (tests/integration/<file>::<name>[<params>]), if any."""
    tail = nodeid.split("tests/integration/", 1)[-1]
    return next((e for e in FULL_ONLY if tail == e or tail.startswith(e + "[")), None)


def pytest_collection_modifyitems(config, items):
    profile = os.environ.get("OMSUP_PROFILE", "ci").strip() or "ci"
    if profile not in PROFILES:
        raise pytest.UsageError(f"OMSUP_PROFILE={profile!r}: expected one of {', '.join(PROFILES)}")
    ours = [i for i in items if "tests/integration/" in i.nodeid]
    if profile == "full" or any("::" in str(a) for a in config.args):  # a test named on the command line runs
        return
    dropped = [i for i in ours if full_only(i.nodeid)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]
