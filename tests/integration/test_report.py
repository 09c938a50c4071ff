"""The audit report of a sandbox run: the run folder, no secret anywhere, the HTML in a real browser."""

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import omsup

from .conftest import ROOT, STATE

pytestmark = pytest.mark.integration

CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def upgraded(sandbox):
    """One upgrade on a fresh sandbox, with the process list sampled while it runs."""
    env = sandbox.fresh()
    secrets = [
        (STATE / "secrets" / name).read_text(encoding="utf-8") for name in ("metadb_password", "console_password")
    ]
    seen: list[str] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "runbooks/upgrade_429",
            "--env",
            env,
            "--report-root",
            str(sandbox.reports),
            "-p",
            "no:cacheprovider",
            "-v",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    stop.set()
    t.join()
    assert p.returncode == 0, p.stdout[-3000:]
    return {
        "folder": sandbox.last_report("upgrade_429"),
        "output": p.stdout + p.stderr,
        "ps": seen,
        "secrets": secrets,
        "env": env,
    }


def test_run_folder_holds_everything(upgraded):
    f = upgraded["folder"]
    for name in (
        "allure-results",
        "junit.xml",
        "summary.json",
        "summary.md",
        "events.jsonl",
        "ledger.json",
        "report.html",
    ):
        assert (f / name).exists(), name
    props = (f / "allure-results" / "environment.properties").read_text()
    for key in (
        "environment=sandbox",
        "version.before=4.2.8-CE",
        "version.target=4.2.9-CE",
        "nodes=n1(127.0.0.11)",
        "operator=",
        f"project.version={omsup.__version__}",
        "control.machine=",
        "run.started=20",
        "run.ended=20",
    ):
        assert key in props
    # the landing page's first eight, shown without a click: outcome, downtime, T1 and T2 in UTC first
    first = [line.split("=", 1)[0] for line in props.splitlines()[:4]]
    assert first == ["outcome", "downtime", "T1.utc", "T2.utc"], first
    assert "outcome=complete" in props and re.search(r"T1\.utc=20\d\d-\d\d-\d\dT[\d:.]+Z", props), props
    env_sha = hashlib.sha256(Path(upgraded["env"]).read_bytes()).hexdigest()
    assert f"environment.sha256={env_sha}" in props
    cats = {c["name"] for c in json.loads((f / "allure-results" / "categories.json").read_text())}
    assert {"Precondition refused", "Backup problem", "Container problem", "MetaDB problem", "OMS not ready"} <= cats
    s = json.loads((f / "summary.json").read_text())
    assert s["outcome"] == "complete" and s["times"]["T1"] and s["times"]["T2"]
    assert s["environment_sha256"] == env_sha and s["project_version"] == omsup.__version__
    assert s["control_machine"]["host"] == socket.gethostname()
    started, ended = (datetime.fromisoformat(s["times"][k]) for k in ("run_started", "run_ended"))
    assert started.utcoffset() == ended.utcoffset() == timedelta(0) and started < ended
    md = (f / "summary.md").read_text()
    assert env_sha in md and f"Started {s['times']['run_started']}, ended {s['times']['run_ended']}" in md
    assert "> **Warning**: console.scheme is http" in md  # the sandbox's console speaks http with Basic auth
    for line in (f / "events.jsonl").read_text().splitlines():  # full ISO-8601 UTC times
        t = datetime.fromisoformat(json.loads(line)["time"])
        assert t.utcoffset() == timedelta(0) and started <= t <= ended + timedelta(seconds=1)
    assert s["times"]["downtime_seconds"] > 0
    assert len(s["steps"]) == 11 and all(st["status"] == "passed" and st["seconds"] is not None for st in s["steps"])
    assert {b["db"] for b in s["backups"]} == {"rm_428", "cm_428", "cm_hb_428"}
    assert all(len(b["sha256"]) == 64 and b["size"] > 0 for b in s["backups"])
    assert s["oms_version"] == {"before": ["4.2.8-CE"], "after": ["4.2.8-CE", "4.2.9-CE"]}
    assert {x["host_status"] for x in s["servers"]} == {"ONLINE"}
    assert all(0 <= x["heartbeat_age_s"] <= 30 for x in s["servers"])
    assert all(b["before"] and b["after_checked_equal"] for b in s["binds"].values())
    junit = (f / "junit.xml").read_text()
    assert junit.count("<testcase") == 11


def test_every_step_carries_its_evidence(upgraded):
    results = upgraded["folder"] / "allure-results"
    tests = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    steps = {t["name"]: t for t in tests}
    assert len(steps) == 11 and len(tests) == 11  # the steps and nothing else: no made-up test for the summary
    (globals_file,) = results.glob("*-globals.json")  # the summary: the report's global attachments
    shown = {
        a["name"]: (results / a["source"]).read_text() for a in json.loads(globals_file.read_text())["attachments"]
    }
    assert set(shown) == {"summary.md", "summary.json"} and json.loads(shown["summary.json"])["outcome"] == "complete"
    names = {a["name"] for t in steps.values() for a in t.get("attachments", [])}
    nested = {a["name"] for t in steps.values() for s in t.get("steps", []) for a in s.get("attachments", [])}
    for evidence in (
        "old containers (binds, environment, image)",
        "backup manifest",
        "ha.config read back",
        "oms_version rows",
        "servers",
        "every command, statement and request",
    ):
        assert evidence in names, evidence
    # the init's attempts, each with its exit code and output (issue 27: evidence, not the flag)
    attempts = [n for n in names if n.endswith("docker_init.sh attempts (exit, init flag, oms_version, schema)")]
    assert attempts, sorted(names)
    for t in steps.values():
        for a in t.get("attachments", []):
            if a["name"] in attempts:
                shown = json.loads((results / a["source"]).read_text())
                assert shown and shown[-1]["exit"] == 0 and shown[-1]["output (tail)"], shown
    assert "n1: commands" in nested and "n2: commands" in nested  # per-node sub-steps
    for t in steps.values():
        assert "Implements: 004" in t.get("description", "")


def test_no_secret_in_the_run_folder_the_terminal_or_the_process_list(upgraded):
    for secret in upgraded["secrets"]:
        # the sandbox's secrets start with two letters and 12 random ones (then quotes, $, #, ;, a
        # backslash, non-ASCII): that ASCII stem survives every escaping (JSON \uXXXX, repr, URL),
        # so finding none of it means no form of the secret got out
        assert not secret.isascii() and len(secret) > 14
        # and its base64 (an Authorization header, a Kubernetes secret, a tool's debug output): the first 16
        # characters encode the ASCII stem, whatever follows
        b64 = base64.b64encode(secret.encode()).decode()[:16]
        for form in (secret, secret[:14], b64):
            assert form not in upgraded["output"]
            for snapshot in upgraded["ps"]:
                assert form not in snapshot
            for p in upgraded["folder"].rglob("*"):
                if p.is_file():
                    assert form.encode() not in p.read_bytes(), p
            for p in (STATE / "ledgers").rglob("*"):
                if p.is_file():
                    assert form.encode() not in p.read_bytes(), p
    assert len(upgraded["ps"]) > 20  # the process list was really sampled during the run


def test_the_single_file_report_opens_from_disk_in_chromium(upgraded, tmp_path):
    html = upgraded["folder"] / "report.html"
    assert not list(upgraded["folder"].glob("*.js"))  # one file, nothing beside it
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [*CHROMIUM, f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", html.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    visible = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)
    for label in (
        "0. Preflight (changes nothing)",
        "4. Back up rm, cm and every cm_hb",
        "7. Initialize metadata",
        "10. Task states as the HA table expects",
        "Global Attachments",
        "environment",
        "sandbox",
    ):
        assert label in visible, label
    assert re.search(r"Global Attachments(?:<[^>]*>|\s)*2\b", visible), "summary.md and summary.json"
    # what happened and when, on the landing page itself (the metadata block before its "Show more")
    block = visible[visible.find("Metadata") : visible.find("Show more")]
    for label in ("outcome", "complete", "downtime", "T1.utc", "T2.utc"):
        assert label in block, (label, block[:2000])
    shot = upgraded["folder"] / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                *CHROMIUM,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--window-size=1400,1000",
                f"--screenshot={shot}",
                html.as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )
    assert shot.exists() and shot.stat().st_size > 10_000
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "last-browser-test.png").write_bytes(shot.read_bytes())


def page_requests(html: Path, workdir: Path) -> tuple[set[str], str]:
    """The outside URLs the page asked for, from Chromium's network log, with every host unreachable (no
    name resolves, a dead proxy); and the rendered DOM. Chromium's own traffic (updates, time) is told
    apart by its network isolation key: the page's requests carry the file:// page's."""
    netlog = workdir / f"netlog-{html.stem}.json"
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                *CHROMIUM,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--proxy-server=127.0.0.1:9",
                f"--log-net-log={netlog}",
                "--net-log-capture-mode=Everything",
                "--dump-dom",
                html.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    asked = set()
    for ev in log["events"]:
        p = ev.get("params") or {}
        if ev["type"] == start_job and str(p.get("network_isolation_key", "")).startswith("file://"):
            url = str(p.get("url"))
            if url.startswith(("http://", "https://", "ws://", "wss://")):
                asked.add(url)
    return asked, dom


def test_the_report_makes_no_request_to_any_outside_host(upgraded, tmp_path):
    """Chromium with the network blocked and its network log on: the page asks for nothing but itself
    (Allure 3 embeds an analytics script; the run folder's copy has it stripped)."""
    # the method sees what a page asks for: a page with Allure's analytics tag
    control = tmp_path / "control.html"
    control.write_text(
        '<html><head><script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script></head>'
        "<body>control</body></html>"
    )
    asked, _ = page_requests(control, tmp_path)
    assert asked == {"https://www.googletagmanager.com/gtag/js?id=G-X"}
    html = upgraded["folder"] / "report.html"
    text = html.read_text()
    assert "googletagmanager" not in text and "gtag(" not in text and "Content-Security-Policy" in text
    asked, dom = page_requests(html, tmp_path)
    assert "0. Preflight (changes nothing)" in dom  # the page rendered
    assert asked == set(), asked


def test_a_plan_is_a_change_ticket(sandbox):
    sandbox.fresh()
    p = sandbox.runbook("upgrade_429", "--plan")
    assert p.returncode == 0, p.output[-3000:]
    folder = sorted(sandbox.reports.glob("plan-upgrade_429-sandbox-*"), key=lambda p: p.stat().st_mtime)[-1]
    md = (folder / "summary.md").read_text()
    s = json.loads((folder / "summary.json").read_text())
    assert s["outcome"] == "planned" and "## Plan (change ticket)" in md and "Nothing was changed" in md
    labels = [f"{st['number']}. {st['title']}" for st in s["steps"]]
    planned = [x["step"] for x in s["plan"]]
    assert len(planned) >= 8 and planned == [x for x in labels if x in planned]  # in the runbook's order
    for entry in s["plan"]:
        assert entry["doc"] and entry["lines"] and f"### {entry['step']} (doc {entry['doc']})" in md
    text = "\n".join(x for e in s["plan"] for x in e["lines"])
    for what in ("n1", "n2", "docker stop", "mysqldump", "IS_UPGRADE=true", "docker_init.sh"):
        assert what in text, what
    # in the document's order: the containers stop before the dumps, the new image starts after them
    assert text.index("docker stop") < text.index("mysqldump") < text.index("IS_UPGRADE=true")
    # structured for a pipeline: each line an action, on a node or on the whole run
    actions = [a for e in s["plan"] for a in e["actions"]]
    assert {a["node"] for a in actions} >= {"n1", "n2", None}
    assert all(a["action"] and not a["action"].startswith(("n1: ", "n2: ")) for a in actions)
    assert sum(len(e["lines"]) for e in s["plan"]) == len(actions)


def test_regenerating_the_html_gives_the_same_content(upgraded, tmp_path):
    f = upgraded["folder"]
    first = (f / "report.html").read_text()
    p = subprocess.run([sys.executable, "-m", "omsup", "report", str(f)], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    again = (f / "report.html").read_text()

    def content(h: str) -> list[tuple]:
        """The test results embedded in the single file: name, status and step titles."""
        out = []
        for _, b64 in re.findall(r'd\("(data/test-results/[^"]+)",\s*"([^"]*)"', h):
            data = json.loads(base64.b64decode(b64))
            out.append((data["name"], data["status"], tuple(s.get("name") for s in data.get("steps") or [])))
        return sorted(out)

    assert content(first) == content(again) and len(content(again)) == 11  # the steps; the summary is global
    assert abs(len(first) - len(again)) < 0.01 * len(first)


def test_a_failed_run_is_categorized_and_later_steps_name_it(sandbox):
    sandbox.fresh()
    sandbox.fault("metadb-down")
    p = sandbox.runbook("upgrade_429")
    sandbox.fault("metadb-up")
    assert p.returncode == 10  # refused before any change
    f = sandbox.last_report("upgrade_429")
    s = json.loads((f / "summary.json").read_text())
    assert s["outcome"] == "failed" and s["steps"][0]["category"] == "MetaDB problem"
    results = [json.loads(x.read_text()) for x in (f / "allure-results").glob("*-result.json")]
    skipped = [r for r in results if r["status"] == "skipped" and r["name"] != "Run summary"]
    assert len(skipped) == 10
    assert all("step 0. Preflight (changes nothing) failed" in r["statusDetails"]["message"] for r in skipped)
    assert (f / "report.html").exists()


def test_without_node_the_run_says_how_to_render_later(tmp_path):
    from omsup import report

    folder = tmp_path / "run"
    (folder / "allure-results").mkdir(parents=True)
    old, env = report.ALLURE_BIN, dict(os.environ)
    try:
        report.ALLURE_BIN = Path("/nonexistent/allure")
        os.environ["OMSUP_ALLURE"] = "/nonexistent/allure"
        assert report.render_html(folder) is None
    finally:
        report.ALLURE_BIN = old
        os.environ.clear()
        os.environ.update(env)
    text = (folder / "RENDER.txt").read_text()
    assert "omsup report" in text and "npm ci" in text
