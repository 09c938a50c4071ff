"""The layers (issue 28): only omsup/adapters/ talks to the outside. Steps, the probe's checks, the CLI, the status,
the executor and the plugin call adapter verbs; no command, statement or request is written anywhere else.

The same check by hand: grep -rnE "^(import|from) (subprocess|urllib|pymysql|docker|http)|metadb\\.(query|execute)\\(|\\.exec\\(|\\.run\\(\\"|host\\.run\\(|\\bcheck\\(\\"" omsup --include=*.py | grep -v omsup/adapters/
"""

from __future__ import annotations

import ast
from pathlib import Path

OMSUP = Path(__file__).resolve().parents[2] / "omsup"
OUTSIDE = {"subprocess", "urllib", "pymysql", "docker", "http", "requests", "paramiko", "testinfra"}
# the raw verbs by which adapters reach outside (a statement, a command line): never called outside omsup/adapters/
RAW_CALLS = {
    ("metadb", "query"),
    ("metadb", "execute"),
    ("metadb", "_exec"),
    ("engines", "exec"),
    ("hosts", "run"),
    ("hosts", "check"),
    ("host", "run"),
    ("host", "check"),
    ("backup_host", "run"),
    ("backup_host", "check"),
}
RAW_METHODS = {"run_local", "urlopen", "_request", "_post", "_call"}


def modules() -> list[Path]:
    return [p for p in OMSUP.rglob("*.py") if "adapters" not in p.parts]


def test_only_the_adapters_import_what_reaches_outside():
    found = []
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                if name.split(".")[0] in OUTSIDE and not (p.name == "redact.py" and name == "urllib.parse"):
                    found.append(f"{p.relative_to(OMSUP.parent)}:{node.lineno} imports {name}")
    assert not found, "\n".join(found)


def test_no_statement_or_command_is_run_outside_the_adapters():
    found = []
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Subscript):  # run.engines[n].exec(...)
                owner = owner.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (owner_name, node.func.attr) in RAW_CALLS or node.func.attr in RAW_METHODS:
                found.append(f"{p.relative_to(OMSUP.parent)}:{node.lineno} calls {owner_name}.{node.func.attr}(...)")
    assert not found, "\n".join(found)
